"""Instructions per GET at each layer of the client, counted by valgrind.

    .venv/bin/python bench/client_layers.py [--gets 2000] [--src OTHER_TREE]

One sandbox process (`--no-rate-limit`, 500 tenants, each given a BasicAuth
configuration first, so the bodies have their real size) answers; this script
runs itself under `valgrind --tool=callgrind` once without a GET and once per
layer with `--gets` GETs, 64 in flight, on one `ApiSession` (pacing off, no
retries). The difference divided by `--gets` is the figure: instructions, not
time, so it does not move with the machine's load (bench/instructions.py).
Layers, from the bottom:

- `aiohttp`: the session's own aiohttp ClientSession, `get`, `read`, `json.loads`;
- `transport`: `Transport.send` as the wire calls it (its headers and
  timeouts), which reads the body within the size limit;
- `wire`: `Wire.exchange` (a slot, the deadline, `read_body`, the Reply);
- `get`: `TenantClient.get_email_config` (the Sender and the JSON checks);
- `read_live`: `TenantClient.read_live` (the LiveState: scrubbed, fingerprinted).

`--src` counts another checkout of the project (its `reconciler` package, with
this environment's libraries); `--layers wire,get,read_live` counts only the
layers above the wire, the ones an older checkout with other internals has
too (its wire given parsed URLs when its sender parsed them). About a minute
per layer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("aiohttp", "transport", "wire", "get", "read_live")
IN_FLIGHT = 64
PATH = "/api/v1/transports/email-config"
REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


async def drive(fleet: dict[str, Any], layer: str, gets: int) -> None:
    """`gets` GETs through `layer`, after one GET that opens the session's client."""
    import httpx

    from reconciler.client import ApiKeyCredentials, ApiSession, ClientOptions
    from reconciler.secrets import Secret

    options = ClientOptions(connections=IN_FLIGHT, pace=False, max_retries=0)
    async with ApiSession(options) as session:
        tenants = [
            session.tenant(t["name"], t["url"], ApiKeyCredentials(Secret(t["api_key"])))
            for t in fleet["tenants"]
        ]
        urls = [t["url"] + PATH for t in fleet["tenants"]]
        # Trees before the request path without httpx's models took parsed URLs.
        parsed = hasattr(session._sender, "url")
        auth = [{"Authorization": f"Bearer {t['api_key']}"} for t in fleet["tenants"]]
        await tenants[0].get_email_config()
        wire = session._wire
        transport: Any = wire._transport
        if layer in ("aiohttp", "transport"):  # this tree's internals
            aio = transport._session

        async def one(k: int) -> None:
            if layer == "aiohttp":
                async with aio.get(urls[k], headers=auth[k]) as answer:
                    json.loads(await answer.read())
            elif layer == "transport":  # as the wire calls it
                headers = {**wire._headers, **auth[k]}
                limit = wire._options.max_response_bytes
                reply = await transport.send("GET", urls[k], headers, None, wire._timeouts, limit)
                json.loads(reply.content)
            elif layer == "wire":
                url = httpx.URL(urls[k]) if parsed else urls[k]
                json.loads((await wire.exchange("GET", url, None, auth[k])).content)
            elif layer == "get":
                await tenants[k].get_email_config()
            else:
                await tenants[k].read_live()

        numbers = iter(range(gets))

        async def worker() -> None:
            for i in numbers:
                await one(i % len(tenants))

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


def count(src: Path, ready: Path, layer: str, gets: int) -> int:
    """Instructions of this script's child run (`layer`, `gets`) under valgrind."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += [sys.executable, __file__, "--child", layer, str(gets), str(ready), str(src)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    found = REFS.findall(done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"{layer}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return int(found[-1].replace(",", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--src", type=Path, default=ROOT, help="the checkout to count")
    parser.add_argument("--layers", default=",".join(LAYERS), help="the layers to count")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        layer, gets, ready, src = args.child
        sys.path.insert(0, src)
        asyncio.run(drive(json.loads(Path(ready).read_text()), layer, int(gets)))
        return 0

    sys.path.insert(0, str(ROOT / "bench"))
    from client_transport import with_sandbox

    def count_layers(fleet: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            ready = Path(tmp) / "fleet.json"  # what the children read
            ready.write_text(json.dumps(fleet))
            src = args.src.resolve()
            layers = args.layers.split(",")
            base = count(src, ready, layers[0], 0)
            print(f"{src}: {args.gets} GETs, {IN_FLIGHT} in flight; instructions per GET")
            below = None
            for layer in layers:
                per_get = (count(src, ready, layer, args.gets) - base) // args.gets
                added = "" if below is None else f" (+{per_get - below:,})"
                print(f"  {layer:10} {per_get:>10,}{added}", flush=True)
                below = per_get

    with_sandbox(args.tenants, 0, count_layers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
