"""The fleet page in a real browser (headless Chromium): what a person sees.

The page is made by the real CLI (`drift --verify --html`) against a sandbox
fleet in which one tenant drifted to a hostile sender name, one fails
verify-connection, one drifted in an ignored field, one cannot be read and one
is paused.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import Page, browser_page, chromium_or_skip
from conftest import run_cli

from reconciler.sandbox import Sandbox

HOSTILE = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"
EXPECTED_STATUS = {
    "tenant-001": "drifted",
    "tenant-002": "clean",
    "tenant-003": "unhealthy",
    "tenant-004": "paused",
    "tenant-005": "unhealthy",
    "tenant-006": "unreadable",
}
# Where the test leaves its screenshot (for a person to look at), if asked to.
SCREENSHOT_VARIABLE = "QLIK_EMAIL_SCREENSHOT"


@pytest.fixture(scope="module")
def fleet_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The fleet page of a six-tenant sandbox fleet, made by `drift --html`."""
    out = tmp_path_factory.mktemp("fleet")
    with Sandbox(tenants=6, seed=7) as sandbox:
        repo = out / "config"
        sandbox.write_config(repo, microsoft365=("tenant-002",))
        assert run_cli("apply", str(repo), "--auto-approve").code == 0
        sandbox.edit("tenant-001", senderName=HOSTILE)
        sandbox.break_password("tenant-003")
        sandbox.edit("tenant-005", serverPort=2)
        root = repo / "qlik-email.yaml"
        root.write_text(
            root.read_text() + "drift:\n  ignore:\n    - tenant: tenant-005\n"
            '      field: serverPort\n      reason: "relay move, OPS-42"\n'
            "      expires: 2099-12-31\n"
        )
        (repo / ".secrets" / "tenant-006.apikey").write_text("not-the-key\n")
        tenant_file = repo / "tenants" / "tenant-004.yaml"
        tenant_file.write_text(
            tenant_file.read_text() + 'paused:\n  reason: "SMTP relay move, OPS-9"\n'
        )
        page = out / "fleet.html"
        result = run_cli("drift", str(repo), "--verify", "--html", str(page))
        assert result.code == 1, result  # tenant-006 could not be read
    yield page


def in_browser(page_file: Path, steps: Any) -> Any:
    """Open `page_file` in headless Chromium and run `steps(page)` there."""
    executable = chromium_or_skip()

    async def main() -> Any:
        async with browser_page(executable) as page:
            await page.send("Network.enable")  # to see every request the page makes
            await page.send("Log.enable")  # and what the browser says of it (CSP)
            await page.open(page_file.as_uri())
            return await steps(page)

    return asyncio.run(main())


VISIBLE_ROWS = """
Array.from(document.querySelectorAll('#fleet tbody tr'))
  .filter(r => r.offsetParent !== null)
  .map(r => Array.from(r.cells).map(c => c.innerText.trim()))
"""


async def _visible_rows(page: Page) -> list[list[str]]:
    rows: list[list[str]] = await page.evaluate(VISIBLE_ROWS)
    return rows


async def _names(page: Page) -> list[str]:
    return [cells[1].split("\n")[0] for cells in await _visible_rows(page)]


async def _click(page: Page, selector: str) -> None:
    await page.evaluate(f"document.querySelector({json.dumps(selector)}).click()")


def test_every_tenant_and_the_counts_are_shown(fleet_page: Path) -> None:
    async def steps(page: Page) -> dict[str, Any]:
        return {
            "rows": await _visible_rows(page),
            "counts": await page.evaluate(
                "Array.from(document.querySelectorAll('.count')).map(c => c.innerText)"
            ),
            "shown": await page.evaluate("document.getElementById('shown').innerText"),
            "requests": [
                e["params"]["request"]["url"]
                for e in page.events
                if e["method"] == "Network.requestWillBeSent"
            ],
            "logged": [
                e["params"]["entry"] for e in page.events if e["method"] == "Log.entryAdded"
            ],
        }

    seen = in_browser(fleet_page, steps)
    status = {cells[1].split("\n")[0]: cells[0] for cells in seen["rows"]}
    assert status == EXPECTED_STATUS
    counts = [" ".join(text.split()) for text in seen["counts"]]
    assert counts == [
        "6 tenants",
        "1 drifted",
        "2 unhealthy",
        "1 unreadable",
        "1 clean",
        "1 paused",
    ]
    assert seen["shown"] == "6 of 6 tenants shown"
    # Self-contained: the page itself is the only request, and the browser
    # reported nothing (a style or script its policy refused would be logged).
    assert seen["requests"] == [fleet_page.as_uri()]
    assert seen["logged"] == []
    by_name = {cells[1].split("\n")[0]: cells for cells in seen["rows"]}
    assert "535" in by_name["tenant-003"][5]  # the failed verify-connection, in Health
    assert "relay move, OPS-42" in by_name["tenant-005"][7]  # the ignore rule
    assert "could not be read" in by_name["tenant-006"][5]
    assert by_name["tenant-002"][2] == "Microsoft365"
    assert by_name["tenant-004"][7] == "paused: SMTP relay move, OPS-9"
    assert by_name["tenant-004"][5] == "not contacted: paused"


