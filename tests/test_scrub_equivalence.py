"""The scrubber's automaton, its normalisation and its shortcuts change no result.

Every way of scrubbing is compared with the scrubber written plainly
(tests/scrub_reference.py): the Python walk, the automaton, and `scrub` (which
chooses), on random secrets and texts made of their spellings, pieces, spaced,
re-cased, re-escaped and Unicode-normalised variants and base64 blobs among
noise, below and above the size at which a stale automaton is rebuilt.
Seeded: every run draws the same cases.
"""

from __future__ import annotations

import base64
import html
import random
import string
import threading
import unicodedata

import pytest
from scrub_reference import (
    ReferenceScrubber,
    reference_forms_of,
    reference_normal_forms_of,
    reference_normalise,
)

from reconciler.scrub import (
    FRAGMENT,
    IGNORED,
    REDACTED,
    Scrubber,
    _normal_forms,
    _spellings,
    forms_of,
    normal_forms_of,
    normalise,
)

WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u2028", "\u3000", "\x1c", "\x0b"]
UNICODE = "äöüéßø€中文😀\U0001d518\u00a0"  # U+1D518: beyond the BMP
NOISE = [
    "tenant",
    "update",
    "senderName",
    " = ",
    " -> ",
    "(sensitive value)",
    "\\u0041\\u0062",
    "%2F%3d",
    "&amp;&lt;",
    "\\/",
    "==",
    "\x00",
    "\ud800",  # lone surrogates: JSON can carry them, so server text can
    "\udfff",
    "é€😀\U0001d518中",
    "\u200b",
    "\xad",
    "&#",
    "&#x5",
    "&amp",
    "\\u00",
    "%C3",
    "%",
    "ß",
    "ﬁ",
    "\u0308",
]
INVISIBLE = ["\u200b", "\xad", "\u2060", "\ufeff", "\u202e", "\U000e0041", "\x00", "\u034f"]


def random_secret(rng: random.Random, others: list[str]) -> str:
    kinds = ["token", "printable", "unicode", "spaced", "short", "derived", "escapes"]
    kind = rng.choice(kinds)
    if kind == "derived" and others:
        other = rng.choice(others)
        cut = rng.randint(0, max(0, len(other) - 3))
        return rng.choice(
            [
                other[cut:] + "x",  # overlaps the other's end
                other[: cut + 3],  # a prefix (possibly short)
                other[:6] + "".join(rng.choices(string.ascii_letters, k=12)),  # same first window
                other + other[:4],  # holds the other
            ]
        )
    if kind == "printable":
        return "".join(rng.choices(string.printable[:95], k=rng.randint(3, 30)))
    if kind == "unicode":
        return "".join(rng.choices(string.ascii_letters + UNICODE, k=rng.randint(3, 20)))
    if kind == "spaced":
        words = ["".join(rng.choices(string.ascii_letters + "/+%", k=rng.randint(2, 7)))]
        for _ in range(rng.randint(1, 4)):
            words += [rng.choice(WHITESPACE), "".join(rng.choices(string.ascii_lowercase, k=4))]
        return "".join(words)
    if kind == "short":
        alphabet = string.ascii_letters + string.digits + "/ "
        return "".join(rng.choices(alphabet, k=rng.randint(3, 5)))
    if kind == "escapes":  # characters that start escapes, and ones that fold
        alphabet = string.ascii_letters + "\\&%#;u0123456789abcdefßﬁİÅ\u0308"
        return "".join(rng.choices(alphabet, k=rng.randint(3, 24)))
    return "".join(rng.choices(string.ascii_letters + string.digits + "-_", k=rng.randint(3, 40)))


def spaced(rng: random.Random, form: str) -> str:
    """`form` with whitespace inserted, removed or collapsed."""
    how = rng.choice(["insert", "remove", "collapse"])
    if how == "remove":
        return "".join(form.split())
    if how == "collapse":
        return " ".join(form.split())
    return "".join(c + (rng.choice(WHITESPACE) if rng.random() < 0.4 else "") for c in form)


