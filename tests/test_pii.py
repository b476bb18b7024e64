"""PII scrubbing: personal data becomes typed placeholders; numbers that merely look similar stay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluator.pii import scrub_pii

CORPUS = Path(__file__).parent / "data" / "pii_corpus.jsonl"


def corpus() -> list[dict[str, str]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("row", corpus(), ids=lambda row: row["text"][:40])
def test_realistic_answers(row: dict[str, str]) -> None:
    assert scrub_pii(row["text"]) == row["scrubbed"]


@pytest.mark.parametrize(
    ("text", "placeholder"),
    [
        ("first.last+tag@sub.example.co.uk", "[EMAIL]"),
        ("+44 20 7946 0958", "[PHONE]"),
        ("+1-202-555-0173", "[PHONE]"),
        ("+49 (0)30 1234567", "[PHONE]"),
        ("(555) 123-4567", "[PHONE]"),
        ("555.234.5678", "[PHONE]"),
        ("1-800-555-0199", "[PHONE]"),
        ("020 7946 0958", "[PHONE]"),
        ("07700 900123", "[PHONE]"),
        ("06.12.34.56.78", "[PHONE]"),
        ("0612345678", "[PHONE]"),
        ("4111111111111111", "[CARD]"),
        ("4111-1111-1111-1111", "[CARD]"),
        ("3782 822463 10005", "[CARD]"),
        ("FR76 3000 6000 0112 3456 7890 189", "[IBAN]"),
        ("NL91ABNA0417164300", "[IBAN]"),
        ("123-45-6789", "[SSN]"),
        ("8.8.8.8", "[IP]"),
        ("255.255.255.0", "[IP]"),
        ("fe80:0:0:0:202:b3ff:fe1e:8329", "[IP]"),
        ("::ffff:192.0.2.1", "[IP]"),
        ("00-1A-2B-3C-4D-5E", "[MAC]"),
        ("hf_abcdefghijklmnopqrstuvwxyzABCDEF12", "[SECRET]"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "[SECRET]"),
        ("AKIAIOSFODNN7EXAMPLE", "[SECRET]"),
        ("josé.garcía@universidad.es", "[EMAIL]"),
        ("maria (at) gmail (dot) com", "[EMAIL]"),
        ("2025550173", "[PHONE]"),
        ("0049 30 12345678", "[PHONE]"),
        ("4111.1111.1111.1111", "[CARD]"),
        ("gb82 west 1234 5698 7654 32", "[IBAN]"),
        ("123 45 6789", "[SSN]"),
        ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[SECRET]"),
        ("AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", "[SECRET]"),
        ("xoxb-123456789012-1234567890123-AbCdEfGhIjKl", "[SECRET]"),
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "[SECRET]"),
        ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----", "[SECRET]"),
    ],
)
def test_each_kind_is_replaced_by_its_placeholder_in_a_sentence(text: str, placeholder: str) -> None:
    assert scrub_pii(f"Mine is {text}. Thanks!") == f"Mine is {placeholder}. Thanks!"
    assert scrub_pii(text) == placeholder


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # fails the Luhn check
        "1234 5678 9012 3456",  # no issuer starts with 1
        "DE89 3704 0044 0532 0130 01",  # IBAN checksum wrong
        "999.10.10.10",  # octet out of range
        "1.2.3.4.5",  # five parts: a version, not an address
        "version 1.2.3.4",
        "v10.0.0.1",
        "666-12-3456",  # SSN area 666 is never issued
        "3.11.7",
        "v2.4.0",
        "2024-05-01",
        "01/05/2024",
        "01.05.2024",
        "12:30:45",
        "1998",
        "8/10",
        "7.5",
        "0.0001",
        "1e-5",
        "3e-4",
        "gpt-4o-mini",
        "Llama-3.1-8B",
        "batch_size=32",
        "lr=0.001",
        "+15%",
        "x[::2]",
        "a::b",
        "100-200",
        "1,000,000",
        "1 000 000",
        "12345678",
        "978-3-16-148410-0",
        "user@localhost",
        "4294967296",  # 2**32: not a valid North American number
        "1700000000",  # a Unix timestamp
        "3f786850e387550fdab836ed7e6dc881de23001b",  # a git hash
        "the password is hashed",
        "look at the data",
        "123 of 456",
        "",
    ],
)
def test_near_misses_are_left_alone(text: str) -> None:
    assert scrub_pii(text) == text
    assert scrub_pii(f"({text})") == f"({text})"


def test_scrubbing_is_idempotent_and_keeps_surrounding_text() -> None:
    text = "Mail a.b@c.de, call +33 6 12 34 56 78, card 5555 5555 5555 4444, host 10.1.2.3 — thanks, 8/10!"
    once = scrub_pii(text)
    assert once == "Mail [EMAIL], call [PHONE], card [CARD], host [IP] — thanks, 8/10!"
    assert scrub_pii(once) == once


def test_text_without_digits_or_at_sign_is_returned_as_is() -> None:
    text = "Regularisation adds a penalty on the weights to the loss. " * 50
    assert scrub_pii(text) is text
