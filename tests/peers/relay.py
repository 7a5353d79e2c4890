"""A UDP relay for RTP and RTCP that impairs one direction deterministically.

It sits between a far end (baresip) and the device on loopback: the far end sends to the relay's
outer pair (the port the device's SDP named, taken over by the test), the relay forwards to the
device's real sockets from its inner pair, and the device, latching onto the source of what it
receives, sends back through the inner pair, which the relay forwards to the far end's source
address unchanged. Only the far end's RTP towards the device is impaired, so what the device
measures can be compared with what was done to it. The `Impairment` decides for the n-th RTP
packet (counting from 0): drop it, send it twice, hold it behind the next one (reorder), and how
long to delay it; the counters say what was really done.

For latency measurements (bench/media_rt.py) `on_from_device` sees each RTP datagram from the
device with the kernel's receive time (SO_TIMESTAMPNS, as monotonic seconds), and
`on_to_device` each one sent to the device with the time just after it left.
"""

from __future__ import annotations

import heapq
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Address = tuple[str, int]
TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value; Python 3.11 lacks the name


@dataclass(frozen=True)
class Impairment:
    """Periodic, reproducible impairments by packet number; 0 turns one off."""

    drop_every: int = 0  # drop packet n when n % drop_every == drop_phase
    drop_phase: int = 0
    duplicate_every: int = 0
    duplicate_phase: int = 0
    reorder_every: int = 0  # packet n goes out after packet n + 1
    reorder_phase: int = 0
    delays_ms: tuple[float, ...] = (0.0,)  # packet n is delayed by delays_ms[n % len]

    def drops(self, n: int) -> bool:
        return bool(self.drop_every) and n % self.drop_every == self.drop_phase

    def duplicates(self, n: int) -> bool:
        return bool(self.duplicate_every) and n % self.duplicate_every == self.duplicate_phase

    def reorders(self, n: int) -> bool:
        return bool(self.reorder_every) and n % self.reorder_every == self.reorder_phase

    def delay(self, n: int) -> float:
        return self.delays_ms[n % len(self.delays_ms)] / 1000


@dataclass
class RelayCounts:
    seen: int = 0  # RTP packets from the far end
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    forwarded: int = 0  # datagrams sent to the device, duplicates included
    jitter_ms: float = 0.0  # RFC 3550 interarrival jitter of those departures, as sent
    returned: int = 0  # the device's RTP sent on to the far end


