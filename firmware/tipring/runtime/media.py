"""The audio thread of one line: audio device <-> C audio path <-> RTP over UDP.

It runs whenever the line needs audio (dial tone and digit detection with no call, caller ID on
hook, and calls), clocked by the audio device as ARCHITECTURE.md says: each turn blocks on one
20 ms capture period, makes one C call for capture (echo cancel, DTMF detection, encode) and
sends the payload (or RFC 4733 event packets while a digit is sent), drains the RTP socket into
the jitter buffer, makes one C call for playout (jitter buffer, concealment, caller ID, tones)
and writes the period. Nothing sleeps. A call's RTP session is attached and detached as calls
come and go. Commands from the loop wait in a queue and run between frames; events for the loop
(detected digits, remote digits, statistics, remote BYE, the end of the thread) go out through
`on_event`, which the runtime wraps with `loop.call_soon_threadsafe`.

Arrival times come from the kernel's receive timestamps (SO_TIMESTAMPNS) where available, since
draining once per frame would otherwise quantise every arrival to the 20 ms frame clock and
inflate the jitter the buffer sees.
"""

from __future__ import annotations

import logging
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tipring.hal.api import PERIOD_SAMPLES, AudioPort, AudioStopped
from tipring.media.dsp import (
    FOREVER,
    AudioPath,
    FskStandard,
    Law,
    ToneEvent,
    ToneSegment,
    dtmf_segments,
)
from tipring.media.srtp import SrtpError, SrtpSession
from tipring.media.stream import COMFORT_NOISE, RtpStream
from tipring.media.telephone_event import DigitEvent, DigitStarted, EventReceiver, EventSender

log = logging.getLogger("tipring.media")

STATS_EVERY = 1.0  # seconds between statistics events
_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", None)


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


@dataclass(frozen=True)
class RemoteBye:
    pass


@dataclass(frozen=True)
class MediaStopped:
    reason: str


MediaEvent = DigitEvent | ToneEvent | MediaStats | RemoteBye | MediaStopped


