"""The one scrubber: every secret the process knows, removed from any text.

A tenant server is not trusted: it may echo what it was sent (the PUT
password, the OAuth client id and secret, the bearer token) into any string
of any answer, in any spelling. `Scrubber.add` registers a secret and
precomputes, once, the spellings it is looked for in:

- exact, JSON-escaped (`\\"`, `\\/`, `\\uXXXX` for every character or only for
  non-ASCII), HTML-escaped;
- URL-encoded (`quote` with and without `/` kept, `quote_plus`), with upper-
  or lower-case percent escapes;
- base64, standard and URL-safe, with and without padding, and the three
  alignments of the secret inside a larger base64 blob (the characters that
  depend on the secret's bytes only: a secret shorter than about four bytes
  has no such core in two of the alignments);
- the exact and URL-encoded forms cut short: a piece of FRAGMENT characters
  or more (so a secret split in two pieces of at least FRAGMENT characters
  each is caught); the escapes and base64 forms are caught whole only;
- any of the above with whitespace inserted, removed or collapsed (for secrets
  of WHITESPACE_MIN characters or more: the comparison ignores whitespace on
  both sides).

What it cannot catch (documented in docs/security.md): other encodings (hex,
base32, rot13, compression, hashing, encryption, mixed-case percent escapes),
a secret cut into pieces shorter than FRAGMENT characters or interleaved with
other characters, secrets shorter than MIN_SECRET characters, and secrets the
process never learnt (an e-mail password that `plan` and `drift` never resolve).

Matching is by an index of KEY-character windows taken every STRIDE
characters of every form: a window found in the text is extended, character
by character, to the form around it. The index is the truth; how its windows
are found in a text is a matter of cost only, and neither way's cost per
character grows with the number of secrets (10,000 tenants): an Aho-Corasick
automaton of the index's keys (pyahocorasick, in C) reports them, for four to
seven times less CPU than a walk in Python with one dictionary look-up per
character. The automaton is kept until a secret is added; while it is stale,
texts are walked, and it is rebuilt once the texts walked since the last add
(the one at hand included) are long enough to have paid for the rebuild
(REBUILD_PER_KEY): so a long text rebuilds it at once, a stream of small ones
after a while, and secrets added between small scrubs (the client, tenant
after tenant) cost rebuilds only while the index is a few keys (the first
secret or two, microseconds). Both ways find the same windows and give
the same result (tests/test_scrub_equivalence.py).
"""

from __future__ import annotations

import binascii
import bisect
import html
import json
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote, quote_plus

import ahocorasick

REDACTED = "(sensitive value)"
MIN_SECRET = 3  # shorter values are not looked for: they would shred every text
KEY = 6  # characters per index window
STRIDE = 6  # windows indexed every STRIDE characters of a form
FRAGMENT = 11  # a piece of a form this long is redacted on its own
WHITESPACE_MIN = 8  # secrets at least this long are found with whitespace in them

# A current automaton is cheaper than the Python walk for any text, a few
# characters included. Building one costs about as much as the automaton saves
# on 3 to 9 characters of text per key of the index (bench/NOTES.md,
# "Scrubber"), so a stale one is rebuilt once REBUILD_PER_KEY characters per
# key were walked since the last add: a rebuild costs less than the walks
# before it cost more than the automaton would have. At 10,000 tenants, about
# 840 KB: a plan or report at once, never the few server answers between two
# adds.
REBUILD_PER_KEY = 12

_SPAN = 1 << 20  # offsets within a form stay below this (forms are far shorter)
_SPACE = re.compile(r"\s+")
_PERCENT = re.compile(r"%[0-9A-F]{2}")
_RUN = re.compile(r"\S+")
_TWO_RUNS = re.compile(r"\S\s+\S")  # a text of two runs of non-whitespace or more
_BLOCK = 256  # compact positions are mapped back block by block (`_originals`)

# Characters that every escape below leaves alone (`quote`'s always-safe set,
# none of them special to JSON or HTML): a secret made of them only is its own
# URL, JSON and HTML spelling, and those need not be computed.
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")
_JSON_ASCII = json.JSONEncoder().encode  # what json.dumps does for a str, minus its argument checks
_JSON_UNICODE = json.JSONEncoder(ensure_ascii=False).encode
_ASCII_ESCAPES = {code: f"\\u{code:04x}" for code in range(128)}  # for str.translate


