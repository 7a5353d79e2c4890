"""A line's media thread with two call legs at once (three-way conference) and voice prompts.

Two far ends are real UDP sockets on loopback that send G.711 tones and decode what they get.
The line's audio port runs in lock step with the test: each period the test sends both far
ends' packets, hands the thread one captured period and takes the period it plays, on a
virtual clock, so nothing depends on how loaded the machine is.
"""

from __future__ import annotations

import queue
import random
from collections.abc import Iterator

import numpy as np
import pytest

from tipring.hal.api import AudioPort, AudioStopped
from tipring.media import dsp
from tipring.media.dsp import Law, ToneSegment
from tipring.media.rtp import parse_rtp
from tipring.media.stream import RtpStream, StreamConfig
from tipring.media.telephone_event import DigitStarted, EventSender, parse_event
from tipring.runtime.media import (
    LegDigitEnded,
    LegDigitStarted,
    MediaEvent,
    MediaStats,
    MediaThread,
    RTCP_DRAIN_FRAMES,
    PromptFinished,
    RemoteBye,
)
from tipring.runtime.rtp_ports import open_rtp_pair

FRAME = 160
EVENT_PT = 101
AMPLITUDE = 6000
WAIT = 10.0  # seconds a step may take on a loaded machine before the test gives up
EPOCH = 1_700_000_000.0  # the virtual wall clock: before any kernel timestamp, so age is 0


class LockstepAudio(AudioPort):
    """An audio port the test clocks: `read` returns the period the test supplies."""

    def __init__(self) -> None:
        self.line = 0
        self.captures: queue.Queue[bytes | None] = queue.Queue()
        self.played: queue.Queue[bytes] = queue.Queue()

    def start(self) -> None:
        pass

    def read(self) -> bytes:
        period = self.captures.get(timeout=WAIT)
        if period is None:
            raise AudioStopped
        return period

    def write(self, period: bytes) -> None:
        self.played.put(period)

    def stop(self) -> None:
        self.captures.put(None)


def tone_frame(freq: float, k: int, amplitude: float = AMPLITUDE) -> np.ndarray:
    n = np.arange(k * FRAME, (k + 1) * FRAME)
    return np.round(amplitude * np.sin(2 * np.pi * freq * n / 8000)).astype(np.int16)


def level(samples: np.ndarray, freq: float) -> float:
    """Amplitude of the `freq` component, by FFT over a whole number of its periods."""
    spectrum = np.fft.rfft(samples.astype(np.float64))
    return float(2 * abs(spectrum[round(freq * len(samples) / 8000)]) / len(samples))


