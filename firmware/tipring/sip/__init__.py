"""Sans-IO SIP (RFC 3261): messages, URIs, header values, stream framing and UAS checks.

Everything here is pure: bytes and `now` in, values and bytes out. Sockets, timers and threads
live in `tipring.runtime`. `SipParseError` is the one exception bad input raises.
"""

from .fields import Headers
from .framing import FramingError, KeepAlive, StreamFramer
from .grammar import Params, SipParseError
from .headers import CSeq, MediaType, NameAddr, Via
from .message import (
    Request,
    RequestHead,
    Response,
    build_response,
    new_tag,
    parse_message,
    serialize,
)
from .uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri
from .validate import UasPolicy, check_request, check_response, response_to_error

__all__ = [
    "AbsoluteUri",
    "CSeq",
    "FramingError",
    "Headers",
    "KeepAlive",
    "MediaType",
    "NameAddr",
    "Params",
    "Request",
    "RequestHead",
    "Response",
    "SipParseError",
    "SipUri",
    "StreamFramer",
    "TelUri",
    "UasPolicy",
    "Uri",
    "Via",
    "build_response",
    "check_request",
    "check_response",
    "new_tag",
    "parse_message",
    "parse_uri",
    "response_to_error",
    "serialize",
]
