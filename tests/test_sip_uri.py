"""SIP, SIPS and tel URIs: parsing, escaping, IPv6 references and RFC 3261 19.1.4 comparison."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tipring.sip import AbsoluteUri, Params, SipParseError, SipUri, TelUri, parse_uri


def test_full_sip_uri() -> None:
    uri = parse_uri("sips:alice:secret@Atlanta.example.com:5061;transport=tls;lr?subject=project%20x&priority=urgent")
    assert isinstance(uri, SipUri)
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips", "alice", "secret", "Atlanta.example.com", 5061,
    )
    assert uri.transport == "tls" and uri.lr and uri.maddr is None
    assert uri.headers == [("subject", "project x"), ("priority", "urgent")]


def test_scheme_is_case_insensitive() -> None:
    assert parse_uri("SIP:bob@example.com").scheme == "sip"


def test_escapes_decode_and_encode_again() -> None:
    uri = parse_uri("sip:I%20have%20%3A%40@example.com;na%6De=a%3Bb")
    assert uri.user == "I have :@"
    assert uri.params["name"] == "a;b"
    assert str(uri) == "sip:I%20have%20%3A%40@example.com;name=a%3Bb"


def test_utf8_escapes_become_text() -> None:
    uri = parse_uri("sip:%C3%A9lise@example.com")
    assert uri.user == "élise" and str(uri) == "sip:%C3%A9lise@example.com"


def test_invalid_utf8_escape_round_trips() -> None:
    uri = parse_uri("sip:%FF@example.com")
    assert str(uri) == "sip:%FF@example.com"


def test_telephone_subscriber_user_part() -> None:
    uri = parse_uri("sip:+1-212-555-1212;phone-context=example.com@gw.example.com;user=phone")
    assert uri.user == "+1-212-555-1212;phone-context=example.com"
    assert uri.params["user"] == "phone"


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:[2001:db8::10]", "[2001:db8::10]", None),
        ("sip:alice@[2001:db8::10]:5070;transport=tcp", "[2001:db8::10]", 5070),
        ("sip:[::ffff:192.0.2.1]:5060", "[::ffff:192.0.2.1]", 5060),
        ("sip:192.0.2.1:5060", "192.0.2.1", 5060),
        ("sip:example.com.", "example.com.", None),
    ],
)
def test_hosts(text: str, host: str, port: int | None) -> None:
    uri = parse_uri(text)
    assert (uri.host, uri.port) == (host, port)
    assert str(uri) == text


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:alice@",
        "sip:@example.com",
        "sip:[2001:db8::10",
        "sip:[2001:db8::zz]",
        "sip:2001:db8::10",  # an IPv6 address must be bracketed
        "sip:example.com:65536",
        "sip:example.com:5x",
        "sip:256.1.1.1",
        "sip:1.2.3",
        "sip:exa_mple.com",
        "sip:-example.com",
        "sip:alice@example.com;;lr",
        "sip:alice@example.com;a=1;A=2",
        "sip:alice@example.com?subject",
        "sip:al ice@example.com",
        "sip:alice@example.com;x=%4",
        "sip:alice<@example.com",
        "<sip:alice@example.com>",
        "no scheme here",
        "tel:12345",  # a local number needs phone-context
        "tel:+",
        "http://exa mple.com",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_tel_uris() -> None:
    uri = parse_uri("tel:+1-201-555-0123;ext=1234")
    assert isinstance(uri, TelUri) and uri.is_global and uri.digits == "+12015550123"
    assert uri.params["ext"] == "1234" and uri.scheme == "tel"
    local = parse_uri("tel:7042;phone-context=example.com")
    assert not local.is_global and str(local) == "tel:7042;phone-context=example.com"
    assert parse_uri("tel:+1(201)555-0123").equivalent(parse_uri("tel:+12015550123"))
    assert not parse_uri("tel:+12015550123").equivalent(parse_uri("tel:+12015550124"))
    assert not parse_uri("tel:+12015550123;ext=1").equivalent(parse_uri("tel:+12015550123"))


def test_unknown_schemes_are_kept_whole() -> None:
    uri = parse_uri("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
    assert isinstance(uri, AbsoluteUri) and uri.scheme == "urn"
    assert str(uri) == "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
    assert uri.equivalent(parse_uri("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"))


# RFC 3261 19.1.4: the pairs the RFC lists as equivalent and as not equivalent.
EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
    ("sip:alice@[2001:db8::10]", "sip:alice@[2001:DB8:0::10]"),
]
NOT_EQUIVALENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;newparam=6"),
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
    ("sip:alice:pw@atlanta.com", "sip:alice@atlanta.com"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_equivalent(a: str, b: str) -> None:
    assert parse_uri(a).equivalent(parse_uri(b)) and parse_uri(b).equivalent(parse_uri(a))


@pytest.mark.parametrize(("a", "b"), NOT_EQUIVALENT)
def test_not_equivalent(a: str, b: str) -> None:
    assert not parse_uri(a).equivalent(parse_uri(b))
    assert not parse_uri(b).equivalent(parse_uri(a))


def test_different_kinds_are_never_equivalent() -> None:
    assert not parse_uri("sip:alice@atlanta.com").equivalent(parse_uri("tel:+12015550123"))
    assert not parse_uri("tel:+12015550123").equivalent("tel:+12015550123")


def test_built_uri_serialises() -> None:
    uri = SipUri("192.0.2.7", user="alice smith", port=5062, params=Params({"transport": "tcp", "lr": None}))
    assert str(uri) == "sip:alice%20smith@192.0.2.7:5062;transport=tcp;lr"


_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF, exclude_categories=("Cs",)), min_size=1, max_size=12)
_host = st.sampled_from(["example.com", "192.0.2.1", "[2001:db8::1]", "a-b.c.example.", "h"])


@settings(max_examples=300, deadline=None)
@given(
    user=st.none() | _text,
    password=st.none() | _text,
    host=_host,
    port=st.none() | st.integers(0, 65535),
    params=st.dictionaries(_text, st.none() | _text, max_size=3),
    headers=st.lists(st.tuples(_text, st.text(max_size=8)), max_size=3),
    scheme=st.sampled_from(["sip", "sips"]),
)
def test_any_uri_round_trips(
    user: str | None,
    password: str | None,
    host: str,
    port: int | None,
    params: dict[str, str | None],
    headers: list[tuple[str, str]],
    scheme: str,
) -> None:
    """Whatever the text in it, a built URI's wire form parses back to the same URI."""
    if user is None:
        password = None
    lowered = {}
    for name, value in params.items():
        lowered.setdefault(name.lower(), (name, value))
    uri = SipUri(host, user, password, port, Params(dict(lowered.values())), headers, scheme)
    again = parse_uri(str(uri))
    assert again == uri
    assert again.equivalent(uri)


def test_numeric_host_with_an_empty_octet_is_a_parse_error() -> None:
    # Found by the SIP core's fuzzing: "192.0.2." used to escape as ValueError from int("").
    from tipring.sip.grammar import SipParseError
    from tipring.sip.uri import parse_uri

    for text in ("sip:a@192.0.2.", "sip:a@192..2.1", "sip:a@.0.2.1"):
        with pytest.raises(SipParseError):
            parse_uri(text)