class MediaThread(threading.Thread):
    def __init__(self, audio: AudioPort, on_event: Callable[[MediaEvent], None], *,
                 path: AudioPath | None = None, play_remote_digits: bool = False,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        super().__init__(name=f"audio-line{audio.line}", daemon=True)
        self.audio = audio
        self.path = path or AudioPath()
        self.play_remote_digits = play_remote_digits
        self.on_event = on_event
        self.clock = clock
        self.wall = wall
        self.stream: RtpStream | None = None
        self.rtp_sock: socket.socket | None = None
        self.rtcp_sock: socket.socket | None = None
        self.srtp: SrtpSession | None = None
        self.sending = True
        self.receiving = True
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._stopping = False
        self._events_out = EventSender(period=PERIOD_SAMPLES)
        self._events_in = EventReceiver()
        self._silence = b""

    # --- commands (any thread) ----------------------------------------------------------------

    def attach(self, stream: RtpStream, rtp_sock: socket.socket, rtcp_sock: socket.socket,
               srtp: SrtpSession | None = None) -> None:
        """Start sending and receiving a call's RTP, SRTP when keys were negotiated (the sockets
        stay the caller's to close)."""
        if _TIMESTAMPNS is not None:
            try:
                rtp_sock.setsockopt(socket.SOL_SOCKET, _TIMESTAMPNS, 1)
            except OSError:
                pass

        def apply() -> None:
            self.stream, self.rtp_sock, self.rtcp_sock = stream, rtp_sock, rtcp_sock
            self.srtp = srtp
            law = Law.ALAW if stream.config.payload_type == 8 else Law.ULAW
            self.path.state.law = law.payload_type
            self._silence = bytes([0xD5 if law is Law.ALAW else 0xFF]) * PERIOD_SAMPLES
            self._events_in = EventReceiver()
            self.sending = self.receiving = True
        self._commands.put(apply)

    def detach(self) -> None:
        """End the call's RTP: RTCP BYE goes out; the line's audio (tones) goes on."""
        self._commands.put(self._goodbye)

    def start_digit(self, key: str) -> None:
        def apply() -> None:
            if self.stream is not None:
                self._events_out.start(key, self.stream.timestamp)
        self._commands.put(apply)

    def stop_digit(self) -> None:
        self._commands.put(self._events_out.stop)

    def set_direction(self, send: bool, receive: bool) -> None:
        """Hold and resume: what the SDP direction attributes negotiated."""
        def apply() -> None:
            self.sending, self.receiving = send, receive
        self._commands.put(apply)

    def play_tone(self, segments: list[ToneSegment], repeat_from: int | None = 0) -> None:
        self._commands.put(lambda: self.path.start_tone(segments, repeat_from))

    def stop_tone(self) -> None:
        self._commands.put(self.path.stop_tone)

    def send_caller_id(self, message: bytes, standard: FskStandard, *, seizure_bits: int = 300,
                       mark_bits: int = 180) -> None:
        """An FSK burst in place of the playout audio (on hook: 300 seizure + 180 mark bits;
        off hook after CAS: 0 + 80, with the far end muted by `mute_far_end`)."""
        self._commands.put(lambda: self.path.send_caller_id(
            message, standard, seizure_bits=seizure_bits, mark_bits=mark_bits))

    def mute_far_end(self, muted: bool) -> None:
        """Silence the network audio to the handset (under call-waiting caller ID)."""
        self._commands.put(lambda: self.path.mute(receive=muted))

    def mute(self, transmit: bool) -> None:
        """Silence what the phone sends (the far end hears nothing), e.g. during a transfer."""
        self._commands.put(lambda: self.path.mute(transmit=transmit))

    def stop(self) -> None:
        """End the line's audio: RTCP BYE goes out if a call is attached; the thread exits."""
        self._commands.put(self._request_stop)
        self.audio.stop()  # wakes a blocked read

    def _request_stop(self) -> None:
        self._stopping = True

    # --- the loop (this thread) ---------------------------------------------------------------

    def run(self) -> None:
        reason = "stopped"
        try:
            self.audio.start()
            next_stats = self.clock() + STATS_EVERY
            while not self._stopping:
                try:
                    captured = self.audio.read()
                except AudioStopped:
                    break
                self._run_commands()
                now = self.clock()
                payload, detected = self.path.capture(captured)
                for tone in detected:
                    self.on_event(tone)
                if self.stream is not None:
                    self._send(payload)
                    self._drain(now)
                    self._rtcp(now)
                    if now >= next_stats:
                        next_stats = now + STATS_EVERY
                        self.on_event(self.stats())
                    for event in self._events_in.poll(now):
                        self._remote_digit(event)
                        self.on_event(event)
                self.audio.write(self.path.playout(now))
        except Exception as exc:  # the call must end cleanly, whatever broke
            log.exception("media thread failed", extra={"line": self.audio.line})
            reason = f"error: {exc}"
        finally:
            try:
                self._goodbye()
            finally:
                self.audio.stop()
                self.on_event(MediaStopped(reason))

    def _run_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            command()

    def _send(self, payload: bytes) -> None:
        assert self.stream is not None
        if not self.sending:
            self.stream.skip(PERIOD_SAMPLES)
            return
        if self._events_out.active:
            for packet in self._events_out.tick():
                self._sendto(self.stream.outgoing(
                    packet.payload, marker=packet.marker, timestamp=packet.timestamp,
                    payload_type=self.stream.config.event_payload_type))
            payload = self._silence  # in-band audio is muted while a digit is sent as events
        self._sendto(self.stream.outgoing(payload, samples=PERIOD_SAMPLES))

    def _sendto(self, datagram: bytes) -> None:
        assert self.stream is not None and self.rtp_sock is not None
        if self.srtp is not None:
            datagram = self.srtp.protect(datagram)
        try:
            self.rtp_sock.sendto(datagram, self.stream.destination)
        except OSError as exc:  # e.g. ICMP unreachable reported on the next send: keep going
            self.stream.stats.dropped[f"send: {exc.strerror or exc}"] += 1

    def _receive(self, sock: socket.socket, now: float) -> tuple[bytes, Any, float] | None:
        try:
            if _TIMESTAMPNS is None:
                data, source = sock.recvfrom(2048)
                return data, source, now
            data, ancillary, _, source = sock.recvmsg(2048, 64)
        except (BlockingIOError, InterruptedError):
            return None
        arrival = now
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == _TIMESTAMPNS and len(value) >= 16:
                seconds, nanos = struct.unpack("=qq", value[:16])
                age = self.wall() - (seconds + nanos / 1e9)
                arrival = now - max(0.0, min(age, 1.0))
        return data, source, arrival

    def _drain(self, now: float) -> None:
        assert self.stream is not None and self.rtp_sock is not None
        assert self.rtcp_sock is not None
        while True:
            received = self._receive(self.rtp_sock, now)
            if received is None:
                break
            data, source, arrival = received
            if self.srtp is not None:
                try:
                    data = self.srtp.unprotect(data)
                except SrtpError:  # forged, damaged or replayed: never played
                    self.stream.stats.dropped["srtp rejected"] += 1
                    continue
            packet = self.stream.incoming(data, (source[0], source[1]), arrival)
            if packet is None or not self.receiving:
                continue
            if packet.payload_type == self.stream.config.event_payload_type:
                try:
                    for event in self._events_in.receive(packet.timestamp, packet.payload, now):
                        self._remote_digit(event)
                        self.on_event(event)
                except ValueError:
                    self.stream.stats.dropped["malformed event"] += 1
            elif packet.payload_type == COMFORT_NOISE:
                self.path.comfort_noise(packet.payload)
            else:
                self.path.put(packet.ssrc, packet.sequence, packet.timestamp, packet.marker,
                              packet.payload_type, packet.payload, arrival)
        while True:
            received = self._receive(self.rtcp_sock, now)
            if received is None:
                break
            data, source, _ = received
            if self.srtp is not None:
                try:
                    data = self.srtp.unprotect_rtcp(data)
                except SrtpError:
                    self.stream.stats.dropped["srtcp rejected"] += 1
                    continue
            said_bye = self.stream.remote_bye
            self.stream.incoming_rtcp(data, (source[0], source[1]), now, self.wall())
            if self.stream.remote_bye and not said_bye:
                self.on_event(RemoteBye())

    def _remote_digit(self, event: DigitEvent) -> None:
        """With `play_remote_digits`, the handset hears the far end's RFC 4733 digits too (some
        services prompt by sending them); by default they are only reported."""
        if not self.play_remote_digits or event.key == "flash":
            return
        if isinstance(event, DigitStarted):
            self.path.start_tone(dtmf_segments(event.key, on=FOREVER, off=0.0))
        else:
            self.path.stop_tone()

    def _rtcp(self, now: float) -> None:
        assert self.stream is not None
        if now >= self.stream.next_report_time(now):
            self._send_rtcp(self.stream.report(now, self.wall()))

    def _send_rtcp(self, datagram: bytes) -> None:
        assert self.stream is not None and self.rtcp_sock is not None
        if self.srtp is not None:
            datagram = self.srtp.protect_rtcp(datagram)
        try:
            self.rtcp_sock.sendto(datagram, self.stream.rtcp_destination)
        except OSError:
            self.stream.stats.dropped["rtcp send"] += 1

    def _goodbye(self) -> None:
        if self.stream is not None:
            self._send_rtcp(self.stream.report(self.clock(), self.wall(), bye=True))
        self.stream = self.rtp_sock = self.rtcp_sock = None
        self.srtp = None
        self._events_out = EventSender(period=PERIOD_SAMPLES)

    def stats(self) -> MediaStats:
        assert self.stream is not None
        jb = self.path.state.jb.stats
        rtt = self.stream.stats.round_trip_time
        return MediaStats(
            sent_packets=self.stream.stats.sent_packets,
            received_packets=self.stream.stats.received_packets,
            dropped=dict(self.stream.stats.dropped),
            jitter_ms=self.stream.reception.jitter * 1000 / self.stream.config.clock_rate,
            cumulative_lost=self.stream.reception.cumulative_lost,
            buffer_delay_ms=jb.current_delay / 8,
            buffer_target_ms=jb.target_delay / 8,
            late=jb.late,
            concealed_ms=jb.concealed_samples / 8,
            round_trip_ms=None if rtt is None else rtt * 1000,
            overruns=self.audio.overruns,
            underruns=self.audio.underruns,
        )
