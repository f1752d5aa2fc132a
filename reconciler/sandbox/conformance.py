"""Check HTTP responses against the published OpenAPI document.

The sandbox's tests pass every response through an `OpenApiChecker` (an httpx
response event hook), so the sandbox cannot drift from the published API
unnoticed; client tests may do the same. For each response the operation is
found by method and path (a `/t/<tenant>` prefix is removed), then the
response object by status, else `default`, and the JSON body is validated
against its schema with `$ref`s resolved.

Two readings of the document, made explicit:

- `oneOf` whose branches are object schemas without `required` or
  `additionalProperties` is read as `anyOf`. The published `providerConfig`
  is `oneOf: [getMicrosoft365Config, getBasicAuthConfig]`; neither branch
  forbids anything, so any flat object (and `{}`) matches *both*, and a
  literal `oneOf` would reject every valid answer. The author's intent, "one
  of these shapes", is what `anyOf` checks.
- A status the operation does not list, on an operation without `default`
  (only `/oauth/token`), is checked against `ErrorsPublic`: gateways answer
  429 and 5xx on every route, and the sandbox's error shape is the API's.

Requests to paths that are no operation (unknown tenant or route) are checked
against `ErrorsPublic` and counted under `UNMATCHED`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import yaml

UNMATCHED = "(no operation)"
_TENANT_PREFIX = re.compile(r"^/t/[^/]+")


class ConformanceError(AssertionError):
    """A response that does not match the OpenAPI document."""


class OpenApiChecker:
    """Validates responses and counts them per operationId."""

    def __init__(self, spec_path: str | Path) -> None:
        self._spec: dict[str, Any] = yaml.safe_load(Path(spec_path).read_text())
        self._operations: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        for path, item in self._spec["paths"].items():
            for method, operation in item.items():
                key = (method.upper(), path)
                self._operations[key] = (operation["operationId"], operation["responses"])
        self._errors_schema = self._resolve({"$ref": "#/components/schemas/ErrorsPublic"})
        self._schemas: dict[tuple[str, str], Any] = {}
        self.counts: Counter[str] = Counter()

    @property
    def operation_ids(self) -> set[str]:
        """Every operationId the document defines."""
        return {operation_id for operation_id, _ in self._operations.values()}

    @property
    def validated(self) -> int:
        """How many responses passed."""
        return sum(self.counts.values())

    def check(self, method: str, path: str, status: int, body: bytes) -> str:
        """Validate one response; returns its operationId (or UNMATCHED)."""
        api_path = _TENANT_PREFIX.sub("", path)
        found = self._operations.get((method.upper(), api_path))
        if found is None:
            self._validate(self._errors_schema, body, f"{method} {path} -> {status}")
            self.counts[UNMATCHED] += 1
            return UNMATCHED
        operation_id, responses = found
        where = f"{operation_id} ({method} {api_path}) -> {status}"
        declared = responses.get(str(status), responses.get("default"))
        if declared is None:
            self._validate(self._errors_schema, body, where + " [undeclared status]")
        elif "content" not in declared:
            if status == 204 and body:
                raise ConformanceError(f"{where}: a 204 must have no body, got {body[:200]!r}")
        else:
            schema = self._response_schema(operation_id, str(status), declared)
            self._validate(schema, body, where)
        self.counts[operation_id] += 1
        return operation_id

    def hook(self, response: httpx.Response) -> None:
        """An httpx response event hook: `Client(event_hooks={"response": [c.hook]})`."""
        response.read()
        self.check(
            response.request.method,
            response.request.url.path,
            response.status_code,
            response.content,
        )

    async def async_hook(self, response: httpx.Response) -> None:
        """The same hook for `httpx.AsyncClient`."""
        await response.aread()
        self.check(
            response.request.method,
            response.request.url.path,
            response.status_code,
            response.content,
        )

    def _response_schema(self, operation_id: str, status: str, declared: dict[str, Any]) -> Any:
        key = (operation_id, status)
        if key not in self._schemas:
            media = declared["content"].get("application/json", {})
            self._schemas[key] = self._resolve(media.get("schema", {}))
        return self._schemas[key]

    def _validate(self, schema: Any, body: bytes, where: str) -> None:
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise ConformanceError(f"{where}: body is not JSON: {body[:200]!r}") from exc
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=str)
        if errors:
            details = "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
            raise ConformanceError(f"{where}: {details}")

    def _resolve(self, node: Any) -> Any:
        """Inline every `$ref` (the document has no cycles) and read loose oneOf as anyOf."""
        if isinstance(node, list):
            return [self._resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target: Any = self._spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return self._resolve(target)
        resolved = {key: self._resolve(value) for key, value in node.items()}
        if "oneOf" in resolved and all(_is_loose(branch) for branch in resolved["oneOf"]):
            resolved["anyOf"] = resolved.pop("oneOf")
        return resolved


def _is_loose(schema: Any) -> bool:
    return isinstance(schema, dict) and not {"required", "additionalProperties"} & set(schema)


class SecretScanner:
    """Fails any response whose headers or body contain a known secret.

    Used as a second httpx response hook next to the checker: the sandbox
    must never send a stored password, client secret or API key back.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = {value for value in secrets if value}
        self.scanned = 0

    def add(self, *values: str) -> None:
        self.secrets.update(value for value in values if value)

    def check(self, text: str, where: str) -> None:
        leaked = sorted(value for value in self.secrets if value in text)
        self.scanned += 1
        if leaked:
            # Say which secret without printing it in full.
            hints = ", ".join(value[:6] + "..." for value in leaked)
            raise ConformanceError(f"{where}: the response contains a secret ({hints})")

    def hook(self, response: httpx.Response) -> None:
        response.read()
        self.check(_as_text(response), f"{response.request.method} {response.request.url.path}")

    async def async_hook(self, response: httpx.Response) -> None:
        await response.aread()
        self.check(_as_text(response), f"{response.request.method} {response.request.url.path}")


def _as_text(response: httpx.Response) -> str:
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    return headers + "\n" + response.content.decode("utf-8", "replace")


@cache
def shared_checker(spec_path: str) -> OpenApiChecker:
    """One checker per document per process, so counts add up across test modules."""
    return OpenApiChecker(spec_path)
