"""Sim handset behaviour: hook, flash, rotary and touch-tone dialling, speech, listening, ringer.

Everything runs on a virtual clock, so times are exact and the tests take no real time. The DTMF
and pulse checks use decoders written here, independent of the sim's own code.
"""

from __future__ import annotations

import itertools
import math
import random
import sys
import wave
from array import array
from pathlib import Path

import pytest

from conftest import T0
from tipring.hal.api import (
    PERIOD_SAMPLES,
    HookEvent,
    Linefeed,
    RingCadence,
)
from tipring.hal.sim import SimBoard, create_sim_board
from tipring.hal.simclock import VirtualClock

RATE = 8000
ZERO_DBM0_PEAK = 32768 * 10 ** (-3.14 / 20)
ROWS = (697.0, 770.0, 852.0, 941.0)
COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
UK_RING = RingCadence(((0.4, 0.2), (0.4, 2.0)), frequency_hz=25.0)
US_RING = RingCadence(((2.0, 4.0),))


def events_of(board: SimBoard, line: int = 0) -> list[HookEvent]:
    events: list[HookEvent] = []
    board.lines[line].slic.on_hook_event = events.append
    return events


def samples(data: bytes) -> array:
    out = array("h")
    out.frombytes(data)
    if sys.byteorder == "big":
        out.byteswap()
    return out


def capture(board: SimBoard, periods: int, line: int = 0) -> array:
    audio = board.lines[line].audio
    return samples(b"".join(audio.read() for _ in range(periods)))


# -- hook ------------------------------------------------------------------------------------------


def test_lift_and_hang_up_report_edges_with_their_times(board: SimBoard, clock: VirtualClock) -> None:
    events = events_of(board)
    handset, slic = board.handsets[0], board.lines[0].slic
    assert not handset.off_hook and not slic.off_hook
    handset.lift()
    handset.lift()  # already off hook: no second edge
    clock.advance(3.25)
    handset.hang_up()
    assert events == [HookEvent(0, True, T0), HookEvent(0, False, T0 + 3.25)]
    assert not slic.off_hook


def test_no_battery_no_hook_sensing_until_the_line_is_powered_again(
    board: SimBoard, clock: VirtualClock
) -> None:
    events = events_of(board)
    handset, slic = board.handsets[0], board.lines[0].slic
    slic.set_linefeed(Linefeed.OPEN)
    assert handset.linefeed is Linefeed.OPEN
    handset.lift()
    clock.advance(1.0)
    handset.hang_up()
    clock.advance(1.0)
    handset.lift()
    assert events == []
    assert not slic.off_hook  # the SLIC keeps what it last saw
    clock.advance(1.0)
    slic.set_linefeed(Linefeed.FORWARD_ACTIVE)  # battery back: the loop is closed
    assert events == [HookEvent(0, True, T0 + 3.0)]
    assert slic.off_hook


def test_flash_is_on_hook_for_exactly_its_duration(board: SimBoard, clock: VirtualClock) -> None:
    events = events_of(board)
    handset = board.handsets[0]
    handset.lift()
    clock.advance(2.0)
    end = handset.flash(0.3)
    assert end == pytest.approx(T0 + 2.3)
    assert not handset.off_hook
    clock.advance_to(end)
    assert handset.off_hook
    assert [e.off_hook for e in events] == [True, False, True]
    assert events[1].at == pytest.approx(T0 + 2.0)
    assert events[2].at - events[1].at == pytest.approx(0.3, abs=1e-9)


def test_dialling_or_flashing_on_hook_is_refused(board: SimBoard) -> None:
    handset = board.handsets[0]
    with pytest.raises(RuntimeError, match="on hook"):
        handset.dial_dtmf("1")
    with pytest.raises(RuntimeError, match="on hook"):
        handset.dial_rotary("1")
    with pytest.raises(RuntimeError, match="on hook"):
        handset.flash()


def test_hang_up_abandons_pulses_still_to_come(board: SimBoard, clock: VirtualClock) -> None:
    events = events_of(board)
    handset = board.handsets[0]
    handset.lift()
    handset.dial_rotary("9")
    clock.advance(0.28)  # in the make after the third pulse
    handset.hang_up()
    clock.advance(5.0)
    assert not handset.off_hook
    assert events[-1] == HookEvent(0, False, pytest.approx(T0 + 0.28))
    assert len(events) == 1 + 2 * 3 + 1  # lift, three complete pulses, then the hang-up edge


