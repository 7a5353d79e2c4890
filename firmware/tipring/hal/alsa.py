"""An `AudioPort` on ALSA: one line's playback and capture PCMs at 8 kHz mono S16, 20 ms periods.

Why non-blocking PCMs plus `poll`: a blocking `snd_pcm_readi` cannot be interrupted from another
thread, but `AudioPort.stop` must wake a media thread parked in `read`. So both PCMs are opened
with PCM_NONBLOCK and `read`/`write` wait in `poll()` on the PCM's descriptors *and* a wake-up
pipe; the wait ends when the device has a period (the device stays the media clock) or on `stop`.

The profile names ALSA devices; a `plughw:`/`plug:` device lets ALSA's plug layer resample from
a codec's native rate (48 kHz USB sound cards) and convert formats, so this code always sees
8000 Hz, 1 channel, S16_LE. The opened parameters are checked, not assumed: a device that will not
do 160-frame periods is refused with a message naming it.

Xruns: a capture overrun (pyalsaaudio's read returns -EPIPE and re-prepares the PCM) counts one
overrun; a playback PCM found in the XRUN state before a write counts one underrun (pyalsaaudio's
write re-prepares and retries). Either way the stream restarts and the call goes on.

Playout lead: ALSA runs playback as soon as the first period is written (pyalsaaudio keeps
alsa-lib's default start threshold), so a stream started by the bare period would hold nothing
more than it, and any later write slower than the first would underrun. So whenever playback
(re)starts, the period goes out behind `playout_lead` of silence: from then on the device holds
about that much audio as each capture period ends, which is both the playout latency and how
late the media thread may be. The port bounds that level: a period written while the device
holds more than the lead plus a whole period (a media thread catching up on buffered capture
periods after a stall) is dropped and counted in `playout_trimmed`, or the surplus would stay
queued, as latency, for the rest of the call. The bound is a whole period above the lead, not
less, because many drivers move the playback pointer a period at a time: a device in step can
seem to hold the lead plus the period still playing.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import threading
from collections.abc import Callable
from typing import Any, Protocol

from tipring.hal.api import (
    DEFAULT_PLAYOUT_LEAD,
    PERIOD_BYTES,
    PERIOD_SAMPLES,
    SAMPLE_RATE,
    AudioPort,
    AudioStopped,
    HardwareError,
    playout_lead_frames,
    playout_lead_setting,
)

__all__ = ["AlsaAudioPort", "Pcm", "PcmOpener", "alsa_pcm_opener", "audio_port_from_table"]

log = logging.getLogger(__name__)

DEFAULT_BUFFER_PERIODS = 4  # 80 ms: rides out scheduling hiccups, adds little latency


class Pcm(Protocol):
    """The part of `alsaaudio.PCM` this port uses (so tests can stand in a fake device)."""

    def read(self) -> tuple[int, bytes]: ...
    def write(self, data: bytes) -> int: ...
    def avail(self) -> int: ...
    def polldescriptors(self) -> list[tuple[int, int]]: ...
    def state(self) -> int: ...
    def info(self) -> dict[str, Any]: ...
    def drop(self) -> None: ...
    def close(self) -> None: ...


# (device name, capture?, buffer periods) -> an opened, non-blocking PCM
PcmOpener = Callable[[str, bool, int], Pcm]

_RUNNING_STATE = 3  # SND_PCM_STATE_RUNNING (alsaaudio.PCM_STATE_RUNNING)
_XRUN_STATE = 4  # SND_PCM_STATE_XRUN, the same number alsaaudio.PCM_STATE_XRUN has


def alsa_pcm_opener(device: str, capture: bool, buffer_periods: int) -> Pcm:
    """Open `device` with pyalsaaudio (imported here so the package imports without it)."""
    try:
        import alsaaudio
    except ImportError as exc:
        raise HardwareError(
            f"ALSA device {device!r} needs pyalsaaudio (python3-alsaaudio), which is not installed"
        ) from exc
    kind = "capture" if capture else "playback"
    try:
        pcm = alsaaudio.PCM(
            type=alsaaudio.PCM_CAPTURE if capture else alsaaudio.PCM_PLAYBACK,
            mode=alsaaudio.PCM_NONBLOCK,
            device=device,
            channels=1,
            rate=SAMPLE_RATE,
            format=alsaaudio.PCM_FORMAT_S16_LE,
            periodsize=PERIOD_SAMPLES,
            periods=buffer_periods,
        )
    except alsaaudio.ALSAAudioError as exc:
        raise HardwareError(
            f"ALSA {kind} device {device!r} cannot be opened: {exc} "
            "(check the sound card is plugged in / the overlay is loaded, and `aplay -L`)"
        ) from exc
    return pcm


def _check_params(pcm: Pcm, device: str, kind: str) -> None:
    """Refuse a device that silently negotiated other parameters than the media path needs."""
    info = pcm.info()
    want = {
        "rate": SAMPLE_RATE,
        "channels": 1,
        "format_name": "S16_LE",
        "period_size": PERIOD_SAMPLES,
    }
    wrong = {k: info.get(k) for k, v in want.items() if info.get(k) != v}
    if wrong:
        got = ", ".join(f"{k}={v!r}" for k, v in wrong.items())
        raise HardwareError(
            f"ALSA {kind} device {device!r} will not run 8000 Hz mono S16_LE with "
            f"{PERIOD_SAMPLES}-frame periods (got {got}); use a plughw: device"
        )


class AlsaAudioPort(AudioPort):
    """One line's audio through ALSA; the capture device's period clock paces the media thread."""

    def __init__(
        self,
        line: int,
        playback: str,
        capture: str,
        *,
        buffer_periods: int = DEFAULT_BUFFER_PERIODS,
        playout_lead: float = DEFAULT_PLAYOUT_LEAD,
        opener: PcmOpener = alsa_pcm_opener,
    ) -> None:
        if not 2 <= buffer_periods <= 4:
            raise ValueError(f"buffer_periods must be 2..4, got {buffer_periods}")
        lead_frames = playout_lead_frames(playout_lead)
        self.playout_lead = lead_frames / SAMPLE_RATE
        self.playout_trimmed = 0
        self._lead_frames = lead_frames
        self.line = line
        self.playback_device = playback
        self.capture_device = capture
        self.buffer_periods = buffer_periods
        self.overruns = 0
        self.underruns = 0
        self._opener = opener
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._capture: Pcm | None = None
        self._playback: Pcm | None = None
        self._wake_r = -1
        self._wake_w = -1
        self._running = False
        self._pending = b""  # part of a capture period, when the device delivered less
        self._playback_frames: int | None = None  # the playback buffer's size, once open

    @property
    def running(self) -> bool:
        with self._lock:
            return self._running

    def start(self) -> None:
        with self._lock:
            if self._running:
                return
            capture = playback = None
            try:
                capture = self._opener(self.capture_device, True, self.buffer_periods)
                _check_params(capture, self.capture_device, "capture")
                playback = self._opener(self.playback_device, False, self.buffer_periods)
                _check_params(playback, self.playback_device, "playback")
            except BaseException:
                for pcm in (capture, playback):
                    if pcm is not None:
                        pcm.close()
                raise
            size = playback.info().get("buffer_size")
            self._playback_frames = size if isinstance(size, int) else None
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            self._capture, self._playback = capture, playback
            self._pending = b""
            self._running = True

    def stop(self) -> None:
        with self._lock:
            if not self._running:
                return
            self._running = False
            os.write(self._wake_w, b"x")  # wakes a read or write waiting in poll
        # The waiting thread holds the read/write lock until it has seen the wake-up.
        with self._read_lock, self._write_lock, self._lock:
            for pcm in (self._capture, self._playback):
                if pcm is not None:
                    try:
                        pcm.drop()
                    finally:
                        pcm.close()
            self._capture = self._playback = None
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1

    def _wait(self, pcm: Pcm) -> bool:
        """Block until `pcm` is ready or the port stops; False when stopped."""
        poller = select.poll()
        for fd, events in pcm.polldescriptors():
            poller.register(fd, events)
        poller.register(self._wake_r, select.POLLIN)
        return all(fd != self._wake_r for fd, _ in poller.poll())

    def read(self) -> bytes:
        with self._read_lock:
            pcm = self._live(self._capture)
            data = self._pending
            while len(data) < PERIOD_BYTES:
                try:
                    length, chunk = pcm.read()
                except Exception as exc:  # alsaaudio.ALSAAudioError: the device went away
                    raise HardwareError(
                        f"ALSA capture device {self.capture_device!r} failed: {exc}"
                    ) from exc
                if length == -errno.EPIPE:
                    self.overruns += 1  # data lost; pyalsaaudio has re-prepared the stream
                    log.debug("line %d: capture overrun on %s", self.line, self.capture_device)
                    continue
                if length > 0:
                    data += chunk
                    continue
                if not self._wait(pcm):
                    raise AudioStopped(f"line {self.line}: audio port stopped")
            self._pending = data[PERIOD_BYTES:]
            return data[:PERIOD_BYTES]

    def write(self, period: bytes) -> None:
        data = memoryview(period).tobytes()
        if len(data) != PERIOD_BYTES:
            raise ValueError(
                f"line {self.line}: expected one period of {PERIOD_BYTES} bytes "
                f"({PERIOD_SAMPLES} samples), got {len(data)} bytes"
            )
        with self._write_lock:
            with self._lock:
                pcm = self._playback
                if not self._running or pcm is None:
                    return  # a write racing stop(): the device is gone
            state = pcm.state()
            if state == _XRUN_STATE:
                self.underruns += 1  # playout starved; the next write re-prepares the stream
                log.debug("line %d: playback underrun on %s", self.line, self.playback_device)
            if state != _RUNNING_STATE:  # (re)starting: the lead goes first, as silence
                data = bytes(2 * self._lead_frames) + data
            elif self._queued(pcm) > self._lead_frames + PERIOD_SAMPLES:
                self.playout_trimmed += 1
                return
            while data:
                try:
                    frames = pcm.write(data)
                except Exception as exc:  # alsaaudio.ALSAAudioError: the device went away
                    raise HardwareError(
                        f"ALSA playback device {self.playback_device!r} failed: {exc}"
                    ) from exc
                if frames > 0:
                    data = data[frames * 2 :]
                elif frames == 0:
                    if not self._wait(pcm):
                        return
                else:
                    raise HardwareError(
                        f"ALSA playback device {self.playback_device!r} failed: error {-frames}"
                    )

    def _queued(self, pcm: Pcm) -> int:
        """Frames the playback device holds; 0 when the binding cannot say (pyalsaaudio before
        0.10 has no avail()), which leaves the level to the lead alone."""
        avail = getattr(pcm, "avail", None)
        if self._playback_frames is None or avail is None:
            return 0
        return max(0, self._playback_frames - avail())

    def _live(self, pcm: Pcm | None) -> Pcm:
        with self._lock:
            if not self._running or pcm is None:
                raise AudioStopped(f"line {self.line}: audio port is stopped")
            return pcm


def audio_port_from_table(line: int, table: Any, where: str, **kwargs: Any) -> AlsaAudioPort:
    """Build a port from a profile's `[[line]]` entry: `playback`, `capture`, `buffer_periods`."""
    if not isinstance(table, dict):
        raise HardwareError(f"{where} must be a table")
    names = {}
    for key in ("playback", "capture"):
        value = table.get(key)
        if not isinstance(value, str) or not value:
            raise HardwareError(f"{where}.{key} must name an ALSA device, got {value!r}")
        names[key] = value
    periods = table.get("buffer_periods", DEFAULT_BUFFER_PERIODS)
    if isinstance(periods, bool) or not isinstance(periods, int) or not 2 <= periods <= 4:
        raise HardwareError(f"{where}.buffer_periods must be 2..4, got {periods!r}")
    return AlsaAudioPort(
        line, names["playback"], names["capture"], buffer_periods=periods,
        playout_lead=playout_lead_setting(table, where), **kwargs
    )