class FarEnd:
    """The other phone of one leg: sends a tone in `law`, decodes what it receives."""

    def __init__(self, name: str, law: Law, freq: float | None, seed: int) -> None:
        self.name, self.law, self.freq = name, law, freq
        self.rtp, self.rtcp = open_rtp_pair("127.0.0.1", 20000, 30000, rng=random.Random(seed))
        for sock in (self.rtp, self.rtcp):
            sock.settimeout(WAIT)
        # The line's sockets for this leg, and the line's stream towards us.
        self.line_rtp, self.line_rtcp = open_rtp_pair("127.0.0.1", 30000, 40000,
                                                      rng=random.Random(seed + 100))
        self.line_address = self.line_rtp.getsockname()
        self.line_rtcp_address = self.line_rtcp.getsockname()
        self.line_stream = RtpStream(StreamConfig(
            payload_type=law.payload_type, remote=self.rtp.getsockname(),
            event_payload_type=EVENT_PT, cname=f"line-{name}"), rng=random.Random(seed))
        self.stream = RtpStream(StreamConfig(
            payload_type=law.payload_type, remote=self.line_address,
            event_payload_type=EVENT_PT, cname=name), rng=random.Random(seed + 1))
        self.heard: list[np.ndarray] = []
        self.events: list[tuple[int, bytes]] = []  # RFC 4733 packets: (timestamp, payload)
        self.digits = EventSender(period=FRAME)

    def send(self, k: int) -> None:
        for event in self.digits.tick():
            self._sendto(self.stream.outgoing(event.payload, marker=event.marker,
                                              timestamp=event.timestamp, payload_type=EVENT_PT))
        if self.freq is not None:
            codes = bytearray(FRAME)
            dsp.encode(self.law, tone_frame(self.freq, k).tobytes(), codes)
            self._sendto(self.stream.outgoing(bytes(codes)))

    def _sendto(self, datagram: bytes) -> None:
        self.rtp.sendto(datagram, self.line_address)

    def receive_frame(self) -> None:
        """Wait for the next audio packet from the line (events on the way are kept)."""
        while True:
            packet = parse_rtp(self.rtp.recv(2048))
            if packet.payload_type == EVENT_PT:
                self.events.append((packet.timestamp, packet.payload))
                continue
            assert packet.payload_type == self.law.payload_type
            pcm = np.zeros(len(packet.payload), dtype=np.int16)
            dsp.decode(self.law, packet.payload, pcm)
            self.heard.append(pcm)
            return

    def say_bye(self, now: float) -> None:
        self.rtcp.sendto(self.stream.report(now, EPOCH + now, bye=True), self.line_rtcp_address)

    def got_bye(self) -> bool:
        self.rtcp.settimeout(0.5)
        try:
            while True:
                if b"\x81\xcb" in self.rtcp.recv(2048):  # RTCP BYE, one SSRC (RFC 3550 6.6)
                    return True
        except TimeoutError:
            return False

    def close(self) -> None:
        for sock in (self.rtp, self.rtcp, self.line_rtp, self.line_rtcp):
            sock.close()


class Line:
    """The media thread under test, with the far ends that are attached to it."""

    def __init__(self) -> None:
        self.audio = LockstepAudio()
        self.now = 0.0
        self.events: queue.Queue[MediaEvent] = queue.Queue()
        self.thread = MediaThread(self.audio, self.events.put, clock=lambda: self.now,
                                  wall=lambda: EPOCH + self.now)
        self.far: dict[str, FarEnd] = {}
        self.handset_freq = 2000.0
        self.played: list[np.ndarray] = []
        self.k = 0

    def attach(self, far: FarEnd) -> None:
        self.far[far.name] = far
        self.thread.attach(far.line_stream, far.line_rtp, far.line_rtcp, leg=far.name)

    def detach(self, name: str) -> None:
        self.thread.detach(name)

    def step(self, frames: int = 1, listening: tuple[str, ...] | None = None) -> None:
        """Run periods; each far end in `listening` (default: all) waits for its packet."""
        for _ in range(frames):
            self.now = self.k * 0.02
            for far in self.far.values():
                far.send(self.k)
            self.audio.captures.put(tone_frame(self.handset_freq, self.k).tobytes())
            played = self.audio.played.get(timeout=WAIT)
            self.played.append(np.frombuffer(played, dtype=np.int16))
            for name in self.far if listening is None else listening:
                self.far[name].receive_frame()
            self.k += 1

    def drain_events(self) -> list[MediaEvent]:
        seen = []
        while True:
            try:
                seen.append(self.events.get_nowait())
            except queue.Empty:
                return seen


@pytest.fixture
def line() -> Iterator[Line]:
    line = Line()
    line.thread.start()
    yield line
    line.thread.stop()
    line.thread.join(timeout=WAIT)
    for far in line.far.values():
        far.close()
    assert not line.thread.is_alive()


def last(frames: list[np.ndarray], n: int = 25) -> np.ndarray:
    """The last `n` frames (0.5 s: whole periods of every tone used here)."""
    return np.concatenate(frames[-n:])


