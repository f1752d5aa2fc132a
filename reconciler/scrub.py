"""The one scrubber: every secret the process knows, removed from any text.

A tenant server is not trusted: it may echo what it was sent (the PUT
password, the OAuth client id and secret, the bearer token) into any string
of any answer, in any spelling. `Scrubber.add` registers a secret and
precomputes, once, the spellings it is looked for in. Two passes over a text:

1. the text as it is, for the forms of `forms_of`:
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
2. for secrets of NORMAL_MIN characters or more, the text normalised
   (`normalise`) for the same forms normalised, and the secret's hex: so also
   any mix of escaped and plain characters (`\\u002B` or `\\u002b`, `&#80;`,
   `&#x50;`, `&amp;`, percent escapes of either case), any case (`str.casefold`),
   any Unicode compatibility form (NFC, NFD, NFKC: fullwidth letters), with
   whitespace, format characters (zero-width, soft hyphen, bidirectional,
   tags) or control characters inserted, removed or collapsed, hex of either
   case. A secret shorter than NORMAL_MIN is looked for in its exact forms
   only: as words of ordinary text, its other spellings would redact it.

What it cannot catch (documented in docs/security.md): other encodings (base32,
rot13, compression, hashing, encryption, UTF-16), spellings combined with
base64 (the base64 of the upper-cased secret), a secret cut into pieces shorter
than FRAGMENT characters or interleaved with visible characters, secrets
shorter than MIN_SECRET characters, and secrets the process never learnt (an
e-mail password that `plan` and `drift` never resolve).

Matching is by an index of KEY-character windows taken every STRIDE
characters of every form (and of forms shorter than KEY, whole): a window
found in the text is extended, character by character, to the form around it.
The index is the truth; how its windows are found in a text is a matter of
cost only, and neither way's cost per character grows with the number of
secrets (10,000 tenants): an Aho-Corasick automaton of the index's keys
(pyahocorasick, in C) reports them, for four to seven times less CPU than a
walk in Python with one dictionary look-up per character and key length. The
automaton is kept until a secret is added; while it is stale, texts are
walked, and it is rebuilt once the texts walked since the last add (the one at
hand included) are long enough to have paid for the rebuild (REBUILD_PER_KEY
look-ups per key):
so a long text rebuilds it at once, a stream of small ones after a while, and
secrets added between small scrubs (the client, tenant after tenant) cost
rebuilds only while the index is a few keys (the first secret or two,
microseconds). Both ways find the same windows and give the same result
(tests/test_scrub_equivalence.py).
"""

from __future__ import annotations

import binascii
import bisect
import html
import json
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus, unquote

import ahocorasick

from reconciler.values import valueclass

REDACTED = "(sensitive value)"
MIN_SECRET = 3  # shorter values are not looked for: they would shred every text
KEY = 6  # characters per index window
STRIDE = 6  # windows indexed every STRIDE characters of a form
FRAGMENT = 11  # a piece of a form this long is redacted on its own
NORMAL_MIN = 8  # secrets at least this long are also looked for normalised (`normalise`)

# A current automaton is cheaper than the Python walk for any text, a few
# characters included. Building one costs about as much as the automaton saves
# on 3 to 9 characters of text per key of the index (bench/NOTES.md,
# "Scrubber"), so a stale one is rebuilt once REBUILD_PER_KEY look-ups per key
# were walked since the last add (a character walked costs one per key length,
# in each pass: `_walk_cost`): a rebuild costs less than the walks before it
# cost more than the automaton would have. At 10,000 tenants with long keys,
# about 420 KB of text: a plan or report at once, never the few server answers
# between two adds.
REBUILD_PER_KEY = 12

_SPAN = 1 << 20  # offsets within a form stay below this (forms are far shorter)
_PERCENT = re.compile(r"%[0-9A-F]{2}")
_BLOCK = 256  # stripped positions are mapped back block by block (`_originals`)

# Characters that every escape below leaves alone (`quote`'s always-safe set,
# none of them special to JSON or HTML): a secret made of them only is its own
# URL, JSON and HTML spelling, and those need not be computed.
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")
_JSON_ASCII = json.JSONEncoder().encode  # what json.dumps does for a str, minus its argument checks
_JSON_UNICODE = json.JSONEncoder(ensure_ascii=False).encode


def forms_of(secret: str) -> dict[str, bool]:
    """The spellings of `secret` that may appear in echoed text, each with
    whether pieces of it are looked for too (not for the rarer escapes)."""
    return _spellings(secret)[0]


