"""NTT number display (JP): call-arrival signal, the phone's primary response, the JCLIP frame
sent with the loop closed (decoded by spandsp's adsi receiver in JCLIP mode), the phone's
release, then normal ringing; and what ordinary phones get."""

from __future__ import annotations

import pytest

import spandsp_oracle as sd
from line_harness import harness_list, samples
from test_fxs_sim import events, make
from tipring.line.jclip import CAR_TIMEOUT_S, crc_itu16, jclip_message
from tipring.line.signals import Answered, OffHook, SendCallerId
from tipring.media.dsp import Absence, CallerId, FskModulator, FskStandard

JCLIP = sd.ADSI_STANDARD_JCLIP


harnesses = pytest.fixture(harness_list, name="harnesses")


def fields(message: bytes) -> list[tuple[int, bytes]]:
    return sd.adsi_fields(message, JCLIP)


@pytest.mark.parametrize("data", [b"", b"\x10\x01", bytes(range(256))])
def test_crc_agrees_with_spandsp(data):
    assert crc_itu16(data) == sd.crc_itu16(data)


def test_frame_decodes_in_spandsp_jclip_mode():
    message = jclip_message(CallerId("0312345678"))
    assert message[:2] == b"\x90\x81"  # DLE SOH, each with its even-parity bit
    assert all(bin(b).count("1") % 2 == 0 for b in message[:-2])  # even parity, CRC aside
    assert message[-4:-2] == b"\x90\x03"  # DLE ETX (even parity) closes the frame
    modulator = FskModulator()
    n = modulator.start(message, FskStandard.V23, seizure_bits=0, mark_bits=84)
    pcm = samples(bytes(2 * (n + 800)))
    modulator.generate(pcm)
    [received] = sd.adsi_rx(pcm, JCLIP)  # spandsp checks the CRC before it delivers
    assert fields(received) == [(0x40, b""), (0x02, b"0312345678")]


def test_number_display_phone_gets_the_number_then_rings(harnesses):
    h = make(harnesses, "JP")
    h.handset.number_display = True
    edges = h.record_hook_events()
    start = h.clock.now()
    h.apply(h.line.ring(CallerId("+81312345678"), None, start))
    h.run(8)
    bursts = h.handset.ring_bursts
    car_on, car_off = bursts[0]
    assert car_off is not None and abs((car_off - car_on) - 0.5) <= 0.01  # CAR: 0.5 s
    # primary response after the CAR burst, then the release: a closed loop, then open again
    assert [e.off_hook for e in edges] == [True, False]
    responded, released = edges[0].at, edges[1].at
    assert car_off <= responded < car_off + 0.5
    [(data_at, burst)] = [(t, c) for t, c in h.commands if isinstance(c, SendCallerId)]
    assert not burst.on_hook and responded < data_at < released
    messages = sd.adsi_rx(samples(h.handset.heard()), JCLIP)
    assert [fields(m) for m in messages] == [[(0x40, b""), (0x02, b"0312345678")]]
    # normal ringing (IR: 1 s on, 2 s off, 16 Hz) once the loop is open again, never before
    ir = [(on, off) for on, off in bursts[1:]]
    assert ir and ir[0][0] >= released
    assert all(off is not None and abs(off - on - 1.0) <= 0.01 for on, off in ir[:2])
    assert abs(ir[1][0] - ir[0][0] - 3.0) <= 0.01
    assert not events(h, Answered) and not events(h, OffHook)  # the exchange was not a call
    h.handset.lift()
    h.run(0.5)
    assert len(events(h, Answered)) == 1


def test_withheld_number_sends_the_reason(harnesses):
    h = make(harnesses, "JP")
    h.handset.number_display = True
    h.apply(h.line.ring(CallerId(number_absence=Absence.PRIVATE), None, h.clock.now()))
    h.run(3)
    messages = sd.adsi_rx(samples(h.handset.heard()), JCLIP)
    assert [fields(m) for m in messages] == [[(0x40, b""), (0x04, b"P")]]


def test_an_ordinary_phone_gets_car_then_normal_ringing(harnesses):
    h = make(harnesses, "JP")
    start = h.clock.now()
    h.apply(h.line.ring(CallerId("+81312345678"), None, start))
    h.run(CAR_TIMEOUT_S + 4)
    bursts = h.handset.ring_bursts
    car = [b for b in bursts if b[0] < start + CAR_TIMEOUT_S]
    assert len(car) == 6 and all(abs(off - on - 0.5) <= 0.01 for on, off in car)
    ir = bursts[len(car):]
    assert ir and abs(ir[0][0] - (start + CAR_TIMEOUT_S)) <= 0.01
    assert ir[0][1] is not None and abs(ir[0][1] - ir[0][0] - 1.0) <= 0.01
    assert not [c for _, c in h.commands if isinstance(c, SendCallerId)]


def test_lifting_an_ordinary_phone_during_car_answers_the_call(harnesses):
    h = make(harnesses, "JP")
    h.apply(h.line.ring(CallerId("+81312345678"), None, h.clock.now()))
    h.run(0.7)
    lifted = h.clock.now()
    h.handset.lift()  # a person, not a number-display phone: the loop stays closed
    h.run(5)
    assert [e.at for e in events(h, Answered)] == [pytest.approx(lifted, abs=0.02)]
    assert h.line.state.value == "connected"
    assert len(h.handset.ring_bursts) == 1  # no ringing over the closed loop


def test_the_caller_giving_up_ends_the_exchange(harnesses):
    h = make(harnesses, "JP")
    h.handset.number_display = True
    h.apply(h.line.ring(CallerId("+81312345678"), None, h.clock.now()))
    h.run(0.65)
    h.apply(h.line.stop_ring(h.clock.now()))
    h.run(6)
    assert h.line.state.value == "idle" and len(h.handset.ring_bursts) == 1
    assert not events(h, Answered) and not h.handset.off_hook
