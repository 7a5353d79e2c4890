"""SDP offer/answer (RFC 3264) for one analog line: G.711, RFC 4733 events, CN, SDES-SRTP.

Pure functions on `SessionDescription`s plus `MediaSession`, which holds what must survive
between the exchanges of one call: our o= line (its version goes up with each changed SDP we
send, RFC 3264 section 8) and our SRTP keys (generated once, from an injectable random source).

Our media engine runs one audio stream. Every other m= line, and any audio line after the first
we accept, is declined with port 0 in the answer, keeping the count and order RFC 3264 section 6
requires. A stream we cannot take (no common codec, SRTP required but not offered...) gives
`NotAcceptable`, whose `status` is the SIP response to send (488 Not Acceptable Here).

Directions in `NegotiatedMedia` are from our point of view: `send` means we transmit RTP.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from .crypto import SUITES, Crypto, KeyParams, new_crypto, parse_crypto
from .model import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SdpError,
    SessionDescription,
)

if TYPE_CHECKING:
    from tipring.config import AccountConfig

DtmfMode = Literal["rfc4733", "info", "inband"]
SrtpMode = Literal["off", "optional", "mandatory"]

# The codecs the DSP core implements, with their RFC 3551 static payload types.
CODEC_PAYLOAD_TYPES: dict[str, int] = {"PCMU": 0, "PCMA": 8}
CLOCK_RATE = 8000
TELEPHONE_EVENT = "telephone-event"
COMFORT_NOISE = "CN"
COMFORT_NOISE_PT = 13
# RFC 4733 events we can send and receive: DTMF 0-9 * # A-D (0-15) and hook flash (16).
SUPPORTED_EVENTS = frozenset(range(17))
DEFAULT_OFFERED_EVENTS = frozenset(range(16))  # RFC 4733 section 2.4.1: no fmtp means 0-15
PTIME_RANGE = (10, 40)
RTP_AVP, RTP_SAVP = "RTP/AVP", "RTP/SAVP"

_FLOWS: dict[Direction, tuple[bool, bool]] = {  # (sends, receives) of whoever wrote it
    "sendrecv": (True, True), "sendonly": (True, False),
    "recvonly": (False, True), "inactive": (False, False),
}

RandomBytes = Callable[[int], bytes]


def direction_of(sends: bool, receives: bool) -> Direction:
    return next(d for d, flow in _FLOWS.items() if flow == (sends, receives))


class NotAcceptable(SdpError):
    """The offer or answer is valid SDP but we cannot run a call with it (SIP 488)."""

    status = 488

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class MediaPolicy:
    """What this account lets the line negotiate, and where our RTP socket is."""

    address: str  # our RTP address: an IPv4 or IPv6 literal
    port: int
    codecs: tuple[str, ...] = ("PCMU", "PCMA")  # in order of preference
    ptime: int = 20  # ms of audio per packet we want to receive
    dtmf: DtmfMode = "rfc4733"
    telephone_event_pt: int = 101
    srtp: SrtpMode = "off"
    srtp_suites: tuple[str, ...] = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
    comfort_noise: bool = True  # announce/accept RFC 3389 CN (we receive it; we never send it)
    username: str = "-"  # o= user name: "-" keeps the account name out of every SDP
    session_name: str = "-"

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.address)
        except ValueError:
            raise SdpError(f"RTP address {self.address!r} is not an IP address") from None
        if not 1 <= self.port <= 65535:
            raise SdpError(f"RTP port {self.port} is outside 1..65535")
        unknown = [c for c in self.codecs if c not in CODEC_PAYLOAD_TYPES]
        if not self.codecs or unknown or len(set(self.codecs)) != len(self.codecs):
            raise SdpError(f"codecs {self.codecs!r}: need distinct names from "
                           f"{sorted(CODEC_PAYLOAD_TYPES)}")
        low, high = PTIME_RANGE
        if not low <= self.ptime <= high or self.ptime % 10:
            raise SdpError(f"ptime {self.ptime} ms is not one of 10, 20, 30, 40")
        if not 96 <= self.telephone_event_pt <= 127:
            raise SdpError(f"telephone-event payload type {self.telephone_event_pt} is not "
                           f"dynamic (96..127)")
        if self.srtp != "off" and (not self.srtp_suites or any(
                s not in SUITES for s in self.srtp_suites)):
            raise SdpError(f"SRTP suites {self.srtp_suites!r}: need names from {sorted(SUITES)}")

    @property
    def address_type(self) -> str:
        return "IP6" if ipaddress.ip_address(self.address).version == 6 else "IP4"

    @classmethod
    def from_account(cls, account: AccountConfig, *, address: str, port: int,
                     ptime: int = 20) -> MediaPolicy:
        """The policy for calls on `account`, with our RTP socket's address and port."""
        return cls(address=address, port=port, codecs=tuple(account.codecs), ptime=ptime,
                   dtmf=account.dtmf, srtp=account.srtp)


