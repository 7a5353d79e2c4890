"""The media thread of one call: audio device <-> C DSP core <-> RTP over UDP.

Clocked by the audio device, as ARCHITECTURE.md says: each turn blocks on one 20 ms capture
period, encodes and sends it (or RFC 4733 event packets while a digit is pressed), drains the
RTP socket into the jitter buffer, gets one playout period and writes it. Nothing sleeps.
Commands from the loop (digits, hold, stop) wait in a queue and run between frames; events for
the loop (remote digits, statistics, remote BYE, the end of the thread) go out through
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
from tipring.media.dsp import ffi, lib
from tipring.media.stream import COMFORT_NOISE, RtpStream
from tipring.media.telephone_event import DigitEvent, EventReceiver, EventSender

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


MediaEvent = DigitEvent | MediaStats | RemoteBye | MediaStopped


class MediaThread(threading.Thread):
    def __init__(self, audio: AudioPort, rtp_sock: socket.socket, rtcp_sock: socket.socket,
                 stream: RtpStream, on_event: Callable[[MediaEvent], None], *,
                 jitter_min_ms: int = 20, jitter_max_ms: int = 200, fixed_jitter: bool = False,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        super().__init__(name=f"media-line{audio.line}", daemon=True)
        self.audio = audio
        self.rtp_sock = rtp_sock
        self.rtcp_sock = rtcp_sock
        self.stream = stream
        self.on_event = on_event
        self.clock = clock
        self.wall = wall
        self.sending = True
        self.receiving = True
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._stopping = False
        self._events_out = EventSender(period=PERIOD_SAMPLES)
        self._events_in = EventReceiver()
        self._law = stream.config.payload_type
        self._jb = ffi.new("tr_jbuf_t *")
        lib.tr_jb_init(self._jb, jitter_min_ms, jitter_max_ms, 1 if fixed_jitter else 0)
        self._codes = ffi.new("uint8_t[]", PERIOD_SAMPLES)
        self._playout = ffi.new("int16_t[]", PERIOD_SAMPLES)
        self._silence = bytes([0xFF if self._law == 0 else 0xD5]) * PERIOD_SAMPLES
        if _TIMESTAMPNS is not None:
            try:
                rtp_sock.setsockopt(socket.SOL_SOCKET, _TIMESTAMPNS, 1)
            except OSError:
                pass

    # --- commands (any thread) ----------------------------------------------------------------

    def start_digit(self, key: str) -> None:
        self._commands.put(lambda: self._events_out.start(key, self.stream.timestamp))

    def stop_digit(self) -> None:
        self._commands.put(self._events_out.stop)

    def set_direction(self, send: bool, receive: bool) -> None:
        """Hold and resume: what the SDP direction attributes negotiated."""
        def apply() -> None:
            self.sending, self.receiving = send, receive
        self._commands.put(apply)

    def stop(self) -> None:
        """End the call's media: RTCP BYE goes out, the thread exits after the current frame."""
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
                self._send(captured)
                self._drain(now)
                self._play(now)
                self._rtcp(now)
                if now >= next_stats:
                    next_stats = now + STATS_EVERY
                    self.on_event(self.stats())
                for event in self._events_in.poll(now):
                    self.on_event(event)
        except Exception as exc:  # the call must end cleanly, whatever broke
            log.exception("media thread failed", extra={"line": self.audio.line})
            reason = f"error: {exc}"
        finally:
            self._goodbye()
            self.on_event(MediaStopped(reason))

    def _run_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            command()

    def _send(self, captured: bytes) -> None:
        if not self.sending:
            self.stream.skip(PERIOD_SAMPLES)
            return
        if self._events_out.active:
            for packet in self._events_out.tick():
                self._sendto(self.stream.outgoing(
                    packet.payload, marker=packet.marker, timestamp=packet.timestamp,
                    payload_type=self.stream.config.event_payload_type))
            payload = self._silence  # in-band audio is muted while a digit is sent as events
        else:
            encode = lib.tr_alaw_encode if self._law == 8 else lib.tr_ulaw_encode
            encode(ffi.from_buffer("int16_t[]", captured), self._codes, PERIOD_SAMPLES)
            payload = ffi.buffer(self._codes)[:]
        self._sendto(self.stream.outgoing(payload, samples=PERIOD_SAMPLES))

    def _sendto(self, datagram: bytes) -> None:
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
        while True:
            received = self._receive(self.rtp_sock, now)
            if received is None:
                break
            data, source, arrival = received
            packet = self.stream.incoming(data, (source[0], source[1]), arrival)
            if packet is None or not self.receiving:
                continue
            if packet.payload_type == self.stream.config.event_payload_type:
                try:
                    for event in self._events_in.receive(packet.timestamp, packet.payload, now):
                        self.on_event(event)
                except ValueError:
                    self.stream.stats.dropped["malformed event"] += 1
            elif packet.payload_type != COMFORT_NOISE:  # CN: the buffer plays silence anyway
                lib.tr_jb_put(self._jb, packet.ssrc, packet.sequence, packet.timestamp,
                              int(packet.marker), packet.payload_type, packet.payload,
                              len(packet.payload), int(arrival * 1e6))
        while True:
            received = self._receive(self.rtcp_sock, now)
            if received is None:
                break
            data, source, _ = received
            said_bye = self.stream.remote_bye
            self.stream.incoming_rtcp(data, (source[0], source[1]), now, self.wall())
            if self.stream.remote_bye and not said_bye:
                self.on_event(RemoteBye())

    def _play(self, now: float) -> None:
        lib.tr_jb_get(self._jb, int(now * 1e6), self._playout)
        if not self.receiving:
            ffi.memmove(self._playout, bytes(2 * PERIOD_SAMPLES), 2 * PERIOD_SAMPLES)
        self.audio.write(ffi.buffer(self._playout)[:])

    def _rtcp(self, now: float) -> None:
        if now >= self.stream.next_report_time(now):
            self._send_rtcp(self.stream.report(now, self.wall()))

    def _send_rtcp(self, datagram: bytes) -> None:
        try:
            self.rtcp_sock.sendto(datagram, self.stream.rtcp_destination)
        except OSError:
            self.stream.stats.dropped["rtcp send"] += 1

    def _goodbye(self) -> None:
        try:
            self._send_rtcp(self.stream.report(self.clock(), self.wall(), bye=True))
        finally:
            self.audio.stop()

    def stats(self) -> MediaStats:
        jb = self._jb.stats
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
