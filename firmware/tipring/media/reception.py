"""Reception statistics of one remote RTP source: RFC 3550 appendix A.1 (sequence validation),
A.3 (expected and lost packets) and A.8 (interarrival jitter).

These are what our RTCP receiver reports and the status page's call statistics say; the jitter
buffer keeps its own, playout-side counts. Pure: the arrival time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tipring.media.rtcp import ReportBlock

SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2


@dataclass
class ReceptionStats:
    clock_rate: int = 8000
    base_seq: int = 0
    max_seq: int = 0
    cycles: int = 0  # count of sequence number wraps, times 2**16
    bad_seq: int = SEQ_MOD + 1
    probation: int = MIN_SEQUENTIAL
    received: int = 0
    expected_prior: int = 0
    received_prior: int = 0
    jitter: float = 0.0  # timestamp units
    last_transit: int | None = None
    started: bool = field(default=False)

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def update(self, seq: int, timestamp: int, arrival: float) -> bool:
        """Account for one packet; False while the source is on probation or after a jump that
        has not been confirmed by a second packet (the caller may still play it)."""
        if not self.started:
            self._init_seq(seq)
            self.max_seq = (seq - 1) % SEQ_MOD
            self.probation = MIN_SEQUENTIAL
            self.started = True
        valid = self._update_seq(seq)
        if valid:
            self._update_jitter(timestamp, arrival)
        return valid

    def _update_seq(self, seq: int) -> bool:
        udelta = (seq - self.max_seq) % SEQ_MOD
        if self.probation:
            if seq == (self.max_seq + 1) % SEQ_MOD:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.received += 1
                    return True
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += SEQ_MOD
            self.max_seq = seq
        elif udelta <= SEQ_MOD - MAX_MISORDER:
            if seq == self.bad_seq:
                self._init_seq(seq)  # two in a row after a jump: the sender restarted
            else:
                self.bad_seq = (seq + 1) % SEQ_MOD
                return False
        # else: a duplicate or a reordered packet, counted as received (RFC 3550 A.3 allows
        # cumulative loss to go negative because of this)
        self.received += 1
        return True

    def _update_jitter(self, timestamp: int, arrival: float) -> None:
        arrival_units = round(arrival * self.clock_rate)
        transit = (arrival_units - timestamp) % (1 << 32)
        if self.last_transit is not None:
            d = (transit - self.last_transit) % (1 << 32)
            if d & 0x80000000:
                d = (1 << 32) - d
            self.jitter += (d - self.jitter) / 16
        self.last_transit = transit

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1 if self.received else 0

    @property
    def cumulative_lost(self) -> int:
        lost = self.expected - self.received
        return max(-0x800000, min(0x7FFFFF, lost))  # a signed 24-bit field

    def report_block(self, ssrc: int, lsr: int = 0, dlsr: int = 0) -> ReportBlock:
        """The block for our next RR/SR; the fraction lost covers the interval since the last."""
        expected_interval = self.expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = self.expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = (lost_interval << 8) // expected_interval
        return ReportBlock(ssrc, min(fraction, 255), self.cumulative_lost,
                           self.extended_max & 0xFFFFFFFF, int(self.jitter), lsr, dlsr)
