"""The scrubber against every spelling the hostile sandbox uses, and its limits."""

from __future__ import annotations

import base64
import secrets
import time

import pytest
from redteam_checks import leaks

from reconciler.sandbox.hostile import echo_forms
from reconciler.scrub import FRAGMENT, REDACTED, Scrubber, reduce_unresolved

SECRETS = [
    'S3cr3t/p@ss+w0 rd"q\\%2F&=x<y>',
    "sbx-admin-" + "0123456789abcdef" * 2,
    "pässwörd-ünïcode-42",
    "tab\tand space secret",
    "short8ch",
]


@pytest.mark.parametrize("secret", SECRETS)
def test_every_echoed_spelling_is_scrubbed(secret: str) -> None:
    scrub = Scrubber([secret]).scrub
    for form in echo_forms(secret):
        if form.startswith("first half") and len(secret) // 2 < FRAGMENT:
            continue  # pieces shorter than FRAGMENT are not caught (documented)
        text = scrub(f"Verify failed: {form} (try again)")
        assert REDACTED in text, form
        assert not leaks(text, [secret]), (form, text)
        assert text.startswith("Verify failed: ") and text.endswith(" (try again)")


def test_a_secret_inside_a_larger_base64_blob_is_found_at_every_alignment() -> None:
    secret = "sbx-oauth-00d08f0ed70e4cb1dc10"
    scrub = Scrubber([secret]).scrub
    for prefix in (b"", b"a", b"ab", b"abc"):
        for suffix in (b"", b"x", b"xy"):
            blob = base64.b64encode(prefix + secret.encode() + suffix).decode()
            assert not leaks(scrub(blob), [secret]), (prefix, suffix)


def test_a_secret_split_in_two_pieces_of_fragment_characters_is_caught() -> None:
    secret = secrets.token_urlsafe(2 * FRAGMENT)[: 2 * FRAGMENT]
    text = Scrubber([secret]).scrub(f"part one {secret[:FRAGMENT]} ... {secret[FRAGMENT:]} end")
    assert secret[:FRAGMENT] not in text and secret[FRAGMENT:] not in text


def test_what_is_not_caught_is_what_the_documentation_says() -> None:
    secret = secrets.token_urlsafe(24)
    scrub = Scrubber([secret]).scrub
    assert secret.encode().hex() in scrub(secret.encode().hex())  # hex: not caught
    piece = secret[: FRAGMENT - 3]
    assert piece in scrub(f"a piece {piece} alone")  # pieces under FRAGMENT: kept
    assert Scrubber(["ab"]).scrub("ab") == "ab"  # under MIN_SECRET: not looked for


def test_ordinary_text_is_left_alone() -> None:
    scrub = Scrubber(SECRETS).scrub
    text = "tenant-001 ~ update senderName: 'Acme' -> 'Acme Analytics' (passwordExists)"
    assert scrub(text) == text


def test_ten_thousand_tenants_scrub_in_linear_time() -> None:
    scrubber = Scrubber()
    started = time.perf_counter()
    for _ in range(20_000):  # an API key and an e-mail password per tenant
        scrubber.add(secrets.token_urlsafe(30))
    added = time.perf_counter() - started
    text = "tenant-0001 ~ update senderName: 'Acme' -> 'Acme Analytics'\n" * 10_000
    started = time.perf_counter()
    assert scrubber.scrub(text) == text
    scrubbed = time.perf_counter() - started
    # Bounds far above what this takes (bench/scrubber.py measures it): they
    # catch a quadratic slip, not a slow machine.
    assert added < 10 and scrubbed < 5, (added, scrubbed)


def test_unresolved_server_text_is_bounded_and_loses_its_tokens() -> None:
    text = reduce_unresolved("bad\x1b]52;c;x\x07 login for Xk9sd8f7Sd6f5sd4f3sd2 " + "y" * 300)
    assert "Xk9sd8f7Sd6f5sd4f3sd2" not in text and "(token hidden)" in text
    assert "\x1b" not in text and "\x07" not in text
    assert len(text) <= 160 and text.endswith("...")
    assert reduce_unresolved("authentication failed") == "authentication failed"
