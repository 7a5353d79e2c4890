"""Visual message waiting (VMWI) on the line: the burst the sim phone hears on hook, decoded by
spandsp, its order (alerting before data, no ringing) and when it is held back (off hook,
ringing, another burst). Pure-state-machine cases at the end use a virtual `now` only."""

from __future__ import annotations

import pytest

import spandsp_oracle as sd
from line_harness import (
    LineHarness,
    harness_list,
    first_loud_sample,
    goertzel_dbm0,
    last_loud_sample,
    samples,
)
from test_fxs_sim import events, make
from tipring.hal.api import Linefeed
from tipring.line.digitmap import DigitMap
from tipring.line.fxs import FxsLine, LineSettings, LineState
from tipring.line.regions import profile
from tipring.line.signals import (
    OffHook,
    OnHook,
    PlayTone,
    SendCallerId,
    SetLinefeed,
    StartRing,
)
from tipring.line.vmwi import vmwi_message

T0 = 1000.0


harnesses = pytest.fixture(harness_list, name="harnesses")


def decoded(h: LineHarness, since: float, standard: int) -> tuple[list[bytes], float, float]:
    """Messages spandsp decodes from the on-hook audio since `since`, and the signal's span."""
    origin = h.period_at_or_after(since)
    audio = samples(h.handset.caller_id_audio(since=origin))
    first, last = first_loud_sample(audio), last_loud_sample(audio)
    assert first is not None and last is not None, "the phone heard nothing on hook"
    return sd.adsi_rx(audio, standard), origin + first / 8000, origin + (last + 1) / 8000


def indicator(message: bytes, standard: int) -> tuple[int, bytes]:
    """(message type, visual indicator parameter body) as spandsp parses them."""
    fields = sd.adsi_fields(message, standard)
    return fields[0][0], dict(fields[1:])[0x0B]


def sent(h: LineHarness) -> list[SendCallerId]:
    return [c for _, c in h.commands if isinstance(c, SendCallerId)]


def linefeeds(h: LineHarness) -> list[Linefeed]:
    return [c.state for _, c in h.commands if isinstance(c, SetLinefeed)]


@pytest.mark.parametrize(("on", "value"), [(True, b"\xff"), (False, b"\x00")])
def test_bellcore_vmwi_is_mdmf_0x82_with_no_ringing(harnesses, on, value):
    h = make(harnesses, "US")
    start = h.clock.now()
    h.apply(h.line.message_waiting(on, start))
    h.run(2)
    messages, began, _ = decoded(h, start, sd.ADSI_STANDARD_CLASS)
    assert len(messages) == 1
    assert indicator(messages[0], sd.ADSI_STANDARD_CLASS) == (0x82, value)
    assert h.handset.ring_bursts == []  # GR-30: data not tied to ringing, and no ring
    assert linefeeds(h) == [Linefeed.ON_HOOK_TRANSMISSION, Linefeed.FORWARD_ACTIVE]
    assert h.handset.linefeed is Linefeed.FORWARD_ACTIVE and h.line.state is LineState.IDLE
    assert began - start >= 0.1  # on-hook transmission settles before the channel seizure


def test_bellcore_sdmf_vmwi_for_older_phones(harnesses):
    h = make(harnesses, "US", vmwi_format="sdmf")
    start = h.clock.now()
    h.apply(h.line.message_waiting(True, start))
    h.run(2)
    messages, _, _ = decoded(h, start, sd.ADSI_STANDARD_CLASS)
    assert messages == [b"\x06\x03BBB"]  # SDMF message waiting, "activate" (checksum verified)


@pytest.mark.parametrize("region", ["FR", "DE", "GB"])
def test_etsi_vmwi_reversal_dt_as_then_data_without_ringing(harnesses, region):
    h = make(harnesses, region)
    start = h.clock.now()
    h.apply(h.line.message_waiting(True, start))
    h.run(2)
    messages, began, ended = decoded(h, start, sd.ADSI_STANDARD_CLIP)
    assert [indicator(m, sd.ADSI_STANDARD_CLIP) for m in messages] == [(0x82, b"\xff")]
    assert h.handset.ring_bursts == []
    assert linefeeds(h) == [Linefeed.REVERSE_ACTIVE, Linefeed.FORWARD_ACTIVE]
    reversal = next(t for t, c in h.commands if isinstance(c, SetLinefeed))
    restored = [t for t, c in h.commands if isinstance(c, SetLinefeed)][-1]
    assert began - reversal >= 0.1  # EN 300 659-1: >= 100 ms from the reversal to the DT-AS
    assert restored >= ended  # normal polarity only once the data has been heard
    # the first thing heard is the DT-AS (2130 + 2750 Hz, 100 ms), then the V.23 data
    origin = h.period_at_or_after(start)
    audio = samples(h.handset.caller_id_audio(since=origin))
    lead = audio[round((began - origin) * 8000):][:640]
    assert goertzel_dbm0(lead, 2130) > -25 and goertzel_dbm0(lead, 2750) > -25
    assert goertzel_dbm0(lead, 1300) < -35  # no mark tone yet
    fsk_at = next(t for t, c in h.commands if isinstance(c, SendCallerId))
    alert_at = next(t for t, c in h.commands if isinstance(c, PlayTone) and c.name == "dt-as")
    assert 0.045 <= fsk_at - (alert_at + 0.1) <= 0.5  # data 45-500 ms after the DT-AS ends


