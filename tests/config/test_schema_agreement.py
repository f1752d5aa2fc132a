"""jsonschema-rs (the fast path, `jsonschemas.conforms`) and jsonschema (which
words the errors) must agree on what is valid: a document the fast path passes
is not looked at again, so a disagreement that way would drop an error.

Checked on every YAML file under tests/data/ and examples/, and on documents
made from valid seeds by deterministic mutations: every leaf replaced by every
value of an edge-case pool (wrong types, edge integers and floats, strings at
the edges of each schema pattern, Unicode whitespace and line terminators),
keys removed and added, and random mixes of several mutations. Both the root
and tenant schemas, and the plan and applied-state schemas that `apply` and
`plan --state` read the same way.

Agreement is exact, but for documents jsonschema-rs cannot read as JSON:
non-finite floats (`.inf`, `.nan`: JSON has no such number) and lone
surrogates (a YAML escape such as "\\ud800": not UTF-8). There it may say "not
valid", or raise, where jsonschema finds no error; then jsonschema decides, so
only the other way (the fast path passing a document jsonschema refuses) fails.
"""

from __future__ import annotations

import copy
import math
import random
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import basic, live_basic, live_none, m365, spec

from reconciler import jsonschemas
from reconciler.config import schema as config_schema
from reconciler.config.source import JsonPath, read_document
from reconciler.documents.plan import plan_document
from reconciler.documents.state import state_document
from reconciler.engine.planner import make_plan
from reconciler.model import AppliedRecord, AppliedSecret

ROOT = Path(__file__).parents[2]
FIXTURES = sorted(
    path
    for folder in (ROOT / "tests" / "data", ROOT / "examples")
    for pattern in ("*.yaml", "*.yml")
    for path in folder.rglob(pattern)
)

TENANT_SEEDS: list[dict[str, Any]] = [
    {
        "name": "acme",
        "url": "https://acme.eu.qlikcloud.com",
        "auth": {"apiKey": "${env:ACME_API_KEY}"},
        "email": {
            "provider": "BasicAuth",
            "serverAddress": "smtp.example.com",
            "serverPort": 587,
            "securityType": "StartTLS",
            "username": "mailer",
            "password": "${file:.secrets/acme.smtp}",
            "passwordRotation": 3,
            "emailAddress": "qlik@acme.example",
            "senderName": "Acme",
        },
    },
    {
        "name": "globex.eu_2",
        "url": "https://globex.example/path",
        "auth": {
            "oauth": {
                "clientId": "${env:ID}",
                "clientSecret": "${cmd:vault read x}",
                "scope": "admin_classic",
            }
        },
        "email": {
            "provider": "Microsoft365",
            "clientId": "11111111-1111-1111-1111-111111111111",
            "clientSecret": "${env:M365}",
            "clientSecretRotation": "2026-11-24",
            "providerTenantId": "22222222-2222-2222-2222-222222222222",
            "emailAddress": "qlik@globex.example",
        },
    },
    {"name": "initech", "url": "http://127.0.0.1:8080/t/initech", "email": "absent"},
]
ROOT_SEEDS: list[dict[str, Any]] = [
    {
        "version": 1,
        "defaults": {
            "auth": {"oauth": {"clientId": "id", "clientSecret": "${env:S}"}},
            "email": copy.deepcopy(TENANT_SEEDS[0]["email"]),
        },
        "tenants": ["tenants/*.yaml", "more/**/*.yml"],
        "settings": {
            "concurrency": 64,
            "timeout": 30.5,
            "deadline": {"read": 20, "write": 90.5},
            "allowedHosts": ["*.qlikcloud.com", "[::1]", "127.0.0.1"],
            "policy": {
                "smtpHosts": ["smtp.example.com", "*.amazonaws.com"],
                "senderDomains": ["acme.example"],
                "requireTls": True,
            },
            "safety": {
                "maxChanges": 50,
                "maxChangesPercent": 25,
                "maxDeletes": 0,
                "maxDeletesPercent": 10.5,
            },
        },
        "drift": {
            "ignore": [
                {
                    "tenant": "acme",
                    "field": "senderName",
                    "reason": "rebrand, ticket OPS-42",
                    "expires": "2026-12-31",
                }
            ]
        },
    },
    {"tenants": "tenants/*.yaml", "defaults": {"auth": {"apiKey": "${env:K}"}}},
]

