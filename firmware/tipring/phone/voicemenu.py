"""The `***` voice menu: the device reads out its own facts, and resets the web password only
for someone holding the handset.

Why a voice menu: an ATA has no screen. Someone with only a phone on the desk still needs the
address of the web page, whether the SIP accounts are registered, which firmware runs, and a
way back in when the web password is lost. Everything is spoken from recorded clips (Allison
Smith's Asterisk core prompts, CC-BY-SA 3.0, sponsored by Digium), so the menu only names clips;
`tipring.runtime.prompts.PromptLibrary` turns the names into audio.

Sans-IO like the rest of `phone/`: every input takes `now` (monotonic seconds) and returns a
list of `MenuAction`s; `next_deadline()` says when to call `timer(now)`. Nothing here reads a
clock, plays audio or sleeps. The phone starts the menu when the handset dials `***` and feeds
it digits, `PromptFinished` (as `prompt_finished`) and hook changes.

Keys (after the greeting "Press 1 for IP, press 2 for SIP, press 3 for V, press 9 for
password"):
  1  the IP address(es), digit by digit: "I P 1 9 2 dot 1 6 8 dot 1 dot 2 0". IPv4 addresses
     are read; IPv6 ones only when there is no IPv4 address (global ones, hex digits as letters,
     ':' as "colon"), since a link-local address is no use in a browser.
  2  each SIP account, its id spelled, then "is activated" (registered) or "is de-activated".
  3  the firmware version: "V 0 dot 1 dot 0".
  9  reset the web password (below).
  0  the greeting again.  # or *  "Goodbye", then the menu ends.
Any other key: "That option is invalid. Please try again." A key pressed during a prompt cuts
it short (barge-in: the new `Say` replaces the one playing). After 20 s without a key once a
prompt has finished, the menu says "Goodbye" and ends. Hanging up ends it at once.

Password reset by physical presence. Nobody on the network can lift and replace this handset,
so that is the proof the reset asks for; a call from the network never reaches this menu (the
phone opens it only for `***` dialled on the line). The exact sequence:
  1. Dial `***`, press 9. The menu says "Password. If this is correct, press 1. Press star to
     cancel." Press 1 (any other key: "Cancelled.", back to the menu).
  2. The menu says "Thank you. Goodbye." Hang up within 30 s of pressing 1.
  3. Then lift the handset and hang up again, three lifts in all (lift, hang up, lift, hang up,
     lift), the third lift within 15 s of the hang-up in step 2. The first two lifts each get a
     beep. A hook flash (the switch pressed for less than the line's flash_max_ms) counts as a
     hang-up and a lift, so pressing the switch quickly works too; presses as short as pulse
     dialling are digits to the line, and a digit cancels.
  4. On the third lift the web password is cleared (`ResetPassword`) and the menu says
     "Password removed."; the next visit to the web page sets a new one.
Anything else cancels without a reset: no hang-up within 30 s, the third lift late, a key
dialled during the sequence, hook events out of order. A cancel heard off hook says
"Cancelled." (before step 2's hang-up the menu goes on; after it, the menu then ends); on hook
it ends silently. `awaiting_presence` is true from step 2 until the sequence completes or is
cancelled: while it is, the phone forwards every hook change to `hung_up` / `lifted` /
`flashed` (and digits to `digit`) instead of treating it as a call event. The window of step 3
is 15 s rather than 10 s because a hang-up only reaches the phone once the line has told it
from a hook flash (flash_max_ms, 1.1 s by default).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

IDLE_TIMEOUT_S = 20.0  # no key this long after a prompt finished: goodbye
PROMPT_LIMIT_S = 90.0  # a prompt whose PromptFinished never came counts as finished after this
HANG_UP_WINDOW_S = 30.0  # from confirming the reset (key 1) to hanging up
LIFTS_WINDOW_S = 15.0  # from that hang-up to the last lift
PRESENCE_LIFTS = 3


@dataclass(frozen=True)
class DeviceFacts:
    """What the menu reads out, gathered by the runtime when a key asks for it."""

    addresses: tuple[str, ...]  # interface addresses, IPv4 first
    registrations: tuple[tuple[str, bool], ...]  # (account id, registered?)
    version: str  # e.g. "0.1.0"


@dataclass(frozen=True)
class Say:
    """Play these clips in order to the handset (names relative to the prompt root, without
    extension: "digits/1", "letters/dot"), replacing any prompt playing now."""

    clips: tuple[str, ...]


@dataclass(frozen=True)
class ResetPassword:
    """Clear the web page's admin password: the presence sequence was completed."""


@dataclass(frozen=True)
class MenuEnded:
    """The menu is over; the line goes back to the phone."""


MenuAction = Say | ResetPassword | MenuEnded

