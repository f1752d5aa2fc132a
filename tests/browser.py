"""A headless Chromium for the tests, driven over the DevTools protocol with
aiohttp's WebSocket client (a dependency already): open a page, evaluate
JavaScript in it, click, take a screenshot. Debian's `chromium` package;
`.ci/run` installs it.

The browser runs with no sandbox (tests may run as root in a container), no
network use of its own, a throw-away profile, and listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
NAMES = ("chromium", "chromium-browser")
TIMEOUT_S = 20.0


def chromium_or_skip() -> str:
    """The Chromium executable. Missing, the test is skipped on a workstation and
    fails under CI=true: CI installs it (`.ci/run`), so missing there is a fault."""
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    message = "headless Chromium is needed (Debian: apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + "; .ci/run installs it")
    pytest.skip(message)


class Page:
    """One tab, driven over a DevTools session."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse, session: str) -> None:
        self._socket, self._session = socket, session
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []  # every event seen, in order

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call one DevTools method and return its result (an error raises)."""
        ident = next(self._ids)
        message = {"id": ident, "method": method, "params": params, "sessionId": self._session}
        await self._socket.send_json(message)
        while True:
            reply = await self._receive()
            if reply.get("id") == ident:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    async def wait_for(self, event: str) -> dict[str, Any]:
        """The next `event` of this tab (one already seen counts once)."""
        for index, seen in enumerate(self.events):
            if seen.get("method") == event:
                del self.events[index]
                return seen
        while True:
            message = await self._receive()
            if message.get("method") == event:
                self.events.remove(message)
                return message

    async def _receive(self) -> dict[str, Any]:
        message: dict[str, Any] = await asyncio.wait_for(self._socket.receive_json(), TIMEOUT_S)
        if "method" in message and message.get("sessionId") == self._session:
            self.events.append(message)
        return message

    async def open(self, url: str) -> None:
        """Load `url` and wait for its load event."""
        await self.send("Page.navigate", url=url)
        await self.wait_for("Page.loadEventFired")

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (a thrown
        exception raises)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, path: Path, width: int = 1400, height: int = 800) -> None:
        """A PNG of the page at this viewport size (the whole page's height)."""
        metrics = {"width": width, "deviceScaleFactor": 1, "mobile": False}
        await self.send("Emulation.setDeviceMetricsOverride", height=height, **metrics)
        full = await self.evaluate("document.documentElement.scrollHeight")
        await self.send(
            "Emulation.setDeviceMetricsOverride", height=max(height, int(full)), **metrics
        )
        shot = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


@contextlib.asynccontextmanager
async def browser_page(executable: str) -> AsyncIterator[Page]:
    """A fresh headless Chromium with one tab, closed afterwards."""
    # The browser's helper processes may still be writing the profile as it goes.
    with tempfile.TemporaryDirectory(
        prefix="qlik-email-chromium-", ignore_cleanup_errors=True
    ) as profile:
        process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            endpoint = await _endpoint(Path(profile), process)
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(endpoint, max_msg_size=0) as socket,
            ):
                page = await _new_page(socket)
                await page.send("Page.enable")
                await page.send("Runtime.enable")
                try:
                    yield page
                finally:
                    await socket.send_json({"id": 0, "method": "Browser.close"})
                    await asyncio.to_thread(_wait, process, 5)
        finally:
            if process.poll() is None:
                process.terminate()
                if not _wait(process, 10):
                    process.kill()
                    process.wait()


def _wait(process: subprocess.Popen[bytes], seconds: float) -> bool:
    """Whether `process` ended within `seconds`."""
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


async def _endpoint(profile: Path, process: subprocess.Popen[bytes]) -> str:
    """The browser's DevTools WebSocket, from the file it writes once listening."""
    active = profile / "DevToolsActivePort"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S
    while loop.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with status {process.returncode}")
        with contextlib.suppress(FileNotFoundError):
            lines = active.read_text().split("\n")
            if len(lines) >= 2 and lines[1]:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        await asyncio.sleep(0.05)
    raise RuntimeError("chromium did not open its DevTools port")


async def _new_page(socket: aiohttp.ClientWebSocketResponse) -> Page:
    async def call(ident: int, method: str, **params: Any) -> dict[str, Any]:
        await socket.send_json({"id": ident, "method": method, "params": params})
        while True:
            reply = await asyncio.wait_for(socket.receive_json(), TIMEOUT_S)
            if reply.get("id") == ident:
                result: dict[str, Any] = reply["result"]
                return result

    target = await call(1, "Target.createTarget", url="about:blank")
    attached = await call(2, "Target.attachToTarget", targetId=target["targetId"], flatten=True)
    return Page(socket, attached["sessionId"])
