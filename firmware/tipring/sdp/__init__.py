"""SDP for TipRing: parse/serialize (RFC 4566), SDES crypto (RFC 4568), offer/answer (RFC 3264).

Pure layer: no sockets, clocks or SIP. The SIP session hands us bodies and gets bodies back;
`NegotiatedMedia` goes to the media engine.
"""

from .crypto import SUITES, Crypto, KeyParams, new_crypto, parse_crypto
from .model import (
    DIRECTIONS,
    STATIC_PAYLOAD_TYPES,
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
    parse_sdp,
    redact,
)
from .negotiation import (
    CODEC_PAYLOAD_TYPES,
    SUPPORTED_EVENTS,
    MediaPolicy,
    MediaSession,
    NegotiatedMedia,
    NotAcceptable,
    SrtpKeys,
    accept_answer,
    answer_offer,
    build_offer,
)

__all__ = [
    "CODEC_PAYLOAD_TYPES",
    "DIRECTIONS",
    "STATIC_PAYLOAD_TYPES",
    "SUITES",
    "SUPPORTED_EVENTS",
    "Attribute",
    "Connection",
    "Crypto",
    "Direction",
    "KeyParams",
    "MediaDescription",
    "MediaPolicy",
    "MediaSession",
    "NegotiatedMedia",
    "NotAcceptable",
    "Origin",
    "RtpMap",
    "SdpError",
    "SessionDescription",
    "SrtpKeys",
    "accept_answer",
    "answer_offer",
    "build_offer",
    "new_crypto",
    "parse_crypto",
    "parse_sdp",
    "redact",
]
