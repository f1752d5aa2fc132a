"""The scrubber as plain as it can be written, the oracle of
tests/test_scrub_equivalence.py: the scrubber before its automaton (the window
walk of reconciler/scrub.py at 8283bba), with what was added since written its
own way: short forms found with `str.find`, and the normalisation done
character by character, with every normalised character's origin listed."""

from __future__ import annotations

import base64
import html
import json
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus, unquote

from reconciler.scrub import FRAGMENT, IGNORED, KEY, MIN_SECRET, NORMAL_MIN, REDACTED, STRIDE

_SPAN = 1 << 20  # offsets within a form stay below this (forms are far shorter)
_PERCENT = re.compile(r"%[0-9A-F]{2}")
_IGNORED = re.compile(f"[{IGNORED}]")
# The escapes normalisation decodes, tried in this order at each position.
_ESCAPES = [
    re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"),
    re.compile(r"\\u[0-9a-fA-F]{4}"),
    re.compile(r'\\["\\/bfnrt]'),
    re.compile(r"&#[0-9]{1,8};?"),
    re.compile(r"&#[xX][0-9a-fA-F]{1,8};?"),
    re.compile(r"&[A-Za-z][A-Za-z0-9]{1,31};"),
    re.compile(r"(?:%[0-9a-fA-F]{2})+"),
]


