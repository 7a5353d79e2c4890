"""The C mixer of a line's call legs and its voice prompts, through the `AudioPath` facade.

Two legs attached at once are a three-way conference: the handset hears both far ends, each far
end hears the handset and the other far end, never itself. Levels are measured by correlation
with the tone (exact for whole periods), so a leak of -40 dB would show.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from tipring.media import dsp
from tipring.media.dsp import AudioPath, Law, ToneSegment

FRAME = 160
FRAMES = 40
AMPLITUDE = 6000.0


def tone(freq: float, amplitude: float, frames: int = FRAMES) -> np.ndarray:
    n = np.arange(frames * FRAME)
    return np.round(amplitude * np.sin(2 * np.pi * freq * n / 8000)).astype(np.int16)


def level(samples: np.ndarray, freq: float) -> float:
    """Amplitude of the `freq` component."""
    n = np.arange(len(samples))
    ref = np.exp(-2j * np.pi * freq * n / 8000)
    return float(2 * abs(np.sum(samples.astype(np.float64) * ref)) / len(samples))


def packet(law: Law, pcm: np.ndarray) -> bytes:
    codes = bytearray(len(pcm))
    dsp.encode(law, pcm.tobytes(), codes)
    return bytes(codes)


def decoded(law: Law, codes: bytes) -> np.ndarray:
    out = np.zeros(len(codes), dtype=np.int16)
    dsp.decode(law, codes, out)
    return out


class Conference:
    """A path with legs "" (far end A) and "b" (far end B), fed one frame at a time; what the
    handset was played and what each leg was sent are kept."""

    def __init__(self, law_a: Law = Law.ULAW, law_b: Law = Law.ALAW, **options: object) -> None:
        self.path = AudioPath(law_a, echo_tail_ms=0, **options)  # type: ignore[arg-type]
        self.path.attach_leg("b", law_b)
        self.laws = {"": law_a, "b": law_b}
        self.k = 0
        self.played: list[np.ndarray] = []
        self.sent: dict[str, list[np.ndarray]] = {"": [], "b": []}

    def step(self, far: dict[str, np.ndarray], near: np.ndarray) -> None:
        k = self.k
        for leg, pcm in far.items():
            frame = pcm[k * FRAME : (k + 1) * FRAME]
            self.path.put(0x100 + len(leg), k, k * FRAME, k == 0, self.laws[leg].payload_type,
                          packet(self.laws[leg], frame), k * 0.02, leg)
        self.path.capture(near[k * FRAME : (k + 1) * FRAME].tobytes())
        for leg in self.path.legs:
            self.sent[leg].append(decoded(self.laws[leg], self.path.payload(leg)))
        self.played.append(np.frombuffer(self.path.playout(k * 0.02), dtype=np.int16))
        self.k += 1

    def run(self, far: dict[str, np.ndarray], near: np.ndarray, frames: int = FRAMES) -> None:
        for _ in range(frames):
            self.step(far, near)

    def tail(self, frames: list[np.ndarray], n: int = 20) -> np.ndarray:
        """The last `n` frames: past the jitter buffer's start-up."""
        return np.concatenate(frames[-n:])


@pytest.mark.parametrize("law_a,law_b", [(Law.ULAW, Law.ALAW), (Law.ALAW, Law.ULAW),
                                         (Law.ULAW, Law.ULAW), (Law.ALAW, Law.ALAW)])
def test_each_party_hears_the_other_two_and_never_itself(law_a: Law, law_b: Law) -> None:
    conf = Conference(law_a, law_b)
    conf.run({"": tone(500, AMPLITUDE), "b": tone(1300, AMPLITUDE)}, tone(2000, AMPLITUDE))
    handset = conf.tail(conf.played)
    to_a, to_b = conf.tail(conf.sent[""]), conf.tail(conf.sent["b"])
    for heard, present, absent in ((handset, (500, 1300), 2000), (to_a, (2000, 1300), 500),
                                   (to_b, (2000, 500), 1300)):
        for freq in present:
            assert level(heard, freq) == pytest.approx(AMPLITUDE, rel=0.05)
        # A leak would be at full level; G.711's own distortion of the other two tones puts a
        # little energy everywhere (about -44 dB here).
        assert level(heard, absent) < AMPLITUDE / 50


def test_a_leg_that_does_not_receive_is_heard_by_no_one() -> None:
    conf = Conference()
    conf.path.set_direction(send=True, receive=False, leg="b")
    conf.run({"": tone(500, AMPLITUDE), "b": tone(1300, AMPLITUDE)}, tone(2000, AMPLITUDE))
    handset, to_a = conf.tail(conf.played), conf.tail(conf.sent[""])
    assert level(handset, 1300) < 1 and level(to_a, 1300) < 1
    assert level(handset, 500) == pytest.approx(AMPLITUDE, rel=0.05)
    to_b = conf.tail(conf.sent["b"])  # it still hears the others (sendonly from its side)
    assert level(to_b, 500) == pytest.approx(AMPLITUDE, rel=0.05)


