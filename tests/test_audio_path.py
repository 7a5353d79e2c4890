"""The per-line audio path: one C call per 20 ms period each way, combining the echo canceller,
DTMF detection, G.711, the jitter buffer, caller-ID FSK and tones."""

from __future__ import annotations

import array
import math

import numpy as np
import pytest

import echo_models as em
import spandsp_oracle as sp
from tipring.media import dsp
from tipring.media.dsp import AudioPath, CallerId, Law, ToneEventKind, ToneSegment

FRAME = 160


def tone_frame(freq: float, amplitude: float, start: int) -> bytes:
    return array.array("h", (int(amplitude * math.cos(2 * math.pi * freq * (start + i) / 8000))
                             for i in range(FRAME))).tobytes()


def goertzel_level(samples: np.ndarray, freq: float) -> float:
    """Amplitude of the `freq` component (exact for whole periods)."""
    n = np.arange(len(samples))
    ref = np.exp(-2j * np.pi * freq * n / 8000)
    return float(2 * abs(np.sum(samples * ref)) / len(samples))


def play_packets(path: AudioPath, frames: list[bytes], law: Law = Law.ULAW) -> list[np.ndarray]:
    """Send `frames` as 20 ms packets arriving on time; return what the path played."""
    out = []
    for k, pcm in enumerate(frames + [bytes(2 * FRAME)] * 6):
        if k < len(frames):
            codes = bytearray(FRAME)
            dsp.encode(law, pcm, codes)
            path.put(0x1234, k, k * FRAME, k == 0, law.payload_type, bytes(codes), k * 0.02)
        out.append(np.frombuffer(path.playout(k * 0.02), dtype=np.int16).astype(np.float64))
    return out


def test_playout_is_the_decoded_network_audio() -> None:
    path = AudioPath(jitter_min_ms=20)
    frames = [tone_frame(1000, 8000, k * FRAME) for k in range(20)]
    played = np.concatenate(play_packets(path, frames))
    expected = bytearray(FRAME * 20)
    dsp.encode(Law.ULAW, b"".join(frames), expected)
    decoded = array.array("h", bytes(2 * FRAME * 20))
    dsp.decode(Law.ULAW, bytes(expected), decoded)
    start = int(np.flatnonzero(played)[0])
    assert played[start : start + len(decoded)].tolist() == decoded.tolist()


def test_tones_are_mixed_over_the_network_audio() -> None:
    path = AudioPath()
    path.start_tone([ToneSegment(((350.0, -13.0), (440.0, -13.0)), None, 0.0)])
    frames = [tone_frame(1000, 4000, k * FRAME) for k in range(20)]
    played = np.concatenate(play_packets(path, frames))[8 * FRAME : 18 * FRAME]
    minus13 = em.ZERO_DBM0 * 10 ** (-13 / 20)
    for freq in (350.0, 440.0):
        assert goertzel_level(played, freq) == pytest.approx(minus13, rel=0.05)
    assert goertzel_level(played, 1000.0) == pytest.approx(4000, rel=0.05)
    assert path.tone_playing