@dataclass
class ImpairingRelay:
    outer_rtp: socket.socket  # bound where the far end sends (the device's advertised port)
    outer_rtcp: socket.socket
    inner_rtp: socket.socket  # any even/odd pair: the device latches onto it
    inner_rtcp: socket.socket
    device: Address  # the device's real RTP socket (RTCP on the next port)
    impairment: Impairment
    counts: RelayCounts = field(default_factory=RelayCounts)
    _far: dict[str, Address] = field(default_factory=dict)
    _queue: list[tuple[float, int, bytes]] = field(default_factory=list)
    _held: bytes | None = None
    _order: int = 0
    _last_transit: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    paused: bool = False  # withhold the far end's RTP (not counted) so figures can settle
    on_from_device: Callable[[bytes, float], None] | None = None
    on_to_device: Callable[[bytes, float], None] | None = None
    _thread: threading.Thread | None = None

    def start(self) -> ImpairingRelay:
        for sock in (self.outer_rtp, self.outer_rtcp, self.inner_rtp, self.inner_rtcp):
            sock.setblocking(False)
        self.inner_rtp.setsockopt(socket.SOL_SOCKET, TIMESTAMPNS, 1)
        self._thread = threading.Thread(target=self._run, name="impairing-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for sock in (self.outer_rtp, self.outer_rtcp, self.inner_rtp, self.inner_rtcp):
            sock.close()

    def snapshot(self) -> RelayCounts:
        with self._lock:
            return RelayCounts(**vars(self.counts))

    # --- the relay thread ------------------------------------------------------------------

    def _run(self) -> None:
        sockets = [self.outer_rtp, self.outer_rtcp, self.inner_rtp, self.inner_rtcp]
        while not self._stop.is_set():
            timeout = 0.05
            if self._queue:
                timeout = max(0.0, min(timeout, self._queue[0][0] - time.monotonic()))
            readable, _, _ = select.select(sockets, [], [], timeout)
            for sock in readable:
                self._read(sock)
            self._release(time.monotonic())

    def _read(self, sock: socket.socket) -> None:
        while True:
            try:
                data, ancillary, _, source = sock.recvmsg(4096, 64)
            except OSError:  # nothing more to read, or closed
                return
            arrival = time.monotonic()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == TIMESTAMPNS:
                    seconds, nanos = struct.unpack("=qq", value[:16])
                    arrival -= max(0.0, time.time() - (seconds + nanos / 1e9))
            if sock is self.outer_rtp:
                self._far["rtp"] = source
                self._impair(data)
            elif sock is self.outer_rtcp:
                self._far["rtcp"] = source
                self.inner_rtcp.sendto(data, (self.device[0], self.device[1] + 1))
            elif sock is self.inner_rtp and "rtp" in self._far:
                self.outer_rtp.sendto(data, self._far["rtp"])
                if self.on_from_device is not None:
                    self.on_from_device(data, arrival)
                with self._lock:
                    self.counts.returned += 1
            elif sock is self.inner_rtcp and "rtcp" in self._far:
                self.outer_rtcp.sendto(data, self._far["rtcp"])

    def _impair(self, data: bytes) -> None:
        rule = self.impairment
        with self._lock:
            if self.paused:
                return
            n = self.counts.seen
            self.counts.seen += 1
            if rule.drops(n):
                self.counts.dropped += 1
                return
            copies = 2 if rule.duplicates(n) else 1
            self.counts.duplicated += copies - 1
            if rule.reorders(n) and self._held is None:
                self.counts.reordered += 1
                self._held = data
                return
        due = time.monotonic() + rule.delay(n)
        for _ in range(copies):
            self._schedule(due, data)
        held, self._held = self._held, None
        if held is not None:
            self._schedule(due, held)  # right behind the packet it was swapped with

    def _schedule(self, due: float, data: bytes) -> None:
        self._order += 1
        heapq.heappush(self._queue, (due, self._order, data))

    def _release(self, now: float) -> None:
        while self._queue and self._queue[0][0] <= now:
            _, _, data = heapq.heappop(self._queue)
            try:
                self.inner_rtp.sendto(data, self.device)
            except OSError:
                continue
            sent = time.monotonic()
            if self.on_to_device is not None:
                self.on_to_device(data, sent)
            with self._lock:
                self.counts.forwarded += 1
                self._departure_jitter(data, sent)

    def _departure_jitter(self, data: bytes, sent: float) -> None:
        """RFC 3550 A.8 on the real departure times (the relay thread may itself run late)."""
        if len(data) < 12:
            return
        transit = sent - int.from_bytes(data[4:8], "big") / 8000
        if self._last_transit is not None:
            step = abs(transit - self._last_transit) * 1000
            self.counts.jitter_ms += (step - self.counts.jitter_ms) / 16
        self._last_transit = transit


def interpose(device: Any, impairment: Impairment | None = None, line: int = 0) -> ImpairingRelay:
    """Put a relay in front of a running `tipring.runtime.app.Device`'s line: its first RTP
    pair moves to new ports and the relay takes the ones its SDP names. Before the call."""
    from tipring.runtime.rtp_ports import open_rtp_pair

    telephony = device.telephony
    if telephony is None:
        raise ValueError("the device's telephony is not running")
    advertised_rtp, advertised_rtcp = telephony.sockets[line][0]
    host, port = advertised_rtp.getsockname()[:2]
    moved = open_rtp_pair(host)
    telephony.sockets[line][0] = moved
    advertised_rtp.close()
    advertised_rtcp.close()
    outer = []
    for offset in (0, 1):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, port + offset))
        outer.append(sock)
    inner_rtp, inner_rtcp = open_rtp_pair(host)
    return ImpairingRelay(outer[0], outer[1], inner_rtp, inner_rtcp, moved[0].getsockname(),
                          impairment or Impairment()).start()