def test_a_leg_that_does_not_send_is_encoded_for_no_one() -> None:
    conf = Conference()
    conf.run({"": tone(500, AMPLITUDE), "b": tone(1300, AMPLITUDE)}, tone(2000, AMPLITUDE), 5)
    conf.path.set_direction(send=False, receive=True, leg="b")
    before = conf.path.payload("b")
    conf.run({"": tone(500, AMPLITUDE), "b": tone(1300, AMPLITUDE)}, tone(2000, AMPLITUDE), 10)
    assert conf.path.payload("b") == before  # the C core left its payload alone
    assert level(conf.tail(conf.played, 8), 1300) == pytest.approx(AMPLITUDE, rel=0.05)


def test_detaching_one_leg_returns_to_the_single_call_path_bit_exactly() -> None:
    """After B leaves, the path plays and sends exactly what a path that only ever had A
    would: B's jitter buffer and its last frame are gone from both directions."""
    rng = np.random.default_rng(7)
    speech_a = rng.integers(-8000, 8000, FRAMES * 2 * FRAME).astype(np.int16)
    speech_b = rng.integers(-8000, 8000, FRAMES * 2 * FRAME).astype(np.int16)
    near = rng.integers(-8000, 8000, FRAMES * 2 * FRAME).astype(np.int16)
    conf = Conference(Law.ULAW, Law.ALAW)
    single = Conference(Law.ULAW, Law.ALAW)
    single.path.detach_leg("b")
    conf.run({"": speech_a, "b": speech_b}, near, FRAMES)
    single.run({"": speech_a}, near, FRAMES)
    assert not np.array_equal(conf.tail(conf.played), single.tail(single.played))
    conf.path.detach_leg("b")
    assert conf.path.legs == ("",)
    conf.run({"": speech_a}, near, FRAMES)
    single.run({"": speech_a}, near, FRAMES)
    assert np.array_equal(conf.tail(conf.played, FRAMES), single.tail(single.played, FRAMES))
    assert np.array_equal(conf.tail(conf.sent[""], FRAMES), single.tail(single.sent[""], FRAMES))


def test_the_sum_saturates_instead_of_wrapping() -> None:
    """Two loud far ends in phase: the handset gets their sum clipped to 16 bits, sample for
    sample what one of them doubled would be, clipped."""
    loud = tone(400, 30000)
    conf = Conference(Law.ULAW, Law.ULAW)
    one = Conference(Law.ULAW, Law.ULAW)
    one.path.detach_leg("b")
    silence = np.zeros(FRAMES * FRAME, dtype=np.int16)
    conf.run({"": loud, "b": loud}, silence)
    one.run({"": loud}, silence)
    both = np.concatenate(conf.played).astype(np.int32)
    alone = np.concatenate(one.played).astype(np.int32)
    assert np.array_equal(both, np.clip(2 * alone, -32768, 32767))
    assert both.max() == 32767 and both.min() == -32768


def test_what_a_far_end_is_sent_saturates_too() -> None:
    loud = tone(400, 30000)
    conf = Conference(Law.ULAW, Law.ULAW)
    conf.run({"": loud, "b": np.zeros_like(loud)}, loud)  # B hears A and the handset in phase
    to_b = conf.tail(conf.sent["b"]).astype(np.int32)
    near = conf.tail([loud[k * FRAME : (k + 1) * FRAME] for k in range(FRAMES)])
    # Wherever the handset alone is near full scale, B hears full scale of the same sign.
    peaks = np.abs(near) > 29000
    assert np.all(np.sign(to_b[peaks]) == np.sign(near[peaks]))
    assert np.abs(to_b).max() == 32124  # the largest mu-law value


def test_receive_gain_applies_to_the_sum_before_it_is_clipped() -> None:
    loud = tone(400, 20000)
    conf = Conference(Law.ULAW, Law.ULAW, rx_gain_db=-6.0)
    conf.run({"": loud, "b": loud}, np.zeros_like(loud))
    played = conf.tail(conf.played)
    # 2 x 20000 at -6 dB is about 20000: no clipping, because the gain came first.
    assert level(played, 400) == pytest.approx(40000 * 10 ** (-6 / 20), rel=0.03)
    assert np.abs(played).max() < 32767


def test_the_echo_reference_is_what_the_handset_was_played() -> None:
    conf = Conference()
    conf.run({"": tone(500, AMPLITUDE), "b": tone(1300, AMPLITUDE)}, tone(2000, AMPLITUDE), 12)
    state = conf.path.state
    played = int(state.played)
    reference = [state.reference[(played - 4 * FRAME + i) % 2048] for i in range(4 * FRAME)]
    assert reference == np.concatenate(conf.played[-4:]).tolist()


def test_third_leg_and_unknown_legs_are_refused_clearly() -> None:
    path = AudioPath()
    path.attach_leg("b", Law.ALAW)
    with pytest.raises(ValueError, match="at most 2 legs"):
        path.attach_leg("c")
    with pytest.raises(KeyError, match="no leg 'c'"):
        path.put(1, 0, 0, False, 0, bytes(FRAME), 0.0, "c")
    path.attach_leg("b", Law.ULAW)  # re-attaching an attached leg is a re-INVITE, not a third
    path.detach_leg("")
    path.attach_leg("c")
    assert set(path.legs) == {"b", "c"}
    path.detach_leg()
    assert path.legs == ()
    assert path.playout(0.0) == bytes(2 * FRAME)