def test_etsi_vmwi_with_a_ring_pulse_alert(harnesses):
    h = make(harnesses, "DE", vmwi_alert="rp-as")
    start = h.clock.now()
    h.apply(h.line.message_waiting(True, start))
    h.run(3)
    messages, began, _ = decoded(h, start, sd.ADSI_STANDARD_CLIP)
    assert [indicator(m, sd.ADSI_STANDARD_CLIP) for m in messages] == [(0x82, b"\xff")]
    [(on, off)] = h.handset.ring_bursts  # one short ring pulse, no cadence
    assert off is not None and 0.2 <= off - on <= 0.3
    assert began - off >= 0.5  # the data follows the RP-AS by at least 500 ms


def test_vmwi_waits_while_off_hook_and_is_sent_after_the_hang_up(harnesses):
    h = make(harnesses, "US")
    h.handset.lift()
    h.run(0.5)
    h.apply(h.line.message_waiting(True, h.clock.now()))
    h.run(3)
    assert not sent(h)  # nothing while the phone is off hook
    h.handset.hang_up()
    hung = h.clock.now()
    h.run(3)
    [(on_hook_at, _)] = [(t, e) for t, e in h.events if isinstance(e, OnHook)]
    messages, _, _ = decoded(h, hung, sd.ADSI_STANDARD_CLASS)
    assert [indicator(m, sd.ADSI_STANDARD_CLASS) for m in messages] == [(0x82, b"\xff")]
    [(oht_at, _)] = [(t, c) for t, c in h.commands
                     if c == SetLinefeed(Linefeed.ON_HOOK_TRANSMISSION)]
    assert oht_at >= on_hook_at  # only once the line knew the phone was back on hook
    assert h.handset.ring_bursts == []


def test_vmwi_waits_while_ringing_until_the_caller_gives_up(harnesses):
    h = make(harnesses, "US")
    h.apply(h.line.ring(None, None, h.clock.now()))
    h.run(0.5)
    h.apply(h.line.message_waiting(True, h.clock.now()))
    h.run(5)
    assert not sent(h)
    stopped = h.clock.now()
    h.apply(h.line.stop_ring(stopped))
    h.run(2)
    messages, began, _ = decoded(h, stopped, sd.ADSI_STANDARD_CLASS)
    assert [indicator(m, sd.ADSI_STANDARD_CLASS) for m in messages] == [(0x82, b"\xff")]
    assert all(end is not None and end <= began for _, end in h.handset.ring_bursts)


def test_a_change_during_a_burst_is_sent_after_it(harnesses):
    h = make(harnesses, "FR")
    start = h.clock.now()
    h.apply(h.line.message_waiting(True, start))
    h.run(0.2)  # the first burst is under way
    h.apply(h.line.message_waiting(False, h.clock.now()))
    h.run(4)
    messages, _, _ = decoded(h, start, sd.ADSI_STANDARD_CLIP)
    values = [indicator(m, sd.ADSI_STANDARD_CLIP)[1] for m in messages]
    assert values == [b"\xff", b"\x00"]  # both, in order: the lamp ends up off
    assert [c.payload for c in sent(h)] == [vmwi_message(True), vmwi_message(False)]


def test_dtmf_caller_id_regions_get_the_stutter_tone_only(harnesses):
    h = make(harnesses, "NL")
    h.apply(h.line.message_waiting(True, h.clock.now()))
    h.run(2)
    assert not sent(h) and last_loud_sample(samples(h.handset.caller_id_audio())) is None
    assert linefeeds(h) == []  # no reversal, no on-hook transmission: nothing at all
    h.handset.lift()
    h.run(0.5)
    assert [c.name for _, c in h.commands if isinstance(c, PlayTone)] == ["stutter_dial"]


