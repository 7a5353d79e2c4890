"""PromptLibrary against Debian's real asterisk-core-sounds-en-wav clips: the PCM it hands the
media thread is exactly the clips' samples with silent gaps, and every bad clip is refused
with an error that names it."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from tipring.phone.voicemenu import MENU_CLIPS, DeviceFacts, VoiceMenu, spell
from tipring.runtime.prompts import DEFAULT_ROOTS, PromptError, PromptLibrary

SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")


def wav_samples(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        return wav.readframes(wav.getnframes())


def write_wav(path: Path, samples: bytes, *, channels: int = 1, width: int = 2,
              rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(samples)
    return path


@pytest.fixture(scope="module")
def library() -> PromptLibrary:
    assert SOUNDS.is_dir(), "install asterisk-core-sounds-en-wav (listed in .ci/setup)"
    return PromptLibrary([SOUNDS])


def test_an_ip_address_is_its_clips_back_to_back_with_silent_gaps(library: PromptLibrary):
    clips = spell("192.168.1.20")
    assert len(clips) == 12
    gap_ms = 120
    pcm = library.pcm(clips, gap_ms=gap_ms)
    gap = 2 * 8000 * gap_ms // 1000
    offset = 0
    for i, clip in enumerate(clips):
        expected = wav_samples(SOUNDS / f"{clip}.wav")
        assert len(expected) > 1000, clip
        assert pcm[offset:offset + len(expected)] == expected, clip
        offset += len(expected)
        if i < len(clips) - 1:
            assert pcm[offset:offset + gap] == bytes(gap)
            offset += gap
    assert offset == len(pcm)  # nothing before the first clip or after the last


def test_the_greeting_renders_whole_and_every_menu_clip_loads(library: PromptLibrary):
    menu = VoiceMenu(lambda: DeviceFacts(("10.0.0.7",), (("home", True),), "0.1.0"))
    (say,) = menu.start(0.0)
    pcm = library.pcm(say.clips, gap_ms=0)
    assert pcm == b"".join(wav_samples(SOUNDS / f"{c}.wav") for c in say.clips)
    assert 5.0 < len(pcm) / 16000 < 30.0  # seconds of speech, not a stub
    assert library.available and library.missing(MENU_CLIPS) == []
    for clip in MENU_CLIPS:
        assert len(library.samples(clip)) % 2 == 0


def test_zero_gap_and_empty_list(library: PromptLibrary):
    one = library.samples("digits/5")
    assert library.pcm(["digits/5", "digits/5"], gap_ms=0) == one + one
    assert library.pcm([]) == b""


def test_clips_are_read_once(tmp_path: Path):
    path = write_wav(tmp_path / "digits/1.wav", b"\x01\x00\x02\x00")
    library = PromptLibrary([tmp_path], required=["digits/1"])
    assert library.pcm(["digits/1"]) == b"\x01\x00\x02\x00"
    path.unlink()
    assert library.pcm(["digits/1", "digits/1"], gap_ms=1) == b"\x01\x00\x02\x00" + bytes(16) \
        + b"\x01\x00\x02\x00"


def test_first_root_wins(tmp_path: Path):
    write_wav(tmp_path / "image/beep.wav", b"\x07\x00")
    library = PromptLibrary([tmp_path / "image", SOUNDS])
    assert library.samples("beep") == b"\x07\x00"
    assert library.samples("digits/1") == wav_samples(SOUNDS / "digits/1.wav")


def test_missing_clip_is_named(tmp_path: Path):
    library = PromptLibrary([tmp_path / "nowhere", SOUNDS])
    with pytest.raises(PromptError, match=r"no prompt clip 'digits/eleventy'.*nowhere"):
        library.pcm(["digits/1", "digits/eleventy"])
    assert library.missing(["digits/1", "digits/eleventy", "zz"]) == ["digits/eleventy", "zz"]


def test_available_needs_every_required_clip(tmp_path: Path):
    write_wav(tmp_path / "hello.wav", b"\x00\x00")
    assert PromptLibrary([tmp_path], required=["hello"]).available
    assert not PromptLibrary([tmp_path], required=["hello", "goodbye"]).available
    assert not PromptLibrary([tmp_path]).available  # the menu's set by default
    assert PromptLibrary([SOUNDS]).available


@pytest.mark.parametrize(("channels", "width", "rate", "words"), [
    (1, 2, 16000, "16000 Hz"),
    (2, 2, 8000, "2 channel"),
    (1, 1, 8000, "8-bit"),
])
def test_wrong_format_is_refused_naming_clip_and_format(tmp_path: Path, channels: int, width: int,
                                                        rate: int, words: str):
    write_wav(tmp_path / "letters/x.wav", bytes(channels * width * 80), channels=channels,
              width=width, rate=rate)
    with pytest.raises(PromptError, match=rf"'letters/x'.*{words}.*mono 16-bit 8000 Hz"):
        PromptLibrary([tmp_path]).pcm(["letters/x"])


@pytest.mark.parametrize("content", [b"", b"RIFF\x10\x00\x00\x00WAVEjunk", b"not a wav at all"])
def test_unreadable_files_are_refused(tmp_path: Path, content: bytes):
    (tmp_path / "broken.wav").write_bytes(content)
    with pytest.raises(PromptError, match=r"'broken'.*not a readable PCM WAV"):
        PromptLibrary([tmp_path]).samples("broken")


def test_non_pcm_wav_is_refused(tmp_path: Path):
    good = write_wav(tmp_path / "law.wav", bytes(160)).read_bytes()
    # Same file with the format tag of G.711 mu-law (7): wave cannot decode it.
    (tmp_path / "law.wav").write_bytes(good[:20] + (7).to_bytes(2, "little") + good[22:])
    with pytest.raises(PromptError, match=r"'law'.*not a readable PCM WAV"):
        PromptLibrary([tmp_path]).samples("law")


@pytest.mark.parametrize("name", ["../etc/passwd", "/abs", "digits/", "a b", "", "x.wav"])
def test_clip_names_cannot_leave_the_roots(name: str):
    with pytest.raises(PromptError, match="bad clip name"):
        PromptLibrary([SOUNDS]).pcm([name])


@pytest.mark.parametrize("gap", [-1, 2001, 1.5, True, "120"])
def test_gap_must_be_whole_milliseconds_in_range(gap: object):
    with pytest.raises(ValueError, match="gap_ms"):
        PromptLibrary([SOUNDS]).pcm(["beep"], gap_ms=gap)  # type: ignore[arg-type]


def test_a_single_string_is_not_taken_for_a_list_of_clips():
    with pytest.raises(TypeError, match="sequence of clip names"):
        PromptLibrary([SOUNDS]).pcm("beep")


def test_default_roots_are_the_image_then_debian():
    assert DEFAULT_ROOTS[0] == Path("/usr/share/tipring/prompts")
    assert SOUNDS in DEFAULT_ROOTS
    assert PromptLibrary().roots == DEFAULT_ROOTS
