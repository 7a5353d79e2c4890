"""RFC 4475 torture messages: one test per message, each checking what the RFC says of it.

Valid messages must parse to the right values; invalid ones must be refused with the response
the RFC names (400 when a response can be formed, else dropped); application-layer ones must
get the response the RFC names from `check_request` / `check_response`. Where the RFC lets an
element choose between rejecting and being lenient, the comment says which choice is made.
Messages are read in place from ../shared/vectors/sip/rfc4475 (CRLF preserved).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tipring.sip import (
    AbsoluteUri,
    Request,
    Response,
    SipParseError,
    SipUri,
    StreamFramer,
    UasPolicy,
    check_request,
    check_response,
    parse_message,
    response_to_error,
    serialize,
)
from tipring.sip.framing import FramingError
from tipring.sip.grammar import unquote
from tipring.sip.headers import parse_delta_seconds, parse_max_forwards, parse_name_addr

RFC4475 = Path(__file__).resolve().parent.parent.parent / "shared" / "vectors" / "sip" / "rfc4475"
REGISTRAR = UasPolicy(allowed_methods=("REGISTER", "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"))
PROXY = UasPolicy(proxy=True)


def raw(name: str) -> bytes:
    path = RFC4475 / f"{name}.dat"
    if not path.is_file():
        pytest.fail(f"RFC 4475 vector missing: {path}")
    return path.read_bytes()


def request(name: str) -> Request:
    message = parse_message(raw(name))
    assert isinstance(message, Request)
    return message


def response(name: str) -> Response:
    message = parse_message(raw(name))
    assert isinstance(message, Response)
    return message


def refused(name: str) -> SipParseError:
    with pytest.raises(SipParseError) as info:
        parse_message(raw(name))
    return info.value


def answer_to(name: str) -> Response:
    """The 400 built from a refused request: it must copy what RFC 3261 8.2.6 says."""
    error = refused(name)
    assert error.status == 400
    rejection = response_to_error(error)
    assert rejection is not None, "the RFC asks for a 400, so the request must be answerable"
    assert rejection.status == 400 and rejection.reason == error.reason
    assert rejection.headers.lines("Via") == error.request.headers.lines("Via")
    assert rejection.headers.get("Call-ID") == error.request.headers.get("Call-ID")
    assert rejection.headers.get("CSeq") == error.request.headers.get("CSeq")
    assert serialize(rejection).startswith(b"SIP/2.0 400 " + error.reason.encode() + b"\r\n")
    return rejection


def status(message: Request, policy: UasPolicy | None = None) -> int | None:
    rejection = check_request(message) if policy is None else check_request(message, policy)
    return None if rejection is None else rejection.status


# --- 3.1.1 Valid messages -------------------------------------------------------------------


def test_wsinv() -> None:
    m = request("wsinv")
    assert m.method == "INVITE"
    assert isinstance(m.uri, SipUri) and m.uri.user == "vivekg" and "unknownparam" in m.uri.params
    assert m.to.uri.host == "chair-dnrc.example.com" and m.to.tag == "1918181833n"
    assert m.from_.display_name == 'J Rosenberg \\"' and m.from_.tag == "98asjd8"
    assert m.max_forwards == 68
    assert (m.cseq.number, m.cseq.method) == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in m.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.via[0].protocol == "SIP/2.0"
    assert m.headers.get("Subject") == ""
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (route,) = m.route
    assert route.uri.host == "services.example.com" and route.uri.lr
    assert route.uri.params["unknownwith"] == "value" and route.uri.params["unknown-no-value"] is None
    (contact,) = m.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.params["newparam"] == "newvalue" and contact.params["secondparam"] is None
    assert contact.q == 0.33
    assert m.content_type.mime == "application/sdp" and len(m.body) == 150
    assert status(m) is None


def test_intmeth() -> None:
    m = request("intmeth")
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.uri.host == "example.com"
    assert m.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"  # quoted-pairs of control chars
    assert m.to.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert unquote(m.from_.params["fromParam''~+*_!.-%"]) == "работающий"
    assert m.from_.tag == "_token~1'+`*%!-."
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.cseq.method == m.method and m.max_forwards == 255
    assert m.via[0].branch == "z9hG4bK-.!%66*_+`'~"  # % is not an escape in a token
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    # A parser must accept it; the method is unknown to us, so the UAS answers 501.
    assert status(m) == 501


def test_esc01() -> None:
    m = request("esc01")
    assert m.uri.user == "sips:user@example.com" and m.uri.host == "example.net"
    assert m.to.uri.user == "user"
    assert m.from_.uri.user == "I have spaces"
    (contact,) = m.contacts  # the value is on a folded line after an empty "Contact:"
    assert contact.uri.user == "caller"
    assert dict(contact.uri.params) == {"lr": None, "name": "value%41"}  # unescaped once only
    assert m.call_id.startswith("esc01.") and m.content_type.mime == "application/sdp"
    assert status(m) is None


def test_escnull() -> None:
    m = request("escnull")
    assert m.to.uri.user == "null-\x00-null" and m.from_.uri.user == "null-\x00-null"
    assert [c.uri.user for c in m.contacts] == ["\x00", "\x00\x00"]
    assert str(m.contacts[1].uri) == "sip:%00%00@host5.example.com"
    assert status(m) == 405  # an ATA is no registrar ...
    assert status(m, REGISTRAR) is None  # ... a registrar accepts it


def test_esc02() -> None:
    m = request("esc02")
    assert m.method == "RE%47IST%45R" and m.method != "REGISTER"
    assert m.to.display_name == "%Z%45" and m.from_.display_name == "%Z%45"
    assert len(m.contacts) == 2  # "C%6Fntact" is an extension header, not a third Contact
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert m.via[0].branch == "z9hG4bK209%fzsnel234"
    assert status(m) == 501  # an unknown method (RFC 3261 21.5.2)


def test_lwsdisp() -> None:
    m = request("lwsdisp")
    assert m.from_.display_name == "caller" and m.from_.uri.user == "caller"
    assert status(m) is None


def test_longreq() -> None:
    m = request("longreq")
    assert m.to.display_name == "I have a user name of " + "extreme" * 10 + " proportion"
    assert m.to.uri.port == 6000
    assert m.to.uri.params["unknownparam1"] == "very" + "long" * 20 + "value"
    assert m.to.uri.params["longparam" + "name" * 25] == "shortvalue"
    assert m.to.uri.params["very" + "long" * 25 + "ParameterNameWithNoValue"] is None
    assert m.from_.uri.user == "amazinglylongcallername" * 5
    assert m.from_.tag == "12" + "982" * 50 + "424"
    assert m.call_id == "longreq.one" + "really" * 20 + "longcallid"
    name = "Unknown-" + "Long" * 20 + "-Name"
    assert m.headers.get(name).startswith("unknown-" + "long" * 20 + "-value;")
    vias = m.via
    assert len(vias) == 34  # 33 numbered ones in every spelling of Via and v, then one more
    assert [v.host for v in vias[:33]] == [f"sip{n}.example.com" for n in range(33, 0, -1)]
    assert vias[33].received == "192.0.2.5"
    assert vias[33].branch == "very" + "long" * 50 + "branchvalue"
    assert m.contacts[0].uri.user == "amazinglylongcallername" * 5
    assert len(m.body) == 150
    assert status(m) is None


def test_dblreq() -> None:
    m = request("dblreq")
    # RFC 3261 18.3: octets after Content-Length in a datagram are discarded: the INVITE
    # after this REGISTER is not a second request.
    assert m.method == "REGISTER" and m.body == b""
    assert m.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"  # compact "I:"
    assert status(m, REGISTRAR) is None


def test_semiuri() -> None:
    m = request("semiuri")
    assert m.uri.user == "user;par=u@example.net" and m.uri.host == "example.com"
    assert len(m.uri.params) == 0
    assert [a.mime for a in m.accept] == [
        "application/sdp", "application/pkcs7-mime", "multipart/mixed", "multipart/signed",
        "message/sip", "message/sipfrag",
    ]
    assert status(m) is None


def test_transports() -> None:
    m = request("transports")
    assert [v.transport for v in m.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert [v.host for v in m.via] == [f"t{n}.example.com" for n in range(1, 6)]
    assert m.call_id == "transports.kijh4akdnaqjkwendsasfdj"
    assert status(m) is None


def test_mpart01() -> None:
    data = raw("mpart01")
    m = request("mpart01")
    body = data[data.index(b"\r\n\r\n") + 4 :][:553]
    assert m.body == body and len(body) == 553  # passed through, binary part and all
    assert m.content_type.mime == "multipart/mixed"
    assert m.content_type.params["boundary"] == "7a9cbec02ceef655"
    assert m.via[0].has_rport and m.via[0].rport is None and m.via[0].port == 5070
    assert m.route[0].uri.port == 5080
    assert serialize(m).endswith(body)
    assert status(m) == 405  # an ATA takes no MESSAGE ...
    texting = UasPolicy(allowed_methods=("MESSAGE",), body_types={"MESSAGE": ("multipart/mixed",)})
    assert status(m, texting) is None  # ... but the body itself is fine


def test_unreason() -> None:
    m = response("unreason")
    assert m.status == 200
    assert m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    assert check_response(m) is None


def test_noreason() -> None:
    m = response("noreason")
    assert (m.status, m.reason) == (100, "")
    assert check_response(m) is None


# --- 3.1.2 Invalid messages -----------------------------------------------------------------


def test_badinv01() -> None:
    rejection = answer_to("badinv01")
    assert "Via" in rejection.reason
    assert rejection.to.tag is not None  # RFC 3261 8.2.6.2: a To tag is added


def test_clerr() -> None:
    rejection = answer_to("clerr")
    assert rejection.reason == "Content-Length larger than message"
    # On a stream there is nothing to do but wait for the rest.
    framer = StreamFramer()
    assert framer.feed(raw("clerr")) == [] and not framer.closed and framer.buffered > 0


def test_ncl() -> None:
    rejection = answer_to("ncl")
    assert rejection.reason == "Bad Content-Length"
    # On a stream the framing is lost: answer if possible, then close.
    framer = StreamFramer()
    (event,) = framer.feed(raw("ncl"))
    assert isinstance(event, FramingError) and event.fatal and event.request is not None
    assert framer.closed


def test_scalar02() -> None:
    rejection = answer_to("scalar02")
    assert "CSeq" in rejection.reason  # the RFC: 400 "due to the CSeq error"
    head = refused("scalar02").request
    # The other overlarge values are refused by their readers too.
    with pytest.raises(SipParseError):
        parse_max_forwards(head.headers.get("Max-Forwards"))
    with pytest.raises(SipParseError):
        parse_delta_seconds(head.headers.get("Expires"))
    contact = parse_name_addr(head.headers.get("Contact"))
    with pytest.raises(SipParseError):
        _ = contact.expires


def test_scalarlg() -> None:
    error = refused("scalarlg")
    assert "CSeq" in error.reason
    assert error.request is None and response_to_error(error) is None  # a response: drop it


def test_quotbal() -> None:
    rejection = answer_to("quotbal")
    assert "quoted" in rejection.reason
    # The broken To is echoed as it came: no tag can be added to it.
    assert rejection.headers.get("To") == '"Mr. J. User <sip:j.user@example.com>'


def test_ltgtruri() -> None:
    assert answer_to("ltgtruri").reason == "Bad Request-URI"


def test_lwsruri() -> None:
    # The RFC allows ignoring the LWS for sip URIs; rejecting is what it recommends.
    assert answer_to("lwsruri").reason == "Malformed Request-Line"


def test_lwsstart() -> None:
    # "Acceptable to reject ... as malformed": extra SP is refused rather than guessed around.
    assert answer_to("lwsstart").reason == "Malformed Request-Line"


def test_trws() -> None:
    assert answer_to("trws").reason == "Malformed Request-Line"


def test_escruri() -> None:
    # RFC 3261 19.1.1: no headers in a Request-URI; rejecting is "acceptable" per RFC 4475.
    assert answer_to("escruri").reason == "Request-URI must not carry headers"


def test_baddate() -> None:
    m = request("baddate")
    # RFC 4475 3.1.2.12: an element "shouldn't" reject for a bad Date unless it uses the Date;
    # a UAS does not, so the request is processed and only reading the Date fails.
    with pytest.raises(SipParseError):
        _ = m.date
    assert status(m) is None


def test_regbadct() -> None:
    # A URI with ? headers outside <> (RFC 3261 20): 400, as the RFC calls reasonable.
    rejection = answer_to("regbadct")
    assert "Contact" in rejection.reason


def test_badaspec() -> None:
    rejection = answer_to("badaspec")
    assert "To" in rejection.reason and "whitespace" in rejection.reason


def test_baddn() -> None:
    rejection = answer_to("baddn")
    assert "display name" in rejection.reason


def test_badvers() -> None:
    m = request("badvers")
    assert m.version == "SIP/7.0"
    rejection = check_request(m)
    assert (rejection.status, rejection.reason) == (505, "Version Not Supported")


def test_mismatch01() -> None:
    rejection = check_request(request("mismatch01"))
    assert (rejection.status, rejection.reason) == (400, "CSeq method does not match")


def test_mismatch02() -> None:
    m = request("mismatch02")
    assert (m.method, m.cseq.method) == ("NEWMETHOD", "INVITE")
    assert status(m) == 501  # the RFC prefers 501 to 400 here


def test_bigcode() -> None:
    error = refused("bigcode")
    assert error.reason == "Bad Status-Code" and response_to_error(error) is None


# --- 3.2 Transaction layer ------------------------------------------------------------------


def test_badbranch() -> None:
    m = request("badbranch")
    assert m.via[0].branch == "z9hG4bK"
    # The RFC allows a 400 or RFC 2543 matching; we refuse rather than guess.
    rejection = check_request(m)
    assert (rejection.status, rejection.reason) == (400, "Via branch has no transaction identifier")


# --- 3.3 Application layer ------------------------------------------------------------------


def test_insuf() -> None:
    m = request("insuf")
    rejection = check_request(m)
    assert (rejection.status, rejection.reason) == (400, "Missing To, From, Call-ID headers")
    assert rejection.headers.get("CSeq") == "193942 INVITE" and len(rejection.via) == 1


def test_unkscm() -> None:
    m = request("unkscm")
    assert isinstance(m.uri, AbsoluteUri) and m.uri.scheme == "nobodyknowsthisscheme"
    assert status(m) == 416


def test_novelsc() -> None:
    m = request("novelsc")
    assert isinstance(m.uri, AbsoluteUri) and str(m.uri) == "soap.beep://192.0.2.103:3002"
    assert status(m) == 416  # a scheme we never serve is treated as unknown


def test_unksm2() -> None:
    m = request("unksm2")
    assert str(m.to.uri) == "isbn:2983792873" and str(m.from_.uri) == "http://www.example.com"
    assert str(m.contacts[0].uri) == "name:John_Smith"
    assert status(m) == 405
    rejection = check_request(m, REGISTRAR)  # a registrar needs a SIP AOR in To
    assert (rejection.status, rejection.reason) == (400, "To is not a SIP or SIPS address-of-record")


def test_bext01() -> None:
    rejection = check_request(request("bext01"))
    assert (rejection.status, rejection.reason) == (420, "Bad Extension")
    # Proxy-Require is for proxies; a UAS lists the Require tags it lacks.
    assert rejection.unsupported == ["nothingSupportsThis", "nothingSupportsThisEither"]


def test_invut() -> None:
    rejection = check_request(request("invut"))
    assert rejection.status == 415 and rejection.headers.get("Accept") == "application/sdp"


def test_regaut01() -> None:
    m = request("regaut01")
    assert m.headers.get("Authorization") == "NoOneKnowsThisScheme opaque-data=here"
    assert status(m) == 405  # "endpoints choosing not to act as registrars" reject it
    # A registrar passes it on; challenging it (401) is the digest layer's job.
    assert status(m, REGISTRAR) is None


def test_multi01() -> None:
    rejection = answer_to("multi01")
    assert rejection.reason.startswith("Multiple ")
    assert rejection.headers.get("CSeq") == "5 INVITE"  # the first of the repeated fields


def test_mcl01() -> None:
    assert answer_to("mcl01").reason == "Multiple Content-Length headers"
    framer = StreamFramer()
    (event,) = framer.feed(raw("mcl01"))
    assert isinstance(event, FramingError) and event.fatal and framer.closed


def test_bcast() -> None:
    m = response("bcast")
    assert m.via[1].host == "255.255.255.255"
    assert check_response(m) == "response must carry exactly one Via"  # discarded


def test_zeromf() -> None:
    m = request("zeromf")
    assert m.max_forwards == 0
    assert status(m) is None  # an endpoint processes it as if Max-Forwards were positive
    assert status(m, PROXY) == 483  # a proxy answers Too Many Hops


def test_cparam01() -> None:
    (contact,) = request("cparam01").contacts
    # Without <>, ";unknownparam" is a contact parameter, not a URI parameter.
    assert "unknownparam" in contact.params and len(contact.uri.params) == 0
    assert status(request("cparam01"), REGISTRAR) is None


def test_cparam02() -> None:
    (contact,) = request("cparam02").contacts
    assert "unknownparam" in contact.uri.params and len(contact.params) == 0
    assert status(request("cparam02"), REGISTRAR) is None


def test_regescrt() -> None:
    m = request("regescrt")
    (contact,) = m.contacts  # compact "M:"
    assert contact.uri.headers == [("Route", "<sip:sip.example.com>")]
    assert str(contact.uri) == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    assert status(m, REGISTRAR) is None


def test_sdp01() -> None:
    rejection = check_request(request("sdp01"))
    assert rejection.status == 406 and rejection.headers.get("Accept") == "application/sdp"


# --- 3.4 Backward compatibility -------------------------------------------------------------


def test_inv2543() -> None:
    data = raw("inv2543")
    m = request("inv2543")
    # No Content-Length on a datagram: the body is the rest of it (RFC 3261 18.3).
    assert "Content-Length" not in m.headers
    assert m.body == data[data.index(b"\r\n\r\n") + 4 :] and m.body.startswith(b"v=0")
    assert m.via[0].branch is None and m.from_.tag is None and m.max_forwards is None
    assert m.record_route[0].uri.maddr == "ss1.example.com"
    # To is an addr-spec without <>: ";user=phone" is a header parameter there (RFC 3261 20.10).
    assert m.to.params["user"] == "phone" and len(m.to.uri.params) == 0
    assert status(m) is None  # accepted for backward compatibility


def test_every_message_has_a_test() -> None:
    names = {path.stem for path in RFC4475.glob("*.dat")}
    assert len(names) == 49
    tested = {name[5:] for name in dir(sys.modules[__name__]) if name.startswith("test_")}
    assert names <= tested
