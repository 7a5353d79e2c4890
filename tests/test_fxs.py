"""The FXS state machine on plain inputs and a virtual `now` (no board, no audio)."""

from __future__ import annotations

import pytest

from tipring.hal.api import Linefeed
from tipring.line.callerid import fsk_duration
from tipring.line.digitmap import DigitMap
from tipring.line.fxs import FxsLine, LineSettings, LineState
from tipring.line.regions import profile
from tipring.line.signals import (
    Answered,
    DialBarred,
    DialedNumber,
    DialInvalid,
    Digit,
    Flash,
    LineOutput,
    MuteFarEnd,
    OffHook,
    OnHook,
    PlayTone,
    SendCallerId,
    SetLinefeed,
    StartRing,
    StopRing,
    StopTone,
)
from tipring.media.dsp import CallerId, FskModulator, FskStandard

T0 = 1000.0
US_MAP = "(900xxxxxxx!|911|1xxxxxxxxxx|<:1>[2-9]xxxxxxxxx|*xx)"


def line(region: str = "US", digit_map: str = US_MAP, **settings: object) -> FxsLine:
    p = profile(region)
    return FxsLine(p, DigitMap.compile(digit_map, p.emergency_numbers),
                   LineSettings(**settings))  # type: ignore[arg-type]


def run_to(fxs: FxsLine, until: float) -> list[tuple[float, LineOutput]]:
    """Call `timer` at each deadline up to `until`; (time, output) in order."""
    out: list[tuple[float, LineOutput]] = []
    while (deadline := fxs.next_deadline()) is not None and deadline <= until:
        out += [(deadline, o) for o in fxs.timer(deadline)]
    return out


def tones(outputs: list) -> list[str]:
    return [o.name for o in outputs if isinstance(o, PlayTone)]


def test_lift_gives_dial_tone_at_once() -> None:
    fxs = line()
    out = fxs.hook(True, T0)
    assert out[0] == OffHook(T0)
    assert tones(out) == ["dial"]
    assert fxs.state is LineState.DIAL_TONE


def test_stutter_dial_tone_when_messages_wait() -> None:
    fxs = line()
    fxs.message_waiting(True, T0 - 1)
    out = fxs.hook(True, T0)
    assert tones(out) == ["stutter_dial"]
    plan = out[-1].plan
    assert plan.segments[0].on_s == pytest.approx(0.1)  # stutters, then steady
    assert plan.segments[-1].on_s is None


def test_first_dtmf_digit_stops_dial_tone_and_number_completes() -> None:
    fxs = line()
    fxs.hook(True, T0)
    first = fxs.dtmf("2", T0 + 1)
    assert first == [StopTone()]
    out: list = []
    for k, d in enumerate("125551234"):
        out += fxs.dtmf(d, T0 + 1.2 + 0.2 * k)
    assert out == [DialedNumber("12125551234", "2125551234", "<:1>[2-9]xxxxxxxxx")]
    assert fxs.state is LineState.CALL_PROCEEDING


def test_short_timer_decides_an_ambiguous_number() -> None:
    fxs = line(digit_map="(xxx|xxxS3xx)")
    fxs.hook(True, T0)
    for k, d in enumerate("123"):
        fxs.dtmf(d, T0 + 1 + k * 0.2)
    assert fxs.next_deadline() == pytest.approx(T0 + 1.4 + 3)
    assert fxs.timer(T0 + 4.39) == []
    assert fxs.timer(T0 + 4.4) == [DialedNumber("123", "123", "xxx")]


def test_send_key_ends_dialling() -> None:
    fxs = line(digit_map="(xx.)")
    fxs.hook(True, T0)
    for d in "4321":
        fxs.dtmf(d, T0 + 1)
    assert fxs.dtmf("#", T0 + 2) == [DialedNumber("4321", "4321#", "xx.")]


def test_emergency_number_is_flagged() -> None:
    fxs = line()
    fxs.hook(True, T0)
    out = [o for d in "911" for o in fxs.dtmf(d, T0 + 1)]
    assert out[-1] == DialedNumber("911", "911", "911", emergency=True)


def test_invalid_and_barred_give_reorder_then_howler_then_silence() -> None:
    fxs = line(reorder_s=5.0, howler_s=20.0)
    fxs.hook(True, T0)
    out = fxs.dtmf("0", T0 + 1)
    assert out[0] == DialInvalid("0")
    assert tones(out) == ["congestion"]
    assert fxs.state is LineState.RECEIVER_OFF_HOOK
    later = run_to(fxs, T0 + 100)
    assert [(t, o.name) for t, o in later if isinstance(o, PlayTone)] == [(T0 + 6, "howler")]
    assert [t for t, o in later if isinstance(o, StopTone)] == [T0 + 26]
    fxs2 = line()
    fxs2.hook(True, T0)
    got = [o for d in "9005551234" for o in fxs2.dtmf(d, T0 + 1)]
    assert DialBarred("9005551234", "900xxxxxxx!") in got