@dataclass(frozen=True)
class SrtpKeys:
    """The negotiated suite: `local` protects what we send, `remote` what we receive."""

    suite: str
    local: KeyParams
    remote: KeyParams


@dataclass(frozen=True)
class NegotiatedMedia:
    """Everything the media engine needs to run the call's audio stream."""

    media_index: int  # which m= line carries it
    remote_address: str | None  # None when the far end sent c=0.0.0.0 (RFC 2543 hold)
    remote_port: int
    codec: str  # "PCMU" or "PCMA"
    payload_type: int  # what we send the codec with
    telephone_event_pt: int | None  # what we send RFC 4733 events with; None = no events
    telephone_events: frozenset[int]  # events the far end accepts (16 = hook flash)
    comfort_noise_pt: int | None  # the far end may send us CN with this payload type
    receive_payload_types: Mapping[int, str] = field(hash=False)  # PT -> encoding we accept
    ptime: int = 20  # ms per packet we send
    send: bool = True
    receive: bool = True
    srtp: SrtpKeys | None = None
    remote_hold: bool = False  # the far end put us on hold

    @property
    def direction(self) -> Direction:
        return direction_of(self.send, self.receive)


# --- small helpers -------------------------------------------------------------------------

def _find_pt(media: MediaDescription, encoding: str) -> int | None:
    """The first payload type (in m= order) carrying `encoding` at 8 kHz, mono."""
    maps = media.rtpmaps()
    for pt in media.payload_types:
        codec = maps.get(pt)
        if codec and codec.encoding.lower() == encoding.lower() \
                and codec.clock_rate == CLOCK_RATE and codec.channels == 1:
            return pt
    return None


def _parse_events(fmtp: str | None) -> frozenset[int]:
    """RFC 4733 section 2.4.1 event list ("0-15,66"); no fmtp means 0-15."""
    if fmtp is None:
        return DEFAULT_OFFERED_EVENTS
    events: set[int] = set()
    for item in fmtp.replace(" ", "").split(","):
        low, dash, high = item.partition("-")
        try:
            first, last = int(low), int(high) if dash else int(low)
        except ValueError:
            raise SdpError(f"telephone-event fmtp {fmtp!r} is not an event list") from None
        if not 0 <= first <= last <= 255:
            raise SdpError(f"telephone-event fmtp {fmtp!r} has a bad range")
        events.update(range(first, last + 1))
    return frozenset(events)


def _format_events(events: frozenset[int]) -> str:
    ordered = sorted(events)
    ranges: list[str] = []
    start = previous = ordered[0]
    for event in [*ordered[1:], None]:
        if event is not None and event == previous + 1:
            previous = event
            continue
        ranges.append(str(start) if start == previous else f"{start}-{previous}")
        if event is not None:
            start = previous = event
    return ",".join(ranges)


def _int_attr(sd: SessionDescription, media: MediaDescription, name: str) -> int | None:
    value = media.value(name)
    if value is None:
        value = next((a.value for a in sd.attributes if a.name.lower() == name and a.value), None)
    if value is None:
        return None
    try:
        return int(value.strip().split(".")[0])
    except ValueError:
        return None  # a malformed hint is ignored, not worth failing a call for


