"""Every device-tree overlay in hw/overlays compiles the way the image builds it (C preprocessor,
then `dtc -@`, Debian's device-tree-compiler) without a warning, and the compiled blob says what
the HAT needs: the Pi's PCM block as clock consumer, SPI0 on, a simple-audio-card "ProSLIC" in
DSP mode A with one 16-bit slot per line. Board profiles name only overlays that exist and that
have a slot for each of their lines. Read back with `fdtget`, an independent parser."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OVERLAYS = ROOT / "hw/overlays"
BOARDS = ROOT / "hw/boards"
SOUND = "/fragment@2/__overlay__/sound-proslic"
CPU = f"{SOUND}/simple-audio-card,cpu"
CODEC = f"{SOUND}/simple-audio-card,codec"
SLOTS = {"tipring-proslic": 1, "tipring-proslic-2slot": 2}  # overlay -> PCM timeslots (lines)
CODECS = {"tipring-proslic": "linux,bt-sco", "tipring-proslic-2slot": "linux,snd-soc-dummy"}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found; on Debian: apt-get install device-tree-compiler")
    return path


def compile_overlay(dts: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """As buildroot/board/tipring/post-image.sh does: cpp, then dtc -@ (symbols kept)."""
    cpp = subprocess.run(["cpp", "-nostdinc", "-undef", "-x", "assembler-with-cpp", "-P",
                          "-I", str(OVERLAYS), str(dts)], capture_output=True, text=True,
                         check=True, timeout=60)
    return subprocess.run([tool("dtc"), "-@", "-I", "dts", "-O", "dtb", "-o", str(out), "-"],
                          input=cpp.stdout, capture_output=True, text=True, timeout=60, check=False)


def fdtget(blob: Path, node: str, prop: str, kind: str = "s") -> str:
    result = subprocess.run([tool("fdtget"), "-t", kind, str(blob), node, prop],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{blob.name}: {node} {prop}: {result.stderr.strip()}"
    return result.stdout.strip()


def nodes(blob: Path, node: str) -> list[str]:
    result = subprocess.run([tool("fdtget"), "-l", str(blob), node], capture_output=True,
                            text=True, timeout=60, check=True)
    return result.stdout.split()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dtbo")
    blobs: dict[str, Path] = {}
    for dts in sorted(OVERLAYS.glob("*.dts")):
        blob = out / f"{dts.stem}.dtbo"
        result = compile_overlay(dts, blob)
        assert result.returncode == 0, f"{dts.name}: {result.stderr}"
        assert result.stderr == "", f"{dts.name}: dtc warns: {result.stderr}"
        blobs[dts.stem] = blob
    return blobs


def test_every_overlay_is_known_here(compiled):
    assert set(compiled) == set(SLOTS)  # a new overlay gets its checks added below


@pytest.mark.parametrize("name", sorted(SLOTS))
def test_overlay_targets_the_pcm_block_and_spi0(compiled, name):
    blob = compiled[name]
    assert fdtget(blob, "/", "compatible") == "brcm,bcm2835"
    assert nodes(blob, "/") == ["fragment@0", "fragment@1", "fragment@2", "__symbols__",
                                "__fixups__", "__local_fixups__"]
    # labels resolved by the firmware's loader against the base tree
    assert fdtget(blob, "/__fixups__", "spi0") == "/fragment@1:target:0"
    consumer = fdtget(blob, "/__fixups__", "i2s_clk_consumer").split()
    assert consumer == ["/fragment@0:target:0",
                        f"{CPU}:sound-dai:0"]  # enabled, and the card's CPU end
    for fragment in ("fragment@0", "fragment@1"):
        assert fdtget(blob, f"/{fragment}/__overlay__", "status") == "okay"
    assert fdtget(blob, "/fragment@2", "target-path") == "/"


@pytest.mark.parametrize("name", sorted(SLOTS))
def test_overlay_describes_the_proslic_pcm_bus(compiled, name):
    blob = compiled[name]
    assert fdtget(blob, SOUND, "compatible") == "simple-audio-card"
    assert fdtget(blob, SOUND, "simple-audio-card,name") == "ProSLIC"  # the profiles' CARD=
    assert fdtget(blob, SOUND, "simple-audio-card,format") == "dsp_a"
    # the HAT makes PCLK/FSYNC: the codec end is bit and frame clock master, the Pi consumes
    codec_phandle = fdtget(blob, CODEC, "phandle", "u")
    for master in ("simple-audio-card,bitclock-master", "simple-audio-card,frame-master"):
        assert fdtget(blob, SOUND, master, "u") == codec_phandle
    assert fdtget(blob, CPU, "dai-tdm-slot-num", "u") == str(SLOTS[name])
    assert fdtget(blob, CPU, "dai-tdm-slot-width", "u") == "16"
    # the codec end: a node of the overlay, by phandle, with the expected driver
    target = fdtget(blob, CODEC, "sound-dai", "u").split()[0]
    [bus] = [n for n in nodes(blob, "/fragment@2/__overlay__") if n != "sound-proslic"]
    bus_node = f"/fragment@2/__overlay__/{bus}"
    assert fdtget(blob, bus_node, "phandle", "u") == target
    assert fdtget(blob, bus_node, "compatible") == CODECS[name]
    if SLOTS[name] > 1:  # both ends of a TDM link must agree on the slots
        assert fdtget(blob, CODEC, "dai-tdm-slot-num", "u") == str(SLOTS[name])
        assert fdtget(blob, CODEC, "dai-tdm-slot-width", "u") == "16"


def slot_problems(board: dict, overlays: set[str]) -> list[str]:
    """What is wrong between a board profile and the overlays it names (empty: nothing)."""
    problems = [f"no overlay {n!r} in hw/overlays" for n in board.get("overlays", [])
                if n not in overlays]
    if board.get("driver") != "si3215":
        return problems
    named = [n for n in board.get("overlays", []) if n in SLOTS]
    if len(named) != 1:
        return [*problems, f"a ProSLIC board needs one PCM overlay, names {named}"]
    slots = SLOTS[named[0]]
    lines = board.get("line", [])
    if board.get("lines", 1) > slots:
        problems.append(f"{board.get('lines')} lines on a {slots}-slot overlay")
    for index, line in enumerate(lines):
        if not 0 <= line.get("timeslot", 0) < slots:
            problems.append(f"line {index}: timeslot {line.get('timeslot')} not in 0..{slots - 1}")
        if line.get("pcm_format", "linear") != "linear":
            problems.append(f"line {index}: 16-bit slots carry linear audio only")
    return problems


def test_board_profiles_name_overlays_that_fit_them():
    overlays = {p.stem for p in OVERLAYS.glob("*.dts")}
    for path in sorted(BOARDS.glob("*.toml")):
        board = tomllib.loads(path.read_text())
        assert slot_problems(board, overlays) == [], path.name
    assert tomllib.loads((BOARDS / "si3215-hat.toml").read_text())["overlays"] == [
        "tipring-proslic"]


def test_the_two_line_hat_needs_the_two_slot_overlay():
    overlays = set(SLOTS)
    board = tomllib.loads((BOARDS / "si3215-hat.toml").read_text())
    second = dict(board["line"][0], spi_cs=1, interrupt="GPIO23", timeslot=1)
    two = dict(board, lines=2, line=[board["line"][0], second])
    assert slot_problems(two, overlays) == ["2 lines on a 1-slot overlay",
                                            "line 1: timeslot 1 not in 0..0"]
    assert slot_problems(dict(two, overlays=["tipring-proslic-2slot"]), overlays) == []


def test_wiring_notes_name_every_overlay():
    wiring = (ROOT / "hw/wiring.md").read_text()
    for dts in OVERLAYS.glob("*.dts"):
        assert f"overlays/{dts.name}" in wiring