# One clip per character for spelling out addresses, account ids and versions. Letters are
# read in lower case (the clips have no case); characters missing here are skipped.
SPELLING: dict[str, str] = {
    **{d: f"digits/{d}" for d in "0123456789"},
    **{c: f"letters/{c}" for c in "abcdefghijklmnopqrstuvwxyz"},
    ".": "letters/dot",
    "-": "letters/dash",
    "_": "letters/ascii95",  # "underscore"
    ":": "letters/ascii58",  # "colon"
    "+": "letters/plus",
    "/": "letters/slash",
    "@": "letters/at",
}

IP = ("letters/i", "letters/p")
GREETING = (
    "hello",
    "vm-press", "digits/1", "for", *IP,
    "vm-press", "digits/2", "for", "spy-sip",
    "vm-press", "digits/3", "for", "letters/v",
    "vm-press", "digits/9", "for", "vm-password",
)
NO_ADDRESS = ("vm-no", *IP)  # "no I P"
NO_ACCOUNT = ("vm-no", "spy-sip")  # "no SIP"
REGISTERED = ("is", "activated")
UNREGISTERED = ("is", "de-activated")
VERSION = ("letters/v",)
AND = "vm-and"
INVALID = ("pm-invalid-option",)  # "That option is invalid. Please try again."
CONFIRM_RESET = ("vm-password", "if-correct-press", "digits/1", "vm-star-cancel")
HANG_UP_NOW = ("auth-thankyou", "vm-goodbye")  # "Thank you. Goodbye."
LIFT_COUNTED = ("beep",)
PASSWORD_REMOVED = ("vm-password", "removed")
CANCELLED = ("cancelled",)
GOODBYE = ("vm-goodbye",)

# Every clip the menu can ask for: the image must carry exactly these (see
# buildroot/package/tipring-prompts) and PromptLibrary.available checks them.
MENU_CLIPS: frozenset[str] = frozenset(
    [*SPELLING.values(), *GREETING, *NO_ADDRESS, *NO_ACCOUNT, *REGISTERED, *UNREGISTERED,
     *VERSION, AND, *INVALID, *CONFIRM_RESET, *HANG_UP_NOW, *LIFT_COUNTED, *PASSWORD_REMOVED,
     *CANCELLED, *GOODBYE]
)

State = Literal["idle", "menu", "confirm", "armed", "presence", "closing"]


def spell(text: str) -> tuple[str, ...]:
    """One clip per character of `text` (see SPELLING)."""
    return tuple(SPELLING[c] for c in text.lower() if c in SPELLING)


def spoken_addresses(addresses: Iterable[str]) -> list[str]:
    """The addresses worth reading out: every IPv4 one; without any, the global IPv6 ones
    (compressed). Unparsable entries are skipped: the menu must speak whatever it gets."""
    v4: list[str] = []
    v6: list[str] = []
    for text in addresses:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0].split("/", 1)[0].strip())
        except ValueError:
            continue
        if isinstance(address, ipaddress.IPv4Address):
            v4.append(str(address))
        elif not (address.is_link_local or address.is_loopback or address.is_unspecified):
            v6.append(address.compressed)
    return v4 or v6


def address_clips(addresses: Iterable[str]) -> tuple[str, ...]:
    spoken = spoken_addresses(addresses)
    if not spoken:
        return NO_ADDRESS
    clips: list[str] = [*IP]
    for i, address in enumerate(spoken):
        if i:
            clips.append(AND)
        clips.extend(spell(address))
    return tuple(clips)


def registration_clips(registrations: Iterable[tuple[str, bool]]) -> tuple[str, ...]:
    clips: list[str] = []
    for account, registered in registrations:
        clips.extend(spell(account))
        clips.extend(REGISTERED if registered else UNREGISTERED)
    return tuple(clips) or NO_ACCOUNT


def version_clips(version: str) -> tuple[str, ...]:
    return (*VERSION, *spell(version))