def assert_tones(heard: np.ndarray, present: tuple[float, ...], absent: tuple[float, ...]) -> None:
    for freq in present:
        assert level(heard, freq) == pytest.approx(AMPLITUDE, rel=0.06), freq
    for freq in absent:
        assert level(heard, freq) < AMPLITUDE / 50, freq  # a leak would be at full level


def test_three_way_conference_over_udp_with_mixed_laws(line: Line) -> None:
    a = FarEnd("call-a@example.net", Law.ULAW, 500.0, seed=1)
    b = FarEnd("call-b@example.net", Law.ALAW, 1300.0, seed=2)
    line.attach(a)
    line.attach(b)
    line.step(60)
    assert_tones(last(line.played), (500, 1300), (2000,))
    assert_tones(last(a.heard), (2000, 1300), (500,))
    assert_tones(last(b.heard), (2000, 500), (1300,))
    stats = [e for e in line.drain_events() if isinstance(e, MediaStats)]
    assert sorted(s.leg for s in stats) == [a.name, b.name]  # one each in 1.2 s
    assert all(s.received_packets >= 49 and s.late == 0 for s in stats)

    line.detach(b.name)
    line.step(1, listening=(a.name,))
    assert b.got_bye()
    line.step(40, listening=(a.name,))
    assert_tones(last(line.played), (500,), (1300, 2000))
    assert_tones(last(a.heard), (2000,), (500, 1300))
    assert line.thread.stream is None  # no default leg: both were named
    assert set(line.thread.legs) == {a.name}


def test_a_held_leg_is_neither_heard_nor_sent(line: Line) -> None:
    a = FarEnd("a", Law.ULAW, 500.0, seed=3)
    b = FarEnd("b", Law.ULAW, 1300.0, seed=4)
    line.attach(a)
    line.attach(b)
    line.step(10)
    line.thread.set_direction(send=False, receive=False, leg=b.name)
    timestamp = b.line_stream.timestamp
    line.step(40, listening=(a.name,))
    assert_tones(last(line.played), (500,), (1300, 2000))
    assert_tones(last(a.heard), (2000,), (500, 1300))
    b.rtp.settimeout(0.2)
    with pytest.raises(TimeoutError):  # at most the period already under way went out
        for _ in range(2):
            b.rtp.recv(2048)
    assert (b.line_stream.timestamp - timestamp) % 2**32 >= 39 * FRAME  # it still advances


def test_remote_digits_and_bye_say_which_leg(line: Line) -> None:
    a = FarEnd("a", Law.ULAW, 500.0, seed=5)
    b = FarEnd("b", Law.ALAW, 1300.0, seed=6)
    line.attach(a)
    line.attach(b)
    line.step(5)
    b.digits.start("7", b.stream.timestamp)
    line.step(3)
    b.digits.stop()
    line.step(8)
    b.say_bye(line.now)
    line.step(RTCP_DRAIN_FRAMES)  # the RTCP socket is read every so many frames
    events = line.drain_events()
    digits = [e for e in events if isinstance(e, DigitStarted | LegDigitEnded)]
    assert [(type(e), e.key, e.leg) for e in digits] == [(LegDigitStarted, "7", "b"),
                                                        (LegDigitEnded, "7", "b")]
    assert isinstance(digits[0], DigitStarted)  # still the RFC 4733 event, with its leg added
    assert [e for e in events if isinstance(e, RemoteBye)] == [RemoteBye("b")]


def test_digits_go_only_to_the_leg_they_are_sent_on(line: Line) -> None:
    a = FarEnd("a", Law.ULAW, None, seed=7)
    b = FarEnd("b", Law.ULAW, None, seed=8)
    line.attach(a)
    line.attach(b)
    line.step(3)
    line.thread.start_digit("5", leg="a")
    line.step(4)
    line.thread.stop_digit(leg="a")
    line.step(6)
    assert {parse_event(p).event for _, p in a.events} == {5}
    assert any(parse_event(p).end for _, p in a.events)
    assert b.events == []


