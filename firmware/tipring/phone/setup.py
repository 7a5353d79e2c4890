"""How one FXS port is provisioned for calls: its account, media and call features."""

from __future__ import annotations

from dataclasses import dataclass

from tipring.config.schema import AccountConfig, LineConfig
from tipring.line.fxs import FxsLine
from tipring.sdp import MediaPolicy
from tipring.sdp.negotiation import DtmfMode, SrtpMode


@dataclass
class LineSetup:
    """One line as the phone sees it.

    `account` is the agent's account id ("" = no service: calls out get a failure tone, calls in
    cannot arrive); `fallback_account` places calls out while `account` cannot (its registration
    failed) and rings the line for calls to it too. `rtp` and `rtp2` are the address and even
    port of the line's two RTP socket pairs, opened by the runtime for the life of the line: a
    line holds at most two calls (call waiting, transfer, three-way calling) and each call keeps
    the pair its SDP advertised. Without `rtp2` both calls share `rtp` (only one call's stream
    is then ever on the line: a held call was told a=sendonly and sends nothing).
    The feature fields mirror `LineConfig`; star codes change them while the device runs.
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
    rtp2: tuple[str, int] | None = None
    fallback_account: str = ""
    anonymous_rejection: bool = False  # callers withholding their number get 433
    hide_caller_id: bool = False  # calls out withhold our identity (RFC 3323)
    forward_all: str = ""  # incoming calls are redirected there at once (302)
    forward_busy: str = ""  # ... when the line is busy or on do-not-disturb
    forward_no_answer: str = ""  # ... after `no_answer_s` of ringing
    no_answer_s: float = 20.0
    voicemail: str = ""  # what the voicemail star code dials

    def rtp_for(self, slot: int) -> tuple[str, int]:
        return self.rtp2 if slot == 1 and self.rtp2 is not None else self.rtp

    def policy(self, slot: int = 0) -> MediaPolicy:
        address, port = self.rtp_for(slot)
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


def line_features(config: LineConfig, account: AccountConfig | None = None) -> dict[str, object]:
    """The `LineSetup` feature fields a line's configuration (and its account) give."""
    return {
        "direct_ip": config.direct_ip, "do_not_disturb": config.do_not_disturb,
        "call_waiting": config.call_waiting, "fallback_account": config.fallback_account,
        "anonymous_rejection": config.anonymous_rejection,
        "hide_caller_id": config.hide_caller_id, "forward_all": config.forward_all,
        "forward_busy": config.forward_busy, "forward_no_answer": config.forward_no_answer,
        "no_answer_s": float(config.no_answer_s),
        "voicemail": account.voicemail if account is not None else "",
    }