class VoiceMenu:
    """One line's `***` menu (see the module docstring for the keys and the reset sequence)."""

    def __init__(self, facts: Callable[[], DeviceFacts]) -> None:
        self._facts = facts
        self._state: State = "idle"
        self._playing_since: float | None = None  # a Say is playing (no PromptFinished yet)
        self._idle_since: float | None = None  # the last prompt finished here (menu, confirm)
        self._window_end: float | None = None  # armed: hang up by; presence: last lift by
        self._lifts = 0
        self._off_hook = True

    # -- what the phone asks -----------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._state != "idle"

    @property
    def awaiting_presence(self) -> bool:
        """True while the reset waits for the hang-up and lifts: hook changes belong here."""
        return self._state in ("armed", "presence")

    def next_deadline(self) -> float | None:
        deadlines = []
        if self._playing_since is not None:
            deadlines.append(self._playing_since + PROMPT_LIMIT_S)
        if self._idle_since is not None and self._state in ("menu", "confirm"):
            deadlines.append(self._idle_since + IDLE_TIMEOUT_S)
        if self._window_end is not None:
            deadlines.append(self._window_end)
        return min(deadlines, default=None)

    # -- inputs ------------------------------------------------------------------------------

    def start(self, now: float) -> list[MenuAction]:
        """`***` was dialled: greet and list the keys."""
        self._state = "menu"
        self._window_end = None
        self._lifts = 0
        self._off_hook = True
        return self._say(GREETING, now)

    def digit(self, key: str, now: float) -> list[MenuAction]:
        if self._state == "menu":
            return self._menu_key(key, now)
        if self._state == "confirm":
            if key == "1":
                self._state = "armed"
                self._window_end = now + HANG_UP_WINDOW_S
                return self._say(HANG_UP_NOW, now)
            self._state = "menu"
            return self._say(CANCELLED, now)
        if self._state in ("armed", "presence"):
            return self._cancel(now)  # someone is dialling: not the reset sequence
        return []

    def prompt_finished(self, now: float) -> list[MenuAction]:
        if self._playing_since is None:
            return []
        self._playing_since = None
        if self._state == "closing":
            return self._end()
        self._idle_since = now
        return []

    def hung_up(self, now: float) -> list[MenuAction]:
        if self._late(now):
            return self._end()  # too late for the reset, and nobody is listening
        if self._state == "armed":
            self._state = "presence"
            self._off_hook = False
            self._lifts = 0
            self._playing_since = None  # nobody hears it now
            self._window_end = now + LIFTS_WINDOW_S
            return []
        if self._state == "presence":
            if not self._off_hook:
                return self._cancel(now)  # two hang-ups in a row: not a sequence we know
            self._off_hook = False
            self._playing_since = None
            return []
        if self._state == "idle":
            return []
        return self._end()

    def lifted(self, now: float) -> list[MenuAction]:
        if self._state == "armed":
            return self._cancel(now)  # lifted without hanging up first: out of order
        if self._state != "presence":
            return []
        if self._off_hook or self._late(now):
            self._off_hook = True  # whatever went wrong, someone is listening now
            return self._cancel(now)
        self._off_hook = True
        self._lifts += 1
        if self._lifts < PRESENCE_LIFTS:
            return self._say(LIFT_COUNTED, now)
        self._state = "closing"
        self._window_end = None
        return [ResetPassword(), *self._say(PASSWORD_REMOVED, now)]

    def flashed(self, now: float) -> list[MenuAction]:
        """A hook flash: during the reset, a hang-up and a lift at once; otherwise nothing."""
        if self._state not in ("armed", "presence"):
            return []
        actions = self.hung_up(now)
        if self._state not in ("armed", "presence"):
            return actions  # that hang-up ended or cancelled the sequence
        return [*actions, *self.lifted(now)]

    def timer(self, now: float) -> list[MenuAction]:
        if self._playing_since is not None and now >= self._playing_since + PROMPT_LIMIT_S:
            actions = self.prompt_finished(now)
            if actions:
                return actions
        if self._window_end is not None and now >= self._window_end:
            return self._cancel(now)
        if (self._idle_since is not None and self._playing_since is None
                and now >= self._idle_since + IDLE_TIMEOUT_S):
            if self._state == "menu":
                self._state = "closing"
                return self._say(GOODBYE, now)
            if self._state == "confirm":
                self._state = "menu"
                return self._say(CANCELLED, now)
        return []

    # -- internals ---------------------------------------------------------------------------

    def _menu_key(self, key: str, now: float) -> list[MenuAction]:
        if key == "1":
            return self._say(address_clips(self._facts().addresses), now)
        if key == "2":
            return self._say(registration_clips(self._facts().registrations), now)
        if key == "3":
            return self._say(version_clips(self._facts().version), now)
        if key == "9":
            self._state = "confirm"
            return self._say(CONFIRM_RESET, now)
        if key == "0":
            return self._say(GREETING, now)
        if key in ("#", "*"):
            self._state = "closing"
            return self._say(GOODBYE, now)
        return self._say(INVALID, now)

    def _late(self, now: float) -> bool:
        """The reset's window has passed, whether or not `timer` was called in time."""
        return self._window_end is not None and now >= self._window_end

    def _say(self, clips: tuple[str, ...], now: float) -> list[MenuAction]:
        self._playing_since = now
        self._idle_since = None
        return [Say(clips)]

    def _cancel(self, now: float) -> list[MenuAction]:
        """Give up the reset. Before the hang-up the caller is still in the menu; after it the
        menu ends (with a word if the handset is off hook to hear it)."""
        before_hang_up = self._state == "armed"
        self._window_end = None
        self._lifts = 0
        if before_hang_up:
            self._state = "menu"
            return self._say(CANCELLED, now)
        if self._off_hook:
            self._state = "closing"
            return self._say(CANCELLED, now)
        return self._end()

    def _end(self) -> list[MenuAction]:
        self._state = "idle"
        self._playing_since = None
        self._idle_since = None
        self._window_end = None
        self._lifts = 0
        return [MenuEnded()]