def _send_ptime(sd: SessionDescription, media: MediaDescription, ours: int) -> int:
    """The packet time to send with: the far end's a=ptime if we can do it, capped by maxptime."""
    wanted = _int_attr(sd, media, "ptime")
    low, high = PTIME_RANGE
    ptime = wanted if wanted is not None and low <= wanted <= high and wanted % 10 == 0 else ours
    maximum = _int_attr(sd, media, "maxptime")
    if maximum is not None and maximum >= low and ptime > maximum:
        ptime = max(low, maximum - maximum % 10)
    return ptime


def _cryptos(media: MediaDescription) -> list[Crypto]:
    """The a=crypto lines that parse; a malformed one is skipped like an unknown suite."""
    found = []
    for value in media.values("crypto"):
        try:
            found.append(parse_crypto(value))
        except SdpError:
            continue
    return found


def _remote_address(sd: SessionDescription, media: MediaDescription) -> tuple[str | None, bool]:
    connection = sd.connection_of(media)
    if connection is None:
        raise SdpError("no c= line for the audio stream (neither session nor media level)")
    if connection.is_hold_address:
        return None, True
    return connection.host, False


def _declined(media: MediaDescription) -> MediaDescription:
    return MediaDescription(media.media, 0, media.proto, media.formats)


def _audio_section(policy: MediaPolicy, formats: list[tuple[int, str]], events: str | None,
                   direction: Direction, proto: str,
                   cryptos: tuple[Crypto, ...]) -> MediaDescription:
    attributes = [Attribute("rtpmap", f"{pt} {encoding}/{CLOCK_RATE}") for pt, encoding in formats]
    if events is not None:
        te_pt = next(pt for pt, encoding in formats if encoding == TELEPHONE_EVENT)
        attributes.append(Attribute("fmtp", f"{te_pt} {events}"))
    attributes += [Attribute("ptime", str(policy.ptime)), Attribute(direction)]
    attributes += [Attribute("crypto", c.serialize()) for c in cryptos]
    return MediaDescription("audio", policy.port, proto, tuple(str(pt) for pt, _ in formats),
                            attributes=tuple(attributes))


def _session(policy: MediaPolicy, origin: Origin,
             media: tuple[MediaDescription, ...]) -> SessionDescription:
    return SessionDescription(origin=origin, name=policy.session_name,
                              connection=Connection(policy.address, policy.address_type),
                              media=media)


# --- offers ----------------------------------------------------------------------------------

def build_offer(policy: MediaPolicy, origin: Origin, keys: tuple[Crypto, ...] = (),
                direction: Direction = "sendrecv") -> SessionDescription:
    """Our offer: the account's codecs in preference order, then telephone-event and CN.

    SRTP "optional" offers RTP/AVP with a=crypto (best-effort SRTP, accepted by peers that
    ignore crypto); "mandatory" offers RTP/SAVP, which a peer without SRTP must decline.
    """
    if policy.srtp != "off" and not keys:
        raise SdpError(f"SRTP is {policy.srtp} but no keys were given")
    formats = [(CODEC_PAYLOAD_TYPES[c], c) for c in policy.codecs]
    events = None
    if policy.dtmf == "rfc4733":
        formats.append((policy.telephone_event_pt, TELEPHONE_EVENT))
        events = _format_events(SUPPORTED_EVENTS)
    if policy.comfort_noise:
        formats.append((COMFORT_NOISE_PT, COMFORT_NOISE))
    proto = RTP_SAVP if policy.srtp == "mandatory" else RTP_AVP
    cryptos = keys if policy.srtp != "off" else ()
    return _session(policy, origin,
                    (_audio_section(policy, formats, events, direction, proto, cryptos),))


