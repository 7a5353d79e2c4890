"""The audio thread of one line: audio device <-> C audio path <-> RTP over UDP, per call leg.

It runs whenever the line needs audio (dial tone and digit detection with no call, caller ID on
hook, and calls), clocked by the audio device as ARCHITECTURE.md says: each turn blocks on one
20 ms capture period, makes one C call for capture (echo cancel, DTMF detection, encode for every
leg) and sends each leg its payload (or RFC 4733 event packets while a digit is sent), drains
each leg's RTP socket into its jitter buffer, makes one C call for playout (jitter buffers,
concealment, the legs' sum, caller ID, tones or a voice prompt) and writes the period. Nothing
sleeps. Commands from the loop wait in a queue and run between frames; events for the loop
(detected digits, remote digits, statistics, remote BYE, a prompt's end, the end of the thread)
go out through `on_event`, which the runtime wraps with `loop.call_soon_threadsafe`.

A call's RTP session is a leg, attached and detached as calls come and go, and named by the
runtime (the call's handle; "" when the caller does not say, as for a line with one call). Each
leg has its own RTP stream, sockets, SRTP session, jitter buffer, law, direction and RFC 4733
sender and receiver. Two legs attached at once are a three-way conference: the C path makes the
handset hear both far ends and each far end hear the handset and the other far end. Events that
come from a leg say which: `MediaStats.leg`, `RemoteBye.leg`, and remote digits arrive as
`LegDigitStarted` / `LegDigitEnded` (the RFC 4733 events with a `leg` field added).

Arrival times come from the kernel's receive timestamps (SO_TIMESTAMPNS) where available, since
draining once per frame would otherwise quantise every arrival to the 20 ms frame clock and
inflate the jitter the buffer sees.

The thread must meet every period's deadline (the audio device's playout lead) while the loop
thread renders pages or parses junk SIP. Two things stand between it and the CPU: the scheduler,
so it asks for SCHED_FIFO when allowed (the image runs as root; elsewhere it keeps the normal
policy); and the GIL, which it gives up around every socket and C call of a period and must win
back each time: a thread that wants it waits up to the interpreter's switch interval (5 ms by
default) before a busy holder is made to let go, so it lowers that interval to 1 ms. The cyclic
garbage collector holds the GIL for a whole pass, and a full one over a running device's objects
takes tens of milliseconds (85 ms measured with the web server up): while any line has audio,
what existed when it started is frozen out of the collector (gc.freeze), and handed back to it
(gc.unfreeze) when the last line's audio ends, so cycles made before the call are still freed.
"""

from __future__ import annotations

import array
import fcntl
import gc
import logging
import os
import queue
import socket
import struct
import sys
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tipring.hal.api import PERIOD_SAMPLES, AudioPort, AudioStopped
from tipring.media.dsp import (
    DEFAULT_LEG,
    FOREVER,
    MAX_LEGS,
    AudioPath,
    FskStandard,
    Law,
    ToneEvent,
    ToneSegment,
    dtmf_segments,
)
from tipring.media.quality import LossBursts, mos_estimate
from tipring.media.srtp import SrtpError, SrtpSession
from tipring.media.stream import COMFORT_NOISE, RtpStream
from tipring.media.telephone_event import DigitEnded, DigitStarted, EventReceiver, EventSender

log = logging.getLogger("tipring.media")

STATS_EVERY = 1.0  # seconds between statistics events
REALTIME_PRIORITY = 20  # SCHED_FIFO priority of the audio threads (1-99; IRQ threads run at 50)
# RTCP comes every few seconds: its socket is read every 10th frame (200 ms), with the kernel's
# arrival times, rather than costing a receive call every frame.
RTCP_DRAIN_FRAMES = 10
SWITCH_INTERVAL = 0.001  # seconds a busy thread keeps the GIL from an audio thread that wants it
# Python's socket module does not name it (3.11 to 3.13 at least); Linux's value is 35 on the
# architectures the image targets (asm-generic: arm, aarch64; also x86).
_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform == "linux" else None)