def test_a_reattached_leg_keeps_its_jitter_buffer_and_takes_the_new_law() -> None:
    path = AudioPath(echo_tail_ms=0)
    for k in range(10):
        path.put(9, k, k * FRAME, False, 0, packet(Law.ULAW, tone(1000, 4000, 1)), k * 0.02)
        path.playout(k * 0.02)
    received = int(path.state.jb.stats.received)
    path.attach_leg("", Law.ALAW)
    assert int(path.state.jb.stats.received) == received == 10
    assert path.capture(bytes(2 * FRAME))[0] == bytes([0xD5]) * FRAME  # A-law silence


# --- voice prompts ---------------------------------------------------------------------------


def prompt_samples(n: int, seed: int = 3) -> np.ndarray:
    rng = random.Random(seed)
    return np.array([rng.randrange(-32768, 32768) for _ in range(n)], dtype=np.int16)


def play_frames(path: AudioPath, frames: int, start: int = 0) -> tuple[np.ndarray, list[int]]:
    """Play `frames` periods; return the samples and the frames whose playout ended a prompt."""
    out, ended = [], []
    for k in range(start, start + frames):
        out.append(np.frombuffer(path.playout(k * 0.02), dtype=np.int16))
        if path.prompt_finished:
            ended.append(k)
    return np.concatenate(out), ended


def test_a_prompt_plays_bit_exactly_instead_of_tones_and_far_ends() -> None:
    path = AudioPath()
    path.attach_leg("b")
    dial_tone = [ToneSegment(((350.0, -13.0), (440.0, -13.0)), None, 0.0)]
    path.start_tone(dial_tone)
    with_tone, _ = play_frames(path, 5)
    prompt = prompt_samples(1000)  # 6.25 frames: it ends mid-frame
    path.play_prompt(prompt.astype("<i2").tobytes())
    assert path.prompt_playing
    out, ended = play_frames(path, 10, start=5)
    assert np.array_equal(out[: len(prompt)], prompt)
    assert ended == [5 + 6] and not path.prompt_playing
    # The tone held its place under the prompt and goes on after it, mid-frame.
    reference = AudioPath()
    reference.start_tone(dial_tone)
    expected, _ = play_frames(reference, 10)
    after = out[len(prompt) :]
    assert np.array_equal(after, expected[5 * FRAME : 5 * FRAME + len(after)])
    assert np.array_equal(with_tone, expected[: 5 * FRAME])


def test_a_prompt_replaces_the_far_end_and_it_returns_afterwards() -> None:
    conf = Conference()
    conf.run({"": tone(500, AMPLITUDE)}, np.zeros(FRAMES * FRAME, dtype=np.int16), 10)
    prompt = prompt_samples(3 * FRAME)
    conf.path.play_prompt(prompt.tobytes())
    conf.run({"": tone(500, AMPLITUDE)}, np.zeros(FRAMES * FRAME, dtype=np.int16), 13)
    assert np.array_equal(np.concatenate(conf.played[10:13]), prompt)
    assert level(conf.tail(conf.played, 10), 500) == pytest.approx(AMPLITUDE, rel=0.05)


def test_stop_prompt_ends_it_early_without_an_end_and_a_new_one_replaces_it() -> None:
    path = AudioPath()
    first, second = prompt_samples(4 * FRAME, 1), prompt_samples(2 * FRAME, 2)
    path.play_prompt(first.tobytes())
    out, ended = play_frames(path, 1)
    assert np.array_equal(out, first[:FRAME]) and ended == []
    path.play_prompt(second.tobytes())  # replaces the first from its start
    out, ended = play_frames(path, 3, start=1)
    assert np.array_equal(out[: 2 * FRAME], second) and ended == [2]
    assert not out[2 * FRAME :].any()
    path.play_prompt(first.tobytes())
    play_frames(path, 1)
    path.stop_prompt()
    out, ended = play_frames(path, 5, start=10)
    assert ended == [] and not out.any() and not path.prompt_playing


@pytest.mark.parametrize("pcm", [b"", b"\x01\x02\x03"])
def test_a_prompt_must_be_whole_samples(pcm: bytes) -> None:
    with pytest.raises(ValueError, match="whole 16-bit samples"):
        AudioPath().play_prompt(pcm)


def test_the_caller_may_reuse_its_buffer_while_the_prompt_plays() -> None:
    path = AudioPath()
    prompt = prompt_samples(2 * FRAME)
    buffer = bytearray(prompt.tobytes())
    path.play_prompt(buffer)
    buffer[:] = bytes(len(buffer))
    out, _ = play_frames(path, 2)
    assert np.array_equal(out, prompt)
    assert math.isclose(float(np.abs(out).max()), float(np.abs(prompt).max()))