def accept_answer(offer: SessionDescription, answer: SessionDescription) -> NegotiatedMedia:
    """What to run after the far end answered our `offer` (in a 200, a 183 or an ACK).

    We send the first codec in the answer's list that we offered (the answerer's preference),
    with the answer's payload type numbers; we receive with our offer's numbers (RFC 3264 5.1,
    6.1). Each of several answers (forked early media, then the 200) can be passed in turn.
    """
    if len(answer.media) != len(offer.media):
        raise SdpError(f"answer has {len(answer.media)} m= lines, the offer had "
                       f"{len(offer.media)} (RFC 3264 section 6)")
    index = next((i for i, m in enumerate(offer.media) if m.media == "audio" and m.port), None)
    if index is None:
        raise SdpError("the offer has no active audio stream")
    ours, theirs = offer.media[index], answer.media[index]
    if theirs.media != ours.media:
        raise SdpError(f"answer m= line {index + 1} is {theirs.media}, offered {ours.media}")
    if theirs.port == 0:
        raise NotAcceptable("the far end declined the audio stream")
    if theirs.proto.upper() != ours.proto.upper():
        raise NotAcceptable(f"the far end answered {theirs.proto} to our {ours.proto}")
    offered = ours.rtpmaps()
    codec = pt = None
    answered = theirs.rtpmaps()
    for candidate in theirs.payload_types:
        mapping = answered.get(candidate)
        if mapping and mapping.encoding.upper() in CODEC_PAYLOAD_TYPES and any(
                m.encoding.upper() == mapping.encoding.upper() for m in offered.values()):
            codec, pt = mapping.encoding.upper(), candidate
            break
    if codec is None or pt is None:
        raise NotAcceptable("the answer lists none of the codecs we offered")
    te_pt = _find_pt(theirs, TELEPHONE_EVENT) if _find_pt(ours, TELEPHONE_EVENT) is not None \
        else None
    events = (_parse_events(theirs.fmtp(te_pt)) & SUPPORTED_EVENTS) if te_pt is not None \
        else frozenset()
    if te_pt is not None and not events:
        te_pt = None
    cn_ours = _find_pt(ours, COMFORT_NOISE)
    cn_theirs = _find_pt(theirs, COMFORT_NOISE)
    receive: dict[int, str] = {}
    answered_names = {m.encoding.lower() for m in answered.values()}
    for our_pt, mapping in offered.items():
        if our_pt in ours.payload_types and mapping.encoding.lower() in answered_names:
            receive[our_pt] = mapping.encoding
    srtp = _answered_srtp(ours, theirs)
    address, hold_address = _remote_address(answer, theirs)
    our_send, our_receive = _FLOWS[offer.direction_of(ours)]
    their_send, their_receive = _FLOWS[answer.direction_of(theirs)]
    return NegotiatedMedia(
        media_index=index, remote_address=address, remote_port=theirs.port, codec=codec,
        payload_type=pt, telephone_event_pt=te_pt, telephone_events=events,
        comfort_noise_pt=cn_ours if cn_ours is not None and cn_theirs is not None else None,
        receive_payload_types=receive,
        ptime=_send_ptime(answer, theirs, _int_attr(offer, ours, "ptime") or 20),
        send=our_send and their_receive and not hold_address,
        receive=our_receive and their_send, srtp=srtp,
        remote_hold=our_send and (not their_receive or hold_address))


def _answered_srtp(ours: MediaDescription, theirs: MediaDescription) -> SrtpKeys | None:
    offered = {c.tag: c for c in _cryptos(ours)}
    for crypto in _cryptos(theirs):
        mine = offered.get(crypto.tag)
        if mine is not None and crypto.suite == mine.suite and crypto.usable:
            return SrtpKeys(crypto.suite, local=mine.keys[0], remote=crypto.keys[0])
    if ours.proto.upper() == RTP_SAVP:
        raise NotAcceptable("SRTP is mandatory and the answer has no usable a=crypto "
                            "for a suite we offered")
    return None


# --- answers ---------------------------------------------------------------------------------

KeySource = Callable[[int, str], Crypto]  # (tag, suite) -> our key for that suite