# -- rotary ----------------------------------------------------------------------------------------


def decode_pulses(events: list[HookEvent], min_interdigit: float = 0.3) -> dict[str, list]:
    """An independent pulse decoder: breaks, makes, digits and gaps from off/on-hook edges."""
    assert events[0].off_hook, "dialling starts off hook"
    breaks: list[tuple[float, float]] = []
    for down, up in zip(events[1::2], events[2::2], strict=False):
        assert not down.off_hook and up.off_hook
        breaks.append((down.at, up.at))
    digits: list[list[tuple[float, float]]] = []
    gaps: list[float] = []
    for brk in breaks:
        if digits and brk[0] - digits[-1][-1][1] < min_interdigit:
            digits[-1].append(brk)
        else:
            if digits:
                gaps.append(brk[0] - digits[-1][-1][1])
            digits.append([brk])
    makes = [b[0] - a[1] for d in digits for a, b in itertools.pairwise(d)]
    return {
        "digits": "".join(str(len(d) % 10) for d in digits),
        "breaks": [up - down for down, up in breaks],
        "makes": makes,
        "gaps": gaps,
    }


def test_rotary_105_gives_1_10_and_5_pulses_with_standard_timing(
    board: SimBoard, clock: VirtualClock
) -> None:
    events = events_of(board)
    handset = board.handsets[0]
    handset.lift()
    clock.advance(1.5)
    end = handset.dial_rotary("105")
    clock.advance_to(end + 1.0)
    pulses = decode_pulses(events)
    assert pulses["digits"] == "105"
    assert len(pulses["breaks"]) == 16
    assert pulses["breaks"] == pytest.approx([0.06] * 16, abs=1e-9)
    assert pulses["makes"] == pytest.approx([0.04] * 13, abs=1e-9)  # 0 + 9 + 4 within digits
    assert pulses["gaps"] == pytest.approx([0.7, 0.7], abs=1e-9)
    assert events[1].at == pytest.approx(T0 + 1.5)
    assert events[-1].at == pytest.approx(end)
    assert handset.off_hook


def test_rotary_timing_parameters_and_queued_digits(board: SimBoard, clock: VirtualClock) -> None:
    events = events_of(board)
    handset = board.handsets[0]
    handset.lift()
    handset.dial_rotary("2", pps=20.0, break_ratio=2 / 3, interdigit=0.5)
    end = handset.dial_rotary("3", pps=20.0, break_ratio=2 / 3, interdigit=0.5)  # waits its turn
    clock.advance_to(end)
    pulses = decode_pulses(events)
    assert pulses["digits"] == "23"
    assert pulses["breaks"] == pytest.approx([1 / 30] * 5, abs=1e-9)
    assert pulses["makes"] == pytest.approx([1 / 60] * 3, abs=1e-9)
    assert pulses["gaps"] == pytest.approx([0.5], abs=1e-9)


@pytest.mark.parametrize("digits", ["12a", "*", "", "1 2"])
def test_rotary_refuses_what_a_dial_cannot_send(board: SimBoard, digits: str) -> None:
    board.handsets[0].lift()
    with pytest.raises(ValueError):
        board.handsets[0].dial_rotary(digits)


# -- DTMF ------------------------------------------------------------------------------------------


def goertzel(x: array | list[float], freq: float, window: bool = False) -> float:
    """Amplitude of the `freq` component of `x` (peak units), by the Goertzel recurrence."""
    n = len(x)
    w = 2 * math.pi * freq / RATE
    coeff = 2 * math.cos(w)
    s1 = s2 = 0.0
    gain = 0.0
    for i, v in enumerate(x):
        g = 0.5 - 0.5 * math.cos(2 * math.pi * i / (n - 1)) if window else 1.0
        gain += g
        s0 = v * g + coeff * s1 - s2
        s2, s1 = s1, s0
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return 2 * math.sqrt(max(power, 0.0)) / gain


def dbm0(amplitude: float) -> float:
    return 20 * math.log10(amplitude / ZERO_DBM0_PEAK)


