"""SIP messages: header grammar, typed header values, serializer, limits and 400 building."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tipring.sip import (
    Headers,
    NameAddr,
    Params,
    Request,
    Response,
    SipParseError,
    SipUri,
    Via,
    build_response,
    parse_message,
    parse_uri,
    serialize,
)
from tipring.sip.message import MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_HEADER_FIELDS

BASE = [
    "INVITE sip:bob@biloxi.example.com SIP/2.0",
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
    "Max-Forwards: 70",
    'To: "Bob" <sip:bob@biloxi.example.com>',
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
    "CSeq: 314159 INVITE",
    "Contact: <sip:alice@pc33.atlanta.example.com>",
]


def wire(*extra: str, body: bytes = b"", base: list[str] = BASE, length: bool = True) -> bytes:
    lines = list(base) + list(extra)
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse(*extra: str, body: bytes = b"") -> Request:
    message = parse_message(wire(*extra, body=body))
    assert isinstance(message, Request)
    return message


def test_basic_request_values() -> None:
    m = parse()
    assert m.method == "INVITE" and m.uri.user == "bob" and m.version == "SIP/2.0"
    assert m.to.display_name == "Bob" and m.to.tag is None
    assert m.from_.display_name == "Alice" and m.from_.tag == "1928301774"
    assert m.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert (m.cseq.number, m.cseq.method) == (314159, "INVITE")
    assert m.max_forwards == 70 and m.body == b"" and m.content_length == 0


def test_compact_forms_are_expanded() -> None:
    data = (
        b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
        b"v: SIP/2.0/UDP host.example.com;branch=z9hG4bKcompact\r\n"
        b"i: compact@example.com\r\nf: <sip:a@example.com>;tag=1\r\nt: <sip:bob@example.com>\r\n"
        b"m: <sip:a@host.example.com>\r\nc: text/plain\r\ne: identity\r\nk: replaces\r\n"
        b"s: hello\r\no: dialog\r\nu: refer\r\nr: <sip:c@example.com>\r\nb: <sip:d@example.com>\r\n"
        b"x: 1800\r\ny: abc\r\na: *;audio\r\nj: *;video\r\nd: proxy\r\n"
        b"CSeq: 1 OPTIONS\r\nl: 2\r\n\r\nhi"
    )
    m = parse_message(data)
    names = [name for name, _ in m.headers]
    assert names == [
        "Via", "Call-ID", "From", "To", "Contact", "Content-Type", "Content-Encoding",
        "Supported", "Subject", "Event", "Allow-Events", "Refer-To", "Referred-By",
        "Session-Expires", "Identity", "Accept-Contact", "Reject-Contact",
        "Request-Disposition", "CSeq", "Content-Length",
    ]
    assert m.body == b"hi" and m.supported == ["replaces"]
    assert m.name_addrs("Refer-To")[0].uri.user == "c"
    assert b"\r\nCall-ID: compact@example.com\r\n" in serialize(m)  # written in full


def test_header_names_are_case_insensitive() -> None:
    m = parse("sUbJeCt: x", "X-Custom-Thing: 1")
    assert m.headers.get("subject") == "x" and m.headers.get("SUBJECT") == "x"
    assert m.headers.get("x-custom-thing") == "1"
    assert [n for n, _ in m.headers][-3:-1] == ["Subject", "X-Custom-Thing"]


def test_folded_lines_unfold_to_one_space() -> None:
    m = parse("Subject: first", " \t second", "\tthird")
    assert m.headers.get("Subject") == "first second third"


def test_repeated_and_comma_joined_lists_are_the_same() -> None:
    joined = parse("Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>")
    repeated = parse("Route: <sip:p1.example.com;lr>", "Route: <sip:p2.example.com;lr>")
    assert [r.uri.host for r in joined.route] == ["p1.example.com", "p2.example.com"]
    assert [str(r) for r in joined.route] == [str(r) for r in repeated.route]
    assert joined.headers.values("Route") == repeated.headers.values("Route")


def test_commas_inside_quotes_and_brackets_do_not_split() -> None:
    m = parse('P-Asserted-Identity: "Doe, John" <sip:john@example.com>, <tel:+15551234567>')
    ids = m.name_addrs("P-Asserted-Identity")
    assert [i.display_name for i in ids] == ["Doe, John", None]
    assert str(ids[1].uri) == "tel:+15551234567"


def test_non_list_headers_are_never_split() -> None:
    challenge = 'Digest realm="atlanta.example.com", nonce="ea9c8e88", algorithm=MD5, qop="auth"'
    m = parse(
        f"WWW-Authenticate: {challenge}",
        "WWW-Authenticate: Digest realm=\"b\", nonce=\"2\"",
        "Date: Sat, 13 Nov 2010 23:29:00 GMT",
    )
    assert m.headers.values("WWW-Authenticate") == [challenge, 'Digest realm="b", nonce="2"']
    assert m.headers.lines("WWW-Authenticate")[0] == challenge
    assert m.date.year == 2010 and m.date.tzinfo is not None


def test_via_values() -> None:
    m = parse("Via: SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bKx;received=2001:db8::7;rport=5071;maddr=224.2.0.1;ttl=16")
    via = m.via[1]
    assert (via.transport, via.host, via.port) == ("TCP", "[2001:db8::9]", 5070)
    assert via.branch == "z9hG4bKx" and via.received == "2001:db8::7"
    assert via.rport == 5071 and via.has_rport and via.maddr == "224.2.0.1" and via.ttl == 16


@pytest.mark.parametrize(
    "via",
    [
        "SIP/2.0/UDP",
        "SIP/2.0 host.example.com",
        "SIP/2.0/UDP host.example.com;branch",
        "SIP/2.0/UDP host.example.com;ttl=256",
        "SIP/2.0/UDP host.example.com;received=host.example.com",
        "SIP/2.0/UDP host.example.com;rport=99999",
        "SIP/2.0/UDP host.example.com;branch=a;branch=b",
        "SIP/2.0/UDP host.example.com,",
        "SIP/2.0/UDP host.example.com:port",
    ],
)
def test_bad_via_is_a_400(via: str) -> None:
    data = wire(f"Via: {via}")
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status == 400 and info.value.reason.startswith("Bad Via header")
    assert info.value.request is not None  # answerable: the first Via is fine


def test_name_addr_forms() -> None:
    m = parse(
        'Contact: "A \\"quoted\\" name" <sip:a@example.com;transport=tcp>;expires=60;q=0.5, '
        "sip:b@example.com;expires=30, Plain Name <sips:c@example.com>"
    )
    a, b, c = m.contacts[1:]  # after the Contact BASE already has
    assert a.display_name == 'A "quoted" name' and a.uri.transport == "tcp"
    assert (a.expires, a.q) == (60, 0.5)
    assert b.display_name is None and b.expires == 30 and len(b.uri.params) == 0
    assert c.display_name == "Plain Name" and c.uri.scheme == "sips"
    assert str(a) == '"A \\"quoted\\" name" <sip:a@example.com;transport=tcp>;expires=60;q=0.5'


def test_contact_wildcard() -> None:
    base = [line for line in BASE if not line.startswith("Contact")]
    m = parse_message(wire("Contact: *", "Expires: 0", base=base))
    assert m.contact_is_wildcard and m.contacts == [] and m.expires == 0


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("To: <sip:bob@example.com", "Bad To header"),
        ('To: "Bob <sip:bob@example.com>', "Bad To header"),
        ("To: <sip:bob@example.com> <sip:x@example.com>", "Bad To header"),
        ("To: sip:bob@example.com?x=y", "Bad To header"),
        ("To: <sip:bob@example.com>;tag", "Bad To header"),
        ("To: <sip:bob@example.com>;;tag=1", "Bad To header"),
        ("Call-ID: has space", "Bad Call-ID header"),
        ("CSeq: x INVITE", "Bad CSeq header"),
        ("CSeq: 1", "Bad CSeq header"),
        ("CSeq: 4294967296 INVITE", "Bad CSeq header"),
        ("Contact: <sip:a@example.com>,,<sip:b@example.com>", "Bad Contact header"),
        ("Record-Route: sip:p1.example.com;lr,", "Bad Record-Route header"),
        ("Content-Type: text", "Bad Content-Type header"),
        ("Content-Length: 1", "Content-Length larger than message"),
        ("Content-Length: ten", "Bad Content-Length"),
    ],
)
def test_bad_core_headers_are_answerable_400s(header: str, reason: str) -> None:
    name = header.split(":", 1)[0]
    base = [line for line in BASE if not line.startswith(name + ":")]
    with pytest.raises(SipParseError) as info:
        parse_message(wire(header, base=base, length=name != "Content-Length"))
    assert info.value.status == 400 and info.value.reason.startswith(reason)
    assert info.value.request is not None and info.value.request.method == "INVITE"


def test_repeated_single_valued_header_is_refused() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(wire("From: <sip:eve@example.com>;tag=2"))
    assert info.value.reason == "Multiple From headers"


def test_lazy_headers_fail_only_when_read() -> None:
    base = [line for line in BASE if not line.startswith("Max-Forwards")]
    m = parse_message(wire("Max-Forwards: 256", "Expires: soon", "Require: a b", "Accept: text", base=base))
    assert parse().max_forwards == 70
    for read in (lambda: m.max_forwards, lambda: m.expires, lambda: m.require, lambda: m.accept):
        with pytest.raises(SipParseError):
            read()


def test_status_lines() -> None:
    ok = parse_message(b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(ok, Response) and (ok.status, ok.reason) == (180, "Ringing")
    bare = parse_message(b"SIP/2.0 100\r\nContent-Length: 0\r\n\r\n")
    assert (bare.status, bare.reason) == (100, "")
    for line in (b"SIP/2.0 99 Low", b"SIP/2.0 700 High", b"SIP/2.0 2000 X", b"SIP/2 200 OK", b"SIP/2.0 abc OK"):
        with pytest.raises(SipParseError) as info:
            parse_message(line + b"\r\nContent-Length: 0\r\n\r\n")
        assert info.value.request is None  # a broken response is dropped, never answered


@pytest.mark.parametrize(
    "data",
    [
        b"INVITE sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h\n\n",  # bare LF
        b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\rX: y\r\n\r\n",  # bare CR
        b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nSubject: \xff\r\n\r\n",  # not UTF-8
        b"INVITE sip:a@b SIP/2.0\r\nNo colon here\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\n continuation\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h",  # no blank line
        b"",
    ],
)
def test_undecodable_messages_are_dropped(data: bytes) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.request is None


def test_request_without_via_cannot_be_answered() -> None:
    base = [line for line in BASE if not line.startswith("Via")]
    with pytest.raises(SipParseError) as info:
        parse_message(wire(base=base))
    assert info.value.reason == "Missing Via header" and info.value.request is None


def test_leading_crlf_is_ignored() -> None:
    assert parse_message(b"\r\n\r\n" + wire()).method == "INVITE"


def test_size_limits() -> None:
    big_header = "X-Big: " + "a" * MAX_HEADER_BYTES
    with pytest.raises(SipParseError, match="too large"):
        parse_message(wire(big_header))
    many = [f"X-{n}: 1" for n in range(MAX_HEADER_FIELDS + 1)]
    with pytest.raises(SipParseError, match="too many"):
        parse_message(wire(*many))
    with pytest.raises(SipParseError) as info:
        parse_message(wire("Content-Type: application/sdp", body=b"v" * (MAX_BODY_BYTES + 1)))
    assert info.value.status == 413 and info.value.request is not None
    assert parse_message(wire("Content-Type: application/sdp", body=b"v" * MAX_BODY_BYTES)).body


def test_rejection_is_logged_once_without_content(caplog: pytest.LogCaptureFixture) -> None:
    secret = "Authorization: Digest username=\"alice\", response=\"6629fae49393a05397450978507c4ef1\""
    with caplog.at_level(logging.INFO, logger="tipring.sip"), pytest.raises(SipParseError):
        parse_message(wire(secret, "CSeq: 1 INVITE"))
    records = [r for r in caplog.records if r.name.startswith("tipring.sip")]
    assert len(records) == 1 and "Multiple CSeq headers" in records[0].getMessage()
    assert "6629fae" not in caplog.text and "alice" not in caplog.text


def test_serializer_always_writes_the_true_content_length() -> None:
    m = parse("Content-Type: application/sdp", body=b"v=0\r\n")
    m.body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    data = serialize(m)
    assert data.count(b"Content-Length") == 1
    assert f"\r\nContent-Length: {len(m.body)}\r\n\r\n".encode() in data
    assert parse_message(data).body == m.body


def test_serializer_adds_content_length_when_missing() -> None:
    request = Request("OPTIONS", parse_uri("sip:bob@example.com"), Headers([("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")]))
    assert serialize(request).endswith(b"\r\nContent-Length: 0\r\n\r\n")
    assert bytes(request) == serialize(request)


def test_headers_refuse_injection() -> None:
    headers = Headers()
    with pytest.raises(ValueError):
        headers.add("Subject", "hi\r\nVia: SIP/2.0/UDP evil")
    with pytest.raises(ValueError):
        headers.add("Bad Name", "x")
    with pytest.raises(ValueError):
        Headers([("X", "a\nb")])
    with pytest.raises(ValueError):
        serialize(Response(200, "OK\r\nX: y"))
    with pytest.raises(ValueError):
        serialize(Request("IN VITE", parse_uri("sip:a@example.com")))
    with pytest.raises(ValueError):
        str(NameAddr(parse_uri("sip:a@example.com"), params=Params({"tag": "1;evil=2"})))
    assert str(NameAddr(parse_uri("sip:a@example.com"), params=Params({"x": '"a b"'}))).endswith(';x="a b"')


def test_headers_editing() -> None:
    headers = Headers([("Via", "SIP/2.0/UDP b"), ("v", "SIP/2.0/UDP c"), ("Subject", "x")])
    headers.add("Via", "SIP/2.0/UDP a", first=True)
    assert headers.lines("Via") == ["SIP/2.0/UDP a", "SIP/2.0/UDP b", "SIP/2.0/UDP c"]
    headers.set("subject", "y")
    headers.set("Max-Forwards", "70")
    assert headers.fields()[-2:] == [("Subject", "y"), ("Max-Forwards", "70")]
    headers.remove("VIA")
    assert "Via" not in headers and len(headers) == 2
    headers.add("Record-Route", "<sip:p.example.com;lr>", first=True)
    assert headers.fields()[0][0] == "Record-Route"
    assert headers.copy() == headers and headers.copy() is not headers


def test_built_header_values_serialise() -> None:
    via = Via("UDP", "192.0.2.1", 5060, Params({"branch": "z9hG4bK1", "rport": None}))
    assert str(via) == "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport"
    to = NameAddr(SipUri("example.com", user="bob"), 'Bob "the" Builder\\', Params({"tag": "9"}))
    assert str(to) == '"Bob \\"the\\" Builder\\\\" <sip:bob@example.com>;tag=9'
    headers = Headers([("Via", str(via)), ("To", str(to))])
    request = Request("OPTIONS", parse_uri("sip:bob@example.com"), headers)
    again = parse_message(serialize(request))
    assert again.to.display_name == 'Bob "the" Builder\\' and again.via[0].has_rport


def test_build_response_follows_8_2_6() -> None:
    m = parse("Timestamp: 54", "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp")
    ringing = build_response(m, 180, "Ringing", to_tag="abc")
    assert ringing.headers.lines("Via") == m.headers.lines("Via")
    for name in ("From", "Call-ID", "CSeq"):
        assert ringing.headers.get(name) == m.headers.get(name)
    assert ringing.to.tag == "abc" and ringing.to.uri.equivalent(m.to.uri)
    assert "Timestamp" not in ringing.headers
    trying = build_response(m, 100, "Trying")
    assert trying.to.tag is None and trying.headers.get("Timestamp") == "54"
    random_tag = build_response(m, 486, "Busy Here").to.tag
    assert random_tag and len(random_tag) >= 8 and random_tag != build_response(m, 486, "Busy Here").to.tag


def test_build_response_keeps_an_existing_to_tag() -> None:
    base = [line if not line.startswith("To:") else "To: <sip:bob@example.com>;tag=old" for line in BASE]
    m = parse_message(wire(base=base))
    assert build_response(m, 200, "OK").to.tag == "old"


_token = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~", min_size=1, max_size=10)
_value = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x3FF, exclude_categories=("Cs",)), max_size=30
).map(str.strip)


@settings(max_examples=300, deadline=None)
@given(
    method=_token,
    extra=st.lists(st.tuples(_token.map(lambda t: "X-" + t), _value), max_size=8),
    body=st.binary(max_size=200),
    display=st.text(st.characters(min_codepoint=0, max_codepoint=0x3FF, exclude_categories=("Cs",), exclude_characters="\r\n"), max_size=20),
)
def test_parse_serialize_parse_is_stable(
    method: str, extra: list[tuple[str, str]], body: bytes, display: str
) -> None:
    """Built from arbitrary parts, a message survives the wire unchanged, and so does its text."""
    headers = Headers([(n, v) for n, v in (line.split(": ", 1) for line in BASE[1:])])
    headers.set("CSeq", f"1 {method}")
    headers.set("From", str(NameAddr(parse_uri("sip:alice@example.com"), display, Params({"tag": "1"}))))
    for name, value in extra:
        headers.add(name, value)
    if body:
        headers.add("Content-Type", "application/octet-stream")
    request = Request(method, parse_uri("sip:bob@example.com"), headers, body)
    first = serialize(request)
    parsed = parse_message(first)
    assert parsed.method == method and parsed.body == body and parsed.from_.display_name == display
    assert [(n, v) for n, v in parsed.headers if n != "Content-Length"] == headers.fields()
    assert serialize(parsed) == first


def test_ipv6_references_in_messages() -> None:
    """IPv6 in the Request-URI, Via (received with or without brackets) and Contact."""
    data = (
        b"REGISTER sip:[2001:db8::10] SIP/2.0\r\n"
        b"To: sip:user@example.com\r\nFrom: sip:user@example.com;tag=81x2\r\n"
        b"Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111;received=[2001:db8::9:255]\r\n"
        b"Via: SIP/2.0/UDP [2001:db8::9:2]:5070;branch=z9hG4bKas3-112;received=2001:db8::9:255\r\n"
        b"Call-ID: SSG9559905523997077@hlau_4100\r\nMax-Forwards: 70\r\n"
        b"Contact: \"Caller\" <sip:caller@[2001:db8::1]:5070;transport=tcp>\r\n"
        b"CSeq: 98176 REGISTER\r\nContent-Length: 0\r\n\r\n"
    )
    m = parse_message(data)
    assert m.uri.host == "[2001:db8::10]" and m.uri.port is None
    assert [(v.host, v.port, v.received) for v in m.via] == [
        ("[2001:db8::9:1]", None, "[2001:db8::9:255]"),
        ("[2001:db8::9:2]", 5070, "2001:db8::9:255"),
    ]
    assert (m.contacts[0].uri.host, m.contacts[0].uri.port) == ("[2001:db8::1]", 5070)
    # A port written inside the brackets is part of the address, not a port.
    inside = parse_uri("sip:[2001:db8::10:5070]")
    assert (inside.host, inside.port) == ("[2001:db8::10:5070]", None)
    with pytest.raises(SipParseError) as info:  # an unbracketed IPv6 address is no host
        parse_message(data.replace(b"sip:[2001:db8::10]", b"sip:user@2001:db8::10"))
    assert info.value.reason == "Bad Request-URI" and info.value.request is not None


def test_list_values_with_unterminated_quote_raise_the_layer_error() -> None:
    headers = Headers([("Contact", '"Bob <sip:bob@example.com>, <sip:c@example.com>')])
    with pytest.raises(SipParseError):
        headers.values("Contact")
    assert headers.lines("Contact") == ['"Bob <sip:bob@example.com>, <sip:c@example.com>']


# --- typed reads are parsed once per header section ------------------------------------------


def test_typed_reads_parse_each_field_once_until_it_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    from tipring.sip import headers as headers_module
    from tipring.sip import message as message_module

    calls = {"via": 0, "name_addr": 0}
    real_via, real_name_addr = message_module.parse_via, headers_module.parse_name_addr

    def counting_via(value: str) -> list[Via]:
        calls["via"] += 1
        return real_via(value)

    def counting_name_addr(value: str) -> NameAddr:
        calls["name_addr"] += 1
        return real_name_addr(value)

    monkeypatch.setattr(message_module, "parse_via", counting_via)
    monkeypatch.setattr(headers_module, "parse_name_addr", counting_name_addr)
    request = parse_message(wire())
    assert calls == {"via": 1, "name_addr": 3}  # the parser's check: From, To, Contact
    for _ in range(3):
        assert request.via[0].branch == "z9hG4bK776asdhds"
        assert request.from_.tag == "1928301774" and request.to.tag is None
        assert request.contacts[0].uri.host == "pc33.atlanta.example.com"  # type: ignore[union-attr]
    assert calls == {"via": 1, "name_addr": 3}

    # A change to any header line forgets what was read: no stale value is ever served.
    request.headers.add("Via", "SIP/2.0/TCP proxy.example.com;branch=z9hG4bKnew", first=True)
    assert [v.branch for v in request.via] == ["z9hG4bKnew", "z9hG4bK776asdhds"]
    request.headers.set("To", '"Bob" <sip:bob@biloxi.example.com>;tag=abc')
    assert request.to.tag == "abc"
    request.headers.remove("Via")
    assert request.via == []
    assert calls == {"via": 3, "name_addr": 4}  # two Via lines, then none; the new To


def test_typed_list_reads_hand_out_copies() -> None:
    request = parse_message(wire("Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>"))
    assert isinstance(request, Request)
    request.via.clear()
    request.route.pop()
    assert len(request.via) == 1 and len(request.route) == 2


def test_a_bad_field_is_not_remembered_as_good() -> None:
    request = Request("OPTIONS", parse_uri("sip:bob@example.com"))
    request.headers.add("CSeq", "not a cseq")
    for _ in range(2):
        with pytest.raises(SipParseError):
            request.cseq  # noqa: B018
    request.headers.set("CSeq", "7 OPTIONS")
    assert request.cseq.number == 7