def answer_offer(offer: SessionDescription, policy: MediaPolicy, origin: Origin,
                 keys: KeySource | None = None,
                 direction: Direction = "sendrecv") -> tuple[SessionDescription, NegotiatedMedia]:
    """Answer a far-end offer: accept its first audio stream we can run, decline the rest.

    Codec choice: the first codec in *our* (the account's) preference list that the offer
    lists. The account setting is the user's explicit choice (for instance PCMA to match a
    European trunk and avoid transcoding), and ATAs have always honoured it over the caller's
    order. The answer then lists that one codec (plus telephone-event and CN), so both ends send
    the same codec and neither switches mid-call, which many gateways handle badly.

    `direction` is what we want (sendonly while we hold the call); the answer's direction is the
    offer's mirrored (RFC 3264 6.1) and narrowed to it. `keys` gives our SRTP key per suite.
    Raises NotAcceptable (SIP 488) with the reason when no audio stream can be accepted.
    """
    media: list[MediaDescription] = []
    negotiated: NegotiatedMedia | None = None
    reasons: list[str] = []
    for index, offered in enumerate(offer.media):
        if negotiated is not None or offered.media != "audio" or offered.port == 0:
            media.append(_declined(offered))
            continue
        try:
            section, negotiated = _answer_audio(offer, offered, index, policy, keys, direction)
        except NotAcceptable as refusal:
            reasons.append(refusal.reason)
            media.append(_declined(offered))
            continue
        media.append(section)
    if negotiated is None:
        raise NotAcceptable(reasons[0] if reasons else "the offer has no active audio stream")
    return _session(policy, origin, tuple(media)), negotiated


def _answer_srtp(offered: MediaDescription, policy: MediaPolicy, keys: KeySource | None,
                 ) -> tuple[Crypto, Crypto] | None:
    """(their crypto, our crypto) to use, or None for plain RTP; NotAcceptable if neither."""
    proto = offered.proto.upper()
    if proto not in (RTP_AVP, RTP_SAVP):
        raise NotAcceptable(f"transport {offered.proto} is not supported")
    if proto == RTP_SAVP and policy.srtp == "off":
        raise NotAcceptable("SRTP offered (RTP/SAVP) but SRTP is off for this account")
    if policy.srtp == "off":
        return None  # a=crypto in an RTP/AVP offer is ignored (RFC 4568 section 7.1.1)
    usable = [c for c in _cryptos(offered) if c.usable and c.suite in policy.srtp_suites]
    if not usable:
        if proto == RTP_SAVP or policy.srtp == "mandatory":
            raise NotAcceptable("SRTP is required but the offer has no usable a=crypto")
        return None
    if keys is None:
        raise SdpError("SRTP negotiated but no key source was given")
    theirs = usable[0]  # the offerer lists its preferred crypto first (RFC 4568 5.1.1)
    mine = keys(theirs.tag, theirs.suite)
    return theirs, replace(mine, tag=theirs.tag, session_params=())


def _answer_audio(offer: SessionDescription, offered: MediaDescription, index: int,
                  policy: MediaPolicy, keys: KeySource | None, wanted: Direction,
                  ) -> tuple[MediaDescription, NegotiatedMedia]:
    srtp = _answer_srtp(offered, policy, keys)
    choice = next(((c, pt) for c in policy.codecs
                   if (pt := _find_pt(offered, c)) is not None), None)
    if choice is None:
        names = sorted({m.encoding for m in offered.rtpmaps().values()})
        raise NotAcceptable(f"no common codec: offered {' '.join(names) or 'none'}, "
                            f"we support {' '.join(policy.codecs)}")
    codec, pt = choice
    formats = [(pt, codec)]
    te_pt = _find_pt(offered, TELEPHONE_EVENT) if policy.dtmf == "rfc4733" else None
    events = frozenset()
    if te_pt is not None:
        events = _parse_events(offered.fmtp(te_pt)) & SUPPORTED_EVENTS
        if events:
            formats.append((te_pt, TELEPHONE_EVENT))
        else:
            te_pt = None
    cn_pt = _find_pt(offered, COMFORT_NOISE) if policy.comfort_noise else None
    if cn_pt is not None:
        formats.append((cn_pt, COMFORT_NOISE))
    address, hold_address = _remote_address(offer, offered)
    their_send, their_receive = _FLOWS[offer.direction_of(offered)]
    want_send, want_receive = _FLOWS[wanted]
    send = their_receive and want_send
    receive = their_send and want_receive
    # RFC 2543 hold (c=0.0.0.0) with sendrecv: we have nowhere to send, so answer recvonly.
    answer_direction = direction_of(send and not hold_address, receive)
    section = _audio_section(policy, formats, _format_events(events) if te_pt is not None else None,
                             answer_direction, offered.proto, (srtp[1],) if srtp else ())
    negotiated = NegotiatedMedia(
        media_index=index, remote_address=address, remote_port=offered.port, codec=codec,
        payload_type=pt, telephone_event_pt=te_pt, telephone_events=events,
        comfort_noise_pt=cn_pt, receive_payload_types={p: e for p, e in formats},
        ptime=_send_ptime(offer, offered, policy.ptime),
        send=send and not hold_address, receive=receive,
        srtp=SrtpKeys(srtp[0].suite, local=srtp[1].keys[0], remote=srtp[0].keys[0])
        if srtp else None,
        remote_hold=not their_receive or hold_address)
    return section, negotiated


