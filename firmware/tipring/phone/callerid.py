"""Who is calling, as an analog phone can show it: SIP identity -> `CallerId`.

The identity is the P-Asserted-Identity when the proxy vouched for one (RFC 3325), else From.
A caller who asked for privacy (RFC 3323 `Privacy: id`/`header`/`user`, or the anonymous From
of RFC 3323 4.1.1.3) is shown as private ("P"); a number we cannot tell is "O" (out of area /
unavailable), the two GR-30 / EN 300 659-3 reasons of absence. The number keeps its '+': the
line layer rewrites E.164 numbers for the region's display (`NumberDisplay.present`), so '+'
handling per region happens in one place.
"""

from __future__ import annotations

import datetime

from tipring.media.dsp import Absence, CallerId
from tipring.sip.headers import NameAddr
from tipring.sip.uri import SipUri, TelUri

PRIVACY_TOKENS = frozenset({"id", "header", "user", "session", "critical"})
ANONYMOUS = frozenset({"anonymous", "unknown", "unavailable", "restricted", "private",
                       "withheld"})
NUMBER_CHARACTERS = frozenset("0123456789*#+")
VISUAL_SEPARATORS = str.maketrans("", "", "-.() ")
NAME_CHARS = 50  # EN 300 659-3 and MDMF limit; the line trims further for GR-30 displays


def caller_id(caller: NameAddr, asserted: NameAddr | None, privacy: tuple[str, ...],
              when: datetime.datetime | None = None) -> CallerId:
    """The caller ID to send for an incoming call."""
    if _private(caller, asserted, privacy):
        return CallerId(when=when, number_absence=Absence.PRIVATE, name_absence=Absence.PRIVATE)
    identity = asserted or caller
    number = number_of(identity)
    name = _clean_name(identity.display_name) or _clean_name(caller.display_name)
    if name is None and number is None:
        user = identity.uri.user if isinstance(identity.uri, SipUri) else None
        name = _clean_name(user)  # "sip:alice@pbx": show "alice" rather than nothing
    return CallerId(number=number, name=name, when=when,
                    number_absence=None if number else Absence.UNAVAILABLE,
                    name_absence=None if name or number else Absence.UNAVAILABLE)


def number_of(identity: NameAddr) -> str | None:
    """The dialable number of a sip:/sips:/tel: identity, or None (a name, not a number)."""
    uri = identity.uri
    if isinstance(uri, TelUri):
        text = uri.number
    elif isinstance(uri, SipUri) and uri.user:
        text = uri.user.split(";", 1)[0]  # user=phone numbers may carry ;isub= etc.
    else:
        return None
    text = text.translate(VISUAL_SEPARATORS)
    if not text or any(ch not in NUMBER_CHARACTERS for ch in text) or "+" in text[1:]:
        return None
    return text


def _private(caller: NameAddr, asserted: NameAddr | None, privacy: tuple[str, ...]) -> bool:
    if any(token in PRIVACY_TOKENS for token in privacy):
        return True
    if asserted is not None:
        return False  # the network vouches for an identity it was allowed to show
    uri = caller.uri
    if isinstance(uri, SipUri) and (uri.host.lower() == "anonymous.invalid"
                                    or (uri.user or "").lower() in ANONYMOUS):
        return True
    return (caller.display_name or "").strip().lower() in ANONYMOUS


def _clean_name(name: str | None) -> str | None:
    """Printable ASCII only (the display's character set), at most `NAME_CHARS`."""
    if not name:
        return None
    text = "".join(ch if " " <= ch <= "~" else "?" if ord(ch) > 0x7E else " " for ch in name)
    text = " ".join(text.split())[:NAME_CHARS].strip()
    if not text or text.lower() in ANONYMOUS:
        return None
    return text
