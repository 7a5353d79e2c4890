"""SDP parsing and serialization (RFC 4566): RFC examples, lossless round trip, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tipring.sdp import (
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
    parse_sdp,
    redact,
)


def crlf(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


# RFC 3264 section 10.1, Alice's offer (note the empty s= and host names in o= and c=).
RFC3264_10_1_OFFER = crlf(
    "v=0",
    "o=alice 2890844526 2890844526 IN IP4 host.anywhere.com",
    "s=",
    "c=IN IP4 host.anywhere.com",
    "t=0 0",
    "m=audio 49170 RTP/AVP 0",
    "a=rtpmap:0 PCMU/8000",
    "m=video 51372 RTP/AVP 31",
    "a=rtpmap:31 H261/90000",
    "m=video 53000 RTP/AVP 32",
    "a=rtpmap:32 MPV/90000",
)

# RFC 4566 section 5 example, with its session-level i=, u=, e=, c= (multicast), a= lines.
RFC4566_EXAMPLE = crlf(
    "v=0",
    "o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5",
    "s=SDP Seminar",
    "i=A Seminar on the session description protocol",
    "u=http://www.example.com/seminars/sdp.pdf",
    "e=j.doe@example.com (Jane Doe)",
    "c=IN IP4 224.2.17.12/127",
    "t=2873397496 2873404696",
    "a=recvonly",
    "m=audio 49170 RTP/AVP 0",
    "m=video 51372 RTP/AVP 99",
    "a=rtpmap:99 h263-1998/90000",
)


def test_rfc3264_offer_fields() -> None:
    sdp = parse_sdp(RFC3264_10_1_OFFER)
    assert sdp.origin == Origin("alice", 2890844526, 2890844526, "host.anywhere.com")
    assert sdp.name == ""
    assert sdp.connection == Connection("host.anywhere.com")
    assert [(m.media, m.port, m.proto, m.formats) for m in sdp.media] == [
        ("audio", 49170, "RTP/AVP", ("0",)),
        ("video", 51372, "RTP/AVP", ("31",)),
        ("video", 53000, "RTP/AVP", ("32",)),
    ]
    assert sdp.media[1].rtpmaps() == {31: RtpMap("H261", 90000)}
    assert sdp.serialize() == RFC3264_10_1_OFFER


def test_rfc4566_example_round_trips_and_reads() -> None:
    sdp = parse_sdp(RFC4566_EXAMPLE)
    assert sdp.serialize() == RFC4566_EXAMPLE
    assert sdp.name == "SDP Seminar"
    assert sdp.connection is not None and sdp.connection.host == "224.2.17.12"
    assert sdp.direction == "recvonly"
    assert sdp.direction_of(sdp.media[0]) == "recvonly"  # session level applies
    assert sdp.media[0].rtpmaps() == {0: RtpMap("PCMU", 8000)}  # static type, no rtpmap
    assert sdp.media[1].rtpmaps()[99] == RtpMap("h263-1998", 90000)


def test_unknown_lines_and_attributes_are_kept_in_order() -> None:
    text = crlf(
        "v=0",
        "o=- 1 2 IN IP4 192.0.2.1",
        "s=call",
        "c=IN IP4 192.0.2.1",
        "b=AS:84",
        "t=0 0",
        "a=X-vendor:thing",
        "a=group:BUNDLE 0",
        "m=audio 4000/2 RTP/AVP 0 8",
        "i=voice",
        "c=IN IP4 192.0.2.2",
        "b=TIAS:64000",
        "k=prompt",
        "a=rtcp:4001",
        "a=ice-ufrag:abcd",
        "a=sendonly",
        "m=application 5000 TCP/MSRP *",
        "a=accept-types:text/plain",
        "m=x-unknown 0 udp foo bar",
    )
    sdp = parse_sdp(text)
    assert sdp.serialize() == text
    audio = sdp.media[0]
    assert audio.port_count == 2
    assert audio.extra == (("i", "voice"), ("b", "TIAS:64000"), ("k", "prompt"))
    assert audio.connection == Connection("192.0.2.2")
    assert sdp.connection_of(audio).host == "192.0.2.2"
    assert sdp.connection_of(sdp.media[1]).host == "192.0.2.1"
    assert audio.direction == "sendonly"
    assert sdp.media[1].formats == ("*",)
    assert sdp.attributes[0] == Attribute("X-vendor", "thing")


def test_lf_line_ends_and_missing_s_and_t_are_tolerated() -> None:
    sdp = parse_sdp("v=0\no=- 1 1 IN IP4 192.0.2.1\nc=IN IP4 192.0.2.1\nm=audio 1 RTP/AVP 0\n")
    assert sdp.name == "-"
    assert sdp.media[0].port == 1


def test_bytes_input() -> None:
    assert parse_sdp(RFC3264_10_1_OFFER.encode()).origin.username == "alice"
    with pytest.raises(SdpError, match="UTF-8"):
        parse_sdp(b"v=0\r\no=\xff 1 1 IN IP4 1.2.3.4\r\n")


def test_ipv6_connection() -> None:
    sdp = parse_sdp(crlf("v=0", "o=- 5 5 IN IP6 2001:db8::1", "s=-", "c=IN IP6 2001:db8::2",
                         "t=0 0", "m=audio 6000 RTP/AVP 8"))
    assert sdp.connection == Connection("2001:db8::2", "IP6")
    assert sdp.origin.address_type == "IP6"


def test_rfc2543_hold_address() -> None:
    assert Connection("0.0.0.0").is_hold_address
    assert not Connection("192.0.2.1").is_hold_address


def test_fmtp_lookup() -> None:
    sdp = parse_sdp(crlf("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1",
                         "t=0 0", "m=audio 1 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000",
                         "a=fmtp:101 0-15,16"))
    assert sdp.media[0].fmtp(101) == "0-15,16"
    assert sdp.media[0].fmtp(0) is None


def test_crypto_keys_hidden_in_repr_and_redact() -> None:
    key = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
    text = crlf("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
                "m=audio 1 RTP/SAVP 0", f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20|1:4")
    sdp = parse_sdp(text)
    assert key not in repr(sdp)
    assert key not in redact(text)
    assert "inline:********|2^20|1:4" in redact(text)
    assert key in sdp.serialize()  # it must still go on the wire


# --- bad input -----------------------------------------------------------------------------

BASE = ["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
        "m=audio 4000 RTP/AVP 0"]


def with_line(index: int, line: str | None) -> str:
    lines = list(BASE)
    if line is None:
        del lines[index]
    else:
        lines[index] = line
    return crlf(*lines)


@pytest.mark.parametrize(("text", "reason"), [
    ("", "missing v="),
    (with_line(0, None), "missing v="),
    (with_line(0, "v=1"), "version"),
    (with_line(1, None), "missing o="),
    (with_line(1, "o=- 1"), "o= needs 6 fields"),             # truncated
    (with_line(1, "o=- x 1 IN IP4 192.0.2.1"), "session id"),
    (with_line(5, "m=audio 70000 RTP/AVP 0"), "port"),
    (with_line(5, "m=audio -1 RTP/AVP 0"), "port"),
    (with_line(5, "m=audio four RTP/AVP 0"), "port"),
    (with_line(5, "m=audio 4000 RTP/AVP PCMU"), "payload type"),
    (with_line(5, "m=audio 4000 RTP/AVP 128"), "payload type"),
    (with_line(5, "m=audio 4000 RTP/AVP"), "m= needs"),      # truncated
    (with_line(5, "m=audio 4000/0 RTP/AVP 0"), "port count"),
    (with_line(3, "c=IN IP4"), "c= needs"),
    (with_line(3, "c=IN IP4 300.1.1.1"), "not a valid IP4"),
    (with_line(3, "c=IN IP6 2001:db8::zz"), "not a valid IP6"),
    (with_line(4, "bogus line"), "not a <type>=<value>"),
    (with_line(4, "a="), "attribute name"),
    (crlf(*BASE, "o=- 2 2 IN IP4 192.0.2.1"), "o= inside a media section"),
    (crlf(*BASE[:4], "c=IN IP4 192.0.2.9", *BASE[4:]), "second session-level c="),
    (crlf(*BASE, "c=IN IP4 192.0.2.9", "c=IN IP4 192.0.2.8"), "second c="),
    (crlf(*BASE[:2], "v=0", *BASE[2:]), "second v="),
    ("v=0\r\no=- 1 1 IN", "o= needs 6 fields"),                # truncated mid-line
    (with_line(1, "o=- " + "9" * 5000 + " 1 IN IP4 192.0.2.1"), "not a number"),
])
def test_bad_sdp_is_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(SdpError, match=reason):
        parse_sdp(text)


def test_bad_rtpmap_is_reported_when_read() -> None:
    sdp = parse_sdp(crlf(*BASE, "a=rtpmap:x PCMU/8000"))
    with pytest.raises(SdpError, match="rtpmap"):
        sdp.media[0].rtpmaps()


def test_payload_types_of_non_rtp_media() -> None:
    sdp = parse_sdp(crlf(*BASE[:5], "m=application 9 TCP/MSRP *"))
    with pytest.raises(SdpError):
        _ = sdp.media[0].payload_types


# --- round trip property -------------------------------------------------------------------

token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+",
                min_size=1, max_size=12)
text_value = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")),
                     max_size=20)
address = st.one_of(
    st.ip_addresses(v=4).map(lambda a: (str(a), "IP4")),
    st.ip_addresses(v=6).map(lambda a: (str(a), "IP6")),
    st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8}){0,2}", fullmatch=True).map(lambda h: (h, "IP4")),
)
connection = address.map(lambda a: Connection(a[0], a[1]))
attribute = st.builds(Attribute, token, st.one_of(st.none(), text_value))


@st.composite
def media_sections(draw: st.DrawFn) -> MediaDescription:
    rtp = draw(st.booleans())
    if rtp:
        proto = draw(st.sampled_from(["RTP/AVP", "RTP/SAVP", "UDP/TLS/RTP/SAVPF"]))
        formats = draw(st.lists(st.integers(0, 127).map(str), min_size=1, max_size=6))
    else:
        proto = draw(st.sampled_from(["udp", "TCP/MSRP"]))
        formats = draw(st.lists(token, min_size=1, max_size=3))
    extra_i = draw(st.lists(st.tuples(st.just("i"), text_value), max_size=1))
    extra_rest = draw(st.lists(st.tuples(st.sampled_from("bk"), text_value), max_size=2))
    return MediaDescription(
        media=draw(st.sampled_from(["audio", "video", "application", "text"])),
        port=draw(st.integers(0, 65535)), proto=proto, formats=tuple(formats),
        port_count=draw(st.one_of(st.none(), st.integers(1, 4))),
        connection=draw(st.one_of(st.none(), connection)),
        attributes=tuple(draw(st.lists(attribute, max_size=4))),
        extra=tuple(extra_i + extra_rest))


@st.composite
def sessions(draw: st.DrawFn) -> SessionDescription:
    host, kind = draw(address)
    origin = Origin(draw(token), draw(st.integers(0, 2**64)), draw(st.integers(0, 2**64)),
                    host, kind)
    before = draw(st.lists(st.tuples(st.sampled_from("iuep"), text_value), max_size=3))
    after = draw(st.lists(st.tuples(st.sampled_from("btrzk"), text_value), max_size=3))
    return SessionDescription(
        origin=origin, name=draw(text_value), connection=draw(st.one_of(st.none(), connection)),
        attributes=tuple(draw(st.lists(attribute, max_size=4))),
        media=tuple(draw(st.lists(media_sections(), max_size=4))), extra=tuple(before + after))


@given(sessions())
def test_round_trip_property(sdp: SessionDescription) -> None:
    text = sdp.serialize()
    again = parse_sdp(text)
    assert again == sdp
    assert again.serialize() == text


@given(st.text(alphabet=st.sampled_from(list("vosctma=0123456789 IN P4/RTP:\r\n.")), max_size=120))
def test_arbitrary_text_raises_only_sdp_error(text: str) -> None:
    try:
        sdp = parse_sdp(text)
    except SdpError:
        return
    for media in sdp.media:
        try:
            media.rtpmaps()
        except SdpError:
            pass
