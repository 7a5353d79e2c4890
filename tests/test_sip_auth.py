"""Digest authentication: RFC worked examples as oracles, then the SIP retry rules."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tipring.config import Secret
from tipring.sip.auth import (
    AuthError,
    AuthFailed,
    DigestClient,
    digest_response,
    parse_auth_header,
    parse_challenges,
)

# RFC 7616 section 3.9.1 (values from the RFC text).
RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC7616_SHA256 = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
RFC7616_MD5 = "8ca523f5e9506fed4657c9700eebdbec"


def rfc7616_challenge(algorithm: str) -> str:
    # Laid out over several lines with odd spacing, as in the RFC.
    return (f'Digest\r\n    realm="http-auth@example.org",\r\n    qop="auth, auth-int",\r\n'
            f'    algorithm={algorithm},\r\n    nonce="{RFC7616_NONCE}",\r\n'
            f'    opaque="{RFC7616_OPAQUE}"')


def cnonces(*values: str) -> Iterator[str]:
    yield from values
    raise AssertionError("more cnonces drawn than the test expected")


def client(password: Secret | str = "Circle of Life", *values: str,
           user: str = "Mufasa") -> DigestClient:
    source = cnonces(*(values or (RFC7616_CNONCE,)))
    return DigestClient(user, password, cnonce_source=lambda: next(source))


def params(header_value: str) -> dict[str, str]:
    [(scheme, items)] = parse_auth_header(header_value)
    assert scheme == "Digest"
    return dict(items)


def h(name: str, text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.new(name, data).hexdigest()


# --- RFC examples --------------------------------------------------------------------------

def test_rfc7616_sha256_is_chosen_over_md5_and_matches_the_rfc() -> None:
    answers = client().authorize(
        [("WWW-Authenticate", rfc7616_challenge("SHA-256")),
         ("WWW-Authenticate", rfc7616_challenge("MD5"))],
        "GET", "/dir/index.html", sent=())
    [(name, value)] = answers
    assert name == "Authorization"
    got = params(value)
    assert got["response"] == RFC7616_SHA256
    assert got["algorithm"] == "SHA-256"
    assert (got["username"], got["realm"], got["uri"]) == (
        "Mufasa", "http-auth@example.org", "/dir/index.html")
    assert (got["qop"], got["nc"], got["cnonce"]) == ("auth", "00000001", RFC7616_CNONCE)
    assert got["opaque"] == RFC7616_OPAQUE


def test_rfc8760_order_does_not_depend_on_header_order() -> None:
    answers = client().authorize(
        [("WWW-Authenticate", rfc7616_challenge("MD5")),
         ("WWW-Authenticate", rfc7616_challenge("SHA-256"))],
        "GET", "/dir/index.html", sent=())
    assert params(answers[0][1])["response"] == RFC7616_SHA256


def test_rfc7616_md5() -> None:
    [(_, value)] = client().authorize(
        [("WWW-Authenticate", rfc7616_challenge("MD5"))], "GET", "/dir/index.html", sent=())
    assert params(value)["response"] == RFC7616_MD5
    assert params(value)["algorithm"] == "MD5"


def test_rfc2617_section_3_5_example() -> None:
    challenge = ('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                 'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
                 'opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    [(_, value)] = client("Circle Of Life", "0a4f113b").authorize(
        [("WWW-Authenticate", challenge)], "GET", "/dir/index.html", sent=())
    got = params(value)
    assert got["response"] == "6629fae49393a05397450978507c4ef1"
    assert got["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"


def test_rfc7616_userhash_username() -> None:
    # RFC 7616 section 3.9.2 gives the hashed username for this user and realm (SHA-512-256).
    challenge = ('Digest realm="api@example.org", qop=auth, algorithm=SHA-512-256, '
                 'nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", userhash=true')
    c = client("Secret, or not?", "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
               user="J\u00e4s\u00f8n Doe")
    got = params(c.authorize([("WWW-Authenticate", challenge)], "GET", "/doc/", sent=())[0][1])
    assert got["username"] == "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b"
    assert got["userhash"] == "true"


# --- response variants against the formulas written out independently ---------------------

def test_sess_variant_hashes_nonce_and_cnonce_into_ha1() -> None:
    challenge = 'Digest realm="sip.example", nonce="abc", qop="auth", algorithm=SHA-256-sess'
    got = params(client("pw", "cn1", user="alice").authorize(
        [("WWW-Authenticate", challenge)], "REGISTER", "sip:sip.example", sent=())[0][1])
    ha1 = h("sha256", h("sha256", "alice:sip.example:pw") + ":abc:cn1")
    ha2 = h("sha256", "REGISTER:sip:sip.example")
    assert got["response"] == h("sha256", f"{ha1}:abc:00000001:cn1:auth:{ha2}")
    assert got["algorithm"] == "SHA-256-sess"


def test_md5_sess() -> None:
    value = digest_response(algorithm="MD5-sess", username="u", realm="r", password="p",
                            nonce="n", method="INVITE", uri="sip:b@r", qop="auth", nc=1,
                            cnonce="c")
    ha1 = h("md5", h("md5", "u:r:p") + ":n:c")
    assert value == h("md5", f"{ha1}:n:00000001:c:auth:" + h("md5", "INVITE:sip:b@r"))


def test_auth_int_only_when_it_is_the_only_qop_and_it_hashes_the_body() -> None:
    body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    challenge = 'Digest realm="r", nonce="n", qop="auth-int"'
    got = params(client("p", "c", user="u").authorize(
        [("WWW-Authenticate", challenge)], "INVITE", "sip:b@r", body, sent=())[0][1])
    assert got["qop"] == "auth-int"
    ha2 = h("md5", "INVITE:sip:b@r:" + h("md5", body))
    assert got["response"] == h("md5", h("md5", "u:r:p") + f":n:00000001:c:auth-int:{ha2}")
    other = params(client("p", "c", user="u").authorize(
        [("WWW-Authenticate", challenge)], "INVITE", "sip:b@r", body + b"x", sent=())[0][1])
    assert other["response"] != got["response"]


def test_auth_preferred_when_both_offered() -> None:
    got = params(client("p", "c").authorize(
        [("WWW-Authenticate", 'Digest realm="r", nonce="n", qop="auth-int,auth"')],
        "INVITE", "sip:b@r", b"body", sent=())[0][1])
    assert got["qop"] == "auth"


def test_rfc2069_style_without_qop() -> None:
    got = params(client("p", "unused", user="u").authorize(
        [("WWW-Authenticate", 'Digest realm="r", nonce="n"')], "REGISTER", "sip:r", sent=())[0][1])
    assert "qop" not in got and "nc" not in got and "cnonce" not in got
    expected = h("md5", h("md5", "u:r:p") + ":n:" + h("md5", "REGISTER:sip:r"))
    assert got["response"] == expected


# --- SIP retry rules -----------------------------------------------------------------------

CHALLENGE = 'Digest realm="sip.example", nonce="{nonce}", qop="auth", algorithm=MD5{extra}'


def challenge(nonce: str, extra: str = "", header: str = "WWW-Authenticate") -> tuple[str, str]:
    return (header, CHALLENGE.format(nonce=nonce, extra=extra))


def test_stale_nonce_retries_once_with_the_new_nonce() -> None:
    c = client("p", "c1", "c2", "c3")
    first = c.authorize([challenge("n1")], "REGISTER", "sip:sip.example", sent=())
    again = c.authorize([challenge("n2", ", stale=TRUE")], "REGISTER", "sip:sip.example",
                        sent=first)
    got = params(again[0][1])
    assert (got["nonce"], got["nc"], got["cnonce"]) == ("n2", "00000001", "c2")
    with pytest.raises(AuthFailed, match="stale"):
        c.authorize([challenge("n3", ", stale=true")], "REGISTER", "sip:sip.example", sent=again)


def test_stale_then_success_then_wrong_is_still_caught() -> None:
    c = client("p", "c1", "c2")
    first = c.authorize([challenge("n1")], "REGISTER", "sip:sip.example", sent=())
    second = c.authorize([challenge("n2", ", stale=true")], "REGISTER", "sip:sip.example",
                         sent=first)
    with pytest.raises(AuthFailed, match=re.escape("wrong credentials for realm 'sip.example'")):
        c.authorize([challenge("n3")], "REGISTER", "sip:sip.example", sent=second)


def test_wrong_credentials_stop_instead_of_looping(caplog: pytest.LogCaptureFixture) -> None:
    c = client("hunter2-secret", "c1", "c2")
    first = c.authorize([challenge("n1")], "REGISTER", "sip:sip.example", sent=())
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthFailed) as failure:
        c.authorize([challenge("n2")], "REGISTER", "sip:sip.example", sent=first)
    assert failure.value.reason == "wrong credentials for realm 'sip.example'"
    assert "hunter2-secret" not in caplog.text
    # A later attempt (the registration's back-off) starts afresh rather than failing forever.
    assert c.authorize([challenge("n3")], "REGISTER", "sip:sip.example", sent=())


def test_a_concurrent_first_challenge_is_not_taken_for_a_wrong_password() -> None:
    c = client("p", "c1", "c2")
    c.authorize([challenge("n1")], "REGISTER", "sip:sip.example", sent=())
    # An INVITE sent without credentials is challenged while the REGISTER is in flight.
    [(_, value)] = c.authorize([challenge("n2")], "INVITE", "sip:bob@sip.example", sent=())
    assert params(value)["nonce"] == "n2"


def test_proxy_challenge_answered_with_proxy_authorization() -> None:
    [(name, value)] = client("p", "c1").authorize(
        [challenge("n1", header="Proxy-Authenticate"), ("Via", "SIP/2.0/UDP x")],
        "INVITE", "sip:bob@sip.example", sent=())
    assert name == "Proxy-Authorization"
    assert params(value)["uri"] == "sip:bob@sip.example"


def test_header_names_are_case_insensitive() -> None:
    [(name, _)] = client("p", "c1").authorize(
        [("proxy-authenticate", CHALLENGE.format(nonce="n", extra=""))], "INVITE", "sip:b@x",
        sent=())
    assert name == "Proxy-Authorization"


def test_two_realms_get_one_answer_each() -> None:
    c = client("p", "c1", "c2")
    answers = c.authorize(
        [("Proxy-Authenticate", 'Digest realm="edge.example", nonce="a", qop=auth'),
         ("Proxy-Authenticate", 'Digest realm="core.example", nonce="b", qop=auth')],
        "INVITE", "sip:bob@core.example", sent=())
    assert [(name, params(value)["realm"]) for name, value in answers] == [
        ("Proxy-Authorization", "edge.example"), ("Proxy-Authorization", "core.example")]
    assert [params(v)["cnonce"] for _, v in answers] == ["c1", "c2"]
    # Only the core realm challenges again, with a fresh nonce that is not stale: wrong password
    # for that realm only is still a stop.
    with pytest.raises(AuthFailed, match=re.escape("core.example")):
        c.authorize([("Proxy-Authenticate", 'Digest realm="core.example", nonce="c", qop=auth')],
                    "INVITE", "sip:bob@core.example", sent=answers)


def test_preauthorize_reuses_the_nonce_with_the_next_nc() -> None:
    c = client("p", "c1", "c2", user="u")
    c.authorize([challenge("n1")], "REGISTER", "sip:sip.example", sent=())
    for expected_nc in range(2, 18):
        [(name, value)] = c.preauthorize("REGISTER", "sip:sip.example")
        got = params(value)
        assert name == "Authorization"
        assert (got["nonce"], got["cnonce"], got["nc"]) == ("n1", "c1", f"{expected_nc:08x}")
    assert got["nc"] == "00000011"
    ha1 = h("md5", "u:sip.example:p")
    assert got["response"] == h(
        "md5", f"{ha1}:n1:00000011:c1:auth:" + h("md5", "REGISTER:sip:sip.example"))
    # The registrar let the nonce expire and says so without stale: that is not a wrong password.
    [(_, value)] = c.authorize([challenge("n2")], "REGISTER", "sip:sip.example",
                               sent=[(name, value)])
    assert params(value)["nonce"] == "n2"


def test_preauthorize_skips_realms_without_qop() -> None:
    c = client("p", "c1")
    c.authorize([("WWW-Authenticate", 'Digest realm="old", nonce="n"')], "REGISTER", "sip:x",
                sent=())
    assert c.preauthorize("REGISTER", "sip:x") == []


def test_preauthorize_without_a_challenge_has_nothing() -> None:
    assert client().preauthorize("REGISTER", "sip:x") == []


def test_forget_drops_cached_nonces() -> None:
    c = client("p", "c1")
    c.authorize([challenge("n1")], "REGISTER", "sip:sip.example", sent=())
    c.forget()
    assert c.preauthorize("REGISTER", "sip:sip.example") == []


def test_unknown_algorithm_alone_is_a_failure_but_ignored_beside_md5() -> None:
    with pytest.raises(AuthFailed, match="offers nothing we support"):
        client().authorize([("WWW-Authenticate",
                             'Digest realm="r", nonce="n", algorithm=AKAv1-MD5')],
                           "REGISTER", "sip:r", sent=())
    [(_, value)] = client("p", "c").authorize(
        [("WWW-Authenticate", 'Digest realm="r", nonce="n", algorithm=AKAv1-MD5'),
         ("WWW-Authenticate", 'Digest realm="r", nonce="m", algorithm=MD5')],
        "REGISTER", "sip:r", sent=())
    assert params(value)["nonce"] == "m"


def test_only_other_schemes_is_a_failure() -> None:
    with pytest.raises(AuthFailed, match="no Digest challenge"):
        client().authorize([("WWW-Authenticate", 'Basic realm="r"')], "REGISTER", "sip:r", sent=())


def test_quotes_in_username_are_escaped() -> None:
    [(_, value)] = client("p", "c", user='a"b\\c').authorize(
        [challenge("n")], "REGISTER", "sip:x", sent=())
    assert params(value)["username"] == 'a"b\\c'


# --- secrets -------------------------------------------------------------------------------

@pytest.mark.parametrize("password", ["s3cr3t-pass", Secret("s3cr3t-pass")])
def test_password_never_shown(password: Secret | str) -> None:
    c = client(password, "c1", "c2")
    first = c.authorize([challenge("n1")], "REGISTER", "sip:sip.example", sent=())
    assert "s3cr3t-pass" not in repr(c) + str(c) + repr(first)
    with pytest.raises(AuthFailed) as failure:
        c.authorize([challenge("n2")], "REGISTER", "sip:sip.example", sent=first)
    assert "s3cr3t-pass" not in str(failure.value) + repr(failure.value)
    assert "s3cr3t-pass" not in repr(vars(c))


def test_secret_and_plain_password_give_the_same_answer() -> None:
    a = client("pw", "c").authorize([challenge("n")], "REGISTER", "sip:x", sent=())
    b = client(Secret("pw"), "c").authorize([challenge("n")], "REGISTER", "sip:x", sent=())
    assert a == b


# --- parsing -------------------------------------------------------------------------------

def test_challenge_parsing_is_robust_to_case_order_spacing_and_escapes() -> None:
    [parsed] = parse_challenges(
        "www-authenticate",
        'dIgEsT   OPAQUE = "o" ,qop="auth-int , AUTH",NONCE="n\\"1",  Realm="r\\\\x",'
        ' future-param="kept", stale=False, algorithm=sha-256-SESS, domain="sip:a sip:b",'
        ' userhash=TRUE')
    assert parsed.header == "WWW-Authenticate"
    assert (parsed.realm, parsed.nonce, parsed.opaque) == ("r\\x", 'n"1', "o")
    assert parsed.qop == ("auth-int", "auth")
    assert parsed.algorithm == "SHA-256-SESS"
    assert parsed.domain == ("sip:a", "sip:b")
    assert (parsed.stale, parsed.userhash) == (False, True)
    assert parsed.extra == (("future-param", "kept"),)


def test_non_digest_schemes_in_the_same_value_are_skipped() -> None:
    parsed = parse_challenges(
        "Proxy-Authenticate",
        'Negotiate abc+/==, Basic realm="b", Digest realm="d", nonce="n", '
        'NTLM, Bearer realm="x", scope="y"')
    assert [(c.realm, c.nonce, c.header) for c in parsed] == [("d", "n", "Proxy-Authenticate")]


def test_algorithm_defaults_to_md5() -> None:
    [parsed] = parse_challenges("WWW-Authenticate", 'Digest realm="r", nonce="n"')
    assert parsed.algorithm == "MD5" and parsed.qop == ()


@pytest.mark.parametrize("value", [
    'Digest realm="r", nonce="n',           # unterminated quoted string
    'Digest realm="r", nonce="n\\',         # escape at the end
    'Digest nonce="n"',                     # no realm
    'Digest realm="r"',                     # no nonce
    'Digest realm="r", realm="s", nonce="n"',  # duplicate
    'Digest realm="r", nonce="n", stale=perhaps',
    'Digest realm="r" nonce="n"',           # missing comma
    'Digest realm=, nonce="n"',             # no value
    'Digest "r", nonce="n"',                # value without a name
    'realm="r", nonce="n"',                 # no scheme
    '= Digest',
])
def test_bad_challenges_raise_auth_error(value: str) -> None:
    with pytest.raises(AuthError):
        parse_challenges("WWW-Authenticate", value)


def test_bad_challenge_surfaces_as_auth_error_from_authorize() -> None:
    with pytest.raises(AuthError):
        client().authorize([("WWW-Authenticate", 'Digest realm="r"')], "REGISTER", "sip:r", sent=())


def test_not_a_challenge_header() -> None:
    with pytest.raises(AuthError):
        parse_challenges("Authorization", 'Digest realm="r", nonce="n"')


@given(st.text(alphabet=st.sampled_from(list('Digest realmnoce=",\\ \t\r\nqopauth-int')),
               max_size=60))
def test_arbitrary_values_raise_only_auth_error(value: str) -> None:
    try:
        parse_challenges("WWW-Authenticate", value)
    except AuthError:
        pass


@given(st.text(max_size=40))
def test_arbitrary_unicode_raises_only_auth_error(value: str) -> None:
    try:
        parse_challenges("WWW-Authenticate", "Digest " + value)
    except AuthError:
        pass


def test_sent_must_be_given() -> None:
    # Forgetting what the challenged request carried would make wrong passwords loop forever.
    with pytest.raises(TypeError):
        client().authorize([challenge("n")], "REGISTER", "sip:x")  # type: ignore[call-arg]


def test_realms_met_one_after_the_other_are_all_answered_on_the_retry() -> None:
    """RFC 3261 22.3: an outbound proxy's 407, then the registrar's 401. The second retry
    must still carry the proxy's credentials (renewed: nc 2), or the proxy challenges again
    and the two realms take turns for ever."""
    c = client("p", "c1", "c2", user="u")
    proxy = ("Proxy-Authenticate", 'Digest realm="edge.example", nonce="a", qop=auth')
    registrar = ("WWW-Authenticate", 'Digest realm="core.example", nonce="b"')
    first = c.authorize([proxy], "REGISTER", "sip:core.example", sent=())
    assert [n for n, _ in first] == ["Proxy-Authorization"]
    second = c.authorize([registrar], "REGISTER", "sip:core.example", sent=first)
    assert [(n, params(v)["realm"]) for n, v in second] == [
        ("Proxy-Authorization", "edge.example"), ("Authorization", "core.example")]
    carried = params(second[0][1])
    assert (carried["nonce"], carried["nc"], carried["cnonce"]) == ("a", "00000002", "c1")
    ha1 = h("md5", "u:edge.example:p")
    ha2 = h("md5", "REGISTER:sip:core.example")
    assert carried["response"] == h("md5", f"{ha1}:a:00000002:c1:auth:{ha2}")
    # The registrar now accepts; were its password wrong, a second 401 to that retry is
    # caught (the proxy's credentials riding along change nothing about that).
    with pytest.raises(AuthFailed, match=re.escape("core.example")):
        c.authorize([("WWW-Authenticate", 'Digest realm="core.example", nonce="c"')],
                    "REGISTER", "sip:core.example", sent=second)


def test_credentials_for_a_nonce_we_no_longer_hold_are_not_carried() -> None:
    c = client("p", "c1", "c2", user="u")
    old = ('Digest username="u", realm="edge.example", nonce="old", uri="sip:x", '
           'response="0", qop=auth, nc=00000001, cnonce="z"')
    stranger = [("Proxy-Authorization", old)]
    answers = c.authorize([("WWW-Authenticate", 'Digest realm="core.example", nonce="b"')],
                          "REGISTER", "sip:core.example", sent=stranger)
    assert [n for n, _ in answers] == ["Authorization"]
