"""Request-body checks: the sandbox's `INPUTCHECK-1` answers.

Each check returns either the parsed request or a list of error titles, all
of which the handler reports in one 400 (`errors` is a list). Titles name the
field and the rule, never the value: a value may be a secret, and the real
API's titles (`serverAddress is not a string`) do not carry values either.

The sandbox is stricter than the published schema, on purpose: PUT must name a
known `serviceProvider`, carry every field that provider needs (the secret
included, since PUT replaces the whole configuration), and nothing else. A
client that passes here sends what the real API documents.
"""

from __future__ import annotations

import json
import math
from typing import Any

from reconciler.sandbox.probe import MailRequest
from reconciler.sandbox.state import (
    FIELDS,
    LEGACY_TOP_LEVEL,
    PROVIDERS,
    SECRET_FIELD,
    SECURITY_TYPES,
    StoredConfig,
)

Problems = list[str]
PATCH_OPS = ("replace", "add", "remove")
PATCH_PATHS = tuple(f"/{name}" for name in (*LEGACY_TOP_LEVEL, "emailPassword"))
DEFAULT_SUBJECT = "Qlik Cloud Test Email"
DEFAULT_BODY = "This is a test email sent from the qlik-email sandbox."
_PUT_KEYS = ("serviceProvider", "providerConfig")


def parse_json(raw: bytes) -> Any:
    """The JSON document in a request body; ValueError when it is not JSON."""
    if not raw.strip():
        raise ValueError("request body is empty")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("request body is not valid JSON") from exc


def check_put(body: Any) -> StoredConfig | Problems:
    """A PUT body -> the configuration to validate, or the problems found."""
    if not isinstance(body, dict):
        return ["request body is not a JSON object"]
    problems = [f"unknown field: {key}" for key in body if key not in _PUT_KEYS]
    provider = body.get("serviceProvider")
    if provider is None:
        problems.append("serviceProvider is required")
    elif not isinstance(provider, str):
        problems.append("serviceProvider is not a string")
    elif provider not in PROVIDERS:
        problems.append(f"serviceProvider must be one of {', '.join(PROVIDERS)}")
    config = body.get("providerConfig")
    if config is None:
        problems.append("providerConfig is required")
    elif not isinstance(config, dict):
        problems.append("providerConfig is not an object")
    elif provider in PROVIDERS:
        problems += _provider_config_problems(provider, config)
    if problems or not isinstance(config, dict):
        return problems
    secret_field = SECRET_FIELD[provider]
    fields = {k: _normalise(k, v) for k, v in config.items() if k != secret_field}
    return StoredConfig(provider, fields, config[secret_field])


def _provider_config_problems(provider: str, config: dict[str, Any]) -> Problems:
    secret_field = SECRET_FIELD[provider]
    allowed = (*FIELDS[provider], secret_field)
    required = [name for name in allowed if name != "senderName"]
    problems = [f"unknown field for {provider}: {key}" for key in config if key not in allowed]
    for name in required:
        if config.get(name) is None:
            problems.append(f"{name} is required")
    for name, value in config.items():
        if name in allowed and value is not None:
            problems += _value_problems(name, value, required=name in required)
    return problems


def _value_problems(name: str, value: Any, *, required: bool) -> Problems:
    if name == "serverPort":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return ["serverPort is not a number"]
        if not math.isfinite(value) or value != int(value) or not 1 <= value <= 65535:
            return ["serverPort must be an integer between 1 and 65535"]
        return []
    if not isinstance(value, str):
        return [f"{name} is not a string"]
    if required and not value.strip():
        return [f"{name} must not be empty"]
    if name == "securityType" and value not in SECURITY_TYPES:
        return [f"securityType must be one of {', '.join(SECURITY_TYPES)}"]
    if name == "emailAddress" and "@" not in value:
        return ["emailAddress is not an email address"]
    return []


def _normalise(name: str, value: Any) -> Any:
    # JSON numbers may arrive as 587.0; the port is stored as an int.
    return int(value) if name == "serverPort" else value


def check_patch(body: Any) -> dict[str, Any] | Problems:
    """A PATCH body (JSON-patch operations) -> legacy field updates (None = remove)."""
    if not isinstance(body, list) or not body:
        return ["request body is not a non-empty JSON array of patch operations"]
    updates: dict[str, Any] = {}
    problems: Problems = []
    for index, operation in enumerate(body):
        where = f"operation {index}"
        if not isinstance(operation, dict):
            problems.append(f"{where} is not an object")
            continue
        op, path = operation.get("op"), operation.get("path")
        if op not in PATCH_OPS:
            problems.append(f"{where}: op must be one of {', '.join(PATCH_OPS)}")
        if path not in PATCH_PATHS:
            problems.append(f"{where}: path must be one of {', '.join(PATCH_PATHS)}")
        if op not in PATCH_OPS or path not in PATCH_PATHS:
            continue
        name = str(path)[1:]
        if op == "remove":
            updates[name] = None
            continue
        if "value" not in operation:
            problems.append(f"{where}: value is required")
            continue
        value = operation["value"]
        if name == "serverPort" and isinstance(value, str) and value.strip().isdigit():
            # The published schema types every value as a string, the tutorial
            # sends the port as a number: accept both.
            value = int(value)
        found = _value_problems(name, value, required=True)
        problems += [f"{where}: {problem}" for problem in found]
        updates[name] = _normalise(name, value) if not found else value
    return problems or updates


def check_test_email(body: Any) -> MailRequest | Problems:
    """A send-test-email body -> the message to send, or the problems found."""
    if not isinstance(body, dict):
        return ["request body is not a JSON object"]
    recipient = body.get("recipient")
    problems: Problems = []
    if recipient is None:
        problems.append("recipient is required")
    elif not isinstance(recipient, str) or "@" not in recipient:
        problems.append("recipient is not an email address")
    for name in ("subject", "body"):
        if name in body and not isinstance(body[name], str):
            problems.append(f"{name} is not a string")
    if problems:
        return problems
    return MailRequest(
        recipient=str(recipient),
        subject=str(body.get("subject") or DEFAULT_SUBJECT),
        body=str(body.get("body") or DEFAULT_BODY),
    )