# Characters where regular-expression dialects differ: whitespace and line
# terminators of any definition, controls and format characters.
ODD_CHARACTERS = [
    chr(code)
    for code in range(0x3001)
    if chr(code).isspace() or unicodedata.category(chr(code)) in ("Zs", "Zl", "Zp", "Cc", "Cf")
] + ["\ufeff", "\ufffe", "\U0001f600", "é", "\u0301"]
STRINGS = [
    "",
    " ",
    "acme",
    "acme\n",
    "acme\n\n",
    "\nacme",
    "acme\r\n",
    "a" * 63,
    "a" * 64,
    "a" * 63 + "\n",
    "é",
    "tenant.é",
    "-acme",
    "${env:X}",
    "${env:X}\n",
    "${env:X}\n\n",
    "${env:\n}",
    "${env:\r}",
    "${env:\u2028}",
    "${env:\x85}",
    "${file:a b}",
    "${cmd:}",
    "${vault:X}",
    "$env:X",
    "${env:X}}",
    "2026-12-31",
    "2026-02-30",
    "2026-1-1",
    "2026-12-31\n",
    "\u0662\u0660\u0662\u0666-12-31",
    "BasicAuth",
    "basicauth",
    "Microsoft365",
    "StartTLS",
    "SSL/TLS",
    "none",
    "absent",
    "*",
    "*.qlikcloud.com",
    "[::1]",
    "[::1]\n",
    "[zz]",
    "host name",
    "qlik@acme.example",
    "not an e-mail",
    "tenants/*.yaml",
    "587",
    "true",
    "x" * 65,
]
# Each odd character alone, after a letter, and in a secret reference: put where
# a pattern applies (below), as the rest of the schemas reads no character.
ODD_STRINGS = [
    *ODD_CHARACTERS,
    *(f"a{char}" for char in ODD_CHARACTERS),
    *(f"${{env:{char}}}" for char in ODD_CHARACTERS),
]
PATTERN_SITES: dict[str, list[tuple[int, JsonPath]]] = {  # (seed, path)
    "tenant": [
        (0, ("name",)),
        (0, ("auth", "apiKey")),
        (0, ("email", "password")),
        (1, ("auth", "oauth", "clientSecret")),
        (1, ("email", "clientSecret")),
    ],
    "root": [
        (0, ("defaults", "auth", "oauth", "clientSecret")),
        (0, ("defaults", "email", "password")),
        (0, ("settings", "allowedHosts", 1)),
        (0, ("settings", "policy", "smtpHosts", 0)),
        (0, ("settings", "policy", "senderDomains", 0)),
        (0, ("drift", "ignore", 0, "reason")),
        (0, ("drift", "ignore", 0, "expires")),
    ],
}
NUMBERS: list[Any] = [
    0,
    1,
    -1,
    2,
    64,
    100,
    101,
    587,
    600,
    601,
    1024,
    1025,
    65535,
    65536,
    2**31,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64,
    2**64 + 1,
    10**30,
    -(2**63),
    -(2**64),
    0.0,
    -0.0,
    0.5,
    1.0,
    587.0,
    600.0,
    600.0000001,
    1e-300,
    5e-324,
    1e308,
    100.0,
    100.5,
    65535.0,
    65535.5,
    1e20,
    True,
    False,
    None,
]
CONTAINERS: list[Any] = [
    [],
    {},
    ["a"],
    ["a", "a"],
    [1],
    [None],
    {"x": 1},
    {"apiKey": "${env:K}"},
    {"oauth": {"clientId": "a", "clientSecret": "${env:S}"}},
    {"apiKey": "${env:K}", "oauth": {"clientId": "a", "clientSecret": "${env:S}"}},
    [{"tenant": "a", "field": "*", "reason": "r", "expires": "2026-01-01"}],
]
VALUES: list[Any] = [*STRINGS, *NUMBERS, *CONTAINERS]
KEYS = ["serverAdress", "Name", "extra", "clientId", "password", "apiKey", "oauth", "é", ""]
NOT_JSON: list[Any] = [math.inf, -math.inf, math.nan, "\ud800", "a\udfff"]


def schema_errors(kind: str, document: Any) -> list[Any]:
    """The errors of the validator the loader words its messages with."""
    if kind in ("root", "tenant"):
        return list(config_schema._validator(kind).iter_errors(document))
    return list(jsonschemas.validator(f"{kind}.schema.json").iter_errors(document))


def assert_agree(kind: str, document: Any) -> None:
    fast = jsonschemas.conforms(f"{kind}.schema.json", document)
    errors = schema_errors(kind, document)
    if has_non_json(document):  # the fast path may say no where jsonschema says yes
        assert not (fast and errors), f"{kind}: fast path passed errors in {document!r}"
    else:
        assert fast == (not errors), (
            f"{kind}: jsonschema-rs says {'valid' if fast else 'invalid'}, jsonschema "
            f"{[error.message for error in errors]} for {document!r}"
        )


def has_non_json(value: Any) -> bool:
    if isinstance(value, dict):
        return any(has_non_json(key) or has_non_json(item) for key, item in value.items())
    if isinstance(value, list):
        return any(has_non_json(item) for item in value)
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        return any(0xD800 <= ord(char) <= 0xDFFF for char in value)
    return False


def paths(value: Any, at: JsonPath = ()) -> Iterator[JsonPath]:
    """Every path in `value`, containers and leaves, the root included."""
    yield at
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*at, index))


def node_at(document: Any, at: JsonPath) -> Any:
    for step in at:
        document = document[step]
    return document


def replaced(document: Any, at: JsonPath, value: Any) -> Any:
    """A copy of `document` with `value` at `at`."""
    if not at:
        return copy.deepcopy(value)
    result = copy.deepcopy(document)
    node_at(result, at[:-1])[at[-1]] = copy.deepcopy(value)
    return result