def test_receiver_off_hook_after_dial_tone_timeout() -> None:
    fxs = line(dial_tone_timeout_s=15.0, reorder_s=10.0)
    fxs.hook(True, T0)
    got = run_to(fxs, T0 + 30)
    assert [(t, o.name) for t, o in got if isinstance(o, PlayTone)] == [
        (T0 + 15, "congestion"), (T0 + 25, "howler")]


def test_hot_line_dials_at_once_and_warm_line_after_its_delay() -> None:
    hot = line(digit_map="(S0<:1234>)")
    assert hot.hook(True, T0) == [OffHook(T0), DialedNumber("1234", "", "hot line")]
    warm = line(digit_map="(P4<:5678>|xx.)")
    assert tones(warm.hook(True, T0)) == ["dial"]
    assert warm.timer(T0 + 4) == [StopTone(), DialedNumber("5678", "", "warm line")]


def test_rotary_digits_reach_the_digit_map() -> None:
    fxs = line(digit_map="(xxx)")
    fxs.hook(True, T0)
    t, out = T0 + 1, []
    for count in (1, 10, 5):
        for _ in range(count):
            out += fxs.hook(False, t) + fxs.hook(True, t + 0.06)
            t += 0.1
        t += 0.6
        out += fxs.timer(t)
    assert out[-1] == DialedNumber("105", "105", "xxx")


def test_flash_in_a_call_and_hang_up_after_the_window() -> None:
    fxs = line()
    fxs.hook(True, T0)
    for d in "*72":
        fxs.dtmf(d, T0 + 1)
    fxs.call_connected(T0 + 2)
    assert fxs.state is LineState.CONNECTED
    fxs.hook(False, T0 + 3)
    assert fxs.hook(True, T0 + 3.5) == [Flash(T0 + 3.5)]
    assert fxs.dtmf("5", T0 + 4) == [Digit("5", T0 + 4, "dtmf")]
    assert fxs.hook(False, T0 + 5) == []
    assert fxs.timer(T0 + 6.09) == []
    assert fxs.timer(T0 + 6.1) == [OnHook(T0 + 5)]
    assert fxs.state is LineState.IDLE


def test_bellcore_caller_id_between_first_and_second_ring() -> None:
    fxs = line("US")
    cid = CallerId("2125551234", "A Very Long Caller Name")
    out = fxs.ring(cid, None, T0)
    assert out == [StartRing(profile("US").ring)]
    got = run_to(fxs, T0 + 7)
    assert [(t, type(o)) for t, o in got] == [
        (T0 + 2.0, StopRing), (T0 + 2.0, SetLinefeed), (T0 + 2.5, SendCallerId),
        (T0 + 6.0, SetLinefeed), (T0 + 6.0, StartRing)]
    burst = got[2][1]
    assert burst.kind == "fsk-bell202" and burst.on_hook
    assert (burst.seizure_bits, burst.mark_bits) == (300, 180)
    assert b"A Very Long Cal" in burst.payload and b"A Very Long Call" not in burst.payload
    assert got[1][1] == SetLinefeed(Linefeed.ON_HOOK_TRANSMISSION)


def test_fsk_duration_matches_the_modulator() -> None:
    message = b"\x80\x03\x02\x01\x31\x49"
    samples = FskModulator().start(message, FskStandard.V23, seizure_bits=300, mark_bits=180)
    assert fsk_duration(message, 300, 180) * 8000 == pytest.approx(samples, abs=1)


def test_etsi_prior_to_ringing_reversal_dtas_data_then_ring() -> None:
    fxs = line("GB", digit_map="(xx.)")
    out = fxs.ring(CallerId("+442071234567", "Bob"), None, T0)
    assert out == [SetLinefeed(Linefeed.REVERSE_ACTIVE)]
    got = run_to(fxs, T0 + 3)
    kinds = [(round(t - T0, 3), type(o).__name__) for t, o in got]
    assert kinds[:2] == [(0.1, "PlayTone"), (0.26, "SendCallerId")]
    burst = got[1][1]
    assert burst.kind == "fsk-v23"
    assert b"02071234567" in burst.payload  # +44 shown the national way
    ring_at = got[-1][0]
    assert type(got[-1][1]) is StartRing
    assert ring_at - (T0 + 0.26 + burst.duration_s) >= 0.2


