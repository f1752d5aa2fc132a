"""The scrubber as it was before its automaton (reconciler/scrub.py at 8283bba),
kept as the oracle of tests/test_scrub_equivalence.py: the code below is that
version's, unchanged but for its names and the spelling function it is given."""

from __future__ import annotations

import base64
import bisect
import html
import json
import re
import threading
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

from reconciler.scrub import FRAGMENT, KEY, MIN_SECRET, REDACTED, STRIDE, WHITESPACE_MIN

_SPAN = 1 << 20  # offsets within a form stay below this (forms are far shorter)
_SPACE = re.compile(r"\s+")
_PERCENT = re.compile(r"%[0-9A-F]{2}")
_RUN = re.compile(r"\S+")


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


class ReferenceScrubber:
    """The scrubber before the automaton. `forms` spells each secret: the
    tested module's `forms_of` (the same forms, `test_forms_are_unchanged`) so
    that both scrubbers list each secret's forms in the same order (a set's
    order: it decides which of two overlapping short forms is replaced first)."""

    def __init__(
        self,
        secrets: Iterable[str] = (),
        forms: Callable[[str], dict[str, bool]] = reference_forms_of,
    ) -> None:
        self._forms_of = forms
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._forms: list[str] = []
        self._short: list[str] = []  # forms shorter than KEY: plain replace
        # window -> where it starts in which form, as form * _SPAN + offset: one int
        # per window, a list only for windows shared by several forms (10,000
        # secrets index about half a million windows: tuples in lists would
        # take about twice the memory).
        self._index: dict[str, int | list[int]] = {}
        self._spaced: set[int] = set()  # forms also looked for across whitespace
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
            spaced = len(secret) >= WHITESPACE_MIN
            for form, pieces in self._forms_of(secret).items():
                self._index_form(form, spaced=spaced, pieces=pieces)

    def _index_form(self, form: str, *, spaced: bool, pieces: bool) -> None:
        compact = _SPACE.sub("", form)
        if spaced and compact != form and len(compact) >= KEY:
            self._index_form(compact, spaced=True, pieces=pieces)
        if len(form) < KEY:
            self._short.append(form)
            self._short.sort(key=len, reverse=True)
            return
        number = len(self._forms)
        self._forms.append(form)
        if spaced:
            self._spaced.add(number)
        # A whole form is found from its first window; a piece of FRAGMENT
        # characters or more always holds one of the windows STRIDE apart.
        starts = {0}
        if pieces:
            starts.update(range(0, len(form) - KEY + 1, STRIDE), {len(form) - KEY})
        index = self._index
        for start in starts:
            window, entry = form[start : start + KEY], number * _SPAN + start
            known = index.get(window)
            if known is None:
                index[window] = entry
            elif isinstance(known, int):
                index[window] = [known, entry]
            else:
                known.append(entry)

    def scrub(self, text: str) -> str:
        """`text` with every registered secret, in every form, replaced by REDACTED."""
        if not self._secrets or len(text) < MIN_SECRET:
            return text
        spans = self._spans(text, None)
        if len(text) >= WHITESPACE_MIN and _SPACE.search(text) and self._spaced:
            spans += self._spaced_spans(text)
        if spans:
            text = _cut(text, spans)
        for form in self._short:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def _spans(self, text: str, only: set[int] | None) -> list[tuple[int, int]]:
        """(start, end) of every form, or long enough piece of one, found in `text`."""
        found: list[tuple[int, int]] = []
        index, forms = self._index, self._forms
        reach = -1  # windows inside a span already found need no look-up
        for i in range(len(text) - KEY + 1):
            if i < reach:
                continue
            hits = index.get(text[i : i + KEY])
            if hits is None:
                continue
            for entry in (hits,) if isinstance(hits, int) else hits:
                number, offset = divmod(entry, _SPAN)
                if only is not None and number not in only:
                    continue
                span = _extend(text, i, forms[number], offset)
                if span is not None:
                    found.append(span)
                    reach = max(reach, span[1] - KEY + 1)
        return found

    def _spaced_spans(self, text: str) -> list[tuple[int, int]]:
        """Spans found once whitespace is removed from `text`, in `text`'s positions."""
        runs = [(m.start(), m.end()) for m in _RUN.finditer(text)]
        compact = "".join(text[a:b] for a, b in runs)
        if len(runs) < 2:
            return []
        starts, total = [], 0  # where each run begins in `compact`
        for a, b in runs:
            starts.append(total)
            total += b - a

        def original(position: int) -> int:
            run = bisect.bisect_right(starts, position) - 1
            return runs[run][0] + position - starts[run]

        return [(original(a), original(b - 1) + 1) for a, b in self._spans(compact, self._spaced)]


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
