"""SIP digest authentication, client side (RFC 3261 section 22, RFC 7616, RFC 8760, RFC 2617).

Sans-IO and independent of the message module: it reads challenge header *values*
(`WWW-Authenticate` from a 401, `Proxy-Authenticate` from a 407) and returns header
(name, value) pairs to add to the retried request. The transaction layer owns the retry.

Loop protection without shared state: `authorize` is given the credentials the challenged request
carried (`sent`). If a realm challenges again, without `stale=true`, a request that carried our
fresh answer to that realm's challenge, the password is wrong and retrying would only lock the
account at the provider, so `AuthFailed` is raised. Looking at the request itself (rather than a
"pending" flag in the client) keeps a REGISTER refresh and an INVITE challenged at the same time
from being mistaken for each other.

The password is kept as a `Secret` and never appears in a repr, an exception or a log line; the
realm state keeps no H(A1) either, since H(A1) is as good as the password for that realm.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from tipring.config.secret import Secret

log = logging.getLogger(__name__)

WWW_AUTHENTICATE = "WWW-Authenticate"
PROXY_AUTHENTICATE = "Proxy-Authenticate"
AUTHORIZATION = "Authorization"
PROXY_AUTHORIZATION = "Proxy-Authorization"

# The header that answers each challenge header (RFC 3261 22.2 and 22.3).
ANSWER_HEADER = {
    WWW_AUTHENTICATE.lower(): AUTHORIZATION,
    PROXY_AUTHENTICATE.lower(): PROXY_AUTHORIZATION,
}
_ANSWER_NAMES = {AUTHORIZATION.lower(): AUTHORIZATION,
                 PROXY_AUTHORIZATION.lower(): PROXY_AUTHORIZATION}


def _hash_available(name: str) -> bool:
    try:
        hashlib.new(name)
    except ValueError:  # OpenSSL built without it (SHA-512/256 is missing on some builds)
        return False
    return True


# Digest algorithm name -> hashlib name, strongest first: RFC 8760 section 2.3 ranks
# SHA-512-256 over SHA-256 over MD5, and MD5 stays for the many servers that offer nothing else.
_HASHES = {"SHA-512-256": "sha512_256", "SHA-256": "sha256", "MD5": "md5"}
STRENGTH: tuple[str, ...] = tuple(
    name for base in _HASHES if _hash_available(_HASHES[base])
    for name in (base, base + "-SESS")
)


class AuthError(ValueError):
    """A challenge or credentials header value that is not well-formed digest syntax."""


class AuthFailed(Exception):
    """Retrying cannot help (wrong password, nothing we can answer): stop and report `reason`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Challenge:
    """One Digest challenge. `algorithm` is upper-cased; `qop` lists the offered options."""

    header: str  # WWW-Authenticate or Proxy-Authenticate (canonical spelling)
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    userhash: bool = False
    domain: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()  # unknown parameters, kept for diagnostics

    @property
    def supported(self) -> bool:
        """Whether we can answer it: a known algorithm and, if qop is given, auth or auth-int."""
        if self.algorithm not in STRENGTH:
            return False
        return not self.qop or "auth" in self.qop or "auth-int" in self.qop

    @property
    def answer_header(self) -> str:
        return ANSWER_HEADER[self.header.lower()]


# --- parsing -------------------------------------------------------------------------------

_SEPARATORS = ' \t\r\n,="'


def _tokenize(value: str) -> list[tuple[str, str]]:
    """Split an auth header value into ("tok"|"str"|","|"=", text) tokens (RFC 7235 syntax)."""
    tokens: list[tuple[str, str]] = []
    at, end = 0, len(value)
    while at < end:
        char = value[at]
        if char in " \t\r\n":
            at += 1
        elif char in ",=":
            tokens.append((char, char))
            at += 1
        elif char == '"':
            text: list[str] = []
            at += 1
            while True:
                if at >= end:
                    raise AuthError("unterminated quoted string")
                char = value[at]
                if char == "\\":
                    if at + 1 >= end:
                        raise AuthError("unterminated quoted string")
                    text.append(value[at + 1])
                    at += 2
                elif char == '"':
                    at += 1
                    break
                else:
                    text.append(char)
                    at += 1
            tokens.append(("str", "".join(text)))
        else:
            start = at
            while at < end and value[at] not in _SEPARATORS:
                at += 1
            tokens.append(("tok", value[start:at]))
    return tokens


