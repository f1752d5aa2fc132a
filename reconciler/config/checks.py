"""Checks the schemas cannot express: URLs, e-mail addresses, host names, dates and
secret references. Each `*_problem` function returns a message, or None when the
value is fine; the `check_*` functions walk one document and return its issues.

No check resolves a secret: references are only parsed.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence
from datetime import date
from typing import Any
from urllib.parse import SplitResult

from reconciler.config.hosts import host_allowed
from reconciler.config.quote import quoted, shown
from reconciler.config.source import Document, JsonPath
from reconciler.config.words import path_text
from reconciler.errors import ConfigIssue
from reconciler.secrets import looks_like_reference, parse_reference, reference_problem
from reconciler.urls import split_url

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_EMAIL = re.compile(
    rf"^(?=.{{3,254}}$){_LOCAL}@(?:{_LABEL}\.)+(?:[A-Za-z]{{2,63}}|xn--[A-Za-z0-9-]{{1,59}})$"
)
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_KIND = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
# The environment variable each secret field suggests in messages, after the tenant name.
_EXAMPLE_ENV = {
    ("email", "password"): "SMTP_PASSWORD",
    ("email", "clientSecret"): "M365_CLIENT_SECRET",
    ("auth", "apiKey"): "QLIK_API_KEY",
    ("oauth", "clientSecret"): "QLIK_CLIENT_SECRET",
}
_FORMS = "${env:NAME}, ${file:PATH} or ${cmd:COMMAND}"
_WHITESPACE = re.compile(r"\s")


@functools.cache
def url_problem(url: str) -> str | None:
    """Why `url` is not a usable tenant address (https://host[:port][/path])."""
    # Cached: the loader asks twice per tenant file (its own checks, then the
    # uniqueness of URLs across files).
    text = url.strip()
    if _WHITESPACE.search(text):
        return "url must not contain spaces"
    if not text.isprintable():
        return "url must not contain control characters"
    if "@" in text:  # not echoed: the user-info usually holds a password
        return "url must not contain a user name or password: credentials belong under auth"
    if "://" not in text:
        meant = shown("https://" + text.lstrip("/"))
        return f"url must start with https:// (did you mean {meant}?)"
    try:
        split = split_url(text)
        port = split.checked_port()
    except ValueError:
        return "url is not a valid URL (is the port a number from 1 to 65535?)"
    parts, host = split.parts, split.hostname
    return _scheme_problem(parts, host) or _parts_problem(parts, text, host, port)


def _scheme_problem(parts: SplitResult, host: str | None) -> str | None:
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return f"url must start with https://, not {shown(parts.scheme + '://')}"
    if scheme == "http" and host and not _is_loopback(host):
        return (
            "url must use https://: plain http:// would send the API credentials unencrypted, "
            "so it is allowed only for loopback hosts (localhost, 127.0.0.0/8, ::1)"
        )
    return None


def _parts_problem(parts: SplitResult, text: str, host: str | None, port: int | None) -> str | None:
    # geturl() (which reassembles the URL) can hold a '?' or '#' only if
    # the text does: its pieces are pieces of the text.
    if parts.query or ("?" in text and "?" in parts.geturl()):
        return "url must not contain a query string ('?...')"
    if parts.fragment or ("#" in text and "#" in parts.geturl()):
        return "url must not contain a fragment ('#...')"
    if not host:
        return "url has no host name"
    if port == 0:
        return "url port must be a number from 1 to 65535"
    if not host_is_valid(host):
        return f"url host {quoted(host)} is not a valid host name"
    return None


@functools.lru_cache(maxsize=1024)
def _is_loopback(host: str) -> bool:
    # Cached: a local fleet has one host (127.0.0.1) for all its tenants, and
    # parsing an address is not free.
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_is_valid(host: str) -> bool:
    """True for a DNS host name or an IP address."""
    if _HOST.match(host) is not None:
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def normalize_url(url: str) -> str:
    """`url` with a lowercased scheme and host and no trailing slash."""
    parts = split_url(url.strip()).parts
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def url_identity(url: str) -> str:
    """What makes two tenant URLs the same tenant: host, explicit port and path."""
    split = split_url(url.strip())
    number = split.checked_port()
    port = f":{number}" if number not in (None, 443, 80) else ""
    return f"{split.hostname}{port}{split.parts.path.rstrip('/')}"


def email_problem(label: str, address: str) -> str | None:
    """Why `address` is not a plausible e-mail address."""
    if _EMAIL.match(address):
        return None
    expected = "expected local@domain, such as qlik@acme.example"
    return f"{label} {quoted(address)} is not a valid e-mail address ({expected})"


def server_problem(label: str, server: str) -> str | None:
    """Why `server` is not a bare SMTP host name."""
    if "://" in server:
        return f"{label} must be a host name such as smtp.example.com, not a URL"
    if host_is_valid(server):
        return None
    if server.count(":") == 1 and host_is_valid(server.split(":")[0]):
        return f"{label} must not include the port: set serverPort instead"
    return f"{label} {quoted(server)} is not a valid host name"


def date_problem(label: str, text: str) -> str | None:
    """Why `text` (already of the form YYYY-MM-DD) is not a real date."""
    if not _DATE.match(text):
        return None  # the schema reports the form
    try:
        date.fromisoformat(text)
    except ValueError as exc:
        return f"{label} {quoted(text)} is not a valid date ({exc})"
    return None


def secret_problem(label: str, text: str, example: str) -> str | None:
    """Why `text` is not a usable secret reference. Never quotes a literal value."""
    ref = parse_reference(text)
    if ref is not None:
        problem = reference_problem(ref)
        if problem is None:
            return None
        return f"{label}: invalid secret reference {shown(ref)}: {problem}"
    if not looks_like_reference(text):
        return f"{label} must be a secret reference such as {example}, not a literal value"
    return f"{label}: {_malformed(text)}"


def reference_text_problem(label: str, text: str) -> str | None:
    """For fields that may hold a literal or a reference: only references are checked."""
    if not looks_like_reference(text):
        return None
    return secret_problem(label, text, "${env:QLIK_CLIENT_ID}")


def _malformed(text: str) -> str:
    # Only the kind is quoted, and only when it looks like one: the rest may be a secret.
    body = text.strip()[2:]
    if "}" not in body:
        return "the secret reference is not closed: it must end with '}'"
    if not body.endswith("}"):
        return "nothing may follow the closing '}' of a secret reference"
    kind, colon, _ = body[:-1].partition(":")
    if not colon:
        return f"a secret reference must name its kind: {_FORMS}"
    if kind not in ("env", "file", "cmd"):
        named = f" '{kind}'" if _KIND.match(kind) else ""
        return f"unknown secret reference kind{named}: use {_FORMS}"
    return f"the secret reference ${{{kind}:}} names no {'variable' if kind == 'env' else kind}"


def example_reference(tenant: str | None, path: JsonPath) -> str:
    """A reference to suggest for the secret at `path`, e.g. ${env:ACME_SMTP_PASSWORD}."""
    suffix = _EXAMPLE_ENV.get((str(path[-2]), str(path[-1])), "SECRET")
    if tenant:
        prefix = re.sub(r"[^A-Za-z0-9]", "_", tenant).upper()
        prefix = prefix if prefix[0].isalpha() else f"TENANT_{prefix}"
        suffix = f"{prefix}_{suffix}"
    return f"${{env:{suffix}}}"


def check_tenant(doc: Document) -> list[ConfigIssue]:
    """The semantic issues of one tenant file (each value on its own)."""
    issues: list[ConfigIssue] = []
    name = doc.get("name")
    name = name if isinstance(name, str) else None
    url = doc.get("url")
    if isinstance(url, str):
        _add(issues, doc, ("url",), url_problem(url))
    _check_email(doc, ("email",), name, issues)
    _check_auth(doc, ("auth",), name, issues)
    until = doc.get("paused", "until")
    if isinstance(until, str):
        _add(issues, doc, ("paused", "until"), date_problem("paused.until", until))
    return issues


def check_root(doc: Document) -> list[ConfigIssue]:
    """The semantic issues of the root file."""
    issues: list[ConfigIssue] = []
    _check_email(doc, ("defaults", "email"), None, issues)
    _check_auth(doc, ("defaults", "auth"), None, issues)
    rules = doc.get("drift", "ignore")
    for index in range(len(rules) if isinstance(rules, list) else 0):
        path = ("drift", "ignore", index, "expires")
        expires = doc.get(*path)
        if isinstance(expires, str):
            _add(issues, doc, path, date_problem(path_text(path), expires))
    return issues


def _check_email(
    doc: Document, at: JsonPath, tenant: str | None, issues: list[ConfigIssue]
) -> None:
    # The mapping is looked up once; its values are checked where they are.
    email = doc.get(*at)
    if not isinstance(email, dict):
        return
    for key in ("password", "clientSecret"):
        _check_secret(doc, (*at, key), email.get(key), tenant, issues)
    address = email.get("emailAddress")
    if isinstance(address, str):
        path = (*at, "emailAddress")
        _add(issues, doc, path, email_problem(path_text(path), address))
    server = email.get("serverAddress")
    if isinstance(server, str):
        path = (*at, "serverAddress")
        _add(issues, doc, path, server_problem(path_text(path), server))


def _check_auth(doc: Document, at: JsonPath, tenant: str | None, issues: list[ConfigIssue]) -> None:
    auth = doc.get(*at)
    if not isinstance(auth, dict):
        return
    _check_secret(doc, (*at, "apiKey"), auth.get("apiKey"), tenant, issues)
    oauth = auth.get("oauth")
    if not isinstance(oauth, dict):
        return
    _check_secret(doc, (*at, "oauth", "clientSecret"), oauth.get("clientSecret"), tenant, issues)
    client_id = oauth.get("clientId")
    if isinstance(client_id, str):
        path = (*at, "oauth", "clientId")
        _add(issues, doc, path, reference_text_problem(path_text(path), client_id))


def _check_secret(
    doc: Document, path: JsonPath, value: Any, tenant: str | None, issues: list[ConfigIssue]
) -> None:
    """Check `value`, the secret written at `path`."""
    if not isinstance(value, str):
        return
    ref = parse_reference(value)
    if ref is not None and reference_problem(ref) is None:
        return  # what secret_problem says first, without phrasing an example
    example = example_reference(tenant, path)
    _add(issues, doc, path, secret_problem(path_text(path), value, example))


def _add(issues: list[ConfigIssue], doc: Document, path: JsonPath, message: str | None) -> None:
    if message is not None:
        issues.append(doc.issue(path, message))


def host_issues(doc: Document, url: str, allowed: Sequence[str]) -> list[ConfigIssue]:
    """An issue at `url` when its host is not in `allowed` (loopback included): the
    tool sends the tenant's credentials there, so a changed URL in a pull request
    must not be able to send them anywhere else."""
    host = (split_url(url).hostname or "").lower()
    if host_allowed(host, allowed):
        return []
    message = (
        f"host {shown(host)} is not an allowed tenant host ({shown(', '.join(allowed))}): "
        "add it to settings.allowedHosts in the root file if it is really a tenant"
    )
    return [doc.issue(("url",), message)]