class _CollectorFreeze:
    """gc.freeze while at least one audio thread runs (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0

    def __enter__(self) -> None:
        with self._lock:
            self._holders += 1
            if self._holders == 1:
                gc.freeze()

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                gc.unfreeze()


_collector_freeze = _CollectorFreeze()


@dataclass(frozen=True)
class MediaStats:
    sent_packets: int
    received_packets: int
    dropped: dict[str, int]
    jitter_ms: float  # RFC 3550 interarrival jitter of what we receive
    cumulative_lost: int
    buffer_delay_ms: float
    buffer_target_ms: float
    late: int
    concealed_ms: float
    round_trip_ms: float | None
    overruns: int
    underruns: int
    leg: str = DEFAULT_LEG
    sent_octets: int = 0  # RTP payload octets, as RTCP counts them
    received_octets: int = 0
    duplicates: int = 0  # packets the jitter buffer already had
    burst_ratio: float = 1.0  # G.107 BurstR of the loss so far (1: random)
    quality_lost: int = 0  # packets still missing (late ones filled in; duplicates ignored)
    mos: float | None = None  # G.107 E-model estimate (tipring.media.quality)
    # The buffer's nominal delay (RFC 3611's "JB nominal": what a packet on the fastest path
    # waits before it plays): its target moved onto the frame grid, which is where it plays.
    buffer_nominal_ms: float = 0.0


@dataclass(frozen=True)
class RemoteBye:
    leg: str = DEFAULT_LEG


@dataclass(frozen=True)
class LegDigitStarted(DigitStarted):
    """A far end's RFC 4733 digit began, on `leg`."""

    leg: str = DEFAULT_LEG


@dataclass(frozen=True)
class LegDigitEnded(DigitEnded):
    """A far end's RFC 4733 digit ended, on `leg`."""

    leg: str = DEFAULT_LEG


@dataclass(frozen=True)
class PromptFinished:
    """A voice prompt played its last sample (not sent for one stopped or replaced)."""


@dataclass(frozen=True)
class MediaStopped:
    reason: str


LegDigitEvent = LegDigitStarted | LegDigitEnded
MediaEvent = LegDigitEvent | ToneEvent | MediaStats | RemoteBye | PromptFinished | MediaStopped


@dataclass
class _Leg:
    """One call's RTP on this line, as the media thread keeps it."""

    name: str
    stream: RtpStream
    rtp_sock: socket.socket
    rtcp_sock: socket.socket
    srtp: SrtpSession | None
    silence: bytes  # one period of G.711 silence in the leg's law
    sending: bool = True
    receiving: bool = True
    events_out: EventSender = field(default_factory=lambda: EventSender(period=PERIOD_SAMPLES))
    events_in: EventReceiver = field(default_factory=EventReceiver)
    received_octets: int = 0
    bursts: LossBursts = field(default_factory=LossBursts)
    bursts_ssrc: int | None = None
    empty_datagrams: bool = False  # a zero-length datagram came: drain to EAGAIN (`_drain`)


def _with_leg(event: DigitStarted | DigitEnded, leg: str) -> LegDigitEvent:
    if isinstance(event, DigitStarted):
        return LegDigitStarted(event.key, event.timestamp, leg)
    return LegDigitEnded(event.key, event.timestamp, event.duration, leg)


