"""BT SIN 227 caller display (GB) through the sim phone: reversal, tone alert, the phone's DC
wetting pulse, V.23 data, then ringing; the wetting pulse must not answer the call."""

from __future__ import annotations

import dataclasses
import pytest

import spandsp_oracle as sd
from line_harness import LineHarness, harness_list, first_loud_sample, last_loud_sample, samples
from test_fxs_sim import events, make
from tipring.hal.api import HookEvent, Linefeed
from tipring.line.callerid import WETTING_PULSE_MAX_S, WettingPulseFilter, wetting_window
from tipring.line.digitmap import DigitMap
from tipring.line.fxs import FxsLine, LineSettings, LineState
from tipring.line.regions import profile
from tipring.line.signals import Answered, PlayTone, SendCallerId, SetLinefeed, StartRing
from tipring.media.dsp import CallerId

T0 = 1000.0


harnesses = pytest.fixture(harness_list, name="harnesses")


def with_pulsing_phone(h: LineHarness) -> list[HookEvent]:
    """Make the sim phone a SIN 227 one and record the hook edges its SLIC reports."""
    h.handset.wetting_pulse_s = 0.015
    return h.record_hook_events()


def test_gb_caller_id_with_the_phones_wetting_pulse(harnesses):
    h = make(harnesses, "GB")
    edges = with_pulsing_phone(h)
    start = h.clock.now()
    h.apply(h.line.ring(CallerId("+442071234567", "Smith"), None, start))
    h.run(4)
    # the phone did draw its pulse: one closure of ~15 ms, after the tone alert ended
    assert [e.off_hook for e in edges] == [True, False]
    assert 0.01 <= edges[1].at - edges[0].at <= 0.02
    alert_at = next(t for t, c in h.commands if isinstance(c, PlayTone) and c.name == "dt-as")
    data_at = next(t for t, c in h.commands if isinstance(c, SendCallerId))
    assert alert_at + 0.1 <= edges[0].at and edges[1].at <= data_at + 0.04
    # ... and it was not an answer: caller ID decodes, then the GB double ring on its beat
    assert not events(h, Answered) and h.line.state is LineState.RINGING
    origin = h.period_at_or_after(start)
    audio = samples(h.handset.caller_id_audio(since=origin))
    messages = sd.adsi_rx(audio, sd.ADSI_STANDARD_CLIP)
    fields = sd.adsi_fields(messages[0], sd.ADSI_STANDARD_CLIP)
    assert (0x02, b"02071234567") in fields and (0x07, b"Smith") in fields
    last = last_loud_sample(audio)
    assert last is not None and first_loud_sample(audio) is not None
    first_ring = h.handset.ring_bursts[0][0]
    assert first_ring - (origin + (last + 1) / 8000) >= 0.2  # >= 200 ms after the data
    assert [c.state for _, c in h.commands if isinstance(c, SetLinefeed)][:1] == [
        Linefeed.REVERSE_ACTIVE]


def test_without_the_wetting_window_the_same_pulse_would_answer(harnesses):
    """The control: the pulse the sim phone draws is long enough to be taken as an answer by a
    line that does not expect it (so the test above really exercises the filter)."""
    h = make(harnesses, "GB")
    p = dataclasses.replace(h.profile, caller_id=dataclasses.replace(
        h.profile.caller_id, te_wetting_pulse=False))
    h.line = FxsLine(p, DigitMap.compile("(xx.)", p.emergency_numbers), LineSettings())
    with_pulsing_phone(h)
    h.apply(h.line.ring(CallerId("+442071234567"), None, h.clock.now()))
    h.run(1)
    assert events(h, Answered)


def test_a_real_lift_in_the_wetting_window_still_answers() -> None:
    p = profile("GB")
    fxs = FxsLine(p, DigitMap.compile("(xx.)", p.emergency_numbers))
    fxs.ring(CallerId("+442071234567"), None, T0)
    start, end = wetting_window(p.caller_id, LineSettings().playout_delay_s) or (0.0, 0.0)
    lifted = T0 + (start + end) / 2
    held = fxs.hook(True, lifted)  # (the alert due by then is played first)
    assert not [o for o in held if isinstance(o, Answered)]  # held: it may be a wetting pulse
    assert fxs.state is LineState.RINGING
    assert fxs.next_deadline() == pytest.approx(lifted + WETTING_PULSE_MAX_S)
    out = fxs.timer(lifted + WETTING_PULSE_MAX_S)
    assert Answered(lifted) in out  # answered, at the moment the phone was lifted
    assert fxs.state is LineState.CONNECTED
    assert not [o for o in out if isinstance(o, StartRing)]


def test_outside_the_window_an_off_hook_is_at_once_an_answer() -> None:
    p = profile("GB")
    fxs = FxsLine(p, DigitMap.compile("(xx.)", p.emergency_numbers))
    fxs.ring(CallerId("+442071234567"), None, T0)
    while (deadline := fxs.next_deadline()) is not None and deadline < T0 + 1.5:
        fxs.timer(deadline)
    assert Answered(T0 + 1.5) in fxs.hook(True, T0 + 1.5)


def test_wetting_filter_edges() -> None:
    f = WettingPulseFilter()
    assert not f.holds(True, 10.0)  # no window: not held
    f.open(20.0, 20.5)
    assert f.holds(True, 20.1) and f.held == 20.1
    assert f.holds(False, 20.1 + WETTING_PULSE_MAX_S)  # a pulse at the limit is still one
    assert f.held is None and f.deadline() is None
    assert f.holds(True, 20.3)
    assert f.expire(20.3 + WETTING_PULSE_MAX_S / 2) is None
    assert f.expire(20.3 + WETTING_PULSE_MAX_S) == 20.3  # too long: a real off-hook
    assert not f.holds(False, 20.4)  # and its on-hook is an ordinary edge
    assert not f.holds(True, 21.0)  # after the window
