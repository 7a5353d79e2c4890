"""Recorded voice prompts as 8 kHz mono S16LE, ready for `MediaThread.play_prompt`.

Why here: reading files belongs to the runtime, while the menu (`phone.voicemenu`) only names
clips ("digits/1", "letters/dot"). The clips are Allison Smith's Asterisk core prompts
(CC-BY-SA 3.0, sponsored by Digium): the image installs the ones the menu uses under
/usr/share/tipring/prompts (buildroot/package/tipring-prompts, with the licence and credits);
a development machine has them from Debian's asterisk-core-sounds-en-wav.

Only what the audio path plays is accepted: PCM WAV, mono, 16-bit, 8000 Hz, which is what
those packages ship. Anything else is refused with an error naming the clip and its format
rather than resampled: a prompt set in another rate is a packaging mistake to fix at build
time, not work for the device at run time.
"""

from __future__ import annotations

import array
import re
import sys
import wave
from collections.abc import Collection, Sequence
from pathlib import Path

from tipring.phone.voicemenu import MENU_CLIPS

RATE = 8000
DEFAULT_ROOTS: tuple[Path, ...] = (
    Path("/usr/share/tipring/prompts"),  # the image (tipring-prompts)
    Path("/usr/share/asterisk/sounds/en_US_f_Allison"),  # Debian's asterisk-core-sounds-en-wav
    Path("/usr/share/asterisk/sounds/en"),  # the same through Debian's language link
)
MAX_GAP_MS = 2000
_CLIP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:/[A-Za-z0-9][A-Za-z0-9_-]*)*")


class PromptError(Exception):
    """A clip is missing, unreadable or in a format the audio path cannot play."""


class PromptLibrary:
    """Clips looked up in `roots` in order (the first holding `<clip>.wav` wins), each read
    once and kept: the menu's whole set is under 1 MB of samples."""

    def __init__(self, roots: Sequence[Path] = DEFAULT_ROOTS, *,
                 required: Collection[str] = MENU_CLIPS) -> None:
        self.roots = tuple(Path(root) for root in roots)
        self.required = frozenset(required)
        self._samples: dict[str, bytes] = {}

    @property
    def available(self) -> bool:
        """Every clip in `required` (by default, all the voice menu can say) has a file."""
        return not self.missing(self.required)

    def missing(self, clips: Collection[str]) -> list[str]:
        """The clips of `clips` that no root holds, sorted."""
        return sorted(clip for clip in clips if self._find(clip) is None)

    def pcm(self, clips: Sequence[str], gap_ms: int = 120) -> bytes:
        """The clips one after another with `gap_ms` of silence between them (none before the
        first or after the last), as 8 kHz mono S16LE."""
        if isinstance(gap_ms, bool) or not isinstance(gap_ms, int) or not 0 <= gap_ms <= MAX_GAP_MS:
            raise ValueError(f"gap_ms must be a whole number of milliseconds from 0 to "
                             f"{MAX_GAP_MS}, got {gap_ms!r}")
        if isinstance(clips, str):
            raise TypeError(f"clips must be a sequence of clip names, got the string {clips!r}")
        gap = bytes(2 * RATE * gap_ms // 1000)
        return gap.join(self.samples(clip) for clip in clips)

    def samples(self, clip: str) -> bytes:
        """One clip's samples (8 kHz mono S16LE)."""
        cached = self._samples.get(clip)
        if cached is None:
            cached = self._samples[clip] = self._load(clip)
        return cached

    def _find(self, clip: str) -> Path | None:
        if not isinstance(clip, str) or not _CLIP_NAME.fullmatch(clip):
            raise PromptError(f"bad clip name {clip!r}: expected names like 'digits/1' "
                              f"(letters, digits, '-', '_', folders split by '/')")
        for root in self.roots:
            path = root / f"{clip}.wav"
            if path.is_file():
                return path
        return None

    def _load(self, clip: str) -> bytes:
        path = self._find(clip)
        if path is None:
            places = ", ".join(str(root) for root in self.roots) or "no folders"
            raise PromptError(f"no prompt clip {clip!r}: {clip}.wav is in none of {places}")
        try:
            with wave.open(str(path), "rb") as wav:
                channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
                if (channels, width, rate) != (1, 2, RATE):
                    raise PromptError(
                        f"prompt clip {clip!r} ({path}) is {channels} channel(s), "
                        f"{8 * width}-bit, {rate} Hz; the audio path plays only mono 16-bit "
                        f"{RATE} Hz PCM (convert it, e.g. sox in.wav -r 8000 -c 1 -b 16 out.wav)")
                data = wav.readframes(wav.getnframes())
        except (wave.Error, EOFError, OSError) as exc:
            raise PromptError(f"prompt clip {clip!r} ({path}) is not a readable PCM WAV "
                              f"file: {exc}") from exc
        if len(data) % 2:
            raise PromptError(f"prompt clip {clip!r} ({path}) ends in half a sample")
        if sys.byteorder == "big":  # wave hands back native order; the audio path wants LE
            samples = array.array("h", data)
            samples.byteswap()
            data = samples.tobytes()
        return data
