"""Instructions per call of the steps every tenant of a plan goes through,
counted by valgrind: what bench/NOTES.md quotes piece by piece.

    .venv/bin/python bench/pieces.py [--calls 300] [--only NAME,...]

For each piece, a child process imports the code and builds its inputs (from
a fleet the sandbox writes, seed 1, 300 BasicAuth tenants), then makes the
call `--calls` times (each time on another tenant or secret where the piece
caches by its input); it runs under `valgrind --tool=callgrind` twice, with no
call and with `--calls`, and the difference divided by `--calls` is the
figure. Counts move by well under 1% between runs (bench/instructions.py).
About a minute per piece.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from config_load import write_fleet
from run import ROOT, cli_environment

REFS = re.compile(r"I\s+refs:\s+([\d,]+)")

# Inputs shared by the pieces (FLEET: the fleet's directory).
SETUP = """
from pathlib import Path
from reconciler.config import load_config
from reconciler.config.loader import ConfigLoad, _load_tenant, _read_tenant
from reconciler.config.checks import check_tenant
from reconciler.config.build import build_tenant
from reconciler.config import source
from reconciler.scrub import Scrubber
from reconciler.secrets import ResolvePolicy, SecretResolver, parse_reference
from reconciler.client.session import _check_url
from reconciler.client.live import normalize
from reconciler.engine.planner import plan_read
from reconciler.model import FieldChange, fingerprint

class _Learns:  # a scrubber that learns nothing: the resolver's own cost
    def add(self, value): pass

load = ConfigLoad(FLEET)
files = load.files
doc, _ = _read_tenant(files[0], "t.yaml")
text = files[0].read_text()
keys = [(Path(FLEET) / ".secrets" / p.name).read_text().strip()
        for p in sorted((Path(FLEET) / ".secrets").glob("*.apikey"))]
refs = [parse_reference("${file:.secrets/" + p.name + "}")
        for p in sorted((Path(FLEET) / ".secrets").glob("*.apikey"))]
specs = list(load_config(FLEET).tenants)
urls = [spec.url for spec in specs]
scrubber = Scrubber()
resolver = SecretResolver(ResolvePolicy(base_dir=Path(FLEET)), scrubber=_Learns())
unconfigured = normalize({"isValid": False, "passwordExists": False})
document = {"url": urls[0], "email": {"provider": "BasicAuth", "fields": {"a": "b"}}}

def events():
    loader = source._LOADER(text)
    while loader.get_event() is not None:
        pass
    loader.dispose()

def builder():
    source._feed(source._Builder(), text)
"""

# name -> the call, with `i` the call's number (below the fleet's size).
PIECES = {
    "load_tenant": "_load_tenant(files[i], 't.yaml', load._defaults, load.settings)",
    "read_text": "source._read_text(files[i])",
    "yaml_events": "events()",
    "yaml_builder": "builder()",
    "check_tenant": "check_tenant(doc)",
    "build_tenant": "build_tenant(doc, load._defaults, [], sound=True)",
    "scrubber_add": "scrubber.add(keys[i])",
    "resolve_file_secret": "resolver.resolve(refs[i])",
    "check_url": "_check_url('t', urls[i])",
    "plan_read_new_tenant": "plan_read(specs[i], unconfigured)",
    "field_change": "FieldChange('senderName', None, 'Acme')",
    "fingerprint": "fingerprint(document)",
}
PROGRAM = (
    "import sys\nFLEET = sys.argv[1]\n{setup}\nfor i in range(int(sys.argv[2])):\n    {call}\n"
)


FLEET_SIZE = 300


def count(program: str, fleet: Path, calls: int, *, counted: bool = True) -> int:
    """Instructions of `program` run with `calls` calls (0 when not `counted`:
    a run that only writes the bytecode caches the counted ones use)."""
    command = [sys.executable, "-c", program, str(fleet), str(calls)]
    if counted:
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command]
    done = subprocess.run(
        command, cwd=ROOT, env=cli_environment(), capture_output=True, text=True, check=False
    )
    if not counted:
        if done.returncode != 0:
            raise SystemExit(f"exit {done.returncode}\n{done.stderr[-2000:]}")
        return 0
    found = REFS.findall(done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"exit {done.returncode}\n{done.stderr[-2000:]}")
    return int(found[-1].replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=FLEET_SIZE)
    parser.add_argument("--only", help="comma-separated piece names (default: all)")
    options = parser.parse_args()
    names = options.only.split(",") if options.only else list(PIECES)
    calls = min(options.calls, FLEET_SIZE)  # one tenant per call, at most the fleet
    with tempfile.TemporaryDirectory() as tmp:
        fleet = write_fleet(Path(tmp), FLEET_SIZE)
        for name in names:
            program = PROGRAM.format(setup=SETUP, call=PIECES[name])
            count(program, fleet, 0, counted=False)
            per_call = (count(program, fleet, calls) - count(program, fleet, 0)) / calls
            print(f"{name:22s} {per_call:>12,.0f} instructions per call", flush=True)


if __name__ == "__main__":
    main()
