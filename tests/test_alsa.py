"""The ALSA audio port against real pyalsaaudio + alsa-lib (file/null PCMs), and a fake PCM for timing."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from alsa_support import write_asoundrc
from tipring.hal.alsa import AlsaAudioPort, audio_port_from_table
from tipring.hal.api import PERIOD_BYTES, AudioStopped, HardwareError

pytest.importorskip("alsaaudio")  # installed in the dev venv; the image has it too


@pytest.fixture
def alsa_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(write_asoundrc(tmp_path)))
    return tmp_path


def _port(tmp: Path, infile: Path, outfile: Path, **kw: Any) -> AlsaAudioPort:
    return AlsaAudioPort(0, f"tipring_play:OUT={outfile}", f"tipring_capture:IN={infile}", **kw)


def test_capture_returns_the_device_bytes_one_period_at_a_time(alsa_env: Path) -> None:
    spoken = os.urandom(PERIOD_BYTES * 10)
    (alsa_env / "in.raw").write_bytes(spoken)
    port = _port(alsa_env, alsa_env / "in.raw", alsa_env / "out.raw")
    port.start()
    try:
        periods = [port.read() for _ in range(10)]
    finally:
        port.stop()
    assert all(len(p) == PERIOD_BYTES for p in periods)
    assert b"".join(periods) == spoken
    assert port.overruns == 0


def test_playback_bytes_reach_the_device_unchanged(alsa_env: Path) -> None:
    (alsa_env / "in.raw").write_bytes(bytes(PERIOD_BYTES))
    played = [os.urandom(PERIOD_BYTES) for _ in range(3)]
    port = _port(alsa_env, alsa_env / "in.raw", alsa_env / "out.raw")
    port.start()
    for period in played:
        port.write(period)
    port.stop()
    # Playback starts with the playout lead (one period by default) of silence ahead of them.
    assert (alsa_env / "out.raw").read_bytes() == bytes(PERIOD_BYTES) + b"".join(played)
    assert port.underruns == 0 and port.playout_trimmed == 0


def test_plug_layer_resamples_to_a_48k_codec(alsa_env: Path) -> None:
    (alsa_env / "in.raw").write_bytes(bytes(PERIOD_BYTES))
    out = alsa_env / "out48.raw"
    port = AlsaAudioPort(
        0, f"tipring_play48:OUT={out}", f"tipring_capture:IN={alsa_env / 'in.raw'}"
    )
    port.start()  # the port itself still negotiates 8 kHz mono S16 with 160-frame periods
    for _ in range(4):
        port.write(bytes(PERIOD_BYTES))
    port.stop()
    # 4 periods of 8 kHz became 6x as many 48 kHz frames (allowing for the converter's tail).
    assert abs(len(out.read_bytes()) - 6 * 4 * PERIOD_BYTES) <= 6 * PERIOD_BYTES


def test_start_is_idempotent_and_restart_after_stop_works(alsa_env: Path) -> None:
    data = os.urandom(PERIOD_BYTES * 2)
    (alsa_env / "in.raw").write_bytes(data)
    port = _port(alsa_env, alsa_env / "in.raw", alsa_env / "out.raw")
    port.start()
    port.start()
    assert port.read() == data[:PERIOD_BYTES]
    port.stop()
    with pytest.raises(AudioStopped):
        port.read()
    port.start()
    assert port.read() == data[:PERIOD_BYTES]  # reopened from the start of the device
    port.close()


def test_missing_device_names_the_device(alsa_env: Path) -> None:
    port = AlsaAudioPort(0, "hw:CARD=NoSuchCodec", "hw:CARD=NoSuchCodec")
    with pytest.raises(HardwareError, match="capture device 'hw:CARD=NoSuchCodec'"):
        port.start()
    assert not port.running


def test_missing_playback_closes_the_opened_capture(alsa_env: Path) -> None:
    (alsa_env / "in.raw").write_bytes(bytes(PERIOD_BYTES))
    port = AlsaAudioPort(0, "nosuchplayback", f"tipring_capture:IN={alsa_env / 'in.raw'}")
    with pytest.raises(HardwareError, match="playback device 'nosuchplayback'"):
        port.start()


def test_profile_table_validation() -> None:
    with pytest.raises(HardwareError, match=r"lines\[0\].capture must name an ALSA device"):
        audio_port_from_table(0, {"playback": "x"}, "lines[0]")
    with pytest.raises(HardwareError, match=r"buffer_periods must be 2\.\.4"):
        audio_port_from_table(0, {"playback": "x", "capture": "y", "buffer_periods": 8}, "lines[0]")
    port = audio_port_from_table(1, {"playback": "p", "capture": "c", "buffer_periods": 2}, "l")
    assert (port.line, port.playback_device, port.capture_device, port.buffer_periods) == (
        1,
        "p",
        "c",
        2,
    )


# -- a fake PCM: a device that paces, overruns and underruns on command ---------------------------


class FakePcm:
    """Stands in for alsaaudio.PCM: data arrives only when the test feeds it; poll on a pipe."""

    def __init__(self, info: dict[str, Any] | None = None) -> None:
        self.chunks: list[tuple[int, bytes]] = []
        self.written: list[bytes] = []
        self.room = 10**9
        self.xrun = False
        self.closed = False
        self.queued = 0  # frames the device holds: the test plays them out by lowering this
        self._r, self._w = os.pipe()
        self._info = info or {
            "rate": 8000,
            "channels": 1,
            "format_name": "S16_LE",
            "period_size": 160,
            "buffer_size": 640,
        }

    def feed(self, length: int, data: bytes) -> None:
        self.chunks.append((length, data))
        os.write(self._w, b"x")

    def read(self) -> tuple[int, bytes]:
        if not self.chunks:
            return 0, b""
        os.read(self._r, 1)
        return self.chunks.pop(0)

    def write(self, data: bytes) -> int:
        self.xrun = False
        frames = min(len(data) // 2, self.room)
        self.written.append(data[: frames * 2])
        self.queued += frames
        return frames

    def avail(self) -> int:
        return self._info.get("buffer_size", 640) - self.queued

    def polldescriptors(self) -> list[tuple[int, int]]:
        return [(self._r, 1)]  # POLLIN

    def state(self) -> int:
        return 4 if self.xrun else 3

    def info(self) -> dict[str, Any]:
        return self._info

    def drop(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _fake_port(cap: FakePcm, play: FakePcm) -> AlsaAudioPort:
    port = AlsaAudioPort(0, "play", "cap", opener=lambda name, capture, n: cap if capture else play)
    port.start()
    return port


def test_read_blocks_until_the_device_has_a_period_and_stop_wakes_it() -> None:
    cap, play = FakePcm(), FakePcm()
    port = _fake_port(cap, play)
    outcome: list[object] = []

    def media_thread() -> None:
        try:
            outcome.append(port.read())
            port.read()
        except AudioStopped as exc:
            outcome.append(exc)

    thread = threading.Thread(target=media_thread)
    thread.start()
    thread.join(0.05)
    assert thread.is_alive() and not outcome  # blocked: no period captured yet
    cap.feed(100, b"a" * 200)  # a partial period is not enough
    thread.join(0.05)
    assert not outcome
    cap.feed(100, b"b" * 200)
    thread.join(0.05)
    assert outcome == [b"a" * 200 + b"b" * 120]
    port.stop()  # the second read is blocked: stop must wake it
    thread.join(2.0)
    assert not thread.is_alive()
    assert isinstance(outcome[1], AudioStopped)
    assert cap.closed and play.closed


def test_capture_overrun_is_counted_and_reading_goes_on() -> None:
    cap, play = FakePcm(), FakePcm()
    port = _fake_port(cap, play)
    cap.feed(-errno.EPIPE, b"")
    cap.feed(160, b"c" * 320)
    assert port.read() == b"c" * 320
    assert port.overruns == 1
    port.stop()


def test_playback_underrun_is_counted_once_and_write_waits_for_room() -> None:
    cap, play = FakePcm(), FakePcm()
    port = _fake_port(cap, play)
    port.write(b"\x01" * PERIOD_BYTES)
    play.xrun = True
    play.queued = 0  # starved: everything played
    port.write(b"\x02" * PERIOD_BYTES)
    play.queued -= 160  # a period played out
    port.write(b"\x03" * PERIOD_BYTES)
    assert port.underruns == 1
    # The restart after the underrun is primed with the playout lead of silence.
    assert b"".join(play.written) == (b"\x01" * 320 + bytes(PERIOD_BYTES) + b"\x02" * 320
                                      + b"\x03" * 320)
    with pytest.raises(ValueError, match="expected one period of 320 bytes"):
        port.write(b"\x00" * 10)
    play.queued -= 160  # in step: not a surplus period
    play.room = 0  # yet no room (a device slower than it says): write waits in poll; stop
    # wakes it and the period is dropped
    done = threading.Event()
    thread = threading.Thread(target=lambda: (port.write(b"\x04" * 320), done.set()))
    thread.start()
    thread.join(0.05)
    assert not done.is_set()
    port.stop()
    thread.join(2.0)
    assert done.is_set()


def test_playback_starts_one_lead_ahead_and_keeps_that_level_after_a_stall() -> None:
    cap, play = FakePcm(), FakePcm()
    play.state = lambda: 3 if play.written else 2  # type: ignore[method-assign]  # PREPARED
    port = AlsaAudioPort(0, "play", "cap", playout_lead=0.005,
                         opener=lambda name, capture, n: cap if capture else play)
    port.start()
    port.write(b"\x01" * PERIOD_BYTES)  # starts playback: 5 ms of silence, then the period
    assert play.written == [bytes(80) + b"\x01" * PERIOD_BYTES]
    for value in (2, 3):  # in step with the capture clock: a period played per period written
        play.queued -= 160
        port.write(bytes([value]) * PERIOD_BYTES)
    port.write(b"\x07" * PERIOD_BYTES)  # a driver whose pointer moves a period at a time shows
    assert port.playout_trimmed == 0  # the lead and the period playing: that is in step too
    play.queued -= 2 * 160  # two periods later: back at the lead
    assert play.queued == 40
    # A stall, then the buffered capture periods read at once, a write for each: the first two
    # refill the device (the second within the bound a coarse pointer needs), the rest would
    # only add latency.
    play.queued = 0
    for value in (4, 5, 6, 8):
        port.write(bytes([value]) * PERIOD_BYTES)
    assert port.playout_trimmed == 2 and play.written[-1] == b"\x05" * PERIOD_BYTES
    port.stop()


def test_playout_lead_is_checked() -> None:
    with pytest.raises(ValueError, match="playout_lead must be more than 0"):
        AlsaAudioPort(0, "p", "c", playout_lead=0.03)
    for lead in (0, 21, "5", True):
        with pytest.raises(HardwareError, match=r"l.playout_lead_ms must be a number more than 0 and at most 20"):
            audio_port_from_table(0, {"playback": "p", "capture": "c", "playout_lead_ms": lead}, "l")
    port = audio_port_from_table(0, {"playback": "p", "capture": "c", "playout_lead_ms": 10}, "l")
    assert port.playout_lead == 0.01
    assert audio_port_from_table(0, {"playback": "p", "capture": "c"}, "l").playout_lead == 0.02


def test_device_that_negotiates_other_parameters_is_refused() -> None:
    wrong = FakePcm({"rate": 48000, "channels": 1, "format_name": "S16_LE", "period_size": 960})
    port = AlsaAudioPort(0, "p", "hw:1,0", opener=lambda name, capture, n: wrong)
    with pytest.raises(HardwareError, match=r"'hw:1,0' will not run 8000 Hz.*rate=48000"):
        port.start()
    assert wrong.closed


def test_device_failure_mid_call_is_a_hardware_error_naming_it() -> None:
    class Unplugged(FakePcm):
        def read(self) -> tuple[int, bytes]:
            raise OSError("No such device [hw:1,0]")

    cap, play = Unplugged(), FakePcm()
    port = _fake_port(cap, play)
    with pytest.raises(HardwareError, match="capture device 'cap' failed: No such device"):
        port.read()
    port.stop()
