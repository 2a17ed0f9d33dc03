from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.domain.example import Example, Message, PiiFinding, Role
from workbench.domain.pii import (
    PLACEHOLDERS,
    PiiKind,
    find_pii,
    find_pii_in_text,
    highlight_segments,
    scrub_example,
    scrub_text,
)
from workbench.errors import WorkbenchError
from workbench.settings import PHONE_REGIONS, SettingError, phone_regions

# Published test values (Stripe/PayPal test cards, AWS documentation keys, the SSA's Woolworth SSN)
# or made-up strings with the right shape; none belongs to anyone.
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GOOGLE_KEY = "AIzaSyD" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6"  # 39 characters, as Google issues them


def kinds_and_texts(text: str) -> list[tuple[str, str]]:
    return [(f.kind, f.text) for f in find_pii_in_text(text)]


@pytest.mark.parametrize(
    ("text", "kind", "found"),
    [
        ("write to jane.doe@example.com today", "email", "jane.doe@example.com"),
        ("<john.doe+tag@mail.example.co.uk>", "email", "john.doe+tag@mail.example.co.uk"),
        ("mailto:a_b%c@sub-domain.example.io.", "email", "a_b%c@sub-domain.example.io"),
        ("(ops@EXAMPLE.ORG)", "email", "ops@EXAMPLE.ORG"),
        ("ask see.me@x.org", "email", "see.me@x.org"),
        ("wait...me@x.org", "email", "me@x.org"),
        ("call (415) 555-2671 now", "phone", "(415) 555-2671"),
        ("call 415-555-2671.", "phone", "415-555-2671"),
        ("call 415.555.2671", "phone", "415.555.2671"),
        ("my number is 2125551234", "phone", "2125551234"),
        ("+1 415 555 2671", "phone", "+1 415 555 2671"),
        ("London: +44 20 7946 0958", "phone", "+44 20 7946 0958"),
        ("Paris +33 1 42 68 53 00", "phone", "+33 1 42 68 53 00"),
        ("Mumbai +91 98765 43210", "phone", "+91 98765 43210"),
        ("card 4111 1111 1111 1111 exp 12/26", "credit_card", "4111 1111 1111 1111"),
        ("card 4111-1111-1111-1111", "credit_card", "4111-1111-1111-1111"),
        ("visa 4012888888881881", "credit_card", "4012888888881881"),
        ("mc 5555555555554444", "credit_card", "5555555555554444"),
        ("amex 3782 822463 10005", "credit_card", "3782 822463 10005"),
        ("paid 12 4111 1111 1111 1111", "credit_card", "4111 1111 1111 1111"),
        ("ssn 123-45-6789", "ssn", "123-45-6789"),
        ("ssn: 078-05-1120.", "ssn", "078-05-1120"),
        ("ssn 123 45 6789", "ssn", "123 45 6789"),
        ("host 192.168.1.1 is down", "ip_address", "192.168.1.1"),
        ("from 10.0.0.255.", "ip_address", "10.0.0.255"),
        ("ip=255.255.255.0,", "ip_address", "255.255.255.0"),
        ("v6 2001:db8::ff00:42:8329 up", "ip_address", "2001:db8::ff00:42:8329"),
        ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "ip_address", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
        ("at 2001:db8:0:1::2: ok", "ip_address", "2001:db8:0:1::2"),
        ("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "aws_key", "AKIAIOSFODNN7EXAMPLE"),
        ("temp ASIAY34FZKBOKMUTVV7A", "aws_key", "ASIAY34FZKBOKMUTVV7A"),
        (f"aws_secret_access_key = {AWS_SECRET}", "aws_key", AWS_SECRET),
        (f"the secret is '{AWS_SECRET}'", "aws_key", AWS_SECRET),
        (
            "OPENAI_API_KEY=sk-proj-abc123DEF456ghi789JKL012mno",
            "api_key",
            "sk-proj-abc123DEF456ghi789JKL012mno",
        ),
        ("key sk-" + "a1" * 24, "api_key", "sk-" + "a1" * 24),
        ("sk-ant-api03-abcdefghij0123456789ABCDEFG", "api_key", "sk-ant-api03-abcdefghij0123456789ABCDEFG"),
        ("token ghp_" + "aB3" * 12, "api_key", "ghp_" + "aB3" * 12),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "api_key",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
        ),
        ("SLACK=xoxb-123456789012-abcdefABCDEF", "api_key", "xoxb-123456789012-abcdefABCDEF"),
        (f"maps key {GOOGLE_KEY}", "api_key", GOOGLE_KEY),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "api_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        ("restricted rk_live_abcdefghij0123456789", "api_key", "rk_live_abcdefghij0123456789"),
    ],
)
def test_finds_each_kind(text: str, kind: str, found: str) -> None:
    assert kinds_and_texts(text) == [(kind, found)]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("not an address: foo@bar", "email"),
        ("ping @user or @here", "email"),
        ("a@b.c is too short a TLD", "email"),
        ("john.@example.com", "email"),
        ("too long a local part " + "a" * 65 + "@example.com", "email"),
        ("In 2024 we sold 3 units", "phone"),
        ("Price $1,234,567.89 each", "phone"),
        ("order #4155552671 shipped", "phone"),
        ("Order number: 2125551234", "phone"),
        ("invoice no. 2125551234", "phone"),
        ("tracking 2125551234", "phone"),
        ("on 2024-01-15 and 12/25/2024", "phone"),
        ("at 10:30:45 on 2024-01-15T10:30:00Z", "phone"),
        ("isbn 978-3-16-148410-0", "phone"),
        ("epoch 1700000000", "phone"),
        ("local 555-1234", "phone"),
        ("code abc4155552671", "phone"),
        ("luhn fails 4111 1111 1111 1112", "credit_card"),
        ("luhn fails 4111111111111112", "credit_card"),
        ("too short 411111111111", "credit_card"),
        ("too long 41111111111111111111", "credit_card"),
        ("zeros 0000000000000000", "credit_card"),
        ("millis 1700000000000", "credit_card"),
        ("digits 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5", "credit_card"),
        ("glued x4111111111111111", "credit_card"),
        ("area 999-12-3456", "ssn"),
        ("area 000-12-3456", "ssn"),
        ("area 666-12-3456", "ssn"),
        ("group 123-00-4567", "ssn"),
        ("serial 123-45-0000", "ssn"),
        ("mixed 123-45 6789", "ssn"),
        ("longer 1123-45-6789", "ssn"),
        ("part 123-45-67890", "ssn"),
        ("octet 256.1.1.1", "ip_address"),
        ("five parts 1.2.3.4.5", "ip_address"),
        ("leading zero 01.2.3.4", "ip_address"),
        ("version 1.2.3", "ip_address"),
        ("pi 3.14159", "ip_address"),
        ("python a[1::2]", "ip_address"),
        ("c++ std::vector<int>", "ip_address"),
        ("time 12:30:45", "ip_address"),
        ("mac 00:1A:2B:3C:4D:5E", "ip_address"),
        ("id AKIAIOSFODNN7EXAMPL", "aws_key"),
        ("glued XAKIAIOSFODNN7EXAMPLE", "aws_key"),
        (f"no context here {AWS_SECRET}", "aws_key"),
        ("aws sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709", "aws_key"),
        ("sk-learn-is-a-great-library-for-ml", "api_key"),
        ("sk-short1", "api_key"),
        ("task-abcdefghijklmnopqrstuvwxyz0123", "api_key"),
        ("ghp_tooShort123", "api_key"),
        ("pk_live_abcdefghij0123456789", "api_key"),
    ],
)
def test_ignores_lookalikes(text: str, kind: str) -> None:
    assert kind not in [f.kind for f in find_pii_in_text(text)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "The quick brown fox jumps over the lazy dog.",
        "In 2024 we shipped 3 releases and fixed 12 bugs; see section 4.2.",
        "Total: $1,299.00 (tax 8.25%) due 03/15/2025 at 10:30.",
        "def f(x):\n    return x[1::2]  # std::vector",
        "Use model gpt-4o-mini-2024-07-18 with temperature 0.7.",
    ],
)
def test_clean_text_has_no_findings(text: str) -> None:
    assert find_pii_in_text(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The card contains a phone-shaped run; the Luhn-checked card is the more specific claim.
        ("pay 4111 1111 1111 1111", [("credit_card", "4111 1111 1111 1111")]),
        # Digits inside an email stay part of the email.
        ("4155552671@txt.example.net", [("email", "4155552671@txt.example.net")]),
        (
            "a@b.io 123-45-6789 10.0.0.1",
            [("email", "a@b.io"), ("ssn", "123-45-6789"), ("ip_address", "10.0.0.1")],
        ),
    ],
)
def test_overlaps_keep_the_more_specific_finding(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds_and_texts(text) == expected


def test_findings_are_sorted_located_and_tagged() -> None:
    text = "ip 10.0.0.1, mail a@b.io, call (415) 555-2671, ssn 123-45-6789"
    findings = find_pii_in_text(text, where="messages[3]")
    assert [f.kind for f in findings] == ["ip_address", "email", "phone", "ssn"]
    assert all(text[f.start : f.end] == f.text and f.where == "messages[3]" for f in findings)
    assert [f.start for f in findings] == sorted(f.start for f in findings)


def test_find_pii_tags_each_part() -> None:
    example = Example(
        system="Escalate to ops@example.com",
        messages=[
            Message(role=Role.USER, content="Hi, no secrets here."),
            Message(role=Role.ASSISTANT, content="Call (415) 555-2671."),
        ],
    )
    assert [(f.where, f.kind) for f in find_pii(example)] == [("system", "email"), ("messages[1]", "phone")]


def test_find_pii_without_system_numbers_turns_from_zero() -> None:
    example = Example(messages=[Message(role=Role.USER, content="my ip is 8.8.8.8")])
    assert [(f.where, f.text) for f in find_pii(example)] == [("messages[0]", "8.8.8.8")]


def test_placeholders_cover_every_kind() -> None:
    assert set(PLACEHOLDERS) == {k.value for k in PiiKind}
    assert PLACEHOLDERS["credit_card"] == "[CREDIT_CARD]"
    assert PiiKind.IP_ADDRESS == "ip_address"


def test_scrub_text_replaces_each_finding() -> None:
    text = "Mail a@b.io or call (415) 555-2671; card 4111 1111 1111 1111; key AKIAIOSFODNN7EXAMPLE."
    assert scrub_text(text) == "Mail [EMAIL] or call [PHONE]; card [CREDIT_CARD]; key [AWS_KEY]."


def test_scrub_text_uses_the_findings_it_is_given() -> None:
    text = "a@b.io and c@d.io"
    only_first = [PiiFinding(kind="email", where="text", start=0, end=6, text="a@b.io")]
    assert scrub_text(text, only_first) == "[EMAIL] and c@d.io"
    assert scrub_text(text, []) == text


def test_scrub_text_rescans_when_findings_are_stale() -> None:
    # Offsets recorded before "Hello, " was prepended: replacing them blindly would cut into "Hello".
    stale = find_pii_in_text("a@b.io")
    assert scrub_text("Hello, a@b.io", stale) == "Hello, [EMAIL]"


def test_scrub_text_rescans_what_a_placeholder_uncovers() -> None:
    # The email's local part runs into the Stripe key, which makes it too long to be an address;
    # once the key is a placeholder the rest stands on its own and must be scrubbed too.
    text = "sk_live_4eC39HqLyjWDarjtT1zdp7dcsk-proj-abc123DEF456ghi789JKL012mnoa@b.io"
    assert scrub_text(text) == "[API_KEY][EMAIL]"


def test_scrub_text_merges_overlapping_findings() -> None:
    text = "xx 123456789 yy"
    findings = [
        PiiFinding(kind="phone", where="text", start=3, end=9, text="123456"),
        PiiFinding(kind="ssn", where="text", start=6, end=12, text="456789"),
    ]
    assert scrub_text(text, findings) == "xx [PHONE] yy"


def test_scrub_example_scrubs_every_part_and_keeps_the_rest() -> None:
    example = Example(
        id=7,
        dataset_id=2,
        system="Escalate to ops@example.com",
        messages=[
            Message(role=Role.USER, content="I'm at 10.0.0.1"),
            Message(role=Role.ASSISTANT, content="Noted.", weight=0.0),
        ],
        metadata={"source": "tickets"},
        tags=["support"],
        rating=4,
        pii=find_pii_in_text("ops@example.com", "system"),
    )
    scrubbed = scrub_example(example)
    assert scrubbed.system == "Escalate to [EMAIL]"
    assert [(m.role, m.content, m.weight) for m in scrubbed.messages] == [
        (Role.USER, "I'm at [IP_ADDRESS]", None),
        (Role.ASSISTANT, "Noted.", 0.0),
    ]
    assert scrubbed.pii == []
    assert (scrubbed.id, scrubbed.dataset_id, scrubbed.metadata, scrubbed.tags, scrubbed.rating) == (
        7,
        2,
        {"source": "tickets"},
        ["support"],
        4,
    )
    assert example.system == "Escalate to ops@example.com"


def test_scrub_example_keeps_a_missing_system_prompt() -> None:
    example = Example(messages=[Message(role=Role.USER, content="hi")])
    assert scrub_example(example).system is None


def test_scrub_example_copies_a_clean_example() -> None:
    example = Example(
        system="Be brief.", messages=[Message(role=Role.USER, content="hi", weight=1.0)], tags=["x"]
    )
    scrubbed = scrub_example(example)
    assert scrubbed.model_dump() == example.model_dump()
    scrubbed.messages.append(Message(role=Role.ASSISTANT, content="added"))
    assert len(example.messages) == 1


def test_highlight_segments_marks_findings() -> None:
    text = "mail a@b.io or 10.0.0.1"
    assert highlight_segments(text, find_pii_in_text(text)) == [
        ("mail ", None),
        ("a@b.io", "email"),
        (" or ", None),
        ("10.0.0.1", "ip_address"),
    ]


@pytest.mark.parametrize(
    ("text", "findings", "expected"),
    [
        ("", [], []),
        ("plain", [], [("plain", None)]),
        (
            "a@b.io",
            [PiiFinding(kind="email", where="t", start=0, end=6, text="a@b.io")],
            [("a@b.io", "email")],
        ),
        # Stale or out-of-range findings highlight nothing rather than the wrong characters.
        ("hello", [PiiFinding(kind="email", where="t", start=0, end=6, text="a@b.io")], [("hello", None)]),
        ("hello", [PiiFinding(kind="email", where="t", start=1, end=3, text="xx")], [("hello", None)]),
    ],
)
def test_highlight_segments_edge_cases(
    text: str, findings: list[PiiFinding], expected: list[tuple[str, str | None]]
) -> None:
    assert highlight_segments(text, findings) == expected


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "text",
    [
        "a" * 100_000 + "@",
        "@" + "a." * 50_000,
        "a@" * 50_000,
        "1 " * 50_000,
        "1-" * 50_000,
        "1." * 50_000,
        ":" * 100_000,
        "a:" * 50_000,
        "sk-" + "a" * 100_000,
        "secret " + "A1b/" * 25_000,
        "4111 " * 20_000,
        "1" * 100_000,
        "2" * 100_000,
        "212-555-1234 " * 2_000,
        "+1" * 50_000,
        "(415) " * 20_000,
        "0 " * 50_000,
        "(0) " * 20_000,
        "020 7946 0958 " * 2_000,
        "10.0.0.1, " * 10_000,
        "version " * 10_000 + "1.2.3.4",
        "::ffff:1.2.3.4" * 5_000,
        "fe80::1%" * 10_000,
    ],
)
def test_pathological_inputs_finish(text: str) -> None:
    findings = find_pii_in_text(text)
    assert "".join(s for s, _ in highlight_segments(text, findings)) == text


