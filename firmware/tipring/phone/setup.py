"""How one FXS port is provisioned for calls: its account, media and call features."""

from __future__ import annotations

from dataclasses import dataclass

from tipring.config.schema import AccountConfig
from tipring.line.fxs import FxsLine
from tipring.sdp import MediaPolicy
from tipring.sdp.negotiation import DtmfMode, SrtpMode


@dataclass
class LineSetup:
    """One line as the phone sees it.

    `account` is the agent's account id ("" = no service: calls out get a failure tone, calls in
    cannot arrive). `rtp` is the address and even port of the line's RTP socket pair, opened by
    the runtime for the life of the line. With call waiting a line holds two calls, but only
    the one talking has its stream attached; the held one was told a=sendonly, so its far end
    sends nothing to the shared socket pair.
    """

    fxs: FxsLine
    account: str = ""
    rtp: tuple[str, int] = ("0.0.0.0", 0)
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    dtmf: DtmfMode = "rfc4733"
    srtp: SrtpMode = "off"
    ptime: int = 20
    direct_ip: bool = False  # `*47` + IP with `*` for dots calls that address (Grandstream)
    do_not_disturb: bool = False  # incoming calls get 486; emergency calls out are unaffected
    call_waiting: bool = False  # a second call during a call waits (tone, CAS, FSK); else 486
    digit_ms: int = 100  # how long an in-call digit is signalled

    def policy(self) -> MediaPolicy:
        address, port = self.rtp
        return MediaPolicy(address=address, port=port, codecs=self.codecs, ptime=self.ptime,
                           dtmf=self.dtmf, srtp=self.srtp)

    @classmethod
    def for_account(cls, fxs: FxsLine, account: AccountConfig | None, rtp: tuple[str, int],
                    **features: object) -> LineSetup:
        """A line bound to a configured account (None or a disabled one: no service)."""
        if account is None or not account.enabled:
            return cls(fxs, "", rtp, **features)  # type: ignore[arg-type]
        return cls(fxs, account.id, rtp, tuple(account.codecs), account.dtmf, account.srtp,
                   **features)  # type: ignore[arg-type]