def reference_forms_of(secret: str) -> dict[str, bool]:
    """The spellings of `secret` that may appear in echoed text, each with
    whether pieces of it are looked for too (not for the rarer escapes)."""
    raw = secret.encode("utf-8")
    main = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    rare = {
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        "".join(f"\\u{ord(c):04x}" for c in secret if ord(c) < 0x10000),
        html.escape(secret),
        _PERCENT.sub(lambda m: m.group().lower(), quote(secret, safe="")),
    }
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode("ascii")
        # Whole, unpadded, and followed by more bytes (its last whole group).
        rare.update({whole, whole.rstrip("="), whole[: 4 * (len(raw) // 3)]})
        for offset in (1, 2):  # the secret after 1 or 2 other bytes of a blob
            blob = encode(b"\0" * offset + raw).decode("ascii").rstrip("=")
            end = 4 * ((offset + len(raw)) // 3)  # the last whole group
            rare.add(blob[4:end])
    forms = {form: False for form in rare - main}
    forms.update({form: True for form in main})
    return {form: pieces for form, pieces in forms.items() if len(form) >= MIN_SECRET}


def _dropped(char: str) -> bool:
    return char.isspace() or _IGNORED.match(char) is not None


def _decode(escape: str) -> str:
    if escape.startswith("\\u"):
        if len(escape) == 12:
            high, low = int(escape[2:6], 16), int(escape[8:12], 16)
            return chr(0x10000 + (high - 0xD800) * 0x400 + (low - 0xDC00))
        return chr(int(escape[2:], 16))
    if escape.startswith("\\"):
        return json.loads(f'"{escape}"')
    if escape.startswith("&"):
        return html.unescape(escape)
    return unquote(escape, errors="replace")


def _fold(char: str) -> str:
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", char).casefold())
    return "".join(c for c in folded if not _dropped(c))


def reference_normalise(text: str) -> tuple[str, list[tuple[int, int]]]:
    """`text` normalised, and for each of its characters the positions in
    `text` of the first and last character it comes from."""
    kept = [(at, char) for at, char in enumerate(text) if not _dropped(char)]
    stripped = "".join(char for _, char in kept)
    out: list[str] = []
    origins: list[tuple[int, int]] = []
    position = 0
    while position < len(stripped):
        match = next((m for e in _ESCAPES if (m := e.match(stripped, position))), None)
        if match is not None:
            decoded, end = _decode(match.group()), match.end()
        else:
            decoded, end = stripped[position], position + 1
        for char in "".join(map(_fold, decoded)):
            out.append(char)
            origins.append((kept[position][0], kept[end - 1][0]))
        position = end
    return "".join(out), origins


def reference_normal_forms_of(
    secret: str, forms: Callable[[str], dict[str, bool]] = reference_forms_of
) -> tuple[dict[str, bool], bool]:
    """Every form of `secret` normalised, long enough to be indexed, and its
    hex; and whether the normalised text alone is searched for it (`covered`)."""
    if len(secret) < NORMAL_MIN:
        return {}, False
    found: dict[str, bool] = {}
    covered = not any(_dropped(char) for char in secret)
    for form, pieces in forms(secret).items():
        normal = reference_normalise(form)[0]
        if len(normal) >= KEY:
            found[normal] = found.get(normal, False) or pieces
        else:
            covered = False
    found.setdefault(secret.encode("utf-8").hex(), False)
    return found, covered


class ReferenceScrubber:
    """The scrubber, plainly. `forms` spells each secret (by default
    `reference_forms_of`; `test_forms_are_unchanged` checks they are the
    tested module's)."""

    def __init__(
        self,
        secrets: Iterable[str] = (),
        forms: Callable[[str], dict[str, bool]] = reference_forms_of,
    ) -> None:
        self._forms_of = forms
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._forms: list[str] = []
        self._short: list[tuple[int, str]] = []  # forms shorter than KEY, whole
        self._index: dict[str, list[int]] = {}
        self._normal: set[int] = set()  # forms looked for in normalised text
        self._exact: set[int] = set()  # forms looked for in any text as it is
        for secret in secrets:
            self.add(secret)

    def __len__(self) -> int:
        return len(self._secrets)

    def add(self, secret: str) -> None:
        """Look for `secret` from now on (cheap when it is known already)."""
        if len(secret) < MIN_SECRET or secret in self._secrets:
            return
        with self._lock:
            if secret in self._secrets:
                return
            self._secrets.add(secret)
            normal, covered = reference_normal_forms_of(secret, self._forms_of)
            for form, pieces in self._forms_of(secret).items():
                number = self._index_form(form, pieces=pieces)
                if not covered:
                    self._exact.add(number)
            for form, pieces in normal.items():
                self._normal.add(self._index_form(form, pieces=pieces))

    def _index_form(self, form: str, *, pieces: bool) -> int:
        number = len(self._forms)
        self._forms.append(form)
        if len(form) < KEY:
            self._short.append((number, form))
            return number
        # A whole form is found from its first window; a piece of FRAGMENT
        # characters or more always holds one of the windows STRIDE apart.
        starts = {0}
        if pieces:
            starts.update(range(0, len(form) - KEY + 1, STRIDE), {len(form) - KEY})
        for start in starts:
            self._index.setdefault(form[start : start + KEY], []).append(number * _SPAN + start)
        return number

    def scrub(self, text: str) -> str:
        """`text` with every registered secret, in every form, replaced by REDACTED."""
        if not self._secrets or len(text) < MIN_SECRET:
            return text
        # A text without escapes is searched as it is for the forms of the
        # secrets that normalised text does not cover only.
        escaped = any(char in text for char in "\\&%")
        only = None if escaped or not self._normal else self._exact
        spans = self._spans(text, only)
        for number, form in self._short:
            if only is None or number in only:
                start = text.find(form)
                while start >= 0:
                    spans.append((start, start + len(form)))
                    start = text.find(form, start + 1)
        if self._normal and len(text) >= KEY:
            normal, origins = reference_normalise(text)
            if len(normal) >= KEY:
                for a, b in self._spans(normal, self._normal):
                    spans.append((origins[a][0], origins[b - 1][1] + 1))
        return _cut(text, spans) if spans else text

    def _spans(self, text: str, only: set[int] | None) -> list[tuple[int, int]]:
        """(start, end) of every form, or long enough piece of one, found in `text`."""
        found: list[tuple[int, int]] = []
        index, forms = self._index, self._forms
        reach = -1  # windows inside a span already found need no look-up
        for i in range(len(text) - KEY + 1):
            if i < reach:
                continue
            for entry in index.get(text[i : i + KEY], ()):
                number, offset = divmod(entry, _SPAN)
                if only is not None and number not in only:
                    continue
                span = _extend(text, i, forms[number], offset)
                if span is not None:
                    found.append(span)
                    reach = max(reach, span[1] - KEY + 1)
        return found


def _extend(text: str, i: int, form: str, offset: int) -> tuple[int, int] | None:
    """The longest match of `form` around `text[i:]` == `form[offset:]` (checked
    here), if it is the whole form or at least FRAGMENT characters of it."""
    if text[i : i + KEY] != form[offset : offset + KEY]:  # pragma: no cover - index keys match
        return None
    back = 0
    while back < offset and i - back > 0 and text[i - back - 1] == form[offset - back - 1]:
        back += 1
    ahead = KEY
    limit = min(len(form) - offset, len(text) - i)
    while ahead < limit and text[i + ahead] == form[offset + ahead]:
        ahead += 1
    length = back + ahead
    if length == len(form) or length >= FRAGMENT:
        return i - back, i + ahead
    return None


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with the (possibly overlapping) `spans` replaced by REDACTED."""
    spans.sort()
    pieces, position = [], 0
    for start, end in spans:
        if end <= position:
            continue
        if start > position:
            pieces.append(text[position:start])
            pieces.append(REDACTED)
        elif not pieces or pieces[-1] != REDACTED:
            pieces.append(REDACTED)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)
