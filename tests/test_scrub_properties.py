"""Properties of the scrubber over random secrets in random spellings: a
secret of NORMAL_MIN characters or more, spelt any way normalisation knows and
put among other text, leaves none of itself in the result; and what the
scrubber is not given is never touched."""

from __future__ import annotations

import html
import json
import unicodedata
from collections.abc import Callable
from urllib.parse import quote

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scrub_reference import reference_normalise

from reconciler.scrub import KEY, NORMAL_MIN, REDACTED, Scrubber

# Letters whose case and compatibility forms fold back to them (most do; the
# few that do not, like the dotless i, are not the same secret once re-cased).
_ALPHABET = st.characters(
    codec="utf-8",
    categories=("Lu", "Ll", "Nd", "Po", "Sm", "Pd", "Lo", "So"),
).filter(lambda c: _fold(c.upper()) == _fold(c) == _fold(c.lower()))
SECRETS = st.text(_ALPHABET, min_size=NORMAL_MIN, max_size=40).filter(
    lambda s: len(_fold(s)) >= KEY and _fold(s) not in _fold(REDACTED)
)
# Text around the secret that cannot join an escape with it.
AROUND = st.text(st.sampled_from(list(" .:-=>tenantupdate\n")), max_size=20)
INVISIBLE = ["\u200b", "\xad", "\u2060", "\ufeff", "\u202e", "\U000e0041", "\u200d"]


def _fold(text: str) -> str:
    return reference_normalise(text)[0]


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _partial(text: str, escape: Callable[[str], str], draw: st.DrawFn) -> str:
    chosen = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(escape(c) if pick else c for c, pick in zip(text, chosen, strict=True))


@st.composite
def spellings(draw: st.DrawFn, secret: str) -> str:
    how = draw(st.integers(0, 13))
    if how == 0:
        return secret.upper()
    if how == 1:
        return secret.lower()
    if how == 2:
        return unicodedata.normalize(draw(st.sampled_from(["NFD", "NFKC", "NFKD"])), secret)
    if how == 3:
        return _fullwidth(secret)
    if how == 4:  # JSON \uXXXX escapes of either case, for some characters
        upper = draw(st.booleans())
        return _partial(
            secret,
            lambda c: (
                json.dumps(c)[1:-1] if ord(c) > 0xFFFF else f"\\u{ord(c):04{'X' if upper else 'x'}}"
            ),
            draw,
        )
    if how == 5:  # HTML numeric character references, decimal or hex
        hexa = draw(st.booleans())
        return _partial(secret, lambda c: f"&#x{ord(c):X};" if hexa else f"&#{ord(c)};", draw)
    if how == 6:
        return html.escape(secret)
    if how == 7:  # invisible characters between the characters
        mark = draw(st.sampled_from(INVISIBLE))
        return mark.join(secret)
    if how == 8:
        raw = secret.encode()
        return draw(st.sampled_from([raw.hex(), raw.hex().upper()]))
    if how == 9:
        return quote(secret, safe="").lower()
    if how == 10:  # percent escapes for some characters, of either case
        return _partial(secret, lambda c: quote(c, safe="").lower(), draw)
    if how == 11:
        return " ".join(secret)
    if how == 12:  # several at once: upper case, fullwidth, zero-width spaces
        return "\u200b".join(_fullwidth(secret.upper()))
    return secret


@settings(max_examples=300, deadline=None)
@given(st.data(), SECRETS, AROUND, AROUND)
def test_no_spelling_of_a_secret_survives(
    data: st.DataObject, secret: str, before: str, after: str
) -> None:
    spelt = data.draw(spellings(secret))
    text = before + spelt + after
    scrubbed = Scrubber([secret]).scrub(text)
    assert REDACTED in scrubbed
    assert secret not in scrubbed
    assert _fold(secret) not in _fold(scrubbed), (text, scrubbed)


@settings(max_examples=200, deadline=None)
@given(SECRETS, st.text(max_size=60))
def test_text_without_the_secret_is_left_alone(secret: str, text: str) -> None:
    # Text that does not hold the secret in any spelling is returned as it is.
    assume(_fold(secret) not in _fold(text))
    assume(secret.encode().hex() not in text.lower())
    assert Scrubber([secret]).scrub(text) == text