# Fragments that look like PII (or almost do), so generated text hits the detectors' edges far more
# often than random characters would.
FRAGMENTS = [
    "a@b.io",
    "jane.doe@example.com",
    "@",
    ".",
    "-",
    " ",
    ":",
    "::",
    "(415) 555-2671",
    "+44 20 7946 0958",
    "2125551234",
    "4111 1111 1111 1111",
    "4111111111111111",
    "123-45-6789",
    "999-12-3456",
    "192.168.1.1",
    "256.1.1.1",
    "2001:db8::1:2",
    "AKIAIOSFODNN7EXAMPLE",
    "aws secret ",
    AWS_SECRET,
    "sk-proj-abc123DEF456ghi789JKL012mno",
    "ghp_" + "aB3" * 12,
    "xoxb-123456789012-abc",
    GOOGLE_KEY,
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "2024",
    "order #",
    "[EMAIL]",
]
PII_LIKE = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6), st.sampled_from("0123456789")),
    max_size=25,
).map("".join)

HOSTILE = [
    "<script>alert('a@b.io')</script>",
    "'; DROP TABLE examples; -- 123-45-6789",
    "\x00\x01\x1b[31m4111 1111 1111 1111\x1b[0m\x7f",
    "\u202e192.168.1.1\u202c \u200f(415) 555-2671\u200f",
    "📞 (415) 555-2671 📧 a@b.io 🔑 sk-proj-abc123DEF456ghi789JKL012mno",
    "\ufeffsecret\r\n" + AWS_SECRET + "\u2028",
    "٤١١١ ١١١١ ١١١١ ١١١١",
    "４１１１１１１１１１１１１１１１",
    "\ud800 lone surrogate a@b.io",
]