def respelt(rng: random.Random, secret: str) -> str:
    """`secret` spelt as only normalised text finds it."""
    how = rng.randrange(8)
    if how == 0:
        return rng.choice([secret.upper(), secret.lower(), secret.swapcase()])
    if how == 1:
        return unicodedata.normalize(rng.choice(["NFD", "NFKC", "NFKD", "NFC"]), secret)
    if how == 2:  # fullwidth
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in secret)
    if how == 3:  # some characters as \uXXXX of either case
        return "".join(
            (f"\\u{ord(c):04X}" if rng.random() < 0.5 else f"\\u{ord(c):04x}")
            if rng.random() < 0.4 and ord(c) < 0x10000
            else c
            for c in secret
        )
    if how == 4:  # some as HTML character references
        return "".join(
            rng.choice([f"&#{ord(c)};", f"&#x{ord(c):X};", html.escape(c)])
            if rng.random() < 0.4
            else c
            for c in secret
        )
    if how == 5:  # invisible characters between the characters
        return "".join(c + (rng.choice(INVISIBLE) if rng.random() < 0.5 else "") for c in secret)
    if how == 6:
        raw = secret.encode("utf-8", "surrogatepass")
        return rng.choice([raw.hex(), raw.hex().upper(), " ".join(f"{b:02x}" for b in raw)])
    return "".join(c if rng.random() < 0.7 else f"%{b:02x}" for c in secret for b in c.encode())