def _spellings(secret: str) -> tuple[dict[str, bool], set[str]]:
    """`forms_of`, and which of the forms are base64 (standard or URL-safe)."""
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
        # Every byte is one character: `\\u00` and its hex (bytes.hex writes the
        # separators in C, where `str.translate` looked up each character).
        rare.add("\\u00" + raw.hex(" ").replace(" ", "\\u00") if raw else "")
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
    encoded = {*b64, *(form.replace("+", "-").replace("/", "_") for form in b64)}
    rare.update(encoded)
    forms = {form: False for form in rare - main}
    forms.update({form: True for form in main})
    return {form: pieces for form, pieces in forms.items() if len(form) >= MIN_SECRET}, encoded


def _lower(match: re.Match[str]) -> str:
    return match.group().lower()


def normal_forms_of(secret: str, forms: dict[str, bool] | None = None) -> dict[str, bool]:
    """The forms of `secret` looked for in normalised text (`normalise`): every
    form of `forms_of` (or `forms`) normalised (many are one), and its UTF-8
    bytes in hex; each with whether pieces of it are looked for too. Empty for
    a secret shorter than NORMAL_MIN characters."""
    if forms is None:
        return _normal_forms(secret, *_spellings(secret))[0]
    return _normal_forms(secret, forms)[0]


def _normal_forms(
    secret: str, forms: dict[str, bool], base64: set[str] | None = None
) -> tuple[dict[str, bool], bool]:
    """`normal_forms_of`, and whether every form normalises to one long enough
    to be indexed. `base64`, when given, is which forms are base64 (`_spellings`)."""
    if len(secret) < NORMAL_MIN:
        return {}, False
    # A secret without anything an escape could start with, whitespace, or a
    # character beyond the BMP (which the `\\uXXXX` form leaves out) normalises
    # as every one of its escaped forms does, each escape on its own standing
    # for one of its characters: computed once (tests/test_scrub_equivalence.py
    # checks it against every form normalised). A form of base64 characters only
    # normalises to itself in lower case.
    if secret.isascii() and base64 is not None:
        # In ASCII, what the pattern looks for is `\\`, `&`, `%`, the space, or
        # a character that is not printable; such a secret normalises to itself
        # in lower case, and each of its forms that is all base64 characters
        # but is not base64 is the secret itself.
        odd = " " in secret or "\\" in secret or "&" in secret or "%" in secret
        if secret.isprintable() and not odd:
            itself = secret.lower()
            return _collected(secret, forms, [f.lower() if f in base64 else itself for f in forms])
    simple = _UNSIMPLE.search(secret) is None
    itself = normalise(secret).text
    normals = [
        form.lower() if _BASE64.fullmatch(form) else (itself if simple else normalise(form).text)
        for form in forms
    ]
    return _collected(secret, forms, normals)


def _collected(
    secret: str, forms: dict[str, bool], normals: list[str]
) -> tuple[dict[str, bool], bool]:
    """`_normal_forms` from `normals`, the normal form of each of `forms` in
    order: those long enough to be indexed, and the secret's hex."""
    found: dict[str, bool] = {}
    every = True
    for normal, pieces in zip(normals, forms.values(), strict=True):
        if len(normal) >= KEY:
            found[normal] = found.get(normal, False) or pieces
        else:
            every = False
    found.setdefault(secret.encode("utf-8").hex(), False)
    return found, every


# -- Normalisation ------------------------------------------------------------------
#
# `normalise(text)`, in three steps, each with a way back to the positions before it:
# 1. whitespace and IGNORED characters removed;
# 2. escapes decoded (`\uXXXX` and surrogate pairs of either case, JSON's `\"`
#    `\\` `\/` `\b` `\f` `\n` `\r` `\t`, HTML's numeric and named character
#    references, runs of percent escapes as UTF-8), each escape on its own: what
#    one decodes to is never decoded again;
# 3. every character folded: NFKD, casefolded, NFKD again, with what is
#    whitespace or IGNORED in the result dropped (the decoded characters too).
# Per character, so that the normal form of a text is the normal forms of its
# parts, one after the other (but for escapes cut at a part's edge), and a form
# is found in the normalised text where it is in the text.

