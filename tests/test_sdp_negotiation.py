"""SDP offer/answer (RFC 3264): RFC 3264 and RFC 4317 examples, hold, DTMF, CN, SRTP, IPv6."""

from __future__ import annotations

import base64
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tipring.config import AccountConfig
from tipring.sdp import (
    MediaPolicy,
    MediaSession,
    NotAcceptable,
    Origin,
    SdpError,
    SessionDescription,
    accept_answer,
    answer_offer,
    parse_crypto,
    parse_sdp,
)

SUITE_80, SUITE_32 = "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"
KEY_A = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"  # RFC 4568 example key


def crlf(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


def counting_random() -> tuple[list[bytes], object]:
    """A deterministic random source that records what it handed out."""
    handed: list[bytes] = []
    counter = itertools.count(1)

    def source(n: int) -> bytes:
        value = bytes([next(counter)]) * n
        handed.append(value)
        return value

    return handed, source


def session(**policy: object) -> MediaSession:
    _, source = counting_random()
    defaults: dict[str, object] = {"address": "192.0.2.10", "port": 40000}
    policy_object = MediaPolicy(**(defaults | policy))  # type: ignore[arg-type]
    return MediaSession(policy_object, random_bytes=source,  # type: ignore[arg-type]
                        session_id=77)


def offer_sdp(media_lines: list[str], *, connection: str = "IN IP4 198.51.100.7",
              session_attrs: tuple[str, ...] = ()) -> SessionDescription:
    return parse_sdp(crlf("v=0", "o=far 1 1 IN IP4 198.51.100.7", "s=-", f"c={connection}",
                          "t=0 0", *session_attrs, *media_lines))


AUDIO_TE = ["m=audio 30000 RTP/AVP 0 8 101", "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16"]


# --- RFC 3264 section 10 and RFC 4317 examples ---------------------------------------------

RFC3264_10_1_OFFER = crlf(
    "v=0", "o=alice 2890844526 2890844526 IN IP4 host.anywhere.com", "s=",
    "c=IN IP4 host.anywhere.com", "t=0 0",
    "m=audio 49170 RTP/AVP 0", "a=rtpmap:0 PCMU/8000",
    "m=video 51372 RTP/AVP 31", "a=rtpmap:31 H261/90000",
    "m=video 53000 RTP/AVP 32", "a=rtpmap:32 MPV/90000")
RFC3264_10_1_ANSWER = crlf(
    "v=0", "o=bob 2890844730 2890844730 IN IP4 host.example.com", "s=",
    "c=IN IP4 host.example.com", "t=0 0",
    "m=audio 49920 RTP/AVP 0", "a=rtpmap:0 PCMU/8000",
    "m=video 0 RTP/AVP 31",
    "m=video 53000 RTP/AVP 32", "a=rtpmap:32 MPV/90000")
RFC3264_10_2_OFFER = crlf(
    "v=0", "o=alice 2890844526 2890844526 IN IP4 host.anywhere.com", "s=",
    "c=IN IP4 host.anywhere.com", "t=0 0",
    "m=audio 62986 RTP/AVP 0 4 18", "a=rtpmap:0 PCMU/8000", "a=rtpmap:4 G723/8000",
    "a=rtpmap:18 G729/8000", "a=inactive")
RFC3264_10_2_ANSWER = crlf(
    "v=0", "o=bob 2890844730 2890844731 IN IP4 host.example.com", "s=",
    "c=IN IP4 host.example.com", "t=0 0",
    "m=audio 54344 RTP/AVP 0 4", "a=rtpmap:0 PCMU/8000", "a=rtpmap:4 G723/8000", "a=inactive")
RFC4317_2_1_OFFER = crlf(
    "v=0", "o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com", "s=",
    "c=IN IP4 host.atlanta.example.com", "t=0 0",
    "m=audio 49170 RTP/AVP 0 8 97", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:97 iLBC/8000",
    "m=video 51372 RTP/AVP 31 32", "a=rtpmap:31 H261/90000", "a=rtpmap:32 MPV/90000")
RFC4317_2_1_ANSWER = crlf(
    "v=0", "o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com", "s=",
    "c=IN IP4 host.biloxi.example.com", "t=0 0",
    "m=audio 49174 RTP/AVP 0", "a=rtpmap:0 PCMU/8000",
    "m=video 49170 RTP/AVP 32", "a=rtpmap:32 MPV/90000")


def test_rfc3264_10_1_we_answer_audio_and_decline_both_video_streams() -> None:
    answer, media = session().create_answer(parse_sdp(RFC3264_10_1_OFFER))
    assert [(m.media, m.port, m.proto) for m in answer.media] == [
        ("audio", 40000, "RTP/AVP"), ("video", 0, "RTP/AVP"), ("video", 0, "RTP/AVP")]
    assert answer.media[0].formats == ("0",)
    assert answer.media[1].formats == ("31",) and answer.media[2].formats == ("32",)
    assert (media.remote_address, media.remote_port) == ("host.anywhere.com", 49170)
    assert (media.codec, media.payload_type, media.telephone_event_pt) == ("PCMU", 0, None)
    assert (media.send, media.receive, media.remote_hold) == (True, True, False)
    # The answer parses back the same (what goes on the wire is consistent).
    assert parse_sdp(answer.serialize()) == answer


def test_rfc3264_10_1_bobs_answer_accepted_by_the_offerer() -> None:
    media = accept_answer(parse_sdp(RFC3264_10_1_OFFER), parse_sdp(RFC3264_10_1_ANSWER))
    assert (media.media_index, media.remote_address, media.remote_port) == (
        0, "host.example.com", 49920)
    assert (media.codec, media.payload_type) == ("PCMU", 0)
    assert media.receive_payload_types == {0: "PCMU"}


def test_rfc3264_10_2_inactive_offer() -> None:
    answer, media = session().create_answer(parse_sdp(RFC3264_10_2_OFFER))
    assert answer.media[0].formats[0] == "0"
    assert answer.media[0].direction == "inactive"
    assert (media.send, media.receive, media.remote_hold) == (False, False, True)
    accepted = accept_answer(parse_sdp(RFC3264_10_2_OFFER), parse_sdp(RFC3264_10_2_ANSWER))
    assert (accepted.codec, accepted.direction, accepted.remote_port) == ("PCMU", "inactive", 54344)


def test_rfc4317_2_1_our_codec_preference_wins() -> None:
    answer, media = session(codecs=("PCMA", "PCMU")).create_answer(parse_sdp(RFC4317_2_1_OFFER))
    assert (media.codec, media.payload_type) == ("PCMA", 8)
    assert answer.media[0].formats == ("8",)
    assert answer.media[1].port == 0 and answer.media[1].media == "video"
    _, media = session(codecs=("PCMU", "PCMA")).create_answer(parse_sdp(RFC4317_2_1_OFFER))
    assert media.codec == "PCMU"


def test_rfc4317_2_1_answer_accepted() -> None:
    media = accept_answer(parse_sdp(RFC4317_2_1_OFFER), parse_sdp(RFC4317_2_1_ANSWER))
    assert (media.remote_address, media.remote_port, media.codec) == (
        "host.biloxi.example.com", 49174, "PCMU")


# --- building offers -----------------------------------------------------------------------

def test_offer_lists_codecs_then_events_then_cn() -> None:
    offer = session(codecs=("PCMA", "PCMU")).create_offer()
    [audio] = offer.media
    assert (audio.media, audio.port, audio.proto) == ("audio", 40000, "RTP/AVP")
    assert audio.formats == ("8", "0", "101", "13")
    assert audio.rtpmaps()[101].encoding == "telephone-event"
    assert audio.fmtp(101) == "0-16"  # 16 = hook flash
    assert audio.value("ptime") == "20"
    assert audio.direction == "sendrecv"
    assert not audio.has("crypto")
    assert offer.connection is not None and offer.connection.address == "192.0.2.10"
    assert (offer.origin.session_id, offer.origin.username) == (77, "-")
    text = offer.serialize()
    assert text.startswith("v=0\r\no=- 77 ") and "t=0 0\r\n" in text


def test_offer_without_rfc4733_or_cn() -> None:
    offer = session(dtmf="info", comfort_noise=False, ptime=30).create_offer()
    assert offer.media[0].formats == ("0", "8")
    assert offer.media[0].value("ptime") == "30"


def test_ipv6_offer_and_answer() -> None:
    s = session(address="2001:db8::10")
    offer = s.create_offer()
    assert offer.connection is not None
    assert (offer.connection.address_type, offer.origin.address_type) == ("IP6", "IP6")
    assert "c=IN IP6 2001:db8::10\r\n" in offer.serialize()
    _, media = session().create_answer(offer_sdp(AUDIO_TE, connection="IN IP6 2001:db8::99"))
    assert media.remote_address == "2001:db8::99"


def test_session_version_goes_up_only_when_the_sdp_changes() -> None:
    s = session()
    first = s.create_offer()
    same = s.create_offer()
    hold = s.create_offer("sendonly")
    resume = s.create_offer("sendrecv")
    versions = [o.origin.session_version for o in (first, same, hold, resume)]
    assert versions[1] == versions[0]  # RFC 3264 8: unchanged SDP keeps its version
    assert versions[2] == versions[0] + 1 and versions[3] == versions[0] + 2
    assert {o.origin.session_id for o in (first, same, hold, resume)} == {77}
    assert hold.media[0].direction == "sendonly"
    # An answer we send later in the same session continues the same counter.
    answer, _ = s.create_answer(offer_sdp(AUDIO_TE))
    assert answer.origin.session_version == versions[3] + 1


# --- answering: codecs, DTMF, CN, ptime ----------------------------------------------------

def test_no_common_codec_is_a_488_with_a_reason() -> None:
    offer = offer_sdp(["m=audio 30000 RTP/AVP 18 9", "a=rtpmap:18 G729/8000"])
    with pytest.raises(NotAcceptable) as refusal:
        session().create_answer(offer)
    assert refusal.value.status == 488
    assert "no common codec" in refusal.value.reason and "G729" in refusal.value.reason


def test_no_audio_at_all() -> None:
    offer = offer_sdp(["m=video 30000 RTP/AVP 31"])
    with pytest.raises(NotAcceptable, match="no active audio"):
        session().create_answer(offer)


def test_second_audio_stream_declined_and_an_unusable_first_one_skipped() -> None:
    offer = offer_sdp(["m=audio 30000 RTP/AVP 18", "a=rtpmap:18 G729/8000",
                       "m=audio 30002 RTP/AVP 8", "m=audio 30004 RTP/AVP 0",
                       "m=audio 0 RTP/AVP 0"])
    answer, media = session().create_answer(offer)
    assert [m.port for m in answer.media] == [0, 40000, 0, 0]
    assert (media.media_index, media.remote_port, media.codec) == (1, 30002, "PCMA")


def test_telephone_event_uses_the_offered_payload_type_and_event_range() -> None:
    offer = offer_sdp(["m=audio 30000 RTP/AVP 8 98 13", "a=rtpmap:98 telephone-event/8000",
                       "a=fmtp:98 0-15"])
    answer, media = session().create_answer(offer)
    assert media.telephone_event_pt == 98
    assert media.telephone_events == frozenset(range(16))  # no hook flash event offered
    assert answer.media[0].formats == ("8", "98", "13")
    assert answer.media[0].fmtp(98) == "0-15"
    assert media.comfort_noise_pt == 13
    assert media.receive_payload_types == {8: "PCMA", 98: "telephone-event", 13: "CN"}


def test_telephone_event_defaults_and_odd_clock_rates() -> None:
    no_fmtp = offer_sdp(["m=audio 30000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000"])
    assert session().create_answer(no_fmtp)[1].telephone_events == frozenset(range(16))
    with_flash = offer_sdp(AUDIO_TE)
    assert 16 in session().create_answer(with_flash)[1].telephone_events
    wideband_only = offer_sdp(["m=audio 30000 RTP/AVP 0 110",
                               "a=rtpmap:110 telephone-event/48000"])
    answer, media = session().create_answer(wideband_only)
    assert media.telephone_event_pt is None and answer.media[0].formats == ("0",)
    beyond = offer_sdp(["m=audio 30000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000",
                        "a=fmtp:101 32-40"])
    assert session().create_answer(beyond)[1].telephone_event_pt is None


def test_dtmf_info_mode_does_not_negotiate_telephone_event() -> None:
    answer, media = session(dtmf="info").create_answer(offer_sdp(AUDIO_TE))
    assert media.telephone_event_pt is None
    assert answer.media[0].formats == ("0",)


def test_comfort_noise_off() -> None:
    offer = offer_sdp(["m=audio 30000 RTP/AVP 0 13"])
    _, media = session(comfort_noise=False).create_answer(offer)
    assert media.comfort_noise_pt is None


@pytest.mark.parametrize(("attrs", "ours", "expected"), [
    ((), 20, 20),
    (("a=ptime:30",), 20, 30),
    (("a=ptime:60",), 20, 20),         # more than we can do: keep ours
    (("a=ptime:25",), 20, 20),         # not a whole number of 10 ms frames
    (("a=maxptime:20",), 30, 20),
    (("a=ptime:40", "a=maxptime:30"), 20, 30),
    (("a=ptime:junk",), 20, 20),
])
def test_send_ptime(attrs: tuple[str, ...], ours: int, expected: int) -> None:
    offer = offer_sdp(["m=audio 30000 RTP/AVP 0", *attrs])
    answer, media = session(ptime=ours).create_answer(offer)
    assert media.ptime == expected
    assert answer.media[0].value("ptime") == str(ours)  # what we want to receive


def test_session_level_ptime_counts() -> None:
    offer = offer_sdp(["m=audio 30000 RTP/AVP 0"], session_attrs=("a=ptime:10",))
    assert session().create_answer(offer)[1].ptime == 10


def test_missing_connection_is_an_error() -> None:
    offer = parse_sdp(crlf("v=0", "o=far 1 1 IN IP4 198.51.100.7", "s=-", "t=0 0",
                           "m=audio 30000 RTP/AVP 0"))
    with pytest.raises(SdpError, match="no c= line"):
        session().create_answer(offer)


# --- hold and resume -----------------------------------------------------------------------

@pytest.mark.parametrize(("offered", "answered", "send", "receive", "hold"), [
    ("sendrecv", "sendrecv", True, True, False),
    ("sendonly", "recvonly", False, True, True),
    ("inactive", "inactive", False, False, True),
    ("recvonly", "sendonly", True, False, False),
])
def test_answer_mirrors_the_offered_direction(offered: str, answered: str, send: bool,
                                              receive: bool, hold: bool) -> None:
    answer, media = session().create_answer(offer_sdp([*AUDIO_TE, f"a={offered}"]))
    assert answer.media[0].direction == answered
    assert (media.send, media.receive, media.remote_hold) == (send, receive, hold)
    assert media.direction == answered


def test_session_level_direction_applies() -> None:
    offer = offer_sdp(AUDIO_TE, session_attrs=("a=sendonly",))
    answer, media = session().create_answer(offer)
    assert answer.media[0].direction == "recvonly" and media.remote_hold


def test_rfc2543_hold_with_zero_address() -> None:
    answer, media = session().create_answer(offer_sdp(AUDIO_TE, connection="IN IP4 0.0.0.0"))
    assert media.remote_address is None
    assert (media.send, media.receive, media.remote_hold) == (False, True, True)
    assert answer.media[0].direction == "recvonly"


def test_hold_then_resume_from_the_far_end() -> None:
    s = session()
    _, held = s.create_answer(offer_sdp([*AUDIO_TE, "a=sendonly"]))
    answer, resumed = s.create_answer(offer_sdp([*AUDIO_TE, "a=sendrecv"]))
    assert held.remote_hold and not resumed.remote_hold
    assert resumed.send and resumed.receive
    assert answer.media[0].direction == "sendrecv"


def test_we_hold_and_the_far_end_answers_recvonly() -> None:
    s = session()
    offer = s.create_offer("sendonly")
    far_answer = parse_sdp(crlf("v=0", "o=far 1 2 IN IP4 198.51.100.7", "s=-",
                                "c=IN IP4 198.51.100.7", "t=0 0",
                                "m=audio 30000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000",
                                "a=recvonly"))
    media = s.accept_answer(far_answer)
    assert offer.media[0].direction == "sendonly"
    assert (media.send, media.receive, media.remote_hold) == (True, False, False)


def test_we_hold_while_answering() -> None:
    answer, media = session().create_answer(offer_sdp(AUDIO_TE), direction="sendonly")
    assert answer.media[0].direction == "sendonly"
    assert (media.send, media.receive) == (True, False)


# --- accepting answers ---------------------------------------------------------------------

def far_answer(*media_lines: str, proto_line: str = "m=audio 30000 RTP/AVP 0 101") -> str:
    return crlf("v=0", "o=far 1 1 IN IP4 198.51.100.7", "s=-", "c=IN IP4 198.51.100.7",
                "t=0 0", proto_line, *media_lines)


def test_answer_payload_types_are_used_for_sending() -> None:
    s = session()
    s.create_offer()
    media = s.accept_answer(parse_sdp(far_answer(
        "a=rtpmap:96 telephone-event/8000", "a=fmtp:96 0-15",
        proto_line="m=audio 30000 RTP/AVP 8 0 96")))
    assert (media.codec, media.payload_type) == ("PCMA", 8)  # the answerer's first choice
    assert media.telephone_event_pt == 96
    assert media.telephone_events == frozenset(range(16))
    # We receive with our offer's numbers; CN was not in the answer.
    assert media.receive_payload_types == {0: "PCMU", 8: "PCMA", 101: "telephone-event"}
    assert media.comfort_noise_pt is None


def test_answer_with_wrong_number_of_m_lines() -> None:
    s = session()
    s.create_offer()
    text = far_answer() + "m=video 0 RTP/AVP 31\r\n"
    with pytest.raises(SdpError, match="m= lines"):
        s.accept_answer(parse_sdp(text))


def test_answer_declining_audio_or_changing_codecs() -> None:
    s = session()
    s.create_offer()
    with pytest.raises(NotAcceptable, match="declined"):
        s.accept_answer(parse_sdp(far_answer(proto_line="m=audio 0 RTP/AVP 0")))
    with pytest.raises(NotAcceptable, match="none of the codecs"):
        s.accept_answer(parse_sdp(far_answer("a=rtpmap:18 G729/8000",
                                             proto_line="m=audio 30000 RTP/AVP 18")))


def test_answer_without_offer() -> None:
    with pytest.raises(SdpError, match="no offer"):
        session().accept_answer(parse_sdp(far_answer()))


# --- SRTP ----------------------------------------------------------------------------------

def test_optional_srtp_offers_avp_with_both_suites_and_fresh_keys() -> None:
    handed, source = counting_random()
    s = MediaSession(MediaPolicy(address="192.0.2.10", port=40000, srtp="optional"),
                     random_bytes=source, session_id=1)
    offer = s.create_offer()
    audio = offer.media[0]
    assert audio.proto == "RTP/AVP"
    cryptos = [parse_crypto(v) for v in audio.values("crypto")]
    assert [(c.tag, c.suite) for c in cryptos] == [(1, SUITE_80), (2, SUITE_32)]
    assert [c.keys[0].key_salt for c in cryptos] == handed == [b"\x01" * 30, b"\x02" * 30]
    for value in audio.values("crypto"):
        inline = value.split("inline:")[1]
        assert base64.b64decode(inline) in handed and len(inline) == 40
    # Re-offers (hold) keep the keys: the SRTP context carries on.
    assert s.create_offer("sendonly").media[0].values("crypto") == audio.values("crypto")


def test_mandatory_srtp_offers_savp() -> None:
    offer = session(srtp="mandatory").create_offer()
    assert offer.media[0].proto == "RTP/SAVP" and offer.media[0].has("crypto")


def srtp_offer(proto: str, *cryptos: str) -> SessionDescription:
    return offer_sdp([f"m=audio 30000 {proto} 0", *(f"a=crypto:{c}" for c in cryptos)])


def test_answering_optional_srtp_picks_the_first_usable_crypto() -> None:
    s = session(srtp="optional")
    offer = srtp_offer("RTP/AVP", f"1 AES_256_CM_HMAC_SHA1_80 inline:{KEY_A}",
                       "2 AES_CM_128_HMAC_SHA1_32 inline:broken*key",
                       f"3 {SUITE_32} inline:{KEY_A}|2^20",
                       f"4 {SUITE_80} inline:{KEY_A}")
    answer, media = s.create_answer(offer)
    [value] = answer.media[0].values("crypto")
    ours = parse_crypto(value)
    assert (ours.tag, ours.suite) == (3, SUITE_32)
    assert answer.media[0].proto == "RTP/AVP"
    assert media.srtp is not None and media.srtp.suite == SUITE_32
    assert media.srtp.remote.key_salt == base64.b64decode(KEY_A)
    assert media.srtp.remote.lifetime == 2**20
    assert media.srtp.local == ours.keys[0]
    assert media.srtp.local.key_salt == b"\x01" * 30  # from the injected random source
    assert KEY_A not in repr(media) and "\\x01" * 4 not in repr(media)


@pytest.mark.parametrize(("srtp", "offer", "expect"), [
    ("optional", srtp_offer("RTP/AVP"), "plain"),
    ("off", srtp_offer("RTP/AVP", f"1 {SUITE_80} inline:{KEY_A}"), "plain"),
    ("mandatory", srtp_offer("RTP/SAVP", f"1 {SUITE_80} inline:{KEY_A}"), "srtp"),
    ("mandatory", srtp_offer("RTP/AVP", f"1 {SUITE_80} inline:{KEY_A}"), "srtp"),
    ("mandatory", srtp_offer("RTP/AVP"), "488"),
    ("off", srtp_offer("RTP/SAVP", f"1 {SUITE_80} inline:{KEY_A}"), "488"),
    ("optional", srtp_offer("RTP/SAVP", f"1 AES_256_CM_HMAC_SHA1_80 inline:{KEY_A}"), "488"),
    ("optional", srtp_offer("UDP/TLS/RTP/SAVP", f"1 {SUITE_80} inline:{KEY_A}"), "488"),
])
def test_srtp_policy_when_answering(srtp: str, offer: SessionDescription, expect: str) -> None:
    s = session(srtp=srtp)
    if expect == "488":
        with pytest.raises(NotAcceptable) as refusal:
            s.create_answer(offer)
        assert refusal.value.status == 488
        return
    answer, media = s.create_answer(offer)
    assert (media.srtp is not None) is (expect == "srtp")
    assert answer.media[0].has("crypto") is (expect == "srtp")
    assert answer.media[0].proto == offer.media[0].proto


def test_mandatory_offer_needs_crypto_in_the_answer() -> None:
    s = session(srtp="mandatory")
    s.create_offer()
    plain = far_answer(proto_line="m=audio 30000 RTP/SAVP 0")
    with pytest.raises(NotAcceptable, match="mandatory"):
        s.accept_answer(parse_sdp(plain))
    unknown_tag = far_answer(f"a=crypto:9 {SUITE_80} inline:{KEY_A}",
                             proto_line="m=audio 30000 RTP/SAVP 0")
    with pytest.raises(NotAcceptable):
        s.accept_answer(parse_sdp(unknown_tag))
    wrong_suite = far_answer(f"a=crypto:1 {SUITE_32} inline:{KEY_A}",
                             proto_line="m=audio 30000 RTP/SAVP 0")
    with pytest.raises(NotAcceptable):
        s.accept_answer(parse_sdp(wrong_suite))
    good = far_answer(f"a=crypto:2 {SUITE_32} inline:{KEY_A}",
                      proto_line="m=audio 30000 RTP/SAVP 0")
    media = s.accept_answer(parse_sdp(good))
    assert media.srtp is not None and media.srtp.suite == SUITE_32
    assert media.srtp.local.key_salt == b"\x02" * 30  # our key for tag 2
    assert media.srtp.remote.key_salt == base64.b64decode(KEY_A)


def test_optional_offer_accepts_a_plain_answer() -> None:
    s = session(srtp="optional")
    s.create_offer()
    assert s.accept_answer(parse_sdp(far_answer())).srtp is None


def test_answer_changing_the_profile_is_refused() -> None:
    s = session(srtp="optional")
    s.create_offer()
    with pytest.raises(NotAcceptable, match="RTP/SAVP"):
        s.accept_answer(parse_sdp(far_answer(proto_line="m=audio 30000 RTP/SAVP 0")))


# --- both ends -----------------------------------------------------------------------------

def test_two_tipring_ends_agree() -> None:
    _, source_a = counting_random()
    caller = MediaSession(MediaPolicy(address="192.0.2.10", port=40000, srtp="mandatory",
                                      codecs=("PCMA", "PCMU")), random_bytes=source_a)
    callee = MediaSession(MediaPolicy(address="2001:db8::20", port=50000, srtp="optional",
                                      codecs=("PCMU", "PCMA")),
                          random_bytes=lambda n: b"\xee" * n)
    offer_text = caller.create_offer().serialize()
    answer, callee_media = callee.create_answer(parse_sdp(offer_text))
    caller_media = caller.accept_answer(parse_sdp(answer.serialize()))
    assert caller_media.codec == callee_media.codec == "PCMU"  # the answerer's preference
    assert caller_media.payload_type in callee_media.receive_payload_types
    assert callee_media.payload_type in caller_media.receive_payload_types
    assert caller_media.srtp is not None and callee_media.srtp is not None
    assert caller_media.srtp.local == callee_media.srtp.remote
    assert caller_media.srtp.remote == callee_media.srtp.local
    assert (caller_media.remote_address, caller_media.remote_port) == ("2001:db8::20", 50000)
    assert (callee_media.remote_address, callee_media.remote_port) == ("192.0.2.10", 40000)
    assert caller_media.telephone_event_pt == callee_media.telephone_event_pt == 101
    assert 16 in caller_media.telephone_events


def test_answer_offer_function_with_explicit_origin() -> None:
    origin = Origin("-", 5, 9, "192.0.2.10")
    policy = MediaPolicy(address="192.0.2.10", port=40000)
    answer, _ = answer_offer(offer_sdp(AUDIO_TE), policy, origin)
    assert answer.origin == origin


# --- policy --------------------------------------------------------------------------------

@pytest.mark.parametrize("changes", [
    {"ptime": 50}, {"ptime": 5}, {"ptime": 25}, {"codecs": ("G729",)}, {"codecs": ()},
    {"codecs": ("PCMU", "PCMU")}, {"address": "pbx.example.com"}, {"port": 0},
    {"telephone_event_pt": 13}, {"srtp": "optional", "srtp_suites": ("F8_128_HMAC_SHA1_80",)},
])
def test_bad_policy(changes: dict[str, object]) -> None:
    with pytest.raises(SdpError):
        MediaPolicy(**({"address": "192.0.2.10", "port": 4000} | changes))  # type: ignore[arg-type]


def test_policy_from_account() -> None:
    account = AccountConfig(id="main", user="100", domain="pbx.example", codecs=("PCMA",),
                            dtmf="info", srtp="mandatory")
    policy = MediaPolicy.from_account(account, address="192.0.2.10", port=4000, ptime=30)
    assert (policy.codecs, policy.dtmf, policy.srtp, policy.ptime) == (
        ("PCMA",), "info", "mandatory", 30)


# --- property: any two policies either agree or refuse for a stated reason -----------------

policies = st.builds(
    dict,
    codecs=st.permutations(["PCMU", "PCMA"]).flatmap(
        lambda order: st.integers(1, 2).map(lambda n: tuple(order[:n]))),
    ptime=st.sampled_from([10, 20, 30, 40]),
    dtmf=st.sampled_from(["rfc4733", "info", "inband"]),
    srtp=st.sampled_from(["off", "optional", "mandatory"]),
    srtp_suites=st.sampled_from([(SUITE_80, SUITE_32), (SUITE_32,), (SUITE_80,)]),
    comfort_noise=st.booleans(),
    telephone_event_pt=st.integers(96, 127),
)


@settings(max_examples=150, deadline=None)
@given(policies, policies, st.sampled_from(["sendrecv", "sendonly", "recvonly", "inactive"]))
def test_offer_answer_between_any_two_policies(a: dict[str, object], b: dict[str, object],
                                               direction: str) -> None:
    caller = MediaSession(MediaPolicy(address="192.0.2.1", port=4000,
                                      **a),  # type: ignore[arg-type]
                          random_bytes=lambda n: b"\x11" * n)
    callee = MediaSession(MediaPolicy(address="192.0.2.2", port=5000,
                                      **b),  # type: ignore[arg-type]
                          random_bytes=lambda n: b"\x22" * n)
    offer = parse_sdp(caller.create_offer(direction).serialize())  # type: ignore[arg-type]
    common = [c for c in b["codecs"] if c in a["codecs"]]  # type: ignore[attr-defined]
    srtp_clash = (a["srtp"] == "mandatory" and b["srtp"] == "off") or (
        b["srtp"] == "mandatory" and a["srtp"] == "off") or (
        a["srtp"] != "off" and b["srtp"] != "off"
        and not set(a["srtp_suites"]) & set(b["srtp_suites"])  # type: ignore[arg-type]
        and "mandatory" in (a["srtp"], b["srtp"]))
    try:
        answer, theirs = callee.create_answer(offer)
    except NotAcceptable:
        assert srtp_clash or not common
        return
    assert common and not srtp_clash
    ours = caller.accept_answer(parse_sdp(answer.serialize()))
    assert ours.codec == theirs.codec == common[0]  # the answerer's preference
    assert ours.payload_type in theirs.receive_payload_types
    assert theirs.payload_type in ours.receive_payload_types
    assert (ours.send, ours.receive) == (theirs.receive, theirs.send)
    both_events = a["dtmf"] == b["dtmf"] == "rfc4733"
    assert (ours.telephone_event_pt is not None) is both_events
    assert (theirs.telephone_event_pt is not None) is both_events
    assert (ours.srtp is None) is (theirs.srtp is None)
    if ours.srtp is not None and theirs.srtp is not None:
        assert ours.srtp.suite == theirs.srtp.suite
        assert (ours.srtp.local, ours.srtp.remote) == (theirs.srtp.remote, theirs.srtp.local)
    assert ours.ptime == b["ptime"] and theirs.ptime == a["ptime"]
    assert answer.origin.session_version >= 1 and len(answer.media) == len(offer.media)