def test_a_third_leg_is_refused_at_once(line: Line) -> None:
    a, b, c = (FarEnd(n, Law.ULAW, None, seed=10 + i) for i, n in enumerate("abc"))
    line.attach(a)
    line.attach(b)
    with pytest.raises(ValueError, match="already carries 2 legs"):
        line.attach(c)
    line.detach("a")
    line.far.pop("a")
    line.attach(c)  # room again
    line.step(2)
    assert set(line.thread.legs) == {"b", "c"}
    a.close()


def test_a_prompt_plays_bit_exactly_then_reports_its_end(line: Line) -> None:
    a = FarEnd("a", Law.ULAW, 500.0, seed=20)
    line.attach(a)
    line.thread.play_tone([ToneSegment(((440.0, -13.0),), None, 0.0)])
    line.step(5)
    rng = np.random.default_rng(1)
    prompt = rng.integers(-32768, 32768, 5 * FRAME + 37).astype(np.int16)
    line.thread.play_prompt(prompt.astype("<i2").tobytes())
    line.step(13)
    out = np.concatenate(line.played[5:])
    assert np.array_equal(out[: len(prompt)], prompt)
    assert [e for e in line.drain_events() if isinstance(e, PromptFinished)] == [
        PromptFinished()]
    after = last(line.played, 5)  # the tone and the far end are back after it
    assert level(after, 440) > 3000 and level(after, 500) == pytest.approx(AMPLITUDE, rel=0.06)

    line.thread.play_prompt(prompt.tobytes())
    line.step(2)
    line.thread.stop_prompt()
    line.step(8)
    assert not any(isinstance(e, PromptFinished) for e in line.drain_events())
    assert np.array_equal(np.concatenate(line.played[-10:-8]), prompt[: 2 * FRAME])
    assert not np.array_equal(line.played[-8], prompt[2 * FRAME : 3 * FRAME])
    after = last(line.played, 5)
    assert level(after, 440) > 3000 and level(after, 500) == pytest.approx(AMPLITUDE, rel=0.06)


@pytest.mark.parametrize("pcm", [b"", b"\x00"])
def test_a_bad_prompt_is_refused_before_it_reaches_the_thread(line: Line, pcm: bytes) -> None:
    with pytest.raises(ValueError, match="whole 16-bit samples"):
        line.thread.play_prompt(pcm)
    line.step(1)
    assert line.thread.is_alive()


def test_the_line_keeps_its_default_leg_api(line: Line) -> None:
    """Callers that name no leg get leg "", as before lines carried legs."""
    a = FarEnd("", Law.ALAW, 1300.0, seed=30)
    line.far[""] = a
    line.thread.attach(a.line_stream, a.line_rtp, a.line_rtcp)
    line.step(60)
    assert line.thread.stream is a.line_stream
    stats = [e for e in line.drain_events() if isinstance(e, MediaStats)]
    assert [s.leg for s in stats] == [""]
    assert_tones(last(line.played), (1300,), (2000,))
    assert_tones(last(a.heard), (2000,), (1300,))
    line.thread.detach()
    line.step(1, listening=())
    assert a.got_bye()
    assert line.thread.legs == {}


def test_a_leg_whose_sockets_were_closed_does_not_stop_the_line(line: Line) -> None:
    """The runtime may close a leg's sockets before its detach reaches the thread."""
    a = FarEnd("a", Law.ULAW, 500.0, seed=40)
    b = FarEnd("b", Law.ULAW, 1300.0, seed=41)
    line.attach(a)
    line.attach(b)
    line.step(3)
    b.line_rtp.close()
    b.line_rtcp.close()
    line.step(30, listening=(a.name,))
    assert line.thread.is_alive()
    dropped = line.thread.legs["b"].stream.stats.dropped
    assert any(reason.startswith("receive:") for reason in dropped)
    assert_tones(last(a.heard), (2000,), (500,))