def test_caller_id_replaces_the_audio_and_decodes() -> None:
    path = AudioPath()
    path.mute(receive=True)  # as under call-waiting caller ID
    message = dsp.mdmf_message(CallerId(number="6095551212", name="TIPRING TEST"))
    burst = path.send_caller_id(message, seizure_bits=0, mark_bits=80)
    frames = [tone_frame(1000, 8000, k * FRAME) for k in range(burst // FRAME + 4)]
    played = np.concatenate(play_packets(path, frames)).astype(np.int16)
    assert not path.caller_id_sending
    # The 8000-peak network tone is gone under the burst (what is left is the FSK's own spread).
    assert goertzel_level(played[:burst].astype(np.float64), 1000.0) < 400
    decoded = sp.adsi_rx(array.array("h", played.tobytes()), sp.ADSI_STANDARD_CLASS)
    assert decoded == [message[:-1]]  # spandsp checks and strips the checksum byte


def test_capture_detects_digits_and_encodes() -> None:
    path = AudioPath(echo_tail_ms=0)
    keypad = dsp.ToneGenerator()
    keypad.start(dsp.dtmf_segments("7#", on=0.08, off=0.08), repeat_from=None)
    events = []
    for _ in range(20):
        frame = array.array("h", bytes(2 * FRAME))
        keypad.generate(frame)
        payload, found = path.capture(frame.tobytes())
        assert len(payload) == FRAME
        events += found
    starts = [e.digit for e in events if e.kind is ToneEventKind.DIGIT_START]
    assert starts == ["7", "#"]


def test_mutes_and_gains() -> None:
    path = AudioPath(echo_tail_ms=0, tx_gain_db=6.0)
    loud = tone_frame(1000, 4000, 0)
    payload, _ = path.capture(loud)
    pcm = array.array("h", bytes(2 * FRAME))
    dsp.decode(Law.ULAW, payload, pcm)
    assert goertzel_level(np.array(pcm, dtype=np.float64), 1000) == pytest.approx(
        4000 * 10 ** (6 / 20), rel=0.05)
    path.mute(transmit=True)
    payload, _ = path.capture(loud)
    assert payload == bytes([0xFF]) * FRAME  # mu-law silence
    alaw = AudioPath(Law.ALAW, echo_tail_ms=0)
    alaw.mute(transmit=True)
    assert alaw.capture(loud)[0] == bytes([0xD5]) * FRAME  # A-law silence


def test_echo_of_what_the_line_played_is_cancelled() -> None:
    """The line echoes the played audio back through a G.168 hybrid model; what is sent to the
    network must be the near end's silence, not that echo."""
    delay_ms = 20
    path = AudioPath(echo_tail_ms=32, echo_delay_ms=delay_ms, nlp=False)
    speech = em.speech(["vm-*"], 6)
    frames = [em.to_int16(speech[i : i + FRAME]).tobytes() for i in range(0, len(speech), FRAME)]
    hybrid = em.g168_models()["d4"] * 0.5
    played_all: list[int] = []
    sent = []
    echo_total = []
    for k, pcm in enumerate(frames):
        codes = bytearray(FRAME)
        dsp.encode(Law.ULAW, pcm, codes)
        path.put(1, k, k * FRAME, False, 0, bytes(codes), k * 0.02)
        # What comes back now is the echo of what was played delay_ms ago.
        lag = delay_ms * 8
        history = np.array(played_all[-(lag + 256) : len(played_all) - lag] or [0], dtype=float)
        echo = np.convolve(history, hybrid)[len(history) - FRAME : len(history)] if len(
            history) >= FRAME else np.zeros(FRAME)
        echo_total.append(echo)
        payload, _ = path.capture(em.to_int16(echo).tobytes())
        decoded = array.array("h", bytes(2 * FRAME))
        dsp.decode(Law.ULAW, payload, decoded)
        sent.append(np.array(decoded, dtype=float))
        played_all.extend(np.frombuffer(path.playout(k * 0.02), dtype=np.int16).tolist())
    late = slice(150, len(frames))  # after 3 s
    echo_power = sum(float(np.sum(e**2)) for e in echo_total[late])
    residual_power = sum(float(np.sum(s**2)) for s in sent[late])
    assert echo_power > 0
    assert 10 * math.log10(echo_power / residual_power) >= 20


@pytest.mark.parametrize("level,expected_rms", [(40, 23170.5 * 10 ** (-40 / 20)), (127, 0.0)])
def test_comfort_noise_fills_the_far_ends_silence(level: int, expected_rms: float) -> None:
    path = AudioPath()
    frames = [tone_frame(1000, 8000, k * FRAME) for k in range(10)]
    play_packets(path, frames)  # a talkspurt, then the sender falls silent (DTX)
    path.comfort_noise(bytes([level]))
    quiet = np.concatenate([np.frombuffer(path.playout(1.0 + k * 0.02), dtype=np.int16)
                            for k in range(20)]).astype(np.float64)
    assert path.state.jb.silent
    rms = float(np.sqrt(np.mean(quiet**2)))
    assert rms == pytest.approx(expected_rms, rel=0.15, abs=1.0)
    assert goertzel_level(quiet, 1000.0) < 0.2 * expected_rms + 1  # noise, not the old tone