def test_etsi_dtmf_caller_id_before_ringing() -> None:
    fxs = line("NL", digit_map="(xx.)")
    fxs.ring(CallerId("+31201234567"), None, T0)
    got = run_to(fxs, T0 + 5)
    burst = next(o for _, o in got if isinstance(o, SendCallerId))
    assert (burst.kind, burst.payload) == ("dtmf", "A0201234567C")
    assert any(isinstance(o, StartRing) for _, o in got)


def test_caller_id_standard_override() -> None:
    fxs = line("US", caller_id="etsi-fsk")
    out = fxs.ring(CallerId("2125551234"), None, T0)
    assert out == [SetLinefeed(Linefeed.REVERSE_ACTIVE)]
    got = run_to(fxs, T0 + 2)
    assert next(o for _, o in got if isinstance(o, SendCallerId)).kind == "fsk-v23"


def test_ring_trip_answers_and_stops_caller_id() -> None:
    fxs = line("US")
    fxs.ring(CallerId("2125551234"), None, T0)
    run_to(fxs, T0 + 2.6)
    out = fxs.hook(True, T0 + 2.7)
    assert out[0] == StopRing()
    assert StopTone() in out
    assert out[-1] == Answered(T0 + 2.7)
    assert fxs.state is LineState.CONNECTED
    assert run_to(fxs, T0 + 20) == []  # the rest of the ring plan is void


def test_stop_ring_returns_to_idle() -> None:
    fxs = line("DE", digit_map="(xx.)")
    fxs.ring(None, None, T0)
    assert fxs.stop_ring(T0 + 1)[0] == StopRing()
    assert fxs.state is LineState.IDLE and fxs.next_deadline() is None


def connected(region: str = "US") -> FxsLine:
    fxs = line(region, digit_map="(xx.)")
    fxs.ring(None, None, T0)
    fxs.hook(True, T0 + 1)
    return fxs


def test_call_waiting_with_ack_sends_off_hook_fsk() -> None:
    fxs = connected()
    out = fxs.call_waiting(CallerId("2125550000", "Carol"), T0 + 10)
    assert out[0] == MuteFarEnd(True)
    assert tones(out) == ["call_waiting"]
    cas = fxs.timer(T0 + 10.3)
    assert tones(cas) == ["cas"]
    assert fxs.dtmf("D", T0 + 10.45) == []  # the ACK is not sent to the far end
    got = run_to(fxs, T0 + 12)
    burst = got[0][1]
    assert got[0][0] == pytest.approx(T0 + 10.55)
    assert isinstance(burst, SendCallerId) and not burst.on_hook
    assert (burst.seizure_bits, burst.mark_bits) == (0, 80)
    assert got[-1][1] == MuteFarEnd(False)
    assert fxs.state is LineState.CONNECTED


def test_call_waiting_without_ack_sends_no_fsk() -> None:
    fxs = connected()
    fxs.call_waiting(CallerId("2125550000"), T0 + 10)
    got = run_to(fxs, T0 + 12)
    assert not [o for _, o in got if isinstance(o, SendCallerId)]
    assert got[-1][1] == MuteFarEnd(False)
    assert fxs.dtmf("1", T0 + 13) == [Digit("1", T0 + 13, "dtmf")]


def test_far_end_disconnect_open_loop_then_dial_tone_in_the_us() -> None:
    fxs = connected("US")
    out = fxs.far_end_disconnected(T0 + 20)
    assert out[-1] == SetLinefeed(Linefeed.OPEN)
    got = run_to(fxs, T0 + 22)
    assert got[0] == (T0 + 20.9, SetLinefeed(Linefeed.FORWARD_ACTIVE))
    assert tones([o for _, o in got]) == ["dial"]


def test_far_end_disconnect_by_polarity_reversal_in_germany() -> None:
    fxs = line("DE", digit_map="(xx.)")
    fxs.hook(True, T0)
    fxs.dtmf("1", T0 + 1)
    fxs.dtmf("#", T0 + 1.5)
    assert fxs.call_connected(T0 + 3) == [SetLinefeed(Linefeed.REVERSE_ACTIVE)]
    out = fxs.far_end_disconnected(T0 + 10)
    assert SetLinefeed(Linefeed.FORWARD_ACTIVE) in out
    assert tones(out) == ["busy"]
    assert fxs.state is LineState.RECEIVER_OFF_HOOK


def test_call_waiting_beep_repeats_each_period_until_stopped() -> None:
    fxs = connected("US")
    fxs.call_waiting(None, T0 + 10)
    got = run_to(fxs, T0 + 30.1)
    beeps = [t for t, o in got if isinstance(o, PlayTone)]
    assert beeps == [T0 + 20, T0 + 30]  # US: 0.3 s every 10 s
    mutes = [(t, o.muted) for t, o in got if isinstance(o, MuteFarEnd)]
    assert mutes[:3] == [(T0 + 10.3, False), (T0 + 20, True), (T0 + 20.3, False)]
    assert fxs.stop_call_waiting(T0 + 30.1) == [StopTone(), MuteFarEnd(False)]
    assert run_to(fxs, T0 + 100) == []