class MediaThread(threading.Thread):
    def __init__(self, audio: AudioPort, on_event: Callable[[MediaEvent], None], *,
                 path: AudioPath | None = None, play_remote_digits: bool = False,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 realtime_priority: int | None = REALTIME_PRIORITY) -> None:
        super().__init__(name=f"audio-line{audio.line}", daemon=True)
        self.audio = audio
        self.path = path or AudioPath()
        self.path.detach_leg()  # no call until one is attached
        self.play_remote_digits = play_remote_digits
        self.on_event = on_event
        self.clock = clock
        self.wall = wall
        self.realtime_priority = realtime_priority  # None: never ask for SCHED_FIFO
        self.legs: dict[str, _Leg] = {}  # this thread's own; read from others only in tests
        self._attached: set[str] = set()  # the callers' view, to refuse a third leg at once
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._stopping = False
        self._inq = array.array("i", [0])  # FIONREAD's answer (`_queued`)
        # Deadline diagnostics (seconds, by `clock`): the longest a frame took from its capture
        # read returning to its playout write returning, and the longest between two reads
        # returning (a period's 20 ms when nothing stalls). An xrun with a long gap but short
        # frames was a wait for the CPU or the GIL, not work of ours.
        self.longest_frame = 0.0
        self.longest_gap = 0.0

    @property
    def stream(self) -> RtpStream | None:
        """The default leg's RTP stream (the call's, on a line with one unnamed call)."""
        leg = self.legs.get(DEFAULT_LEG)
        return None if leg is None else leg.stream

    # --- commands (any thread) ----------------------------------------------------------------

    def attach(self, stream: RtpStream, rtp_sock: socket.socket, rtcp_sock: socket.socket,
               srtp: SrtpSession | None = None, *, leg: str = DEFAULT_LEG) -> None:
        """Start sending and receiving a call's RTP on `leg`, SRTP when keys were negotiated,
        replacing what that leg carried (a re-INVITE: no BYE, and the leg's jitter buffer goes
        on). The sockets stay the caller's to close. A second leg makes a three-way conference;
        a third is refused (ValueError)."""
        if leg not in self._attached and len(self._attached) >= MAX_LEGS:
            raise ValueError(f"line {self.audio.line} already carries {MAX_LEGS} legs "
                             f"({sorted(self._attached)}); detach one before attaching {leg!r}")
        self._attached.add(leg)
        if _TIMESTAMPNS is not None:
            for sock in (rtp_sock, rtcp_sock):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, _TIMESTAMPNS, 1)
                except OSError:
                    pass
        law = Law.ALAW if stream.config.payload_type == 8 else Law.ULAW
        silence = bytes([0xD5 if law is Law.ALAW else 0xFF]) * PERIOD_SAMPLES

        def apply() -> None:
            old = self.legs.get(leg)
            self.path.attach_leg(leg, law)
            self.legs[leg] = _Leg(leg, stream, rtp_sock, rtcp_sock, srtp, silence)
            if old is not None:  # a re-INVITE: a digit being sent goes on
                self.legs[leg].events_out = old.events_out
        self._commands.put(apply)

    def detach(self, leg: str | None = None) -> None:
        """End one leg's RTP (None: every leg's), each with an RTCP BYE; the line's audio
        (tones, the other leg) goes on. Detaching a leg that is not attached does nothing."""
        if leg is None:
            self._attached.clear()
        else:
            self._attached.discard(leg)
        self._commands.put(lambda: self._detach(leg))

    def start_digit(self, key: str, *, leg: str = DEFAULT_LEG) -> None:
        """Send `key` to the leg's far end as RFC 4733 events until `stop_digit`."""
        def apply() -> None:
            target = self.legs.get(leg)
            if target is not None:
                target.events_out.start(key, target.stream.timestamp)
        self._commands.put(apply)

    def stop_digit(self, *, leg: str = DEFAULT_LEG) -> None:
        def apply() -> None:
            target = self.legs.get(leg)
            if target is not None:
                target.events_out.stop()
        self._commands.put(apply)

    def set_direction(self, send: bool, receive: bool, *, leg: str = DEFAULT_LEG) -> None:
        """Hold and resume: what the SDP direction attributes negotiated for `leg` (a leg not
        attached is left alone; attaching starts in both directions)."""
        def apply() -> None:
            target = self.legs.get(leg)
            if target is not None:
                target.sending, target.receiving = send, receive
                self.path.set_direction(send, receive, leg)
        self._commands.put(apply)

    def play_tone(self, segments: list[ToneSegment], repeat_from: int | None = 0) -> None:
        self._commands.put(lambda: self.path.start_tone(segments, repeat_from))

    def stop_tone(self) -> None:
        self._commands.put(self.path.stop_tone)

    def play_prompt(self, pcm: bytes) -> None:
        """Play a voice prompt (8 kHz mono S16LE) to the handset instead of tones and the far
        ends, replacing one in progress; `PromptFinished` follows its last sample."""
        data = bytes(pcm)
        if not data or len(data) % 2:
            raise ValueError(f"a voice prompt is whole 16-bit samples, at least one; got "
                             f"{len(data)} bytes")
        self._commands.put(lambda: self.path.play_prompt(data))

    def stop_prompt(self) -> None:
        """End the prompt now, without `PromptFinished`."""
        self._commands.put(self.path.stop_prompt)

    def send_caller_id(self, message: bytes, standard: FskStandard, *, seizure_bits: int = 300,
                       mark_bits: int = 180) -> None:
        """An FSK burst in place of the playout audio (on hook: 300 seizure + 180 mark bits;
        off hook after CAS: 0 + 80, with the far end muted by `mute_far_end`)."""
        self._commands.put(lambda: self.path.send_caller_id(
            message, standard, seizure_bits=seizure_bits, mark_bits=mark_bits))

    def set_gains(self, tx_db: float, rx_db: float) -> None:
        """The line's gains (phone -> network, network -> phone), from its settings."""
        self._commands.put(lambda: self.path.set_gains(tx_db, rx_db))

    def mute_far_end(self, muted: bool) -> None:
        """Silence the network audio to the handset (under call-waiting caller ID)."""
        self._commands.put(lambda: self.path.mute(receive=muted))

    def mute(self, transmit: bool) -> None:
        """Silence what the phone sends (no far end hears it), e.g. during a transfer."""
        self._commands.put(lambda: self.path.mute(transmit=transmit))

    def stop(self) -> None:
        """End the line's audio: RTCP BYE goes out on every leg; the thread exits."""
        self._commands.put(self._request_stop)
        self.audio.stop()  # wakes a blocked read

    def _request_stop(self) -> None:
        self._stopping = True

    # --- the loop (this thread) ---------------------------------------------------------------

    def _claim_realtime(self) -> None:
        """Real-time scheduling for this thread where permitted; the normal policy otherwise."""
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        if self.realtime_priority is None or not hasattr(os, "sched_setscheduler"):
            return
        try:  # pid 0: on Linux, the calling thread alone
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.realtime_priority))
        except (OSError, ValueError) as exc:  # EPERM without CAP_SYS_NICE / RLIMIT_RTPRIO
            log.info("audio thread keeps the normal scheduling policy (%s)", exc,
                     extra={"line": self.audio.line})

    def run(self) -> None:
        with _collector_freeze:
            self._run()

    def _run(self) -> None:
        reason = "stopped"
        try:
            self._claim_realtime()
            self.audio.start()
            next_stats = self.clock() + STATS_EVERY
            frame = 0
            last_read: float | None = None
            while not self._stopping:
                try:
                    captured = self.audio.read()
                except AudioStopped:
                    break
                now = self.clock()
                if last_read is not None and now - last_read > self.longest_gap:
                    self.longest_gap = now - last_read
                last_read = now
                self._run_commands()
                detected = self.path.capture_tones(captured)
                for tone in detected:
                    self.on_event(tone)
                report = bool(self.legs) and now >= next_stats
                if report:
                    next_stats = now + STATS_EVERY
                frame += 1
                for leg in list(self.legs.values()):
                    self._send(leg, self.path.payload(leg.name))
                    self._drain(leg, now, drain_rtcp=frame % RTCP_DRAIN_FRAMES == 0)
                    self._rtcp(leg, now)
                    if report:
                        self.on_event(self.stats(leg.name))
                    for event in leg.events_in.poll(now):
                        self._remote_digit(leg, event)
                self.audio.write(self.path.playout(now))
                took = self.clock() - now
                if took > self.longest_frame:
                    self.longest_frame = took
                if self.path.prompt_finished:
                    self.on_event(PromptFinished())
        except Exception as exc:  # the call must end cleanly, whatever broke
            log.exception("media thread failed", extra={"line": self.audio.line})
            reason = f"error: {exc}"
        finally:
            try:
                self._detach(None)
            finally:
                self.audio.stop()
                self.on_event(MediaStopped(reason))

    def _run_commands(self) -> None:
        commands = self._commands
        while not commands.empty():  # this thread alone takes from the queue
            commands.get_nowait()()

    def _send(self, leg: _Leg, payload: bytes) -> None:
        if not leg.sending:
            leg.stream.skip(PERIOD_SAMPLES)
            return
        if leg.events_out.active:
            for packet in leg.events_out.tick():
                self._sendto(leg, leg.stream.outgoing(
                    packet.payload, marker=packet.marker, timestamp=packet.timestamp,
                    payload_type=leg.stream.config.event_payload_type))
            payload = leg.silence  # in-band audio is muted while a digit is sent as events
        self._sendto(leg, leg.stream.outgoing(payload, samples=PERIOD_SAMPLES))

    def _sendto(self, leg: _Leg, datagram: bytes) -> None:
        if leg.srtp is not None:
            datagram = leg.srtp.protect(datagram)
        try:
            leg.rtp_sock.sendto(datagram, leg.stream.destination)
        except OSError as exc:  # e.g. ICMP unreachable reported on the next send: keep going
            leg.stream.stats.dropped[f"send: {exc.strerror or exc}"] += 1

    def _take(self, leg: _Leg, data: bytes, source: Any, arrival: float, now: float) -> None:
        """One datagram from the leg's RTP socket: into the jitter buffer, or its digit, comfort
        noise or drop count."""
        stream = leg.stream
        if leg.srtp is not None:
            try:
                data = leg.srtp.unprotect(data)
            except SrtpError:  # forged, damaged or replayed: never played
                stream.stats.dropped["srtp rejected"] += 1
                return
        packet = stream.incoming(data, (source[0], source[1]), arrival)
        if packet is None:
            return
        self._count(leg, packet.ssrc, packet.sequence, len(packet.payload))
        if not leg.receiving:
            return
        if packet.payload_type == stream.config.event_payload_type:
            try:
                for event in leg.events_in.receive(packet.timestamp, packet.payload, now):
                    self._remote_digit(leg, event)
            except ValueError:
                stream.stats.dropped["malformed event"] += 1
        elif packet.payload_type == COMFORT_NOISE:
            self.path.comfort_noise(packet.payload, leg.name)
        else:
            self.path.put(packet.ssrc, packet.sequence, packet.timestamp, packet.marker,
                          packet.payload_type, packet.payload, arrival, leg.name)

    def _queued(self, sock: socket.socket) -> bool:
        """Whether a datagram of at least one byte waits on `sock` (see `_drain`)."""
        try:
            fcntl.ioctl(sock.fileno(), termios.FIONREAD, self._inq, True)
        except OSError:
            return True  # the receive will say what is wrong
        return self._inq[0] > 0

    def _receive(self, leg: _Leg, sock: socket.socket,
                 now: float) -> tuple[bytes, Any, float] | None:
        try:
            if _TIMESTAMPNS is None:
                data, source = sock.recvfrom(2048)
                return data, source, now
            data, ancillary, _, source = sock.recvmsg(2048, 64)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:  # e.g. closed by the runtime before the detach reached us
            reason = f"receive: {exc.strerror or exc}"
            if not leg.stream.stats.dropped[reason]:
                log.warning("leg %r: RTP %s", leg.name, reason, extra={"line": self.audio.line})
            leg.stream.stats.dropped[reason] += 1
            return None
        arrival = now
        for level, kind, value in ancillary:
            if level != socket.SOL_SOCKET or kind != _TIMESTAMPNS:
                continue
            # struct timespec: two 64-bit fields, or two 32-bit ones on a 32-bit kernel ABI.
            if len(value) >= 16:
                seconds, nanos = struct.unpack("=qq", value[:16])
            elif len(value) == 8:
                seconds, nanos = struct.unpack("=ii", value)
            else:
                continue
            age = self.wall() - (seconds + nanos / 1e9)
            arrival = now - max(0.0, min(age, 1.0))
        return data, source, arrival

    def _drain(self, leg: _Leg, now: float, drain_rtcp: bool = True) -> None:
        # Read until the socket says nothing more waits. Asking it (FIONREAD) costs a third of
        # the receive that fails with EAGAIN, which Python turns into an exception with a
        # locale-decoded message. FIONREAD answers 0 for a zero-length datagram too, so once
        # one has come (never RTP: junk) the leg reads to EAGAIN, lest they hold packets back.
        while (received := self._receive(leg, leg.rtp_sock, now)) is not None:
            data, source, arrival = received
            leg.empty_datagrams = leg.empty_datagrams or not data
            self._take(leg, data, source, arrival, now)
            if not leg.empty_datagrams and not self._queued(leg.rtp_sock):
                break
        if not drain_rtcp:
            return
        stream = leg.stream
        while True:
            received = self._receive(leg, leg.rtcp_sock, now)
            if received is None:
                break
            data, source, arrival = received
            if leg.srtp is not None:
                try:
                    data = leg.srtp.unprotect_rtcp(data)
                except SrtpError:
                    stream.stats.dropped["srtcp rejected"] += 1
                    continue
            said_bye = stream.remote_bye
            # Its arrival time, not ours: round-trip times and our DLSR depend on it.
            stream.incoming_rtcp(data, (source[0], source[1]), arrival,
                                 self.wall() - (now - arrival))
            if stream.remote_bye and not said_bye:
                self.on_event(RemoteBye(leg.name))

    @staticmethod
    def _count(leg: _Leg, ssrc: int, sequence: int, octets: int) -> None:
        """What the call-quality figures need beyond the stream's own counts."""
        if ssrc != leg.bursts_ssrc:  # a new source starts its statistics afresh, as RTP's do
            leg.bursts, leg.bursts_ssrc = LossBursts(), ssrc
        leg.bursts.update(sequence)
        leg.received_octets += octets

    def _remote_digit(self, leg: _Leg, event: DigitStarted | DigitEnded) -> None:
        """Report a far end's RFC 4733 digit with its leg. With `play_remote_digits`, the
        handset hears it too (some services prompt by sending them)."""
        self.on_event(_with_leg(event, leg.name))
        if not self.play_remote_digits or event.key == "flash":
            return
        if isinstance(event, DigitStarted):
            self.path.start_tone(dtmf_segments(event.key, on=FOREVER, off=0.0))
        else:
            self.path.stop_tone()

    def _rtcp(self, leg: _Leg, now: float) -> None:
        if now >= leg.stream.next_report_time(now):
            self._send_rtcp(leg, leg.stream.report(now, self.wall()))

    def _send_rtcp(self, leg: _Leg, datagram: bytes) -> None:
        if leg.srtp is not None:
            datagram = leg.srtp.protect_rtcp(datagram)
        try:
            leg.rtcp_sock.sendto(datagram, leg.stream.rtcp_destination)
        except OSError:
            leg.stream.stats.dropped["rtcp send"] += 1

    def _goodbye(self, leg: _Leg) -> None:
        self._send_rtcp(leg, leg.stream.report(self.clock(), self.wall(), bye=True))

    def _detach(self, name: str | None) -> None:
        for leg in [self.legs.get(name)] if name is not None else list(self.legs.values()):
            if leg is None:
                continue
            self._goodbye(leg)
            del self.legs[leg.name]
            self.path.detach_leg(leg.name)

    def stats(self, leg: str = DEFAULT_LEG) -> MediaStats:
        """The leg's figures (KeyError if it is not attached)."""
        state = self.legs[leg]
        stream = state.stream
        jbuf = self.path.leg_state(leg).jb
        jb = jbuf.stats
        rtt = stream.stats.round_trip_time
        bursts = state.bursts
        buffer_delay_ms = jb.current_delay / 8
        return MediaStats(
            sent_packets=stream.stats.sent_packets,
            received_packets=stream.stats.received_packets,
            dropped=dict(stream.stats.dropped),
            jitter_ms=stream.reception.jitter * 1000 / stream.config.clock_rate,
            cumulative_lost=stream.reception.cumulative_lost,
            buffer_delay_ms=buffer_delay_ms,
            buffer_target_ms=jb.target_delay / 8,
            buffer_nominal_ms=jbuf.cover / 8,
            late=jb.late,
            concealed_ms=jb.concealed_samples / 8,
            round_trip_ms=None if rtt is None else rtt * 1000,
            overruns=self.audio.overruns,
            underruns=self.audio.underruns,
            leg=leg,
            sent_octets=stream.stats.sent_octets,
            received_octets=state.received_octets,
            duplicates=jb.duplicate,
            burst_ratio=round(bursts.burst_ratio, 2),
            quality_lost=bursts.lost,
            mos=mos_estimate(round_trip_ms=None if rtt is None else rtt * 1000,
                             buffer_delay_ms=buffer_delay_ms, loss_percent=bursts.loss_percent,
                             burst_ratio=bursts.burst_ratio) if bursts.expected else None,
        )