def bursts(x: array, min_gap: int = 8) -> list[tuple[int, int]]:
    """(start, length) of each stretch of sound, split by at least `min_gap` zero samples."""
    found: list[tuple[int, int]] = []
    start = last = None
    for i, v in enumerate(x):
        if v == 0:
            continue
        if start is None or i - last > min_gap:
            if start is not None:
                found.append((start, last - start + 1))
            start = i
        last = i
    if start is not None:
        found.append((start, last - start + 1))
    return found


def expected_pair(digit: str) -> tuple[float, float]:
    for row, keys in zip(ROWS, KEYPAD, strict=True):
        if digit in keys:
            return row, COLUMNS[keys.index(digit)]
    raise AssertionError(digit)


def test_dtmf_digits_are_the_right_tone_pairs_with_exact_timing(board: SimBoard) -> None:
    handset, audio = board.handsets[0], board.lines[0].audio
    handset.lift()
    audio.start()
    digits = "1590*#AD"
    on, off = 0.05, 0.06  # 400 and 480 samples
    end = handset.dial_dtmf(digits, on=on, off=off)
    assert end == pytest.approx(T0 + len(digits) * (on + off))
    total = len(digits) * 880
    x = capture(board, math.ceil(total / PERIOD_SAMPLES) + 2)
    assert bursts(x) == [(i * 880, 400) for i in range(len(digits))]
    assert not any(x[total:])
    for i, digit in enumerate(digits):
        tone = x[i * 880 : i * 880 + 400]
        low, high = expected_pair(digit)
        levels = {f: goertzel(tone, f, window=True) for f in ROWS + COLUMNS}
        loudest_other = max(a for f, a in levels.items() if f not in (low, high))
        assert 20 * math.log10(min(levels[low], levels[high]) / loudest_other) > 30, digit
        assert dbm0(goertzel(tone, low)) == pytest.approx(-9.0, abs=0.5), digit
        assert dbm0(goertzel(tone, high)) == pytest.approx(-7.0, abs=0.5), digit


def test_dtmf_levels_and_continuous_phase(board: SimBoard) -> None:
    handset, audio = board.handsets[0], board.lines[0].audio
    handset.lift()
    audio.start()
    handset.dial_dtmf("8", on=0.2, off=0.0, level_dbm0=(-14.0, -11.5))
    tone = capture(board, 10)
    assert dbm0(goertzel(tone, 852.0)) == pytest.approx(-14.0, abs=0.5)
    assert dbm0(goertzel(tone, 1336.0)) == pytest.approx(-11.5, abs=0.5)
    # Continuous phase across period boundaries: the tone matches one ideal two-tone sine
    # everywhere (a phase restart at a period edge would leave a large residual there).
    a_low = ZERO_DBM0_PEAK * 10 ** (-14.0 / 20)
    a_high = ZERO_DBM0_PEAK * 10 ** (-11.5 / 20)
    w_low, w_high = 2 * math.pi * 852 / RATE, 2 * math.pi * 1336 / RATE
    best = None
    for phase in (0.0, 0.5, 1.0):  # the generator's sampling instant within a sample is its own
        residual = max(
            abs(v - a_low * math.sin(w_low * (n + phase)) - a_high * math.sin(w_high * (n + phase)))
            for n, v in enumerate(tone)
        )
        best = residual if best is None else min(best, residual)
    assert best is not None and best <= 1.0


def test_dtmf_refuses_unknown_digits(board: SimBoard) -> None:
    handset = board.handsets[0]
    handset.lift()
    for bad in ("12E", "1-2", "", "+"):
        with pytest.raises(ValueError):
            handset.dial_dtmf(bad)
    handset.dial_dtmf("abcd")  # lower-case A-D are the same keys


def test_dtmf_on_hook_reaches_nothing_and_hang_up_drops_the_rest(
    board: SimBoard, clock: VirtualClock
) -> None:
    handset, audio = board.handsets[0], board.lines[0].audio
    handset.lift()
    audio.start()
    handset.dial_dtmf("123456")
    assert any(capture(board, 4))
    handset.hang_up()
    assert not any(capture(board, 10))
    handset.lift()
    assert not any(capture(board, 60))  # nothing left over from before the hang-up


# -- speech --------------------------------------------------------------------------------------


def write_wav(path: Path, data: bytes, rate: int = 8000, channels: int = 1, width: int = 2) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)


def le(values: list[int]) -> bytes:
    a = array("h", values)
    if sys.byteorder == "big":
        a.byteswap()
    return a.tobytes()