def echo(rng: random.Random, secret: str) -> str:
    """One spelling of `secret`, or a part or a near miss of one."""
    forms = forms_of(secret)
    form = rng.choice(sorted(forms))
    main = [f for f, pieces in sorted(forms.items()) if pieces] or [form]
    kind = rng.randrange(9)
    if kind >= 7:
        return respelt(rng, secret)
    if kind == 0:
        return form
    if kind == 1:  # a piece of a form looked for in pieces
        whole = rng.choice(main)
        length = rng.randint(min(len(whole), FRAGMENT - 2), len(whole))
        start = rng.randint(0, len(whole) - length)
        return whole[start : start + length]
    if kind == 2:
        return spaced(rng, form)
    if kind == 3:  # inside a larger base64 blob, at any alignment
        raw = rng.randbytes(rng.randint(0, 3)) + secret.encode() + rng.randbytes(rng.randint(0, 3))
        encode = rng.choice([base64.b64encode, base64.urlsafe_b64encode])
        return encode(raw).decode()
    if kind == 4 and len(form) > 1:  # a near miss: one character changed
        at = rng.randrange(len(form))
        return form[:at] + rng.choice("#é ") + form[at + 1 :]
    if kind == 5:  # glued to another spelling
        return form + rng.choice(main)
    return form[: len(form) // 2] + rng.choice(WHITESPACE) + form[len(form) // 2 :]


def random_text(rng: random.Random, secrets: list[str], size: int) -> str:
    parts: list[str] = []
    length = 0
    while length < size:
        roll = rng.random()
        if roll < 0.3 and secrets:
            part = echo(rng, rng.choice(secrets))
        elif roll < 0.5:
            part = rng.choice(WHITESPACE)
        elif roll < 0.6:
            part = "".join(rng.choices(string.ascii_letters + string.digits + "+/=", k=20))
        else:
            part = rng.choice(NOISE)
        parts.append(part)
        length += len(part)
    return "".join(parts)


def random_secrets(rng: random.Random, count: int) -> list[str]:
    secrets: list[str] = []
    for _ in range(count):
        secrets.append(random_secret(rng, secrets))
    return secrets


def assert_same(scrubber: Scrubber, reference: ReferenceScrubber, text: str) -> None:
    expected = reference.scrub(text)
    assert scrubber._scrub(text, scrubber._walk) == expected, text
    assert scrubber._scrub(text, scrubber._current()) == expected, text
    assert scrubber.scrub(text) == expected, text


def test_forms_are_unchanged() -> None:
    rng = random.Random(0)
    secrets = random_secrets(rng, 3000)
    secrets += ["", "a", "ab", "a/b c", "%41", "a+b", 'q"\\/', "<&>'", "\U0001f600" * 3]
    secrets += ["\x7f\x00\x1f", "é" * 5, "\U0001d518" * 4]
    for at, secret in enumerate(secrets):
        assert forms_of(secret) == reference_forms_of(secret), secret
        if at % 4 == 0 or at >= 3000:  # the reference normalises slowly
            assert normal_forms_of(secret) == reference_normal_forms_of(secret)[0], secret
    for bad in ("x\udc80yz", "\ud800abc"):  # a lone surrogate has no UTF-8: both refuse it
        with pytest.raises(UnicodeEncodeError):
            forms_of(bad)
        with pytest.raises(UnicodeEncodeError):
            reference_forms_of(bad)


def test_the_shortcut_for_simple_ascii_secrets_normalises_as_the_patterns_do() -> None:
    """`_normal_forms` told which forms are base64 (`_spellings`) skips its
    patterns for a printable ASCII secret without a space, `\\`, `&` or `%`:
    the same result as with them, for random secrets and the edge cases."""
    rng = random.Random(7)
    secrets = random_secrets(rng, 2000)
    secrets += ["".join(rng.choices(string.printable, k=rng.randint(8, 40))) for _ in range(2000)]
    secrets += [
        "abcdefgh",
        "ABCD+/==xyz",
        "a/b/c/d/e/f",
        "q\"uote'me<>",
        "tab\there!",
        "x\x7fxxxxxxx",
        "&amp;amp;amp",
        "50%25%25%25",
        "back\\slash\\",
        "two  spaces here",
    ]
    shortcut = 0
    for secret in secrets:
        forms, base64 = _spellings(secret)
        fast = _normal_forms(secret, forms, base64)
        assert fast == _normal_forms(secret, forms), secret
        shortcut += secret.isascii() and secret.isprintable() and not set(secret) & set(" \\&%")
    assert shortcut > 1000  # the shortcut was taken, often


@pytest.mark.parametrize("seed", range(30))
def test_every_way_finds_what_the_reference_finds(seed: int) -> None:
    rng = random.Random(seed)
    secrets = random_secrets(rng, rng.randint(1, 30))
    scrubber = Scrubber(secrets)
    reference = ReferenceScrubber(secrets, forms=forms_of)
    large = scrubber._rebuild_size() + 1  # `scrub` rebuilds for it
    for size in [0, 3, 8, 40, 200, 1_000, 5_000, large, 2 * large]:
        assert_same(scrubber, reference, random_text(rng, secrets, size))


def test_texts_of_many_finds_across_many_blocks() -> None:
    # Many spans, spaced ones among them, over a text of hundreds of the blocks
    # that map positions back from the text without its whitespace.
    rng = random.Random(100)
    secrets = [s for s in random_secrets(rng, 40) if len(s) >= 8] + ["pass word secret 42"]
    scrubber = Scrubber(secrets)
    reference = ReferenceScrubber(secrets, forms=forms_of)
    parts = []
    for _ in range(3000):
        parts += [rng.choice(NOISE), echo(rng, rng.choice(secrets)), rng.choice(WHITESPACE)]
    text = "".join(parts)
    assert len(text) > 50_000
    assert_same(scrubber, reference, text)
    assert scrubber.scrub(text).count(REDACTED) > 1000


def test_secrets_added_between_scrubs_are_found_and_small_texts_never_rebuild() -> None:
    rng = random.Random(7)
    scrubber, reference = Scrubber(), ReferenceScrubber(forms=forms_of)
    secrets: list[str] = []
    for round_ in range(40):
        secret = random_secret(rng, secrets)
        secrets.append(secret)
        scrubber.add(secret)
        reference.add(secret)
        built, rebuild = scrubber._automaton, scrubber._rebuild_size()
        small = random_text(rng, secrets, rebuild // 4)
        assert scrubber.scrub(small) == reference.scrub(small)
        assert scrubber._automaton is built  # stale: walked, not rebuilt for a small text
        if round_ % 5 == 4:  # a large text after the adds: rebuilt, and current
            large = random_text(rng, secrets, rebuild + 1)
            assert scrubber.scrub(large) == reference.scrub(large)
            assert scrubber._automaton is not None
            assert scrubber._automaton[0] == len(scrubber._forms)
            small = random_text(rng, secrets, rebuild // 4)
            assert scrubber.scrub(small) == reference.scrub(small)  # by the automaton


def test_a_stream_of_walked_texts_rebuilds_once_it_has_paid_for_it() -> None:
    rng = random.Random(9)
    secrets = random_secrets(rng, 20)
    scrubber, reference = Scrubber(secrets), ReferenceScrubber(secrets, forms=forms_of)
    rebuild = scrubber._rebuild_size()
    walked: list[str] = []  # texts that add up to less than a rebuild's worth
    while True:
        text = random_text(rng, secrets, rebuild // 10)
        if sum(map(len, walked)) + len(text) >= rebuild:
            break
        walked.append(text)
    for small in walked:
        assert scrubber.scrub(small) == reference.scrub(small)
    assert scrubber._automaton is None
    assert scrubber.scrub(text) == reference.scrub(text)  # the one that pays: rebuilt
    assert scrubber._automaton is not None
    secret = random_secret(rng, secrets)
    scrubber.add(secret)
    reference.add(secret)
    built = scrubber._automaton
    for small in walked:  # an add starts the count again
        assert scrubber.scrub(small) == reference.scrub(small)
    assert scrubber._automaton is built


def test_a_scrubber_of_no_secret() -> None:
    scrubber = Scrubber()
    text = "nothing to hide " * 1_000
    assert scrubber.scrub(text) == text
    assert scrubber._scrub(text, scrubber._current()) == text  # the walk: no key to build from
    assert scrubber._automaton is None


def test_a_scrub_never_misses_a_secret_added_before_it() -> None:
    # One thread adds secrets while others scrub large texts holding the ones
    # added so far: an automaton built before an add must never be used after it.
    rng = random.Random(11)
    secrets = ["".join(rng.choices(string.ascii_letters, k=24)) for _ in range(300)]
    filler = "tenant update senderName -> Acme\n" * 2_000
    scrubber = Scrubber()
    added: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def scrub_forever() -> None:
        while not stop.is_set():
            known = list(added)  # every one of these was added before this scrub
            text = filler + " ".join(known) + filler
            result = scrubber.scrub(text)
            failures.extend(secret for secret in known if secret in result)

    threads = [threading.Thread(target=scrub_forever) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for secret in secrets:
            scrubber.add(secret)
            added.append(secret)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures


def test_strip_removes_exactly_whitespace_and_ignored_characters() -> None:
    """`_strip` (str.split, then a pattern) removes what `\\s` (the re module)
    and IGNORED match, on every code point, lone surrogates included."""
    import re
    import sys

    from reconciler.scrub import _strip

    every = "".join(map(chr, range(sys.maxunicode + 1)))
    assert _strip(every) == re.sub(f"[\\s{IGNORED}]+", "", every)
    assert _strip("a \t\n\u3000b\x1c\x1fc\x85\u2028d\u200b\xad\U000e0041e") == "abcde"


def test_uncovered_finds_whitespace_and_ignored_characters_as_the_pattern_does() -> None:
    """`_uncovered` (no pattern for ASCII) says what `[\\s` IGNORED `]` says, for
    a secret of every code point below 0x3000 around a plain one."""
    import re

    from reconciler.scrub import _uncovered

    pattern = re.compile(f"[\\s{IGNORED}]")
    for code in range(0x3001):
        for secret in (chr(code), f"ab{chr(code)}cd", "abcd"):
            assert _uncovered(secret) == (pattern.search(secret) is not None), hex(code)


@pytest.mark.parametrize("seed", range(10))
def test_normalise_agrees_with_the_reference_character_by_character(seed: int) -> None:
    rng = random.Random(1000 + seed)
    secrets = random_secrets(rng, 10)
    for _ in range(200):
        text = random_text(rng, secrets, rng.randint(0, 120))
        normal, origins = reference_normalise(text)
        mine = normalise(text)
        assert mine.text == normal, text
        if normal:
            spans = [(a, b) for a in range(len(normal)) for b in (a + 1, len(normal))]
            spans = [(a, b) for a, b in spans if a < b][:50]
            expected = [(origins[a][0], origins[b - 1][1] + 1) for a, b in spans]
            assert mine.origins(text, spans) == expected, text