def parse_auth_header(value: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Parse a challenge or credentials header value into (scheme, [(param, value)]) items.

    Several challenges may share one value (RFC 7235 section 4.1); a new one starts where a bare
    token is not followed by "=". Parameter names are lower-cased. Other schemes (with token68
    credentials and all) are skipped over leniently; Digest ones are checked strictly because
    we compute answers from them.
    """
    tokens = _tokenize(value)
    count = len(tokens)

    def kind(index: int) -> str:
        return tokens[index][0] if index < count else "end"

    items: list[tuple[str, list[tuple[str, str]]]] = []
    at = 0
    while at < count:
        if kind(at) == ",":
            at += 1
            continue
        text = tokens[at][1]
        if kind(at) != "tok":
            raise AuthError(f"expected an auth scheme or parameter, found {text!r}")
        digest = bool(items) and items[-1][0].lower() == "digest"
        if kind(at + 1) == "=":
            if not items:
                raise AuthError(f"parameter {text!r} before any auth scheme")
            if kind(at + 2) in ("tok", "str"):
                items[-1][1].append((text.lower(), tokens[at + 2][1]))
                at += 3
            elif digest:
                raise AuthError(f"parameter {text!r} has no value")
            else:
                at += 1  # token68 padding ("abc==") of another scheme
                while kind(at) == "=":
                    at += 1
            if digest and kind(at) not in (",", "end"):
                raise AuthError(f"missing comma before {tokens[at][1]!r}")
            continue
        items.append((text, []))
        at += 1
        if kind(at) in ("tok", "str") and kind(at + 1) != "=":
            if text.lower() == "digest":
                raise AuthError(f"Digest parameter {tokens[at][1]!r} has no '='")
            at += 1  # token68 credentials of another scheme
            while kind(at) == "=":
                at += 1
    return items


def _flag(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise AuthError(f"{name}={value!r} is neither true nor false")
    return lowered == "true"


def _digest_params(params: list[tuple[str, str]]) -> dict[str, str]:
    seen: dict[str, str] = {}
    for name, value in params:
        if name in seen:
            raise AuthError(f"parameter {name!r} appears twice")
        seen[name] = value
    return seen


def parse_challenges(header: str, value: str) -> list[Challenge]:
    """The Digest challenges in one WWW-Authenticate or Proxy-Authenticate header value."""
    canonical = {WWW_AUTHENTICATE.lower(): WWW_AUTHENTICATE,
                 PROXY_AUTHENTICATE.lower(): PROXY_AUTHENTICATE}.get(header.lower())
    if canonical is None:
        raise AuthError(f"{header!r} is not a challenge header")
    challenges = []
    for scheme, params in parse_auth_header(value):
        if scheme.lower() != "digest":
            continue
        seen = _digest_params(params)
        for required in ("realm", "nonce"):
            if required not in seen:
                raise AuthError(f"Digest challenge without {required}")
        known = {"realm", "nonce", "algorithm", "qop", "opaque", "stale", "userhash", "domain"}
        challenges.append(Challenge(
            header=canonical,
            realm=seen["realm"],
            nonce=seen["nonce"],
            algorithm=seen.get("algorithm", "MD5").upper(),
            qop=tuple(q.strip().lower() for q in seen.get("qop", "").split(",") if q.strip()),
            opaque=seen.get("opaque"),
            stale=_flag("stale", seen["stale"]) if "stale" in seen else False,
            userhash=_flag("userhash", seen["userhash"]) if "userhash" in seen else False,
            domain=tuple(seen.get("domain", "").split()),
            extra=tuple((k, v) for k, v in seen.items() if k not in known),
        ))
    return challenges


# --- computing the response ----------------------------------------------------------------

def _h(algorithm: str, data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.new(_HASHES[algorithm.removesuffix("-SESS")], raw).hexdigest()


def digest_response(*, algorithm: str, username: str, realm: str, password: str, nonce: str,
                    method: str, uri: str, qop: str | None = None, nc: int = 1,
                    cnonce: str = "", body: bytes = b"") -> str:
    """The `response` value (RFC 7616 section 3.4.1, RFC 2617 3.2.2.1, RFC 2069 when no qop).

    Usernames and passwords are hashed as UTF-8, which RFC 7616 makes the norm and which equals
    ISO-8859-1 for the ASCII credentials providers hand out.
    """
    algorithm = algorithm.upper()
    ha1 = _h(algorithm, f"{username}:{realm}:{password}")
    if algorithm.endswith("-SESS"):
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = _h(algorithm, f"{method}:{uri}:{_h(algorithm, body)}")
    else:
        ha2 = _h(algorithm, f"{method}:{uri}")
    if qop:
        return _h(algorithm, f"{ha1}:{nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}")
    return _h(algorithm, f"{ha1}:{nonce}:{ha2}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class _RealmState:
    """What we answered last for one realm: enough to pre-authorize the next request."""

    challenge: Challenge
    cnonce: str
    qop: str | None
    nc: int = 1
    from_stale: bool = False  # the nonce came with stale=true; stale again = a broken server


@dataclass(frozen=True)
class _Sent:
    nonce: str
    nc: int


def _chosen(challenges: list[Challenge]) -> Challenge | None:
    usable = [c for c in challenges if c.supported]
    if not usable:
        return None
    return min(usable, key=lambda c: STRENGTH.index(c.algorithm))


class DigestClient:
    """Answers digest challenges for one account (one username and password, any realms).

    `cnonce_source` returns a fresh client nonce; tests inject a fixed sequence.
    """

    def __init__(self, username: str, password: Secret | str,
                 cnonce_source: Callable[[], str] | None = None) -> None:
        self.username = username
        self._password = password if isinstance(password, Secret) else Secret(password)
        self._cnonce_source = cnonce_source or (lambda: secrets.token_hex(16))
        self._realms: dict[tuple[str, str], _RealmState] = {}

    def __repr__(self) -> str:
        realms = sorted(realm for _, realm in self._realms)
        return f"DigestClient(username={self.username!r}, realms={realms})"

    def authorize(self, challenges: Sequence[tuple[str, str]], method: str, uri: str,
                  body: bytes = b"", *,
                  sent: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """Headers for the retry of a request challenged with a 401/407: one answering each
        realm challenged, after the credentials `sent` carried for realms that did not
        challenge this time, renewed (the retry replaces all of the request's credentials).

        Realms met one after the other (an outbound proxy's 407, then the registrar's 401)
        need both on every later request: without the proxy's credentials the retry would be
        challenged by the proxy again, then by the registrar again, for ever.

        `challenges` are the response's (header name, value) pairs; other headers are ignored.
        `sent` are the Authorization/Proxy-Authorization pairs of the request that was
        challenged (`()` if it carried none); they tell a wrong password from a stale nonce.
        It is required so that no caller can forget it and retry a wrong password forever.
        Raises `AuthError` for malformed challenges and `AuthFailed` when retrying is futile.
        """
        by_realm: dict[tuple[str, str], list[Challenge]] = {}
        for name, value in challenges:
            if name.lower() not in ANSWER_HEADER:
                continue
            for challenge in parse_challenges(name, value):
                key = (challenge.answer_header, challenge.realm)
                by_realm.setdefault(key, []).append(challenge)
        if not by_realm:
            raise AuthFailed("no Digest challenge to answer")
        previous = self._sent(sent)
        answers = self._carried(previous, by_realm.keys(), method, uri, body)
        for key, offered in by_realm.items():
            header, realm = key
            challenge = _chosen(offered)
            if challenge is None:
                algorithms = ", ".join(sorted({c.algorithm for c in offered}))
                raise AuthFailed(f"realm {realm!r} offers nothing we support ({algorithms})")
            self._check_retry(key, challenge, previous.get(key))
            qop = None
            if challenge.qop:
                qop = "auth" if "auth" in challenge.qop else "auth-int"
            state = _RealmState(challenge, self._cnonce_source(), qop, from_stale=challenge.stale)
            self._realms[key] = state
            answers.append((header, self._credentials(state, method, uri, body)))
        return answers

    def preauthorize(self, method: str, uri: str, body: bytes = b"") -> list[tuple[str, str]]:
        """Credentials for a new request, reusing each realm's last nonce with nc + 1.

        Registrars usually accept this, saving a 401 round trip per refresh; if the nonce has
        expired the server challenges again and `authorize` answers as usual (a rejected
        pre-authorization never counts as a wrong password). Realms that challenged without
        qop are skipped: with no nonce count, a reused nonce is a replay to the server.
        """
        answers = []
        for (header, _realm), state in self._realms.items():
            if state.qop is None:
                continue
            state.nc += 1
            answers.append((header, self._credentials(state, method, uri, body)))
        return answers

    def _carried(self, previous: dict[tuple[str, str], _Sent],
                 challenged: Iterable[tuple[str, str]], method: str, uri: str,
                 body: bytes) -> list[tuple[str, str]]:
        """Fresh credentials for the realms the request carried that did not challenge it."""
        answers = []
        skip = set(challenged)
        for key, sent in previous.items():
            state = self._realms.get(key)
            if key in skip or state is None or state.challenge.nonce != sent.nonce:
                continue
            if state.qop is not None:
                state.nc = max(state.nc, sent.nc) + 1
            answers.append((key[0], self._credentials(state, method, uri, body)))
        return answers

    def forget(self) -> None:
        """Drop cached nonces (after a password change or when the account is re-registered)."""
        self._realms.clear()

    def _sent(self, sent: Sequence[tuple[str, str]]) -> dict[tuple[str, str], _Sent]:
        found: dict[tuple[str, str], _Sent] = {}
        for name, value in sent:
            header = _ANSWER_NAMES.get(name.lower())
            if header is None:
                continue
            for scheme, params in parse_auth_header(value):
                if scheme.lower() != "digest":
                    continue
                seen = _digest_params(params)
                try:
                    nc = int(seen.get("nc", "1"), 16)
                except ValueError:
                    raise AuthError(f"nc={seen['nc']!r} is not hexadecimal") from None
                if "realm" in seen and "nonce" in seen:
                    found[(header, seen["realm"])] = _Sent(seen["nonce"], nc)
        return found

    def _check_retry(self, key: tuple[str, str], challenge: Challenge, sent: _Sent | None) -> None:
        if sent is None:
            return  # the request carried nothing for this realm: a first challenge
        realm = key[1]
        state = self._realms.get(key)
        if challenge.stale:
            if state is not None and state.from_stale and state.challenge.nonce == sent.nonce \
                    and sent.nc == 1:
                self._realms.pop(key, None)
                raise AuthFailed(f"realm {realm!r} rejected a fresh nonce as stale twice")
            return
        if sent.nc > 1:
            return  # a pre-authorization with an old nonce: answer the new challenge
        self._realms.pop(key, None)  # a later attempt (after back-off) starts afresh
        log.warning("digest authentication rejected for realm %r, user %r", realm, self.username)
        raise AuthFailed(f"wrong credentials for realm {realm!r}")

    def _credentials(self, state: _RealmState, method: str, uri: str, body: bytes) -> str:
        challenge = state.challenge
        sess = challenge.algorithm.endswith("-SESS")
        use_cnonce = bool(state.qop) or sess
        response = digest_response(
            algorithm=challenge.algorithm, username=self.username, realm=challenge.realm,
            password=self._password.reveal(), nonce=challenge.nonce, method=method, uri=uri,
            qop=state.qop, nc=state.nc, cnonce=state.cnonce if use_cnonce else "", body=body)
        username = self.username
        if challenge.userhash:
            username = _h(challenge.algorithm, f"{self.username}:{challenge.realm}")
        parts = [f"username={_quote(username)}", f"realm={_quote(challenge.realm)}",
                 f"nonce={_quote(challenge.nonce)}", f"uri={_quote(uri)}",
                 f"response={_quote(response)}", f"algorithm={_algorithm_token(challenge)}"]
        if use_cnonce:
            parts.append(f"cnonce={_quote(state.cnonce)}")
        if challenge.opaque is not None:
            parts.append(f"opaque={_quote(challenge.opaque)}")
        if state.qop:
            parts += [f"qop={state.qop}", f"nc={state.nc:08x}"]
        if challenge.userhash:
            parts.append("userhash=true")
        return "Digest " + ", ".join(parts)


def _algorithm_token(challenge: Challenge) -> str:
    """The algorithm as registered (RFC 7616 section 6.1): "-sess" in lower case."""
    base = challenge.algorithm.removesuffix("-SESS")
    return base + "-sess" if challenge.algorithm.endswith("-SESS") else base
