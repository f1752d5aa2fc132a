"""The scrubber at fleet scale: N secrets added, then a plan of N tenants scrubbed.

    .venv/bin/python bench/scrubber.py [--tenants 10000] [--secrets fleet|random]
        [--repeat 3] [--baseline OLD_SCRUB_PY] [--json bench/results/scrubber.json]

`--baseline` is a scrub.py of an earlier build, loaded as a module of its own
(it needs only the standard library), for example
`git show 8283bba:reconciler/scrub.py > /tmp/scrub_before.py`; it is measured
on the same secrets and text, in the same run.

Secrets (`--secrets`): `fleet`, the API keys of the sandbox fleet (what `plan`
learns, one per tenant: "sbx-admin-" and 40 hex digits, made as the sandbox
makes them), `random`, 24-character URL-safe tokens, `mixed`, 3 to 500
characters (a length drawn uniformly in log scale, so a fifth of them are 3 to
8 characters long) of printable ASCII, a tenth with accented letters, or
`short`, 3 to 5 characters (API keys of a test fleet). Seeded: every run uses
the same ones.

The text is what `plan` prints for a sandbox fleet of N tenants, every tenant
to be created, rendered by the real renderer (`render_plan_text`): about 420
characters a tenant, 4.2 MB for 10,000. It holds no secret, as the CLI's
output normally does not: the cost is that of looking.

Measured, median of `--repeat` runs (a fresh Scrubber each):

1. `add` of the N secrets into an empty scrubber, per secret; `forms_of` alone;
2. the client's pattern: each secret added, then three small server texts
   (about 75 characters) scrubbed, per tenant; with the rebuilds this made
   (the count of characters walked starts again at each add, so only while
   the index has a few keys, when a rebuild costs microseconds);
3. the plan as a JSON document (`plan_document`), every string of it scrubbed
   one by one, as `cli/common.py` `scrubbed_document` does (610,000 strings of
   9.5 characters on average at 10,000 tenants), from a stale automaton: the
   walk until the characters walked pay for a rebuild;
4. the plan text scrubbed: by the Python walk (`Scrubber._walk`, the only
   way before the automaton), by `scrub` on a scrubber whose automaton is stale
   (it is rebuilt: the CLI's case, its first large text after the last add),
   and by `scrub` again (the automaton current); the build alone;
5. memory, in a first pass before any timing: the RSS taken by the scrubber's
   index, then by its automaton (and the automaton's own count of its size).

Every way must give the same text and document, checked.

`--hostile-texts`: instead, the cost of scrubbing 512 KiB texts a hostile
server could send (the most one answer may hold), made of what the
normalising pass works hardest on: HTML character references, `\\uXXXX` and
percent escapes, non-ASCII text, zero-width characters; and plain ASCII words
for comparison. Best of `--repeat`, the automaton current, with the chosen
secrets (and the baseline's, given one).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import json
import math
import platform
import random
import resource
import statistics
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reconciler import scrub  # noqa: E402
from reconciler.documents.plan import plan_document  # noqa: E402
from reconciler.model import Action, FieldChange, Plan, TenantPlan  # noqa: E402
from reconciler.report.plan import render_plan_text  # noqa: E402

SERVER_TEXTS = (
    "Authentication failed for user tenant-0042: check the configured credentials",
    "The SMTP server refused the connection (421 try again later); will retry",
    "Connection to 127.0.0.1:42763 timed out after 30 seconds while verifying",
)


def fleet_secrets(count: int) -> list[str]:
    """The sandbox fleet's API keys (reconciler/sandbox/tenants.py), seeded."""
    key = b"bench-scrubber"
    return [
        "sbx-admin-"
        + hashlib.blake2b(f"tenant-{i:05d}\0api-key".encode(), key=key, digest_size=20).hexdigest()
        for i in range(1, count + 1)
    ]


def random_secrets(count: int) -> list[str]:
    rng = random.Random(1)
    alphabet = string.ascii_letters + string.digits + "-_"
    return ["".join(rng.choice(alphabet) for _ in range(24)) for _ in range(count)]


def mixed_secrets(count: int) -> list[str]:
    """3 to 500 characters, log-uniform; printable ASCII, a tenth with accents."""
    rng = random.Random(2)
    alphabet = string.ascii_letters + string.digits + string.punctuation + " "
    accented = alphabet + "äöüéèßøåçñÄÖÜÉ€"
    found = []
    for _ in range(count):
        length = round(math.exp(rng.uniform(math.log(3), math.log(500))))
        chars = accented if rng.random() < 0.1 else alphabet
        found.append("".join(rng.choice(chars) for _ in range(length)))
    return found