def test_hostile_text_is_shown_as_text_and_never_run(fleet_page: Path) -> None:
    async def steps(page: Page) -> dict[str, Any]:
        row = "document.querySelector('#fleet tbody tr')"
        return {
            "title": await page.evaluate("document.title"),
            "images": await page.evaluate("document.images.length"),
            "scripts": await page.evaluate("document.scripts.length"),
            "sender": await page.evaluate(f"{row}.cells[4].innerText"),
            "drift": await page.evaluate(f"{row}.cells[6].innerText"),
            "dialogs": [e for e in page.events if e["method"] == "Page.javascriptDialogOpening"],
        }

    seen = in_browser(fleet_page, steps)
    assert seen["title"] == "qlik-email fleet: 6 tenant(s)"  # no injected script ran
    assert seen["images"] == 0 and seen["scripts"] == 1  # the page's own script only
    assert HOSTILE in seen["sender"]  # the characters, as a person reads them
    assert f"live {json.dumps(HOSTILE)}" in seen["drift"]  # quoted, as every report shows it
    assert seen["dialogs"] == []


def test_sorting_and_filtering(fleet_page: Path, tmp_path: Path) -> None:
    async def steps(page: Page) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        await _click(page, "#fleet thead th:nth-child(2) button")  # Tenant, ascending
        seen["ascending"] = await _names(page)
        await _click(page, "#fleet thead th:nth-child(2) button")  # then descending
        seen["descending"] = await _names(page)
        await _click(page, "#fleet thead th:nth-child(1) button")  # Status: worst first
        seen["by_status"] = [cells[0] for cells in await _visible_rows(page)]
        await page.evaluate(
            "(() => { const f = document.getElementById('filter'); f.value = 'OPS-42';"
            " f.dispatchEvent(new Event('input')); })()"
        )
        seen["filtered"] = await _names(page)
        seen["shown"] = await page.evaluate("document.getElementById('shown').innerText")
        await page.evaluate(
            "(() => { const f = document.getElementById('filter'); f.value = '';"
            " f.dispatchEvent(new Event('input')); })()"
        )
        await _click(page, ".count.unhealthy button")  # a summary card filters too
        seen["unhealthy"] = await _names(page)
        await _click(page, ".count.unhealthy button")  # and a second click clears it
        seen["again"] = len(await _names(page))
        await page.screenshot(tmp_path / "sorted.png")
        return seen

    seen = in_browser(fleet_page, steps)
    names = sorted(EXPECTED_STATUS)
    assert seen["ascending"] == names
    assert seen["descending"] == names[::-1]
    assert seen["by_status"] == [
        "unreadable",
        "drifted",
        "unhealthy",
        "unhealthy",
        "clean",
        "paused",
    ]
    assert seen["filtered"] == ["tenant-005"] and seen["shown"] == "1 of 6 tenants shown"
    assert sorted(seen["unhealthy"]) == ["tenant-003", "tenant-005"]
    assert seen["again"] == 6
    assert (tmp_path / "sorted.png").read_bytes().startswith(b"\x89PNG")


def test_the_page_reads_without_javascript(fleet_page: Path) -> None:
    async def steps(page: Page) -> dict[str, Any]:
        await page.send("Emulation.setScriptExecutionDisabled", value=True)
        await page.open(fleet_page.as_uri())
        return {
            "rows": await _visible_rows(page),
            "controls": await page.evaluate(
                "document.getElementById('controls').offsetParent === null"
            ),
        }

    seen = in_browser(fleet_page, steps)
    assert [cells[1].split("\n")[0] for cells in seen["rows"]] == sorted(EXPECTED_STATUS)
    assert seen["controls"] is True  # the filter, useless without a script, is not shown


def test_screenshot_of_the_page(fleet_page: Path, tmp_path: Path) -> None:
    """A screenshot, for a person to look at (QLIK_EMAIL_SCREENSHOT=FILE keeps it)."""
    target = Path(os.environ.get(SCREENSHOT_VARIABLE) or tmp_path / "fleet.png")

    async def steps(page: Page) -> None:
        await page.screenshot(target)

    in_browser(fleet_page, steps)
    assert target.read_bytes().startswith(b"\x89PNG") and target.stat().st_size > 10_000