def test_speak_wav_comes_out_of_read_sample_exact(board: SimBoard, tmp_path: Path) -> None:
    rng = random.Random(7)
    speech = [rng.randint(-32768, 32767) for _ in range(1234)] + [32767, -32768]
    path = tmp_path / "hello.wav"
    write_wav(path, le(speech))
    handset, audio = board.handsets[0], board.lines[0].audio
    handset.lift()
    audio.start()
    end = handset.speak(path)
    assert end == pytest.approx(T0 + len(speech) / RATE)
    x = capture(board, 10)
    assert list(x[: len(speech)]) == speech
    assert not any(x[len(speech) :])


def test_speak_queues_after_speech_and_accepts_bytes_and_arrays(board: SimBoard) -> None:
    handset, audio = board.handsets[0], board.lines[0].audio
    handset.lift()
    audio.start()
    handset.speak(le([1, 2, 3]))
    handset.speak(array("h", [4, 5]))
    assert list(capture(board, 1)[:6]) == [1, 2, 3, 4, 5, 0]
    with pytest.raises(ValueError, match="even number"):
        handset.speak(b"\x00\x01\x02")


def test_speech_and_dtmf_mix_with_saturation(board: SimBoard) -> None:
    handset, audio = board.handsets[0], board.lines[0].audio
    handset.lift()
    audio.start()
    handset.speak(le([30000] * 800 + [-30000] * 800))
    handset.dial_dtmf("5", on=0.4, off=0.0)
    x = capture(board, 20)
    assert max(x[:800]) == 32767 and min(x[800:1600]) == -32768  # clipped, never wrapped
    assert all(v > 0 for v in x[:800]) and all(v < 0 for v in x[800:1600])
    assert dbm0(goertzel(x[1600:], 770.0)) == pytest.approx(-9.0, abs=0.5)  # DTMF alone


@pytest.mark.parametrize(
    ("rate", "channels", "width", "message"),
    [
        (16000, 1, 2, "expected 8000 Hz mono 16-bit PCM, got 16000 Hz mono 16-bit"),
        (8000, 2, 2, "expected 8000 Hz mono 16-bit PCM, got 8000 Hz 2 channels 16-bit"),
        (8000, 1, 1, "expected 8000 Hz mono 16-bit PCM, got 8000 Hz mono 8-bit"),
    ],
)
def test_speak_refuses_other_wav_formats(
    board: SimBoard, tmp_path: Path, rate: int, channels: int, width: int, message: str
) -> None:
    path = tmp_path / "wrong.wav"
    write_wav(path, bytes(width * channels * 100), rate, channels, width)
    with pytest.raises(ValueError, match=message):
        board.handsets[0].speak(path)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match="not a readable PCM WAV"):
        board.handsets[0].speak(junk)


def test_speech_on_hook_is_not_captured(board: SimBoard) -> None:
    handset, audio = board.handsets[0], board.lines[0].audio
    audio.start()
    handset.speak(le([1000] * 1600))
    assert not any(capture(board, 5))
    handset.lift()  # the rest of the sentence, spoken after lifting, gets through
    assert list(capture(board, 5)) == [1000] * 800


# -- listening -------------------------------------------------------------------------------------


def period_of(value: int) -> bytes:
    return le([value] * PERIOD_SAMPLES)


def test_heard_and_caller_id_audio_split_by_hook_state(
    board: SimBoard, clock: VirtualClock, tmp_path: Path
) -> None:
    handset, audio = board.handsets[0], board.lines[0].audio
    audio.start()
    audio.read()
    audio.write(period_of(11))  # on hook: on-hook transmission (caller ID)
    audio.read()
    handset.lift()
    audio.write(period_of(22))
    audio.read()
    audio.write(period_of(33))
    assert handset.caller_id_audio() == period_of(11)
    assert handset.heard() == period_of(22) + period_of(33)
    # Written as the third period ended, heard one playout lead (a period) later.
    assert handset.heard(since=T0 + 0.06 + audio.playout_lead) == period_of(33)
    path = tmp_path / "heard.wav"
    handset.save_heard(path)
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.readframes(w.getnframes()) == period_of(22) + period_of(33)
    handset.clear_heard()
    assert handset.heard() == b"" and handset.caller_id_audio() == b""