# Controls that are not whitespace, and the default-ignorable characters
# (Unicode's format characters among them): invisible in any output, so a
# server may put them anywhere in a secret. (Whitespace goes by `str.split`.)
IGNORED = (
    "\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5"
    "\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff"
    "\uffa0\ufff0-\ufffb\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
)
_IGNORED = re.compile(f"[{IGNORED}]+")
_UNSIMPLE = re.compile(f"[\\\\&%\\s{IGNORED}\U00010000-\U0010ffff]")
_BASE64 = re.compile(r"[A-Za-z0-9+/=_-]*")
_UNCOVERED = re.compile(f"[\\s{IGNORED}]")
_KEPT = re.compile(f"[^\\s{IGNORED}]+")  # a run of what step 1 keeps
_ESCAPED = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"  # a surrogate pair
    r"|\\u[0-9a-fA-F]{4}"
    r'|\\["\\/bfnrt]'
    r"|&#[0-9]{1,8};?|&#[xX][0-9a-fA-F]{1,8};?|&[A-Za-z][A-Za-z0-9]{1,31};"
    r"|(?:%[0-9a-fA-F]{2})+"
)
_JSON_SHORT = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
_AS_IS, _ESCAPE, _UNEVEN = 0, 1, 2  # kinds of pieces of a normalised text
# The folds and decoded escapes met so far, each table emptied when it reaches
# _MEMO entries: a hostile text of every code point must not grow them for ever.
_MEMO = 1 << 16
_MEMO_ESCAPE = 16  # longer escapes (runs of percent escapes) are decoded every time


def _strip(text: str) -> str:
    """`text` without whitespace (`str.split`'s, which is `\\s`: checked for
    every code point) and IGNORED characters (none in printable ASCII)."""
    compact = "".join(text.split())
    if compact.isascii() and compact.isprintable():
        return compact
    return _IGNORED.sub("", compact)


class _Folds(dict[int, str]):
    """Code point -> the fold of its character (step 3), computed once per
    character: a table for `str.translate`."""

    def __missing__(self, code: int) -> str:
        decomposed = unicodedata.normalize("NFKD", chr(code))
        folded = _strip(unicodedata.normalize("NFKD", decomposed.casefold()))
        if len(self) >= _MEMO:
            self.clear()
        self[code] = folded
        return folded


_FOLDS = _Folds()
_ESCAPES: dict[str, str] = {}  # escape -> what it decodes to, folded


def _fold_escape(escape: str) -> str:
    """What an escape of `_ESCAPED` stands for, folded (step 2 then 3)."""
    folded = _ESCAPES.get(escape)
    if folded is None:
        folded = _strip(_decode(escape).translate(_FOLDS))
        if len(escape) <= _MEMO_ESCAPE:  # not a run of percent escapes of any length
            if len(_ESCAPES) >= _MEMO:
                _ESCAPES.clear()
            _ESCAPES[escape] = folded
    return folded


def _decode(escape: str) -> str:
    """What an escape of `_ESCAPED` stands for."""
    lead = escape[0]
    if lead == "\\":
        if escape[1] != "u":
            return _JSON_SHORT[escape[1]]
        code = int(escape[2:6], 16)
        if len(escape) == 12:  # a surrogate pair
            code = 0x10000 + ((code - 0xD800) << 10) + int(escape[8:12], 16) - 0xDC00
        return chr(code)
    if lead == "&":
        return html.unescape(escape)
    return unquote(escape, errors="replace")