def check_invariants(text: str) -> None:
    findings = find_pii_in_text(text)
    previous_end = 0
    for finding in findings:
        assert previous_end <= finding.start < finding.end <= len(text)
        assert text[finding.start : finding.end] == finding.text
        assert finding.kind in PLACEHOLDERS
        previous_end = finding.end
    assert "".join(s for s, _ in highlight_segments(text, findings)) == text
    assert find_pii_in_text(scrub_text(text)) == []


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_breaks_anything(text: str) -> None:
    check_invariants(text)


@settings(max_examples=500, deadline=None)
@given(PII_LIKE)
def test_pii_like_text_keeps_the_invariants(text: str) -> None:
    check_invariants(text)


@settings(deadline=None)
@given(st.lists(st.sampled_from(HOSTILE + FRAGMENTS), max_size=8).map("\n".join))
def test_hostile_text_keeps_the_invariants(text: str) -> None:
    check_invariants(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(PII_LIKE, min_size=1, max_size=4), st.one_of(st.none(), PII_LIKE))
def test_find_pii_matches_scanning_each_part(turns: list[str], system: str | None) -> None:
    # find_pii skips clean examples with one check over all parts joined; it must never skip one
    # that a part-by-part scan would flag.
    example = Example(system=system, messages=[Message(role=Role.USER, content=t) for t in turns])
    expected = [f for where, text in example.parts() for f in find_pii_in_text(text, where)]
    assert find_pii(example) == expected


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_still_scrubbed(text: str) -> None:
    scrubbed = scrub_text(text)
    assert find_pii_in_text(scrubbed) == []
    assert "a@b.io" not in scrubbed
    assert "555-2671" not in scrubbed