def test_nothing_is_heard_without_battery(board: SimBoard) -> None:
    handset, audio, slic = board.handsets[0], board.lines[0].audio, board.lines[0].slic
    audio.start()
    handset.lift()
    slic.set_linefeed(Linefeed.OPEN)
    audio.write(period_of(5))
    handset.speak(period_of(7))
    assert handset.heard() == b""
    assert not any(capture(board, 1))


def test_heard_memory_is_capped(clock: VirtualClock) -> None:
    board = create_sim_board(1, clock, record_seconds=0.1)  # five periods
    handset, audio = board.handsets[0], board.lines[0].audio
    handset.lift()
    audio.start()
    for value in range(12):
        audio.read()
        audio.write(period_of(value))
    assert handset.heard() == b"".join(period_of(v) for v in range(7, 12))
    board.close()


# -- ringer ----------------------------------------------------------------------------------------


def test_uk_double_ring_bursts_at_exactly_the_cadence(board: SimBoard, clock: VirtualClock) -> None:
    handset, slic = board.handsets[0], board.lines[0].slic
    rings: list[tuple[str, float]] = []
    handset.on_ring = lambda at: rings.append(("on", at))
    handset.on_ring_stop = lambda at: rings.append(("off", at))
    slic.ring(UK_RING)
    assert slic.ringing and slic.linefeed is Linefeed.RINGING and handset.ringing
    assert slic.ring_cadence == UK_RING
    clock.advance(0.5)
    assert not handset.ringing and slic.ringing  # silent part of the cadence
    clock.advance_to(T0 + 6.2)
    expected = [
        (T0 + 0.0, T0 + 0.4), (T0 + 0.6, T0 + 1.0),
        (T0 + 3.0, T0 + 3.4), (T0 + 3.6, T0 + 4.0),
        (T0 + 6.0, None),
    ]
    got = handset.ring_bursts
    assert len(got) == len(expected)
    for (start, end), (want_start, want_end) in zip(got, expected, strict=True):
        assert start == pytest.approx(want_start, abs=1e-9)
        assert end == (None if want_end is None else pytest.approx(want_end, abs=1e-9))
    assert [kind for kind, _ in rings] == ["on", "off"] * 4 + ["on"]
    slic.stop_ring()
    assert not slic.ringing and not handset.ringing
    assert slic.linefeed is Linefeed.FORWARD_ACTIVE
    assert handset.ring_bursts[-1][1] == pytest.approx(T0 + 6.2)
    clock.advance(10.0)
    assert len(handset.ring_bursts) == 5


def test_two_on_four_off_cadence(board: SimBoard, clock: VirtualClock) -> None:
    handset, slic = board.handsets[0], board.lines[0].slic
    clock.advance(0.5)
    slic.ring(US_RING)
    clock.advance(21.0)
    starts = [T0 + 0.5 + 6 * k for k in range(4)]
    want = [(s, s + 2.0) for s in starts]
    got = handset.ring_bursts
    assert [b[0] for b in got] == pytest.approx(starts, abs=1e-9)
    assert [b[1] for b in got] == pytest.approx([e for _, e in want], abs=1e-9)


def test_continuous_ring_and_cadence_restart(board: SimBoard, clock: VirtualClock) -> None:
    handset, slic = board.handsets[0], board.lines[0].slic
    slic.ring(RingCadence(((1.0, 0.0),)))
    clock.advance(5.0)
    assert handset.ring_bursts == [(T0, None)]
    slic.ring(US_RING)  # a new cadence replaces the old one
    clock.advance(2.5)
    assert handset.ring_bursts == [(T0, T0 + 5.0), (T0 + 5.0, T0 + 7.0)]


def test_ring_trip_during_a_burst_stops_ringing_and_reports_off_hook(
    board: SimBoard, clock: VirtualClock
) -> None:
    events = events_of(board)
    handset, slic = board.handsets[0], board.lines[0].slic
    slic.set_linefeed(Linefeed.REVERSE_ACTIVE)
    stopped_before_event: list[bool] = []
    slic.on_hook_event = lambda ev: (events.append(ev), stopped_before_event.append(slic.ringing))
    slic.ring(UK_RING)
    clock.advance(0.25)
    handset.lift()
    assert events == [HookEvent(0, True, T0 + 0.25)]
    assert stopped_before_event == [False]
    assert not slic.ringing and not handset.ringing
    assert slic.linefeed is Linefeed.REVERSE_ACTIVE  # back to the state before ringing
    assert handset.ring_bursts == [(T0, T0 + 0.25)]
    clock.advance(10.0)
    assert len(handset.ring_bursts) == 1


