"""SRTP (RFC 3711) for a call, keyed by SDES (RFC 4568), through libsrtp (pylibsrtp).

One object per call holds an outbound session (our key, from the SDP we sent) and an inbound
one (the peer's key). libsrtp does the cipher, authentication and the replay window; this module
maps negotiated suites onto it, refuses what it cannot run, and makes sure no key is ever shown:
the object's repr names the suite only, and errors carry the reason, never the packet or key.
"""

from __future__ import annotations

from tipring.sdp.negotiation import SrtpKeys

PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": "SRTP_PROFILE_AES128_CM_SHA1_80",
    "AES_CM_128_HMAC_SHA1_32": "SRTP_PROFILE_AES128_CM_SHA1_32",
}
AUTH_TAG_BYTES = {"AES_CM_128_HMAC_SHA1_80": 10, "AES_CM_128_HMAC_SHA1_32": 4}


class SrtpError(Exception):
    """A packet that failed authentication or replay checks, or keys that cannot be used."""


class SrtpSession:
    def __init__(self, keys: SrtpKeys) -> None:
        try:
            import pylibsrtp
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise SrtpError(f"SRTP needs pylibsrtp ({exc})") from exc
        profile_name = PROFILES.get(keys.suite)
        if profile_name is None:
            raise SrtpError(f"SRTP suite {keys.suite} is not supported")
        for side, params in (("local", keys.local), ("remote", keys.remote)):
            if len(params.key_salt) != 30:
                raise SrtpError(f"{side} SRTP key is {len(params.key_salt)} bytes, expected 30")
            if params.mki is not None:
                raise SrtpError(f"{side} SRTP key uses an MKI, which is not supported")
        profile = getattr(pylibsrtp.Policy, profile_name)
        self.suite = keys.suite
        self._error = pylibsrtp.Error
        self._outbound = pylibsrtp.Session(policy=pylibsrtp.Policy(
            key=keys.local.key_salt, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=profile))
        self._inbound = pylibsrtp.Session(policy=pylibsrtp.Policy(
            key=keys.remote.key_salt, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
            srtp_profile=profile))

    def __repr__(self) -> str:
        return f"SrtpSession({self.suite})"

    def protect(self, rtp: bytes) -> bytes:
        return self._outbound.protect(rtp)

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        return self._outbound.protect_rtcp(rtcp)

    def unprotect(self, srtp: bytes) -> bytes:
        try:
            return self._inbound.unprotect(srtp)
        except self._error as exc:
            raise SrtpError(f"SRTP packet rejected: {exc}") from None

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        try:
            return self._inbound.unprotect_rtcp(srtcp)
        except self._error as exc:
            raise SrtpError(f"SRTCP packet rejected: {exc}") from None
