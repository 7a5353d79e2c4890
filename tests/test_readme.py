"""What the README tells a user, checked against the repository (cheap: no browser, no build).

A README that links a missing screenshot, names a defconfig or board profile that does not
exist, or gives a header pin that does not carry the GPIO a profile uses, sends a user wrong;
these tests fail when the files and the prose drift apart."""

from __future__ import annotations

import re
import struct
import tomllib
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, ROOT / "buildroot" / "README.md", ROOT / "hw" / "README.md",
        ROOT / "hw" / "wiring.md"]
SHOTS = ROOT / ".ci" / "screenshots"
PROFILES = {p.stem: tomllib.loads(p.read_text()) for p in (ROOT / "hw" / "boards").glob("*.toml")}
DEFCONFIGS = {p.name for p in (ROOT / "buildroot" / "configs").glob("*_defconfig")}

# The 40-pin header: BCM GPIO number -> physical pin (the same on every 40-pin Pi).
HEADER_PIN = {2: 3, 3: 5, 4: 7, 14: 8, 15: 10, 17: 11, 18: 12, 27: 13, 22: 15, 23: 16, 24: 18,
              10: 19, 9: 21, 25: 22, 11: 23, 8: 24, 7: 26, 0: 27, 1: 28, 5: 29, 6: 31, 12: 32,
              13: 33, 19: 35, 16: 36, 26: 37, 20: 38, 21: 40}
LINK = re.compile(r"(!?)\[[^\[\]]*\]\(([^)\s]+)\)")


def _links(doc: Path) -> list[tuple[bool, str]]:
    return [(bang == "!", target) for bang, target in LINK.findall(doc.read_text())]


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def test_every_image_the_readme_shows_exists_and_is_a_small_png() -> None:
    images = [target for is_image, target in _links(README) if is_image]
    assert len(images) >= 6, "the README shows the web UI's main pages"
    for target in images:
        path = ROOT / target
        assert path.is_file(), f"README shows {target}, which does not exist"
        width, _height = _png_size(path)
        assert 800 <= width <= 1200, f"{target}: {width} px wide"
        assert path.stat().st_size < 200_000, f"{target}: {path.stat().st_size} bytes"


def test_every_screenshot_is_shown() -> None:
    shown = {Path(target).name for is_image, target in _links(README) if is_image}
    taken = {p.name for p in SHOTS.glob("*.png")}
    assert taken == shown, f"taken but not shown: {taken - shown}; shown, not taken: {shown - taken}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_somewhere(doc: Path) -> None:
    for _is_image, target in _links(doc):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        assert (doc.parent / target.split("#")[0]).exists(), f"{doc.name} links {target}"


def test_paths_and_commands_the_readme_names_exist() -> None:
    text = README.read_text()
    named = set(re.findall(r"(?<![\w/.~$])((?:\.ci|buildroot|hw|tests|bench|firmware|cext)"
                           r"/[\w./-]*\w)", text))
    assert {".ci/screenshots/take", "buildroot/validate.sh", "hw/wiring.md"} <= named
    for path in named:
        assert (ROOT / path).exists(), f"README names {path}, which does not exist"


def test_defconfigs_and_board_profiles_named_are_the_real_ones() -> None:
    text = README.read_text()
    assert set(re.findall(r"tipring_\w+_defconfig", text)) == DEFCONFIGS
    for name in PROFILES:
        assert f"`{name}`" in text, f"board profile {name} is not in the README"
    for name in re.findall(r"--board (?:NAME|sim\|PROFILE\|FILE\.toml|([\w-]+))", text):
        assert not name or name in PROFILES, name


def test_the_buildroot_commit_is_the_one_buildroot_readme_names() -> None:
    ours = set(re.findall(r"checkout ([0-9a-f]{40})", README.read_text()))
    assert len(ours) == 1
    assert ours <= set(re.findall(r"[0-9a-f]{40}", (ROOT / "buildroot" / "README.md").read_text()))


@pytest.mark.parametrize("doc", [README, ROOT / "hw" / "wiring.md"], ids=lambda p: p.name)
def test_header_pins_carry_the_gpio_they_are_named_with(doc: Path) -> None:
    text = doc.read_text()
    pairs = [(int(pin), int(gpio)) for pin, gpio in
             re.findall(r"\bpin (\d+), GPIO(\d+)\b", text)]
    pairs += [(int(pin), int(gpio)) for pin, gpio in
              re.findall(r"\|\s*(\d+)(?: \(5 V\))?\s*\|\s*GPIO(\d+)\b", text)]
    assert len(pairs) >= 8
    for pin, gpio in pairs:
        assert HEADER_PIN.get(gpio) == pin, f"{doc.name}: pin {pin} is not GPIO{gpio}"


def _profile_gpios(profile: dict) -> list[int]:
    found = []
    for table in [profile.get(profile["driver"], {}), *profile.get("line", [])]:
        found += [int(v[4:]) for v in table.values() if isinstance(v, str)
                  and re.fullmatch(r"GPIO\d+", v)]
    return found


@pytest.mark.parametrize("name", sorted(n for n in PROFILES if n != "sim"))
def test_readme_wiring_gives_every_gpio_of_each_profile(name: str) -> None:
    """Each GPIO a profile drives appears in the README as `pin N, GPIOx` with its header pin."""
    text = README.read_text()
    gpios = _profile_gpios(PROFILES[name])
    assert gpios, name
    for gpio in gpios:
        assert f"pin {HEADER_PIN[gpio]}, GPIO{gpio}" in text, f"{name}: GPIO{gpio} not wired"


def test_screenshots_are_whole_indexed_pngs() -> None:
    """.ci/screenshots/take writes 8-bit palette PNGs (a third of Chromium's RGBA files); each
    must decode to exactly one filter byte and one index byte per pixel of every row."""
    for path in sorted(SHOTS.glob("*.png")):
        data = path.read_bytes()
        width, height = _png_size(path)
        assert data[24:26] == b"\x08\x03", f"{path.name}: not an 8-bit palette PNG"
        idat, at = b"", 8
        while at < len(data):
            length, kind = struct.unpack(">I4s", data[at:at + 8])
            if kind == b"PLTE":
                assert length % 3 == 0 and length <= 768, path.name
            if kind == b"IDAT":
                idat += data[at + 8:at + 8 + length]
            at += 12 + length
        assert len(zlib.decompress(idat)) == height * (width + 1), path.name