def short_secrets(count: int) -> list[str]:
    """3 to 5 letters and digits."""
    rng = random.Random(3)
    alphabet = string.ascii_letters + string.digits
    return ["".join(rng.choices(alphabet, k=rng.randint(3, 5))) for _ in range(count)]


def fleet_plan(count: int) -> Plan:
    """The plan of a sandbox fleet of `count` tenants to create."""
    tenants = []
    for i in range(1, count + 1):
        name = f"tenant-{i:05d}"
        changes = (
            FieldChange("provider", None, "BasicAuth"),
            FieldChange("serverAddress", None, "127.0.0.1"),
            FieldChange("serverPort", None, 42763),
            FieldChange("securityType", None, "StartTLS"),
            FieldChange("username", None, name),
            FieldChange("emailAddress", None, f"qlik@{name}.example"),
            FieldChange("senderName", None, f"Tenant {i:05d}"),
            FieldChange("password", None, None, sensitive=True),
        )
        url = f"http://127.0.0.1:34877/t/{name}"
        digests = {"live_fingerprint": "sha256:" + "0" * 32, "desired_fingerprint": "sha256:1"}
        tenants.append(TenantPlan(name, url, Action.CREATE, changes, **digests))
    return Plan(tuple(tenants))


def scrubbed_document(scrub: Callable[[str], str], value: Any) -> Any:
    """`value` with every string scrubbed, as reconciler/cli/common.py does."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(str(k)): scrubbed_document(scrub, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrubbed_document(scrub, item) for item in value]
    return value


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def rss_mb() -> float:
    """Resident memory now (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 1e6


def load_baseline(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("scrub_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def memory(secrets: list[str], text: str) -> dict[str, Any]:
    """RSS taken by the index, then by the automaton (first, in a quiet heap)."""
    before = rss_mb()
    scrubber = scrub.Scrubber(secrets)
    indexed = rss_mb()
    built_s, (_, automaton, _) = timed(scrubber._build)
    built = rss_mb()
    scrubber.scrub(text)
    stats = automaton.get_stats()
    return {
        "index_mb": round(indexed - before, 1),
        "automaton_mb": round(built - indexed, 1),
        "automaton_own_mb": round(stats["total_size"] / 1e6, 1),
        "keys": stats["words_count"],
        "nodes": stats["nodes_count"],
        "first_build_s": round(built_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3, 1),
    }


def one_run(
    module: ModuleType,
    secrets: list[str],
    text: str,
    document: Any,
    current: bool,
    text_only: bool = False,
) -> dict[str, Any]:
    """One round for a scrub module (`current`: this tree's, with the automaton;
    `text_only`: `add` and the plan text only)."""
    result: dict[str, Any] = {}
    fresh = module.Scrubber()
    add_s, _ = timed(lambda: [fresh.add(secret) for secret in secrets])
    result["add_ms"] = add_s / len(secrets) * 1e3
    if text_only:
        if current:
            stale = module.Scrubber(secrets)
            result["stale_scrub_s"], rebuilt = timed(lambda: stale.scrub(text))
            result["scrub_s"], searched = timed(lambda: stale.scrub(text))
            result["same"] = rebuilt == searched
        else:
            result["scrub_s"], searched = timed(lambda: fresh.scrub(text))
            result["same"] = True
        result["output"], result["document"] = searched, ""
        result["redacted"] = searched.count(scrub.REDACTED)
        return result
    forms_s, _ = timed(lambda: [module.forms_of(secret) for secret in secrets])
    result["forms_of_ms"] = forms_s / len(secrets) * 1e3

    client = module.Scrubber()
    builds: list[float] = []  # the client's rebuilds, timed
    if current:
        build = client._build

        def timed_build() -> Any:
            seconds, built = timed(build)
            builds.append(seconds)
            return built

        client._build = timed_build

    def client_pattern() -> None:
        for secret in secrets:
            client.add(secret)
            for server_text in SERVER_TEXTS:
                client.scrub(server_text)

    result["add_and_small_scrubs_s"], _ = timed(client_pattern)
    for_document = module.Scrubber(secrets)
    result["document_s"], scrubbed = timed(lambda: scrubbed_document(for_document.scrub, document))
    result["document"] = json.dumps(scrubbed)
    outputs = []
    if current:
        result["walk_s"], walked = timed(lambda: fresh._scrub(text, fresh._walk))
        result["build_s"], _ = timed(fresh._build)
        stale = module.Scrubber(secrets)
        result["stale_scrub_s"], rebuilt = timed(lambda: stale.scrub(text))
        result["scrub_s"], searched = timed(lambda: stale.scrub(text))
        result["client_rebuilds"] = len(builds)
        result["client_rebuilds_s"] = sum(builds)
        result["client_last_rebuild_keys"] = (
            client._automaton[1].get_stats()["words_count"] if builds else 0
        )
        outputs = [walked, rebuilt, searched]
    else:
        result["scrub_s"], scrubbed = timed(lambda: fresh.scrub(text))
        outputs = [scrubbed]
    result["same"] = all(output == outputs[0] for output in outputs)
    result["output"] = outputs[0]
    return result


HOSTILE_TEXTS = {
    "ASCII words": "tenant update senderName Acme ",
    "HTML references": "&#80;&#x77;",
    "\\u escapes": "\\u0050\\u0077",
    "percent escapes": "%50%77%2B",
    "non-ASCII": "Pässwörd Ünïcödé 中文 ",
    "zero-width": "a\u200bb\xadc ",
}


def hostile_texts(modules: dict[str, ModuleType], secrets: list[str], repeat: int) -> None:
    """Print the cost of scrubbing each of HOSTILE_TEXTS, 512 KiB long."""
    size = 512 * 1024
    figures: dict[str, dict[str, float]] = {}
    for name, module in modules.items():
        scrubber = module.Scrubber(secrets)
        scrubber.scrub("x" * 2_000_000)  # builds the automaton
        for kind, unit in HOSTILE_TEXTS.items():
            text = (unit * (size // len(unit) + 1))[:size]
            best = min(timed(functools.partial(scrubber.scrub, text))[0] for _ in range(repeat))
            figures.setdefault(kind, {})[name] = round(best * 1e3, 1)
    print(json.dumps({"ms per 512 KiB text": figures}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--secrets", choices=("fleet", "random", "mixed", "short"), default="fleet")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", help="a scrub.py of an earlier build")
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument(
        "--hostile-texts", action="store_true", help="the cost of hostile 512 KiB texts"
    )
    parser.add_argument(
        "--text-only",
        action="store_true",
        help="measure `add` and the plan text only (a baseline that replaces "
        "short forms one by one would take hours over the JSON document)",
    )
    args = parser.parse_args()

    make = {
        "fleet": fleet_secrets,
        "random": random_secrets,
        "mixed": mixed_secrets,
        "short": short_secrets,
    }
    secrets = make[args.secrets](args.tenants)
    if args.hostile_texts:
        modules = {"current": scrub}
        if args.baseline:
            modules = {"baseline": load_baseline(args.baseline), **modules}
        hostile_texts(modules, secrets, args.repeat)
        return
    plan = fleet_plan(args.tenants)
    text, document = render_plan_text(plan), plan_document(plan)
    figures: dict[str, Any] = {
        "tenants": args.tenants,
        "secrets": args.secrets,
        "text_mb": round(len(text) / 1e6, 2),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "memory": memory(secrets, text),
    }
    builds: dict[str, tuple[ModuleType, bool]] = {"current": (scrub, True)}
    if args.baseline:
        builds = {"baseline": (load_baseline(args.baseline), False), **builds}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in builds}
    for _ in range(args.repeat):  # interleaved, so that a slow minute costs both alike
        for name, (module, current) in builds.items():
            runs[name].append(one_run(module, secrets, text, document, current, args.text_only))
    outputs = {run.pop("output") for name in runs for run in runs[name]}
    documents = {run.pop("document") for name in runs for run in runs[name]}
    for name, rounds in runs.items():
        keys = [key for key in rounds[0] if key != "same"]
        figures[name] = {key: statistics.median(r[key] for r in rounds) for key in keys}
        figures[name]["same"] = all(r["same"] for r in rounds)
    # Secrets that may be words of the text (short ones) are found in it, and
    # builds that know other spellings may find more: the ways of one build
    # must agree, builds need not.
    figures["identical_output"] = len(outputs) == 1 and text in outputs and len(documents) == 1
    current = figures["current"]
    if args.text_only:
        print(json.dumps(figures, indent=2))
        if not current["same"]:
            raise SystemExit("the ways of scrubbing disagree")
        return
    walk_per_char = current["walk_s"] / len(text)
    search_per_char = current["scrub_s"] / len(text)
    build_per_key = current["build_s"] / figures["memory"]["keys"]
    saved_per_char = walk_per_char - search_per_char
    figures["break_even_chars_per_key"] = round(build_per_key / saved_per_char, 1)

    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    if not current["same"] or (
        args.secrets in ("fleet", "random") and not figures["identical_output"]
    ):
        raise SystemExit("the ways of scrubbing disagree")


if __name__ == "__main__":
    main()