def test_gb_vmwi_survives_the_phones_wetting_pulse(harnesses):
    h = make(harnesses, "GB")
    h.handset.wetting_pulse_s = 0.015
    edges = h.record_hook_events()
    start = h.clock.now()
    h.apply(h.line.message_waiting(True, start))
    h.run(2)
    messages, _, _ = decoded(h, start, sd.ADSI_STANDARD_CLIP)
    assert [indicator(m, sd.ADSI_STANDARD_CLIP) for m in messages] == [(0x82, b"\xff")]
    assert [e.off_hook for e in edges] == [True, False]  # the phone did draw its pulse ...
    assert not events(h, OffHook) and not h.line.hook_decoder.off_hook  # ... not a lift
    assert linefeeds(h) == [Linefeed.REVERSE_ACTIVE, Linefeed.FORWARD_ACTIVE]  # not cut short


@pytest.mark.parametrize(("alert", "linefeed_first", "rings"), [
    (None, Linefeed.ON_HOOK_TRANSMISSION, 0),
    ("rp-as", Linefeed.ON_HOOK_TRANSMISSION, 1),
    ("dt-as", Linefeed.ON_HOOK_TRANSMISSION, 0),
])
def test_bellcore_vmwi_alerting_choices(alert, linefeed_first, rings):
    fxs = fxs_line("US", vmwi_alert=alert)
    out = fxs.message_waiting(True, T0) + [o for _, o in run_to(fxs, T0 + 5)]
    assert [o.state for o in out if isinstance(o, SetLinefeed)] == [
        linefeed_first, Linefeed.FORWARD_ACTIVE]
    assert len([o for o in out if isinstance(o, StartRing)]) == rings
    assert [o.name for o in out if isinstance(o, PlayTone)] == (["dt-as"] if alert == "dt-as"
                                                               else [])
    assert bursts(out) == [vmwi_message(True)]


# -- the state machine alone ------------------------------------------------------------------


def fxs_line(region: str = "US", **settings: object) -> FxsLine:
    p = profile(region)
    return FxsLine(p, DigitMap.compile("(xx.)", p.emergency_numbers),
                   LineSettings(**settings))  # type: ignore[arg-type]


def run_to(fxs: FxsLine, until: float) -> list[tuple[float, object]]:
    out: list[tuple[float, object]] = []
    while (deadline := fxs.next_deadline()) is not None and deadline <= until:
        out += [(deadline, o) for o in fxs.timer(deadline)]
    return out


def bursts(outputs: list) -> list[bytes]:
    return [o.payload for o in outputs if isinstance(o, SendCallerId)]


def test_lift_during_a_burst_stops_it_and_it_is_sent_again_later() -> None:
    fxs = fxs_line("US")
    out = fxs.message_waiting(True, T0)
    assert out == [SetLinefeed(Linefeed.ON_HOOK_TRANSMISSION)]
    out = [o for _, o in run_to(fxs, T0 + 0.15)]
    assert bursts(out) == [vmwi_message(True)]
    lifted = fxs.hook(True, T0 + 0.2)
    assert SetLinefeed(Linefeed.FORWARD_ACTIVE) in lifted  # the line is a line again
    assert [o.name for o in lifted if isinstance(o, PlayTone)] == ["stutter_dial"]
    fxs.hook(False, T0 + 5)
    later = [o for _, o in run_to(fxs, T0 + 9)]
    assert bursts(later) == [vmwi_message(True)]  # the interrupted burst is sent again


def test_a_call_to_ring_cuts_a_burst_short_and_the_lamp_follows_the_call() -> None:
    fxs = fxs_line("US")
    fxs.message_waiting(True, T0)
    run_to(fxs, T0 + 0.15)
    out = fxs.ring(None, None, T0 + 0.3)
    assert SetLinefeed(Linefeed.FORWARD_ACTIVE) in out and isinstance(out[-1], StartRing)
    assert fxs.state is LineState.RINGING
    assert not bursts([o for _, o in run_to(fxs, T0 + 10)])  # nothing over the ringing
    fxs.stop_ring(T0 + 10)
    assert bursts([o for _, o in run_to(fxs, T0 + 12)]) == [vmwi_message(True)]


def test_unchanged_state_is_not_sent_twice() -> None:
    fxs = fxs_line("US")
    fxs.message_waiting(True, T0)
    assert len(bursts([o for _, o in run_to(fxs, T0 + 3)])) == 1
    assert fxs.message_waiting(True, T0 + 3) == []
    assert fxs.next_deadline() is None