def test_flash_answers_call_waiting_and_ends_the_beeps() -> None:
    fxs = connected("US")
    fxs.call_waiting(None, T0 + 10)
    run_to(fxs, T0 + 11)
    fxs.hook(False, T0 + 12)
    assert fxs.hook(True, T0 + 12.5) == [Flash(T0 + 12.5)]
    assert run_to(fxs, T0 + 100) == []


def test_call_waiting_tone_is_the_whole_burst_group() -> None:
    fxs = connected("DE")
    out = fxs.call_waiting(None, T0 + 10)
    plan = next(o for o in out if isinstance(o, PlayTone)).plan
    assert [(s.on_s, s.off_s) for s in plan.segments] == [(0.2, 0.2), (0.2, 0.0)]
    assert plan.repeat_from is None
    assert fxs.next_deadline() == pytest.approx(T0 + 10.6)


def test_answer_during_caller_id_before_ringing() -> None:
    fxs = line("GB", digit_map="(xx.)")
    fxs.ring(CallerId("+442071234567"), None, T0)
    run_to(fxs, T0 + 0.3)
    out = fxs.hook(True, T0 + 0.35)
    assert SetLinefeed(Linefeed.FORWARD_ACTIVE) in out and StopTone() in out
    assert out[-1] == Answered(T0 + 0.35)
    assert run_to(fxs, T0 + 30) == []


def test_ring_pulse_alerting_signal() -> None:
    import dataclasses

    from tipring.line.regions import CallerIdTiming

    p = dataclasses.replace(profile("FR"), caller_id=CallerIdTiming(
        "etsi-fsk", before_ring=True, alerting_signal="rp-as", alert_duration_s=0.25,
        alert_to_data_s=0.6, guard_before_ring_s=0.2))
    fxs = FxsLine(p, DigitMap.compile("(xx.)"))
    out = fxs.ring(CallerId("+33123456789"), None, T0)
    assert out[0] == SetLinefeed(Linefeed.ON_HOOK_TRANSMISSION)
    assert isinstance(out[1], StartRing) and out[1].cadence.segments[0][0] == 0.25
    got = run_to(fxs, T0 + 3)
    assert (T0 + 0.25, StopRing()) in got
    assert [t for t, o in got if isinstance(o, SendCallerId)] == [pytest.approx(T0 + 0.85)]


def test_outside_line_dial_tone_from_the_digit_map() -> None:
    fxs = line(digit_map="(9,xxxx)")
    fxs.hook(True, T0)
    out = fxs.dtmf("9", T0 + 1)
    assert tones(out) == [] and fxs.tone == "dial"  # dial tone carries on after the 9
    assert fxs.dtmf("5", T0 + 2) == [StopTone()]


def test_ring_is_refused_while_the_phone_is_off_hook() -> None:
    fxs = line()
    fxs.hook(True, T0)
    assert fxs.ring(None, None, T0 + 1) == []
    assert fxs.state is LineState.DIAL_TONE


def test_reset_returns_to_idle_with_battery_and_silence() -> None:
    fxs = connected("DE")
    fxs.call_waiting(None, T0 + 5)
    out = fxs.reset(T0 + 6)
    assert out[0] == StopRing() and MuteFarEnd(False) in out
    assert out[-1] == SetLinefeed(Linefeed.FORWARD_ACTIVE)
    assert fxs.state is LineState.IDLE and fxs.next_deadline() is None
    assert tones(fxs.reset(T0 + 7, off_hook=True)) == ["dial"]


def test_etsi_call_waiting_sends_v23_after_an_a_ack() -> None:
    fxs = connected("DE")
    fxs.call_waiting(CallerId("+4930123456"), T0 + 10)
    assert tones(fxs.timer(T0 + 10.6)) == ["cas"]  # after DE's double beep
    assert fxs.dtmf("A", T0 + 10.75) == []
    burst = next(o for _, o in run_to(fxs, T0 + 11) if isinstance(o, SendCallerId))
    assert burst.kind == "fsk-v23" and b"030123456" in burst.payload


def test_line_modules_stay_pure() -> None:
    """No asyncio, sockets, threads, sleeps or clocks in the line layer (ARCHITECTURE.md)."""
    import ast
    from pathlib import Path

    import tipring.line

    banned = {"asyncio", "socket", "threading", "time", "selectors", "subprocess"}
    folder = Path(tipring.line.__file__).parent
    for name in ("fxs", "pulse", "callerid", "callwaiting", "signals"):
        tree = ast.parse((folder / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert not roots & banned, f"line/{name}.py imports {roots & banned}"