# --- per-call state ------------------------------------------------------------------------

class MediaSession:
    """Our side of one call's SDP exchanges: the o= line, its version, and our SRTP keys.

    The version goes up by one whenever an SDP we send differs from the previous one (a new
    offer that changes something, or a changed answer) and stays put when it is identical, as
    RFC 3264 section 8 requires (a session-timer re-INVITE repeats the same SDP).
    """

    def __init__(self, policy: MediaPolicy, *, random_bytes: RandomBytes = secrets.token_bytes,
                 session_id: int | None = None) -> None:
        self.policy = policy
        self._random_bytes = random_bytes
        if session_id is None:
            session_id = int.from_bytes(random_bytes(8), "big") >> 1  # fits a signed 64-bit
        self._origin = Origin(policy.username, session_id, 0, policy.address,
                              policy.address_type)
        self._last_body: str | None = None
        self._keys: dict[str, Crypto] = {}
        self._last_offer: SessionDescription | None = None

    @property
    def origin(self) -> Origin:
        return self._origin

    def key(self, tag: int, suite: str) -> Crypto:
        """Our key for `suite`, made on first use and kept for the call (re-INVITEs included)."""
        if suite not in self._keys:
            self._keys[suite] = new_crypto(tag, suite, self._random_bytes)
        return replace(self._keys[suite], tag=tag)

    def create_offer(self, direction: Direction = "sendrecv") -> SessionDescription:
        """A new offer: initial INVITE, re-INVITE (hold/resume), or a 200 to a bodiless INVITE."""
        keys: tuple[Crypto, ...] = ()
        if self.policy.srtp != "off":
            keys = tuple(self.key(tag, suite)
                         for tag, suite in enumerate(self.policy.srtp_suites, 1))
        offer = self._stamp(build_offer(self.policy, self._origin, keys, direction))
        self._last_offer = offer
        return offer

    def accept_answer(self, answer: SessionDescription) -> NegotiatedMedia:
        """The far end's answer to our last offer."""
        if self._last_offer is None:
            raise SdpError("an answer arrived but we made no offer")
        return accept_answer(self._last_offer, answer)

    def create_answer(self, offer: SessionDescription, direction: Direction = "sendrecv",
                      ) -> tuple[SessionDescription, NegotiatedMedia]:
        """Answer a far-end offer (INVITE, re-INVITE or UPDATE)."""
        answer, negotiated = answer_offer(offer, self.policy, self._origin, self.key, direction)
        return self._stamp(answer), negotiated

    def _stamp(self, sdp: SessionDescription) -> SessionDescription:
        body = sdp.with_origin_version(0).serialize()
        if body != self._last_body:
            self._origin = replace(self._origin, session_version=self._origin.session_version + 1)
            self._last_body = body
        return sdp.with_origin_version(self._origin.session_version)
