"""Call quality figures: an E-model MOS estimate and the X-RTP-Stat summary sent on BYE.

The MOS is the ITU-T G.107 E-model reduced to what an ATA carrying G.711 can know: every
factor that depends on the analog set and the room (loudness ratings, noise, sidetone, echo)
is left at the Recommendation's defaults, which give the basic rating R = 93.2. What the
network and the device change is subtracted from it:
- Idd, the delay impairment of the mean one-way delay Ta (G.107 7.4): zero up to 100 ms.
  We take Ta = RTT/2 (from RTCP) + the jitter buffer's delay + two periods (capture and
  playout framing), since that is the delay the far end's talker is heard with.
- Ie,eff, the effective equipment impairment (G.107 7.5): Ie = 0 for G.711, and the packet
  loss robustness Bpl from G.113 Appendix I (25.1 with concealment, as our jitter buffer does;
  4.3 without), with the loss percentage Ppl and the burst ratio BurstR.
R goes to MOS by G.107 Annex B. The talker-echo and listener-echo parts of Id are left out:
they depend on the far end's echo loss, which the device cannot see.

The loss and burst ratio come from the loss pattern: `LossBursts` keeps the runs of sequence
numbers still missing (a late packet fills its place; a duplicate changes nothing); with the
two-state (Gilbert) model that G.107 uses, p (found -> lost) is the number of runs per packet
received and q (lost -> found) is one over the mean run length, and BurstR = 1 / (p + q).
Random loss gives about 1; we never report below 1.

Pure: the media thread feeds sequence numbers and reads the figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_R = 93.2  # G.107 with every parameter at its default value
G711_IE = 0.0
G711_BPL_PLC = 25.1  # G.113 Appendix I: G.711 with packet loss concealment
G711_BPL_NO_PLC = 4.3  # G.113 Appendix I: G.711 without
FRAMING_MS = 40.0  # two 20 ms periods: one being captured, one being played out


def delay_impairment(one_way_ms: float) -> float:
    """Idd of G.107 7.4 for a mean one-way delay Ta in milliseconds."""
    if one_way_ms <= 100:
        return 0.0
    x = math.log10(one_way_ms / 100) / math.log10(2)
    return 25 * ((1 + x ** 6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)


def loss_impairment(loss_percent: float, burst_ratio: float = 1.0, *, ie: float = G711_IE,
                    bpl: float = G711_BPL_PLC) -> float:
    """Ie,eff of G.107 7.5: the codec's impairment raised by packet loss."""
    ppl = min(max(loss_percent, 0.0), 100.0)
    burst = max(burst_ratio, 1.0)
    return ie + (95 - ie) * ppl / (ppl / burst + bpl)


def rating_to_mos(r: float) -> float:
    """G.107 Annex B: the estimated mean opinion score (conversational quality) for R."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


def rating(one_way_ms: float, loss_percent: float, burst_ratio: float = 1.0, *,
           bpl: float = G711_BPL_PLC) -> float:
    """R for a G.711 call: the default rating less the delay and loss impairments."""
    return DEFAULT_R - delay_impairment(one_way_ms) - loss_impairment(
        loss_percent, burst_ratio, bpl=bpl)


def one_way_delay_ms(round_trip_ms: float | None, buffer_delay_ms: float) -> float:
    """Ta as this module's docstring says; no RTCP round trip yet counts the network as 0."""
    network = (round_trip_ms or 0.0) / 2
    return network + max(buffer_delay_ms, 0.0) + FRAMING_MS


def mos_estimate(*, round_trip_ms: float | None, buffer_delay_ms: float, loss_percent: float,
                 burst_ratio: float = 1.0, concealment: bool = True) -> float:
    """The call's MOS, rounded to two places as it is shown."""
    r = rating(one_way_delay_ms(round_trip_ms, buffer_delay_ms), loss_percent, burst_ratio,
               bpl=G711_BPL_PLC if concealment else G711_BPL_NO_PLC)
    return round(rating_to_mos(r), 2)


