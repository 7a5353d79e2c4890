"""Line scenarios through the sim handset: what the phone hears, rings and decodes.

The line runs against the sim board on a virtual clock through `line_harness` (the adapter);
tones are checked with a Goertzel filter and caller ID is decoded by spandsp's adsi_rx from the
audio the sim phone received, at its place relative to the ring bursts the phone's ringer saw.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import spandsp_oracle as sd
from line_harness import (
    LineHarness,
    first_loud_sample,
    goertzel_dbm0,
    last_loud_sample,
    samples,
)
from tipring.hal.api import Linefeed
from tipring.line.fxs import LineSettings, LineState
from tipring.line.signals import (
    Answered,
    DialedNumber,
    Digit,
    Flash,
    OnHook,
    PlayTone,
    SendCallerId,
    SetLinefeed,
)
from tipring.media.dsp import CallerId

US_MAP = "(911|1xxxxxxxxxx|<:1>[2-9]xxxxxxxxx)"


@pytest.fixture
def harnesses() -> Iterator[list[LineHarness]]:
    made: list[LineHarness] = []
    yield made
    for h in made:
        h.close()


def make(harnesses: list[LineHarness], region: str = "US", digit_map: str = "(xx.)",
         **settings: object) -> LineHarness:
    h = LineHarness(region, digit_map, LineSettings(**settings))  # type: ignore[arg-type]
    harnesses.append(h)
    return h


def events(h: LineHarness, kind: type) -> list:
    return [e for _, e in h.events if isinstance(e, kind)]


@pytest.mark.parametrize(("region", "present", "absent"), [
    ("US", (350, 440), (425, 450)),
    ("GB", (350, 450), (440, 425)),
    ("DE", (425,), (350, 440)),
])
def test_lift_gives_the_regions_dial_tone_within_100_ms(harnesses, region, present, absent):
    h = make(harnesses, region)
    lifted = h.clock.now()
    h.handset.lift()
    h.run(0.5)
    played = [t for t, c in h.commands if isinstance(c, PlayTone) and c.name == "dial"]
    assert played and played[0] - lifted <= 0.1
    # by 100 ms after the lift the phone hears the tone (20 ms of it is the playout buffer)
    by_100_ms = samples(h.handset.heard(since=h.period_at_or_after(lifted + 0.1)))
    onset = first_loud_sample(by_100_ms[:160])
    assert onset is not None and onset <= 8  # sounding from its first millisecond
    body = by_100_ms[:3200]
    for f in present:
        assert goertzel_dbm0(body, f) > -16  # each component at -13 or -10 dBm0
    for f in absent:
        assert goertzel_dbm0(body, f) < -40


def test_dtmf_dialling_through_a_cisco_digit_map(harnesses):
    h = make(harnesses, "US", US_MAP)
    h.handset.lift()
    h.run(0.3)
    h.handset.dial_dtmf("2125551234")
    h.run(3)
    assert events(h, DialedNumber) == [
        DialedNumber("12125551234", "2125551234", "<:1>[2-9]xxxxxxxxx")]
    # dial tone stopped at the first digit: nothing of 350/440 Hz while the digits were sent
    late = samples(h.handset.heard(since=h.audio_t0 + 1.0))
    assert goertzel_dbm0(late, 350) < -40


@pytest.mark.parametrize(("region", "dialled"), [("US", "105"), ("NZ", "105"), ("SE", "105")])
def test_rotary_dialling_at_10_pps(harnesses, region, dialled):
    h = make(harnesses, region, "(xxx)")
    h.handset.lift()
    h.run(0.5)
    mapping = h.profile.pulse_mapping
    # the sim dial sends standard pulse counts; a national dial sends its own
    counts = "".join(str(mapping.pulses(d) % 10) for d in dialled)
    h.handset.dial_rotary(counts, pps=10.0, break_ratio=0.6, interdigit=0.7)
    h.run(6)
    assert events(h, DialedNumber) == [DialedNumber(dialled, dialled, "xxx")]
    assert not events(h, OnHook) and not events(h, Flash)


def test_flash_500_ms_versus_hang_up_1_5_s(harnesses):
    h = make(harnesses, "US")
    h.apply(h.line.ring(None, None, h.clock.now()))
    h.run(0.5)
    h.handset.lift()
    h.run(1)
    assert len(events(h, Answered)) == 1
    h.handset.flash(0.5)
    h.run(1)
    assert len(events(h, Flash)) == 1 and not events(h, OnHook)
    h.handset.hang_up()
    hung = h.clock.now()
    h.run(1.0)
    assert not events(h, OnHook)  # still inside the flash window
    h.run(0.5)
    assert events(h, OnHook) == [OnHook(hung)]
    assert h.line.state is LineState.IDLE


@pytest.mark.parametrize("region", ["US", "GB", "DE"])
def test_ring_cadence_timing_within_10_ms(harnesses, region):
    h = make(harnesses, region)
    start = h.clock.now()
    h.apply(h.line.ring(None, None, start))
    h.run(2 * h.profile.ring.period + 0.1)
    bursts = h.handset.ring_bursts
    expected, t = [], start
    for _ in range(2):
        for on, off in h.profile.ring.segments:
            expected.append((t, t + on))
            t += on + off
    assert len(bursts) >= len(expected)
    for (got_on, got_off), (want_on, want_off) in zip(bursts, expected, strict=False):
        assert abs(got_on - want_on) <= 0.01
        assert got_off is not None and abs(got_off - want_off) <= 0.01


def decode_caller_id(h: LineHarness, since: float, standard: int) -> tuple[list[bytes], float, float]:
    """Messages spandsp decodes from the on-hook audio, and when the signal began and ended."""
    origin = h.period_at_or_after(since)
    audio = samples(h.handset.caller_id_audio(since=origin))
    first, last = first_loud_sample(audio), last_loud_sample(audio)
    assert first is not None and last is not None, "the phone heard no caller ID"
    return sd.adsi_rx(audio, standard), origin + first / 8000, origin + (last + 1) / 8000


def test_bellcore_caller_id_between_first_and_second_ring(harnesses):
    h = make(harnesses, "US")
    start = h.clock.now()
    h.apply(h.line.ring(CallerId("+12125551234", "Alice Smith"), None, start))
    h.run(13)
    messages, began, ended = decode_caller_id(h, start, sd.ADSI_STANDARD_CLASS)
    fields = sd.adsi_fields(messages[0], sd.ADSI_STANDARD_CLASS)
    assert (0x02, b"2125551234") in fields and (0x07, b"Alice Smith") in fields
    first, second = h.handset.ring_bursts[:2]
    assert first[1] is not None
    assert began - first[1] >= 0.5  # GR-30: >= 500 ms after the first ring
    assert second[0] - ended >= 0.2  # ... and over >= 200 ms before the second
    assert abs(second[0] - (start + 6.0)) <= 0.01  # the cadence keeps its beat


@pytest.mark.parametrize("region", ["GB", "FR"])
def test_etsi_caller_id_before_the_first_ring(harnesses, region):
    h = make(harnesses, region)
    start = h.clock.now()
    h.apply(h.line.ring(CallerId("+33123456789", "Dupont"), None, start))
    h.run(4)
    linefeeds = [c.state for _, c in h.commands if isinstance(c, SetLinefeed)]
    assert linefeeds[0] is Linefeed.REVERSE_ACTIVE  # line reversal first
    messages, began, ended = decode_caller_id(h, start, sd.ADSI_STANDARD_CLIP)
    fields = sd.adsi_fields(messages[0], sd.ADSI_STANDARD_CLIP)
    number = b"0123456789" if region == "FR" else b"0033123456789"
    assert (0x02, number) in fields and (0x07, b"Dupont") in fields
    first_ring = h.handset.ring_bursts[0][0]
    assert began >= start + 0.1 and ended <= first_ring - 0.2
    # after the caller ID the region's cadence runs on its beat
    t = first_ring
    for (on, off), (burst_on, burst_off) in zip(h.profile.ring.segments, h.handset.ring_bursts,
                                                strict=False):
        assert abs(burst_on - t) <= 0.01 and abs(burst_off - (t + on)) <= 0.01
        t += on + off
    # the alerting signal (DT-AS 2130 + 2750 Hz) came first: the first 100 ms heard are dual tone
    origin = h.period_at_or_after(start)
    alert = samples(h.handset.caller_id_audio(since=origin))
    lead = alert[round((began - origin) * 8000):][:800]
    assert goertzel_dbm0(lead, 2130) > -25 and goertzel_dbm0(lead, 2750) > -25


@pytest.mark.parametrize(("region", "number", "shown"), [
    ("DE", "+4930123456", b"030123456"),
    ("AU", "+61291234567", b"0291234567"),  # a double ring counts as the first ring
])
def test_etsi_caller_id_after_the_first_ring(harnesses, region, number, shown):
    h = make(harnesses, region)
    start = h.clock.now()
    h.apply(h.line.ring(CallerId(number), None, start))
    h.run(h.profile.ring.period + 1)
    messages, began, ended = decode_caller_id(h, start, sd.ADSI_STANDARD_CLIP)
    assert (0x02, shown) in sd.adsi_fields(messages[0], sd.ADSI_STANDARD_CLIP)
    n = len(h.profile.ring.segments)
    first, second = h.handset.ring_bursts[n - 1], h.handset.ring_bursts[n]
    assert first[1] is not None
    assert began - first[1] >= 0.5 and second[0] - ended >= 0.2
    assert abs(second[0] - (start + h.profile.ring.period)) <= 0.01


@pytest.mark.parametrize(("region", "number", "shown", "reversal"), [
    ("NL", "+31201234567", b"0201234567", True),
    ("SE", "+46812345", b"0812345", False),
])
def test_etsi_dtmf_caller_id_before_ringing(harnesses, region, number, shown, reversal):
    h = make(harnesses, region)
    start = h.clock.now()
    h.apply(h.line.ring(CallerId(number), None, start))
    h.run(4)
    first_linefeed = next(c.state for _, c in h.commands if isinstance(c, SetLinefeed))
    assert (first_linefeed is Linefeed.REVERSE_ACTIVE) == reversal
    messages, began, ended = decode_caller_id(h, start, sd.ADSI_STANDARD_CLIP_DTMF)
    assert messages and shown in messages[0]
    assert began >= start + 0.1
    assert ended <= h.handset.ring_bursts[0][0] - 0.2


def test_rotary_digits_during_a_call_become_digit_events(harnesses):
    h = make(harnesses, "US")
    h.apply(h.line.ring(None, None, h.clock.now()))
    h.run(0.5)
    h.handset.lift()
    h.run(0.5)
    h.handset.dial_rotary("42")
    h.run(3)
    assert [e.digit for e in events(h, Digit)] == ["4", "2"]
    assert {e.source for e in events(h, Digit)} == {"pulse"}
    assert not events(h, Flash) and not events(h, OnHook)


def test_call_waiting_tone_cas_ack_and_off_hook_caller_id(harnesses):
    h = make(harnesses, "US")
    h.apply(h.line.ring(None, None, h.clock.now()))
    h.run(0.5)
    h.handset.lift()
    h.run(1)
    cw_at = h.clock.now()
    h.apply(h.line.call_waiting(CallerId("2125550000", "Carol"), cw_at))
    h.run(0.42)  # SAS 300 ms + CAS 80 ms + playout, then the phone answers with DTMF D
    h.handset.dial_dtmf("D", on=0.06, off=0.02)
    h.run(1.5)
    heard = samples(h.handset.heard(since=h.period_at_or_after(cw_at)))
    assert goertzel_dbm0(heard[:2400], 440) > -20  # the call-waiting tone
    cas = [t for t, c in h.commands if isinstance(c, PlayTone) and c.name == "cas"]
    assert cas
    sent = [c for _, c in h.commands if isinstance(c, SendCallerId)]
    assert len(sent) == 1 and not sent[0].on_hook
    messages = sd.adsi_rx(heard, sd.ADSI_STANDARD_CLASS)
    assert messages and (0x07, b"Carol") in sd.adsi_fields(messages[0], sd.ADSI_STANDARD_CLASS)
    assert not events(h, Digit)  # the ACK stays local
    assert h.line.state is LineState.CONNECTED and not h.muted


def test_no_ack_no_off_hook_caller_id(harnesses):
    h = make(harnesses, "US")
    h.apply(h.line.ring(None, None, h.clock.now()))
    h.run(0.5)
    h.handset.lift()
    h.run(1)
    h.apply(h.line.call_waiting(CallerId("2125550000"), h.clock.now()))
    h.run(2)
    assert not [c for _, c in h.commands if isinstance(c, SendCallerId)]
    assert h.line.state is LineState.CONNECTED and not h.muted


def test_howler_after_leaving_the_phone_off_hook(harnesses):
    h = make(harnesses, "US", dial_tone_timeout_s=2.0, reorder_s=2.0, howler_s=3.0)
    h.handset.lift()
    h.run(8)
    t0 = h.audio_t0
    reorder = samples(h.handset.heard(since=h.period_at_or_after(t0 + 2.1)))[:8000]
    howler = samples(h.handset.heard(since=h.period_at_or_after(t0 + 4.1)))[:8000]
    after = samples(h.handset.heard(since=h.period_at_or_after(t0 + 7.2)))
    assert goertzel_dbm0(reorder, 480) > -35 and goertzel_dbm0(reorder, 620) > -35
    for f in (1400, 2060, 2450, 2600):
        assert goertzel_dbm0(howler, f) > -20
    assert last_loud_sample(after) is None  # silence at the end


def test_far_end_disconnect_open_loop_in_the_us(harnesses):
    h = make(harnesses, "US")
    h.apply(h.line.ring(None, None, h.clock.now()))
    h.run(0.5)
    h.handset.lift()
    h.run(1)
    h.apply(h.line.far_end_disconnected(h.clock.now()))
    assert h.handset.linefeed is Linefeed.OPEN
    h.run(0.5)
    assert h.handset.linefeed is Linefeed.OPEN
    h.run(0.6)
    assert h.handset.linefeed is Linefeed.FORWARD_ACTIVE
    assert h.line.state is LineState.DIAL_TONE
    assert not events(h, OnHook)  # the phone stayed off hook through the open loop


def test_far_end_disconnect_reversal_in_germany(harnesses):
    h = make(harnesses, "DE")
    h.handset.lift()
    h.run(0.3)
    h.handset.dial_dtmf("12#")
    h.run(1)
    assert events(h, DialedNumber)
    h.apply(h.line.call_connected(h.clock.now()))
    assert h.handset.linefeed is Linefeed.REVERSE_ACTIVE
    h.apply(h.line.far_end_disconnected(h.clock.now()))
    assert h.handset.linefeed is Linefeed.FORWARD_ACTIVE
    h.run(1)
    assert goertzel_dbm0(samples(h.handset.heard(since=h.clock.now() - 1)), 425) > -25


def test_sit_and_busy_played_on_request(harnesses):
    h = make(harnesses, "US", US_MAP)
    h.handset.lift()
    h.run(0.3)
    h.handset.dial_dtmf("2125551234")
    h.run(2)
    asked = h.clock.now()
    h.apply(h.line.play("sit", asked))
    h.run(1.5)
    # What is asked for at `asked` is heard the port's playout lead later.
    sit = samples(h.handset.heard(since=h.period_at_or_after(asked + h.audio.playout_lead)))[:8000]
    for f in (985, 1428, 1777):  # the three rising SIT segments
        assert goertzel_dbm0(sit, f) > -30
    asked = h.clock.now()
    h.apply(h.line.play("busy", asked))
    h.run(1.1)
    busy = samples(h.handset.heard(since=h.period_at_or_after(asked + h.audio.playout_lead)))[:8000]
    assert goertzel_dbm0(busy, 480) > -35 and goertzel_dbm0(busy, 620) > -35
    assert goertzel_dbm0(busy, 985) < -45


def test_stutter_dial_tone_heard_when_messages_wait(harnesses):
    h = make(harnesses, "US")
    h.apply(h.line.message_waiting(True, h.clock.now()))
    h.handset.lift()
    h.run(3)
    heard = samples(h.handset.heard())
    lifted_at = first_loud_sample(heard)
    assert lifted_at is not None and lifted_at <= 800

    def level(t0: float) -> float:
        start = lifted_at + round(t0 * 8000)
        return goertzel_dbm0(heard[start + 80:start + 720], 440)

    assert level(0.0) > -20 and level(0.1) < -40 and level(0.2) > -20  # 0.1 s on / 0.1 s off
    assert level(2.3) > -20 and level(2.4) > -20  # then steady