# --------------------------------------------------------------------------- phone regions (setting)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Ring the office on 020 7946 0958.", "020 7946 0958"),
        ("mobile 07911 123456", "07911 123456"),
        ("Tel (020) 7946 0958", "(020) 7946 0958"),
        ("Telefon: 030 12345678", "030 12345678"),
        ("München 089/12345678", "089/12345678"),
        ("Handy 0171 1234567", "0171 1234567"),
        ("from Germany dial 0044 20 7946 0958", "0044 20 7946 0958"),
        ("Zentrale +49 (0)30 12345678", "+49 (0)30 12345678"),
    ],
)
def test_national_formats_of_the_default_regions_are_found(monkeypatch: pytest.MonkeyPatch, text: str, found: str) -> None:
    monkeypatch.delenv(PHONE_REGIONS, raising=False)
    assert kinds_and_texts(text) == [("phone", found)]


def test_the_regions_setting_decides_which_national_formats_count(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "Berlin 030 12345678, London 020 7946 0958, NYC (212) 555-1234, Paris 01 42 68 53 00"
    monkeypatch.setenv(PHONE_REGIONS, "us")
    assert [f.text for f in find_pii_in_text(text)] == ["(212) 555-1234"]
    monkeypatch.setenv(PHONE_REGIONS, " DE , FR ")
    assert [f.text for f in find_pii_in_text(text)] == ["030 12345678", "01 42 68 53 00"]
    monkeypatch.delenv(PHONE_REGIONS)
    assert [f.text for f in find_pii_in_text(text)] == ["030 12345678", "020 7946 0958", "(212) 555-1234"]
    # The argument wins over the setting; international numbers count whatever the regions.
    text = "NYC (212) 555-1234, London 020 7946 0958 or +33 1 42 68 53 01"
    assert [f.text for f in find_pii_in_text(text, regions=("GB",))] == [
        "020 7946 0958",
        "+33 1 42 68 53 01",
    ]


@pytest.mark.parametrize("value", ["US,XX", "GB;DE", "United Kingdom", ",,"])
def test_a_bad_region_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(PHONE_REGIONS, value)
    with pytest.raises(SettingError, match=f"^{PHONE_REGIONS}="):
        find_pii_in_text("call 020 7946 0958")
    assert issubclass(SettingError, WorkbenchError)


def test_phone_regions_default_and_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PHONE_REGIONS, raising=False)
    assert phone_regions() == ("US", "GB", "DE")
    monkeypatch.setenv(PHONE_REGIONS, "gb, it,GB")
    assert phone_regions() == ("GB", "IT")