def forms_of(secret: str) -> dict[str, bool]:
    """The spellings of `secret` that may appear in echoed text, each with
    whether pieces of it are looked for too (not for the rarer escapes)."""
    raw = secret.encode("utf-8")
    rare: set[str] = set()
    if _PLAIN.fullmatch(secret):
        main = {secret}  # every URL, JSON and HTML escape below is the secret itself
    else:
        url = quote(secret, safe="")
        # quote_plus is quote with safe="" but for spaces; quote keeps "/".
        main = {
            secret,
            url,
            quote(secret) if "/" in secret else url,
            quote_plus(secret) if " " in secret else url,
        }
        escaped = _JSON_ASCII(secret)[1:-1]
        rare.update(
            (
                escaped,
                _JSON_UNICODE(secret)[1:-1],
                escaped.replace("/", "\\/"),
                html.escape(secret),
                _PERCENT.sub(_lower, url) if "%" in url else url,
            )
        )
    if secret.isascii():
        rare.add(secret.translate(_ASCII_ESCAPES))
    else:
        rare.add("".join(f"\\u{ord(c):04x}" for c in secret if ord(c) < 0x10000))
    # base64: whole, unpadded, and followed by more bytes (its last whole group);
    # then the secret after 1 or 2 other bytes of a blob, up to its last whole
    # group. URL-safe base64 is the standard one with "+/" as "-_".
    whole = binascii.b2a_base64(raw, newline=False).decode("ascii")
    b64 = [whole, whole.rstrip("="), whole[: 4 * (len(raw) // 3)]]
    for offset in (1, 2):
        blob = binascii.b2a_base64(b"\0" * offset + raw, newline=False).decode("ascii")
        b64.append(blob.rstrip("=")[4 : 4 * ((offset + len(raw)) // 3)])
    rare.update(b64)
    rare.update(form.replace("+", "-").replace("/", "_") for form in b64)
    forms = {form: False for form in rare - main}
    forms.update({form: True for form in main})
    return {form: pieces for form, pieces in forms.items() if len(form) >= MIN_SECRET}


def _lower(match: re.Match[str]) -> str:
    return match.group().lower()


# What finds the spans of the forms (all, or those numbered in `only`) in a text.
_Find = Callable[[str, set[int] | None], list[tuple[int, int]]]


class Scrubber:
    """Removes every registered secret, in every form, from text. Thread-safe to add to."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
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
        # The number of forms indexed when the automaton of the index's keys was
        # built (it is current while no form was added since), the automaton, and
        # the search with it. Replaced whole, never changed once published, so a
        # scrub never sees one half-built.
        self._automaton: tuple[int, Any, _Find] | None = None
        # Characters walked since the last add: a stale automaton is rebuilt
        # once they reach REBUILD_PER_KEY per key. A cost estimate only (two
        # threads may both count from the same value: a rebuild comes later).
        self._walked = 0
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
            # Whitespace in a form comes from the secret (no escape adds any).
            spaced = len(secret) >= WHITESPACE_MIN
            compact = spaced and _SPACE.search(secret) is not None
            for form, pieces in forms_of(secret).items():
                self._index_form(form, spaced=spaced, compact=compact, pieces=pieces)
            self._walked = 0

    def _index_form(self, form: str, *, spaced: bool, compact: bool, pieces: bool) -> None:
        if compact:
            without = _compact(form)
            if without != form and len(without) >= KEY:
                self._index_form(without, spaced=True, compact=False, pieces=pieces)
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
        last = len(form) - KEY
        starts: Sequence[int] = range(0, last + 1, STRIDE) if pieces else (0,)
        if pieces and last % STRIDE:
            starts = [*starts, last]
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
        # A text shorter than a window holds none (and is walked in no time):
        # most strings of a JSON report, scrubbed one by one.
        return self._scrub(text, self._walk if len(text) < KEY else self._finder(len(text)))

    def _scrub(self, text: str, find: _Find) -> str:
        if not self._secrets or len(text) < MIN_SECRET:
            return text
        spans = find(text, None)
        if len(text) >= WHITESPACE_MIN and _SPACE.search(text) and self._spaced:
            spans += self._spaced_spans(text, find)
        if spans:
            text = _cut(text, spans)
        for form in self._short:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def _finder(self, size: int) -> _Find:
        """How to find the windows in a text of `size` characters: the automaton
        when it is current, or when walking this text would bring the characters
        walked since the last add to REBUILD_PER_KEY per key; else the walk."""
        built, forms = self._automaton, len(self._forms)
        if built is None or built[0] != forms:
            walked = self._walked + size
            # (No form yet, no key: an automaton needs one.)
            if not forms or walked < REBUILD_PER_KEY * len(self._index):
                self._walked = walked
                return self._walk
            built = self._build()
        return built[2]

    def _current(self) -> _Find:
        """The automaton's search whatever the text's size (built if stale):
        for tests and benchmarks."""
        return self._finder(REBUILD_PER_KEY * len(self._index))

    def _build(self) -> tuple[int, Any, _Find]:
        """An automaton of the index's keys as they are now, published."""
        with self._lock:  # the keys and the number of forms, as one `add` left them
            forms, keys = len(self._forms), list(self._index)
        automaton = ahocorasick.Automaton(ahocorasick.STORE_LENGTH)
        for key in keys:
            automaton.add_word(key)
        automaton.make_automaton()

        def search(text: str, only: set[int] | None) -> list[tuple[int, int]]:
            return self._search(text, only, automaton)

        built = (forms, automaton, search)
        with self._lock:  # a build that started later may have finished first
            if self._automaton is None or self._automaton[0] < forms:
                self._automaton = built
        return built

    def _walk(self, text: str, only: set[int] | None) -> list[tuple[int, int]]:
        """(start, end) of every form, or long enough piece of one, found in
        `text`: the index looked up at every position, in Python."""
        found: list[tuple[int, int]] = []
        index = self._index
        reach = -1  # windows inside a span already found need no look-up
        for i in range(len(text) - KEY + 1):
            if i < reach:
                continue
            hits = index.get(text[i : i + KEY])
            if hits is not None:
                reach = self._confirm(text, i, hits, only, found, reach)
        return found

    def _search(self, text: str, only: set[int] | None, automaton: Any) -> list[tuple[int, int]]:
        """What `_walk` finds, the windows found by `automaton` (in C) instead:
        it reports, in order, every position where a key of the index ends."""
        found: list[tuple[int, int]] = []
        index = self._index
        reach = -1
        for end, _ in automaton.iter(text):
            i = end - KEY + 1
            if i >= reach:
                reach = self._confirm(text, i, index[text[i : i + KEY]], only, found, reach)
        return found

    def _confirm(
        self,
        text: str,
        i: int,
        hits: int | list[int],
        only: set[int] | None,
        found: list[tuple[int, int]],
        reach: int,
    ) -> int:
        """Extend the index entries `hits` of the window at `text[i:]` into spans
        (appended to `found`); returns the new reach (no look-up needed before)."""
        forms = self._forms
        for entry in (hits,) if isinstance(hits, int) else hits:
            number, offset = divmod(entry, _SPAN)
            if only is not None and number not in only:
                continue
            span = _extend(text, i, forms[number], offset)
            if span is not None:
                found.append(span)
                reach = max(reach, span[1] - KEY + 1)
        return reach

    def _spaced_spans(self, text: str, find: _Find) -> list[tuple[int, int]]:
        """Spans found once whitespace is removed from `text`, in `text`'s positions."""
        if not _TWO_RUNS.search(text):
            return []
        spans = find(_compact(text), self._spaced)
        if not spans:
            return []
        where = _originals(text, [position for a, b in spans for position in (a, b - 1)])
        return [(where[k], where[k + 1] + 1) for k in range(0, len(where), 2)]


def _compact(text: str) -> str:
    """`text` without its whitespace: `str.split` and `_SPACE` know the same
    whitespace (every code point checked, tests/test_scrub_equivalence.py), and
    this is four times faster than `_SPACE.sub("", text)` on a plan's text."""
    return "".join(text.split())


def _originals(text: str, positions: list[int]) -> list[int]:
    """Where in `text` the characters at `positions` of `text` without its
    whitespace are. The non-whitespace characters before each block of _BLOCK
    characters are counted first, so that a position is looked for in its block
    only: spans are few, and the text may be megabytes."""
    before = [0]
    for start in range(0, len(text), _BLOCK):
        before.append(before[-1] + len(_compact(text[start : start + _BLOCK])))
    found = []
    for position in positions:
        block = bisect.bisect_right(before, position) - 1
        rest = position - before[block]
        for run in _RUN.finditer(text, block * _BLOCK, (block + 1) * _BLOCK):
            length = run.end() - run.start()
            if rest < length:
                found.append(run.start() + rest)
                break
            rest -= length
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


# Free text from a server, where the process does not know every secret the
# server holds (plan and drift resolve no e-mail secret): bounded, on one line,
# and with every long token that could be a credential hidden.
UNRESOLVED_LIMIT = 160
_TOKEN = re.compile(r"[A-Za-z0-9+/=_%.~:@!$&*#^-]{16,}")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def _opaque(match: re.Match[str]) -> str:
    token = match.group()
    classes = sum(
        (
            any(c.islower() for c in token),
            any(c.isupper() for c in token),
            any(c.isdigit() for c in token),
        )
    )
    return "(token hidden)" if classes >= 2 else token


def reduce_unresolved(text: str, limit: int = UNRESOLVED_LIMIT) -> str:
    """Server text reduced for a command that holds none of the e-mail secrets:
    control and format characters dropped, whitespace collapsed, every token of
    16+ credential-like characters mixing letter cases or letters and digits
    hidden, then cut to `limit` characters."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    text = _TOKEN.sub(_opaque, text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