def mutated(document: Any, rng: random.Random) -> Any:
    """`document` after one random mutation."""
    at = rng.choice(list(paths(document)))
    choice = rng.random()
    if choice < 0.6 or not isinstance(node_at(document, at), (dict, list)):
        return replaced(document, at, rng.choice([*VALUES, *NOT_JSON[:1]]))
    result = copy.deepcopy(document)
    target = node_at(result, at)
    if isinstance(target, dict) and target and choice < 0.8:
        del target[rng.choice(list(target))]  # a required key, sometimes
    elif isinstance(target, dict):
        target[rng.choice(KEYS)] = rng.choice(VALUES)
    elif target and choice < 0.8:
        target.append(copy.deepcopy(rng.choice(target)))  # uniqueItems
    else:
        target.append(rng.choice(VALUES))
    return result


def plan_seed() -> Any:
    live = {"a": live_none(), "b": live_basic(), "c": live_basic()}
    return plan_document(make_plan([spec("a", basic()), spec("b", m365()), spec("c", None)], live))


def state_seed() -> Any:
    entry = AppliedSecret("https://a.example", "${env:SMTP}", "3")
    return state_document(AppliedRecord({"a": entry, "b": AppliedSecret("https://b", "${x:y}")}))


SEEDS = {"tenant": TENANT_SEEDS, "root": ROOT_SEEDS}


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_fixture_file_is_judged_alike(path: Path) -> None:
    doc, issues = read_document(path, path.name)
    if doc is None:  # not parsed, so no schema is asked: the reader said why
        assert issues
        return
    for kind in ("root", "tenant"):
        assert_agree(kind, doc.data)


def test_the_fixtures_are_there() -> None:
    assert len(FIXTURES) > 100


@pytest.mark.parametrize("kind", ["root", "tenant"])
def test_seeds_are_valid(kind: str) -> None:
    for seed in SEEDS[kind]:
        assert jsonschemas.conforms(f"{kind}.schema.json", seed)
        assert not schema_errors(kind, seed)


@pytest.mark.parametrize("kind", ["root", "tenant"])
def test_every_leaf_with_every_edge_value(kind: str) -> None:
    for seed in SEEDS[kind]:
        for at in paths(seed):
            for value in [*VALUES, *NOT_JSON]:
                assert_agree(kind, replaced(seed, at, value))


@pytest.mark.parametrize("kind", ["root", "tenant"])
def test_every_pattern_with_odd_characters(kind: str) -> None:
    for seed, at in PATTERN_SITES[kind]:
        assert isinstance(node_at(SEEDS[kind][seed], at), str)
        for text in [*STRINGS, *ODD_STRINGS]:
            assert_agree(kind, replaced(SEEDS[kind][seed], at, text))


@pytest.mark.parametrize("kind", ["root", "tenant"])
def test_every_key_removed_or_added(kind: str) -> None:
    for seed in SEEDS[kind]:
        for at in paths(seed):
            if at and isinstance(node_at(seed, at[:-1]), dict):
                trimmed = copy.deepcopy(seed)
                del node_at(trimmed, at[:-1])[at[-1]]  # required keys among them
                assert_agree(kind, trimmed)
            if isinstance(node_at(seed, at), dict):
                for key in KEYS:
                    grown = copy.deepcopy(seed)
                    node_at(grown, at)[key] = "x"
                    assert_agree(kind, grown)


@pytest.mark.parametrize("kind", ["root", "tenant", "plan", "state"])
@pytest.mark.parametrize("seed_number", [1, 2, 3])
def test_random_mixes_of_mutations(kind: str, seed_number: int) -> None:
    rng = random.Random(f"{kind}-{seed_number}")
    seeds = SEEDS.get(kind) or [plan_seed() if kind == "plan" else state_seed()]
    for _ in range(400 if kind in SEEDS else 100):
        document = rng.choice(seeds)
        for _ in range(rng.randint(1, 4)):
            document = mutated(document, rng)
        assert_agree(kind, document)


def test_the_pattern_keyword_is_read_as_python_reads_it_but_for_the_end() -> None:
    # `$` ends the text, as in ECMA 262 and the editors (Python's re.search alone
    # would accept "acme\n"): both validators refuse it, and say so alike.
    tenant = {**TENANT_SEEDS[2], "name": "acme\n"}
    assert not jsonschemas.conforms("tenant.schema.json", tenant)
    assert_agree("tenant", tenant)
    assert jsonschemas.conforms("tenant.schema.json", {**tenant, "name": "acme"})
    # A `$` escaped or in a class is a dollar sign.
    assert jsonschemas.pattern_search(r"^\$[$]$")("$$") is not None
    # Otherwise Python's dialect: \S matches U+0085 in ECMA 262, not in Python.
    rule = {**ROOT_SEEDS[0]["drift"]["ignore"][0], "reason": "\x85"}
    assert not jsonschemas.conforms("root.schema.json", {"drift": {"ignore": [rule]}})


def test_a_valid_document_does_not_import_jsonschema() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from reconciler import jsonschemas; "
        "assert jsonschemas.conforms('tenant.schema.json', {'name': 'a', 'url': 'u', "
        "'email': 'absent'}); print('jsonschema' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