# ------------------------------------------------------------------ versions, postcodes, IPv6 forms


@pytest.mark.parametrize(
    "text",
    [
        "upgrade nginx from 1.18.0.1 to 1.20.0.2",
        "tested on v2.3.4.5",
        "version 10.0.0.1 fixes it",
        "Server: nginx/1.18.0.1",
        "pip install pkg==1.2.3.4",
        "build 5.4.0.1-rc2",
        "1.2.3.4+build7 is out",
        "the 1.18.0.1 release notes",
        "see section 4.2.1.3",
    ],
)
def test_software_versions_are_not_addresses(text: str) -> None:
    assert find_pii_in_text(text) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("upgrade the firmware on 192.168.1.1", "192.168.1.1"),
        ("version check failed for host 10.0.0.7", "10.0.0.7"),
        ("curl http://10.0.0.5:8080/", "10.0.0.5"),
        ("upgrade done.\nclient 198.51.100.7 connected", "198.51.100.7"),
        ("203.0.113.42", "203.0.113.42"),
    ],
)
def test_addresses_near_version_words_are_still_addresses(text: str, found: str) -> None:
    assert kinds_and_texts(text) == [("ip_address", found)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("San Francisco, CA 94105-1234", []),
        ("ZIP 02134-1234", []),
        ("Berlin 02134-1234 Ost", []),
        ("Washington, DC 20500-0003 (202) 456-1111", [("phone", "(202) 456-1111")]),
    ],
)
def test_zip_plus_4_is_not_a_phone(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds_and_texts(text) == expected


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("at 2001:db8::1 now", "2001:db8::1"),
        ("link fe80::1%eth0 up", "fe80::1%eth0"),
        ("mapped ::ffff:192.0.2.128 seen", "::ffff:192.0.2.128"),
        ("nat64 64:ff9b::192.0.2.33", "64:ff9b::192.0.2.33"),
        ("prefix 2001:db8:: routed", "2001:db8::"),
        ("open https://[2001:db8::42]:443/", "2001:db8::42"),
        ("ends a sentence 2001:db8::7.", "2001:db8::7"),
    ],
)
def test_ipv6_compressed_zoned_and_mapped_forms(text: str, found: str) -> None:
    assert kinds_and_texts(text) == [("ip_address", found)]


