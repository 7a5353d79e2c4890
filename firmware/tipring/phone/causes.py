"""What the subscriber hears when a call fails: SIP final status -> region tone name.

As the ATAs this firmware replaces do it (Cisco SPA112 and Grandstream HT80x admin guides):
the callee busy or declining -> busy tone; the number does not exist -> special information
tone (SIT) and then a spoken intercept ("the number you have dialed is not in service");
anything the network could not complete (timeouts, 5xx, no route) -> congestion (reorder, "fast busy").
"""

from __future__ import annotations

BUSY = frozenset({486, 600, 603})  # busy here, busy everywhere, decline
NUMBER_UNOBTAINABLE = frozenset({404, 410, 484, 604})  # not found, gone, incomplete
NO_SERVICE_TONE = "congestion"  # the line has no account: what an unprovisioned ATA plays
CALLER_GAVE_UP = 487  # our own CANCEL: nothing to play, the phone is already on hook


# What the special information tone is followed by (Asterisk's recorded intercepts).
INTERCEPTS: dict[int, tuple[str, ...]] = {
    404: ("ss-noservice",), 410: ("ss-noservice",), 604: ("ss-noservice",),
    484: ("cannot-complete-as-dialed", "check-number-dial-again"),
}
INTERCEPT_CLIPS = frozenset(clip for clips in INTERCEPTS.values() for clip in clips)


def tone_for_status(status: int) -> str | None:
    """The tone for a failed call's final status, or None when nothing should play."""
    if status == CALLER_GAVE_UP or status < 300:
        return None
    if status in BUSY:
        return "busy"
    if status in NUMBER_UNOBTAINABLE:
        return "sit"
    return "congestion"  # 408, 480, 5xx, 503, 488 and the rest: the call could not go through