def test_ring_trip_in_the_silent_part(board: SimBoard, clock: VirtualClock) -> None:
    events = events_of(board)
    handset, slic = board.handsets[0], board.lines[0].slic
    slic.ring(US_RING)
    clock.advance(3.0)
    handset.lift()
    assert not slic.ringing
    assert events == [HookEvent(0, True, T0 + 3.0)]
    clock.advance(10.0)
    assert handset.ring_bursts == [(T0, T0 + 2.0)]


def test_ring_while_off_hook_trips_at_once(board: SimBoard) -> None:
    handset, slic = board.handsets[0], board.lines[0].slic
    handset.lift()
    slic.ring(US_RING)
    assert not slic.ringing and handset.ring_bursts == []


def test_set_linefeed_stops_ringing_and_refuses_ringing(board: SimBoard) -> None:
    slic = board.lines[0].slic
    slic.ring(US_RING)
    slic.set_linefeed(Linefeed.ON_HOOK_TRANSMISSION)
    assert not slic.ringing
    assert slic.linefeed is Linefeed.ON_HOOK_TRANSMISSION
    assert board.handsets[0].linefeed is Linefeed.ON_HOOK_TRANSMISSION
    with pytest.raises(ValueError, match="ring"):
        slic.set_linefeed(Linefeed.RINGING)


def test_caller_id_between_bursts_goes_to_caller_id_audio(
    board: SimBoard, clock: VirtualClock
) -> None:
    handset, slic, audio = board.handsets[0], board.lines[0].slic, board.lines[0].audio
    slic.ring(UK_RING)
    clock.advance_to(T0 + 1.5)  # after the double ring, in the silence
    audio.start()
    for value in (1, 2, 3):
        audio.read()
        audio.write(period_of(value))
    assert handset.caller_id_audio() == period_of(1) + period_of(2) + period_of(3)
    assert handset.heard() == b""


# -- board -----------------------------------------------------------------------------------------


def test_two_line_board_has_independent_lines(clock: VirtualClock) -> None:
    board = create_sim_board(2, clock)
    assert (board.name, board.driver) == ("sim", "sim")
    assert [p.index for p in board.lines] == [0, 1]
    assert [h.line for h in board.handsets] == [0, 1]
    events0, events1 = events_of(board, 0), events_of(board, 1)
    for port in board.lines:
        port.audio.start()
    board.handsets[1].lift()
    board.handsets[1].speak(period_of(99))
    board.lines[0].slic.ring(US_RING)
    assert events0 == [] and events1 == [HookEvent(1, True, T0)]
    assert board.lines[0].slic.ringing and not board.lines[1].slic.ringing
    assert board.handsets[0].ringing and not board.handsets[1].ringing
    assert not any(board.lines[0].audio.read())
    assert samples(board.lines[1].audio.read()) == samples(period_of(99))
    board.close()
    assert board.lines[0].slic.linefeed is Linefeed.OPEN
    assert not board.lines[0].slic.ringing


def test_board_line_count_is_checked() -> None:
    for lines in (0, 3, True):
        with pytest.raises(ValueError, match="1 or 2"):
            create_sim_board(lines, VirtualClock())  # type: ignore[arg-type]


def test_profile_factory_builds_a_real_time_board_and_checks_its_settings() -> None:
    from tipring.hal.api import HardwareError
    from tipring.hal.profile import BoardProfile
    from tipring.hal.sim import open_sim_board

    board = open_sim_board(BoardProfile("bench", "sim", 2, settings={
        "sim": {"record_seconds": 5, "playout_lead_ms": 10}}))
    try:
        assert (board.name, board.driver, len(board.lines), len(board.handsets)) == (
            "bench", "sim", 2, 2)
        assert [port.audio.playout_lead for port in board.lines] == [0.01, 0.01]
    finally:
        board.close()
    with pytest.raises(HardwareError, match="record_seconds"):
        open_sim_board(BoardProfile("bad", "sim", 1, settings={"sim": {"record_seconds": "x"}}))
    for lead in (0, 25, "10", True):
        with pytest.raises(HardwareError, match="playout_lead_ms must be a number"):
            open_sim_board(BoardProfile("bad", "sim", 1, settings={"sim": {"playout_lead_ms": lead}}))