@pytest.mark.parametrize(
    "text",
    ["loopback ::1", "any ::", "x[1::2]", "arr[10::3]", "Add::Bad", "at 12:30:45", "MAC 00:1A:2B:3C:4D:5E",
     "fp 16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48"],
)
def test_ipv6_lookalikes_are_not_flagged(text: str) -> None:
    assert find_pii_in_text(text) == []


# ------------------------------------------------------------------------- card-number prefix rule


def luhn_valid(digits: str) -> bool:
    total = sum(int(d) if i % 2 == 0 else (2 * int(d) if int(d) < 5 else 2 * int(d) - 9) for i, d in enumerate(reversed(digits)))
    return total % 10 == 0


@pytest.mark.parametrize(
    "number",
    ["1700000000004", "1718822400012", "7012345678901232", "8123456789012340", "9400111899223350"],
)
def test_luhn_valid_numbers_without_an_issuer_prefix_are_not_cards(number: str) -> None:
    # Millisecond timestamps (13 digits from 1...), order and tracking numbers pass Luhn one time
    # in ten; only issuer prefixes 2-6 make a card. The same digits behind a 4 would be one.
    assert luhn_valid(number)
    assert find_pii_in_text(f"id {number} logged") == []
    visa_like = "4" + number[1:]
    visa_like = next(visa_like[:-1] + d for d in "0123456789" if luhn_valid(visa_like[:-1] + d))
    assert kinds_and_texts(f"id {visa_like} logged") == [("credit_card", visa_like)]


def test_scrub_example_also_replaces_known_findings() -> None:
    known = find_pii_in_text("ring 020 7946 0958", "messages[0]", regions=("GB",))
    example = Example(messages=[Message(role=Role.USER, content="old text: ring 020 7946 0958 (or 020 7946 09581)")])
    scrubbed = scrub_example(example, also=known)
    # Replaced where it stands alone; a longer number that merely contains it is left.
    assert scrubbed.messages[0].content == "old text: ring [PHONE] (or 020 7946 09581)"


def test_a_bad_region_setting_is_one_json_error_from_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "a.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "call 020 7946 0958"}, {"role": "assistant", "content": "ok"}]}\n')
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "--db", str(tmp_path / "w.db"), "datasets", "import", str(data), "--name", "d", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, PHONE_REGIONS: "US,XX"},
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    result = json.loads(proc.stdout)
    assert result["ok"] is False and result["error"].startswith(f"{PHONE_REGIONS}='US,XX': 'XX' is not a region code")