@dataclass
class LossBursts:
    """Which of one source's packets never came, as runs, for the loss and burst ratio the
    E-model needs. Unlike RFC 3550's cumulative loss (expected - received, where a duplicate
    cancels a loss), a packet is lost here only while its sequence number stays missing; one
    that comes late fills its place. Numbers older than `WINDOW` behind the highest are final
    and forgotten, so memory stays bounded however long the call."""

    WINDOW = 1024

    first: int | None = None  # extended sequence numbers
    highest: int | None = None
    runs: int = 0  # runs of consecutive missing packets
    lost: int = 0
    received: int = 0
    missing: set[int] = field(default_factory=set)

    def update(self, sequence: int) -> None:
        if self.highest is None or self.first is None:
            self.first = self.highest = sequence
            self.received = 1
            return
        delta = (sequence - self.highest) & 0xFFFF
        if delta == 0:
            return  # a duplicate of the newest
        if delta < 0x8000:
            if delta > 1:
                self.runs += 1
                self.lost += delta - 1
                self.missing.update(range(self.highest + 1, self.highest + delta))
            self.highest += delta
            self.received += 1
            if len(self.missing) > self.WINDOW:
                floor = self.highest - self.WINDOW
                self.missing = {n for n in self.missing if n > floor}
            return
        late = self.highest - ((self.highest - sequence) & 0xFFFF)
        if late in self.missing:  # a late one fills its place; otherwise a duplicate
            self.missing.discard(late)
            self.lost -= 1
            self.received += 1
            before, after = late - 1 in self.missing, late + 1 in self.missing
            self.runs += 1 if before and after else -1 if not (before or after) else 0

    @property
    def expected(self) -> int:
        return 0 if self.highest is None or self.first is None else self.highest - self.first + 1

    @property
    def loss_percent(self) -> float:
        return 100 * self.lost / self.expected if self.expected else 0.0

    @property
    def burst_ratio(self) -> float:
        """BurstR: p = runs per packet received, q = one over the mean run length."""
        if self.lost <= 0 or not self.runs or not self.received:
            return 1.0
        p = self.runs / self.received
        q = self.runs / self.lost
        return max(1.0, 1 / (p + q))


# --- the X-RTP-Stat header --------------------------------------------------------------------

X_RTP_STAT = "X-RTP-Stat"


def rtp_stat_header(figures: Mapping[str, object], *, duration_s: float, codec: str) -> str:
    """The value of the X-RTP-Stat header (the de facto format of Cisco, Polycom and
    AudioCodes gateways, semicolon-separated NAME=value) from `rtp_figures`. The fields:

    PS packets sent, OS octets sent (RTP payload), PR packets received, OR octets received,
    PL packets lost (RFC 3550 cumulative loss), JI interarrival jitter in ms, LA latency in ms
    (our estimate of the one-way delay: RTT/2 + jitter buffer + framing), DU call duration in
    whole seconds, EN encoder and DE decoder (the codec's name; G.711 is the same both ways),
    DUP duplicates and LATE packets that came too late to play (as the jitter buffer counted
    them), MOS the E-model estimate above.
    """
    def number(name: str) -> int:
        value = figures.get(name)
        return int(value) if isinstance(value, int | float) else 0

    latency = one_way_delay_ms(_float(figures.get("round_trip_ms")),
                               _float(figures.get("buffer_delay_ms")) or 0.0)
    fields = [
        ("PS", number("sent_packets")), ("OS", number("sent_octets")),
        ("PR", number("received_packets")), ("OR", number("received_octets")),
        ("PL", max(number("lost_packets"), 0)),
        ("JI", round(_float(figures.get("jitter_ms")) or 0.0)),
        ("LA", round(latency)), ("DU", max(int(duration_s), 0)),
        ("EN", codec or "-"), ("DE", codec or "-"),
        ("DUP", number("duplicate_packets")), ("LATE", number("late_packets")),
    ]
    mos = _float(figures.get("mos"))
    if mos is not None:
        fields.append(("MOS", f"{mos:.2f}"))
    return ";".join(f"{name}={value}" for name, value in fields)


def parse_rtp_stat(value: str) -> dict[str, str]:
    """The fields of an X-RTP-Stat value (ours or a peer's), by name; empty parts skipped."""
    fields: dict[str, str] = {}
    for part in value.replace(",", ";").split(";"):
        name, equals, text = part.strip().partition("=")
        if equals and name:
            fields[name.strip().upper()] = text.strip()
    return fields


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