@valueclass
class Normal:
    """A text normalised (`normalise`), with the way back to its positions.

    `pieces` (None: every character stood for itself, after step 1) lists, in
    order, (start in `text`, start and end in `stripped`, kind) for each
    escape, and each run between escapes: ASCII (one character each) or not
    (folded character by character, to as many characters as may be)."""

    text: str
    stripped: str
    pieces: list[tuple[int, int, int, int]] | None

    def origins(self, original: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """`spans` of `text`, as spans of `original` (the text normalised): an
        escape is covered whole, and so is what was stripped inside a span."""
        ends: dict[int, list[int]] = {}  # piece -> where each of its characters' folds end
        positions: list[int] = []
        for start, end in spans:
            positions += (self._back(start, True, ends), self._back(end - 1, False, ends))
        if len(self.stripped) != len(original):
            positions = _originals(original, positions)
        return [(positions[k], positions[k + 1] + 1) for k in range(0, len(positions), 2)]

    def _back(self, position: int, first: bool, ends: dict[int, list[int]]) -> int:
        """Where in `stripped` the character at `position` of `text` comes from:
        the first or the last character of what it was decoded or folded from."""
        pieces = self.pieces
        if pieces is None:
            return position
        at = bisect.bisect_right(pieces, (position, _SPAN)) - 1
        start, begin, end, kind = pieces[at]
        if kind == _AS_IS:
            return begin + position - start
        if kind == _ESCAPE:
            return begin if first else end - 1
        known = ends.get(at)
        if known is None:  # folded again, once per piece a span touches
            known = ends[at] = []
            for char in self.stripped[begin:end]:
                start += len(_FOLDS[ord(char)])
                known.append(start)
        return begin + bisect.bisect_right(known, position)


def normalise(text: str) -> Normal:
    """`text` normalised for the second pass (steps above)."""
    stripped = _strip(text)
    if _simple(stripped):
        return Normal(stripped.lower(), stripped, None)
    parts: list[str] = []
    pieces: list[tuple[int, int, int, int]] = []
    length = position = 0
    for match in _ESCAPED.finditer(stripped):
        begin, end = match.span()
        if begin > position:
            length = _run(stripped, position, begin, parts, pieces, length)
        folded = _fold_escape(match.group())
        # A piece that folds to nothing is not listed: a position is never in it.
        if folded:
            pieces.append((length, begin, end, _ESCAPE))
            parts.append(folded)
            length += len(folded)
        position = end
    if position < len(stripped):
        _run(stripped, position, len(stripped), parts, pieces, length)
    return Normal("".join(parts), stripped, pieces)


def _run(
    stripped: str,
    begin: int,
    end: int,
    parts: list[str],
    pieces: list[tuple[int, int, int, int]],
    length: int,
) -> int:
    """Fold `stripped[begin:end]` (no escape in it) into `parts`, listed in
    `pieces`; returns the length of the normalised text so far."""
    run = stripped[begin:end]
    if run.isascii():
        folded, kind = run.lower(), _AS_IS
    else:
        folded, kind = run.translate(_FOLDS), _UNEVEN
    if folded:
        pieces.append((length, begin, end, kind))
        parts.append(folded)
    return length + len(folded)


def _uncovered(secret: str) -> bool:
    """Whether `secret` holds whitespace or an IGNORED character (`_UNCOVERED`);
    in ASCII, the space and what is not printable (no pattern to run)."""
    if secret.isascii():
        return " " in secret or not secret.isprintable()
    return _UNCOVERED.search(secret) is not None


def _simple(stripped: str) -> bool:
    """Whether `stripped` (step 1 done) normalises to itself in lower case."""
    return stripped.isascii() and not ("\\" in stripped or "&" in stripped or "%" in stripped)


# What finds the spans of the forms (all, or those numbered in `only`) in a text.
_Find = Callable[[str, set[int] | None], list[tuple[int, int]]]


class Scrubber:
    """Removes every registered secret, in every form, from text. Thread-safe to add to."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._forms: list[str] = []
        # key -> where it starts in which form, as form * _SPAN + offset: one int
        # per key, a list only for keys shared by several forms (10,000
        # secrets index about half a million keys: tuples in lists would take
        # about twice the memory). A key is a window of KEY characters, or a
        # whole form shorter than that.
        self._index: dict[str, int | list[int]] = {}
        self._lengths: tuple[int, ...] = ()  # the lengths of the keys, longest first
        self._normal: set[int] = set()  # forms looked for in normalised text
        # Forms also looked for in a text without escapes as it is (`add`).
        self._exact: set[int] = set()
        # The number of forms indexed when the automaton of the index's keys was
        # built (it is current while no form was added since), the automaton, and
        # the search with it. Replaced whole, never changed once published, so a
        # scrub never sees one half-built.
        self._automaton: tuple[int, Any, _Find] | None = None
        # Look-ups walked since the last add (`_walk_cost` per character): a
        # stale automaton is rebuilt once they reach REBUILD_PER_KEY per key. A
        # cost estimate only (two threads may both count from the same value:
        # a rebuild comes later).
        self._walked = 0
        self._logs_only: Scrubber | None = None  # `add_for_logs`
        for secret in secrets:
            self.add(secret)

    def __len__(self) -> int:
        return len(self._secrets)

    def add_for_logs(self, secret: str) -> None:
        """Look for `secret` in `scrub_logs` only: a value that another party
        chose (a server's access token), which may then hide nothing of a
        report, but stays out of the --debug log and tracebacks, where a
        server's text can arrive through an exception's message unscrubbed."""
        with self._lock:
            if self._logs_only is None:
                self._logs_only = Scrubber()
        self._logs_only.add(secret)

    def scrub_logs(self, text: str) -> str:
        """`scrub`, and the secrets of `add_for_logs` too: for log records and
        tracebacks."""
        text = self.scrub(text)
        return text if self._logs_only is None else self._logs_only.scrub(text)

    def add(self, secret: str) -> None:
        """Look for `secret` from now on (cheap when it is known already)."""
        if len(secret) < MIN_SECRET or secret in self._secrets:
            return
        with self._lock:
            if secret in self._secrets:
                return
            self._secrets.add(secret)
            forms, base64 = _spellings(secret)
            numbers = {form: self._index_form(form, pieces) for form, pieces in forms.items()}
            normal, every = _normal_forms(secret, forms, base64)
            for form, pieces in normal.items():
                number = numbers.get(form)
                if number is None or (pieces and not forms[form]):
                    number = self._index_form(form, pieces)
                self._normal.add(number)
            # A text without escapes is searched normalised only, for the forms
            # of a secret that normalised text holds wherever the text holds
            # them: one with no whitespace or IGNORED character (which
            # normalising drops, at its ends too), whose forms all normalise
            # to a form long enough to be indexed.
            if not (normal and every and not _uncovered(secret)):
                self._exact.update(numbers.values())
            self._walked = 0

    def _index_form(self, form: str, pieces: bool) -> int:
        """Index `form`; returns its number."""
        number = len(self._forms)
        self._forms.append(form)
        # A whole form is found from its first window; a piece of FRAGMENT
        # characters or more always holds one of the windows STRIDE apart. A
        # form shorter than a window is its own key.
        size = len(form)
        length = min(size, KEY)
        if length not in self._lengths:
            self._lengths = tuple(sorted({*self._lengths, length}, reverse=True))
        base = number * _SPAN
        index = self._index
        if not pieces or size <= KEY:
            self._enter(index, form[:KEY], base)
            return number
        last = size - KEY
        for start in range(0, last + 1, STRIDE):
            self._enter(index, form[start : start + KEY], base + start)
        if last % STRIDE:
            self._enter(index, form[last:], base + last)
        return number

    @staticmethod
    def _enter(index: dict[str, int | list[int]], key: str, entry: int) -> None:
        """Add `entry` to `key`'s (an int while it is the only one)."""
        known = index.setdefault(key, entry)
        if known is entry:  # `key` was new (no other entry equals this one)
            return
        if isinstance(known, int):
            index[key] = [known, entry]
        else:
            known.append(entry)

    def scrub(self, text: str) -> str:
        """`text` with every registered secret, in every form, replaced by REDACTED."""
        if not self._secrets or len(text) < MIN_SECRET:
            return text
        # A text shorter than a window is walked in no time: most strings of a
        # JSON report, scrubbed one by one.
        return self._scrub(text, self._walk if len(text) < KEY else self._finder(len(text)))

    def _scrub(self, text: str, find: _Find) -> str:
        if not self._secrets or len(text) < MIN_SECRET:
            return text
        # Normalised text holds every form of most secrets where the text
        # holds it, but an escape cut at a form's edge can decode otherwise:
        # a text with escapes is searched as it is for every form.
        escaped = "\\" in text or "&" in text or "%" in text
        normal = self._normal
        if escaped or not normal:
            spans = find(text, None)
        else:
            spans = find(text, self._exact) if self._exact else []
        if normal and len(text) >= KEY:
            compact = "".join(text.split())
            if not escaped and compact.isascii() and compact.isprintable():
                # Most texts: normalised by lowering `_strip(text)`, and no
                # Normal made unless something is found.
                if len(compact) >= KEY:
                    found = find(compact.lower(), normal)
                    if found:
                        spans += Normal(compact.lower(), compact, None).origins(text, found)
            else:
                spans += self._normal_spans(text, find)
        return _cut(text, spans) if spans else text

    def _normal_spans(self, text: str, find: _Find) -> list[tuple[int, int]]:
        """Spans of the normal forms in `text` normalised, in `text`'s positions."""
        normal = normalise(text)
        if len(normal.text) < KEY:
            return []
        spans = find(normal.text, self._normal)
        return normal.origins(text, spans) if spans else []

    def _finder(self, size: int) -> _Find:
        """How to find the keys in a text of `size` characters: the automaton
        when it is current, or when walking this text would bring what was
        walked since the last add to REBUILD_PER_KEY look-ups per key; else the
        walk."""
        built, forms = self._automaton, len(self._forms)
        if built is None or built[0] != forms:
            walked = self._walked + size * self._walk_cost()
            # (No form yet, no key: an automaton needs one.)
            if not forms or walked < REBUILD_PER_KEY * len(self._index):
                self._walked = walked
                return self._walk
            built = self._build()
        return built[2]

    def _walk_cost(self) -> int:
        """Look-ups per character of a text walked: one per key length, in each
        of the passes (the text, and the text normalised)."""
        return max(1, len(self._lengths)) * (2 if self._normal else 1)

    def _rebuild_size(self) -> int:
        """The size of a text that rebuilds a stale automaton, alone."""
        return -(-REBUILD_PER_KEY * len(self._index) // self._walk_cost())

    def _current(self) -> _Find:
        """The automaton's search whatever the text's size (built if stale):
        for tests and benchmarks."""
        return self._finder(self._rebuild_size())

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
        `text`: the index looked up at every position, for every key length, in
        Python."""
        found: list[tuple[int, int]] = []
        index, lengths, size = self._index, self._lengths, len(text)
        reach = -1  # keys inside a span already found need no look-up
        for i in range(size - (lengths[-1] if lengths else size) + 1):
            if i < reach:
                continue
            for length in lengths:
                if i + length <= size:
                    hits = index.get(text[i : i + length])
                    if hits is not None:
                        reach = self._confirm(text, i, length, hits, only, found, reach)
        return found

    def _search(self, text: str, only: set[int] | None, automaton: Any) -> list[tuple[int, int]]:
        """What `_walk` finds, the keys found by `automaton` (in C) instead: it
        reports, in order, every position where a key of the index ends, and
        the key's length."""
        found: list[tuple[int, int]] = []
        index = self._index
        reach = -1
        for end, length in automaton.iter(text):
            i = end - length + 1
            if i >= reach:
                hits = index[text[i : end + 1]]
                reach = self._confirm(text, i, length, hits, only, found, reach)
        return found

    def _confirm(
        self,
        text: str,
        i: int,
        length: int,
        hits: int | list[int],
        only: set[int] | None,
        found: list[tuple[int, int]],
        reach: int,
    ) -> int:
        """Extend the index entries `hits` of the key of `length` at `text[i:]`
        into spans (appended to `found`); returns the new reach (no look-up
        needed before)."""
        forms = self._forms
        for entry in (hits,) if isinstance(hits, int) else hits:
            number, offset = divmod(entry, _SPAN)
            if only is not None and number not in only:
                continue
            span = _extend(text, i, forms[number], offset, length)
            if span is not None:
                found.append(span)
                # Windows that start before `reach` lie inside the span: not
                # so for a short key's (the automaton reports keys by their
                # end, and a window reported after it may start before it).
                if length == KEY:
                    reach = max(reach, span[1] - KEY + 1)
        return reach


def _originals(text: str, positions: list[int]) -> list[int]:
    """Where in `text` the characters at `positions` of `_strip(text)` are. The
    characters kept before each block of _BLOCK characters are counted first, so
    that a position is looked for in its block only: spans are few, and the
    text may be megabytes."""
    before = [0]
    for start in range(0, len(text), _BLOCK):
        before.append(before[-1] + len(_strip(text[start : start + _BLOCK])))
    found = []
    for position in positions:
        block = bisect.bisect_right(before, position) - 1
        rest = position - before[block]
        for run in _KEPT.finditer(text, block * _BLOCK, (block + 1) * _BLOCK):
            length = run.end() - run.start()
            if rest < length:
                found.append(run.start() + rest)
                break
            rest -= length
    return found


def _extend(text: str, i: int, form: str, offset: int, length: int) -> tuple[int, int] | None:
    """The longest match of `form` around `text[i:]` == `form[offset:]` (checked
    here for `length` characters), if it is the whole form or at least FRAGMENT
    characters of it."""
    if text[i : i + length] != form[offset : offset + length]:  # pragma: no cover - keys match
        return None
    back = 0
    while back < offset and i - back > 0 and text[i - back - 1] == form[offset - back - 1]:
        back += 1
    ahead = length
    limit = min(len(form) - offset, len(text) - i)
    while ahead < limit and text[i + ahead] == form[offset + ahead]:
        ahead += 1
    total = back + ahead
    if total == len(form) or total >= FRAGMENT:
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
