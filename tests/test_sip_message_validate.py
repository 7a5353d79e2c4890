"""UAS request checks (RFC 3261 8.2): each names its response, in the RFC's order."""

from __future__ import annotations

import logging

import pytest

from tipring.sip import Request, Response, UasPolicy, check_request, check_response, parse_message

BASE = [
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
    "Max-Forwards: 70",
    "To: <sip:bob@biloxi.example.com>",
    "From: <sip:alice@atlanta.example.com>;tag=1928301774",
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
]


def request(method: str = "INVITE", *extra: str, uri: str = "sip:bob@biloxi.example.com", body: bytes = b"", cseq: str | None = None, drop: tuple[str, ...] = ()) -> Request:
    lines = [f"{method} {uri} SIP/2.0"]
    lines += [line for line in BASE if line.split(":")[0] not in drop]
    if "CSeq" not in drop:
        lines.append(f"CSeq: 1 {cseq or method}")
    lines += list(extra)
    lines.append(f"Content-Length: {len(body)}")
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    assert isinstance(message, Request)
    return message


def verdict(message: Request, policy: UasPolicy | None = None) -> tuple[int, str] | None:
    rejection = check_request(message) if policy is None else check_request(message, policy)
    return None if rejection is None else (rejection.status, rejection.reason)


def test_plain_invite_passes() -> None:
    sdp = b"v=0\r\n"
    assert verdict(request("INVITE", "Content-Type: application/sdp", body=sdp)) is None


def test_method_checks() -> None:
    rejection = check_request(request("SUBSCRIBE"))
    assert (rejection.status, rejection.reason) == (405, "Method Not Allowed")
    assert "INVITE" in rejection.allow and "SUBSCRIBE" not in rejection.allow
    assert verdict(request("FROBNICATE")) == (501, "Not Implemented")
    assert verdict(request("SUBSCRIBE"), UasPolicy(allowed_methods=("SUBSCRIBE",))) is None


def test_method_is_judged_before_headers() -> None:
    # An unknown method with missing headers: 501 first (RFC 3261 8.2.1 comes before 8.2.2).
    assert verdict(request("FROBNICATE", drop=("To", "From")))[0] == 501


def test_missing_headers() -> None:
    assert verdict(request(drop=("Call-ID",))) == (400, "Missing Call-ID header")
    assert verdict(request(drop=("From", "CSeq"))) == (400, "Missing From, CSeq headers")
    assert verdict(request(drop=("Max-Forwards",))) is None  # RFC 2543 compatibility


def test_bad_lazy_header_is_a_400() -> None:
    assert verdict(request("OPTIONS", "Require: a b"))[0] == 400


def test_require_and_supported() -> None:
    rejection = check_request(request("INVITE", "Require: 100rel, timer"), UasPolicy(supported_options=("timer",)))
    assert (rejection.status, rejection.unsupported) == (420, ["100rel"])
    assert verdict(request("INVITE", "Require: TIMER"), UasPolicy(supported_options=("timer",))) is None
    assert verdict(request("CANCEL", "Require: 100rel")) is None  # ignored on CANCEL


def test_uri_schemes() -> None:
    assert verdict(request(uri="tel:+12015550123")) is None
    assert verdict(request(uri="sips:bob@biloxi.example.com")) is None
    assert verdict(request(uri="mailto:bob@biloxi.example.com"))[0] == 416
    assert verdict(request(uri="tel:+12015550123"), UasPolicy(uri_schemes=("sip",)))[0] == 416


def test_bodies() -> None:
    assert verdict(request("INVITE", body=b"v=0\r\n")) == (400, "Missing Content-Type header")
    rejection = check_request(request("BYE", "Content-Type: application/sdp", body=b"v=0\r\n"))
    assert rejection.status == 415
    rejection = check_request(request("INFO", "Content-Type: text/plain", body=b"x"))
    assert rejection.status == 415 and rejection.headers.get("Accept") == "application/dtmf-relay, application/dtmf"
    gzip = request("INVITE", "Content-Type: application/sdp", "Content-Encoding: gzip", body=b"x")
    rejection = check_request(gzip)
    assert rejection.status == 415 and rejection.headers.get("Accept-Encoding") == "identity"
    notify = request("NOTIFY", "Content-Type: application/simple-message-summary", body=b"Messages-Waiting: yes\r\n")
    assert verdict(notify) is None


def test_accept_on_invite() -> None:
    assert verdict(request("INVITE", "Accept: application/*")) is None
    assert verdict(request("INVITE", "Accept: */*")) is None
    assert verdict(request("INVITE", "Accept: text/html, Application/SDP")) is None
    assert verdict(request("INVITE", "Accept: text/html"))[0] == 406
    assert verdict(request("INVITE", "Accept:"))[0] == 406  # an empty Accept accepts nothing
    assert verdict(request("OPTIONS", "Accept: text/html")) is None


def test_max_forwards_zero() -> None:
    assert verdict(request("OPTIONS")) is None
    zero = parse_message(bytes(request("OPTIONS")).replace(b"Max-Forwards: 70", b"Max-Forwards: 0"))
    assert verdict(zero) is None
    assert verdict(zero, UasPolicy(proxy=True)) == (483, "Too Many Hops")
    huge = parse_message(bytes(request("OPTIONS")).replace(b"Max-Forwards: 70", b"Max-Forwards: 300"))
    assert verdict(huge, UasPolicy(proxy=True)) is None  # out of range: treated as absent


@pytest.mark.parametrize("value", ["seventy", "7O", "-1", "", "\u0663"])
def test_max_forwards_that_is_not_a_number_is_400(value: str) -> None:
    bad = parse_message(bytes(request("OPTIONS")).replace(b"Max-Forwards: 70",
                                                          f"Max-Forwards: {value}".encode()))
    assert verdict(bad) == (400, "Bad Max-Forwards header")


def test_rejection_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="tipring.sip"):
        check_request(request("FROBNICATE"))
    assert [r.getMessage() for r in caplog.records] == ["rejecting FROBNICATE request: 501 Not Implemented"]


def test_check_response() -> None:
    good = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b@x>;tag=2\r\nFrom: <sip:a@x>;tag=1\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n"
    response = parse_message(good)
    assert isinstance(response, Response) and check_response(response) is None
    assert check_response(parse_message(good.replace(b"Call-ID: c\r\n", b""))) == "missing Call-ID"
    assert check_response(parse_message(good.replace(b"SIP/2.0 200", b"SIP/3.0 200"))) == "unsupported SIP version"
    no_via = parse_message(good.replace(b"Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n", b""))
    assert check_response(no_via) == "response must carry exactly one Via"
