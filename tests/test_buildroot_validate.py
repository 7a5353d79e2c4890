"""buildroot/validate.sh and Buildroot's own linter, check-package, on the external tree.

validate.sh loads each defconfig into a real Buildroot and fails when Kconfig dropped a symbol
the defconfig asks for; its comparison step (buildroot/scripts/compare-defconfig.py) is checked
here on Buildroot-shaped outputs, so it runs in CI without the Buildroot source. With a
Buildroot checkout at $TIPRING_BUILDROOT_DIR the script itself runs on every defconfig (and on
a broken copy, which it must reject), and utils/check-package runs on every file of the tree.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "buildroot"
VALIDATE = EXT / "validate.sh"
COMPARE = EXT / "scripts" / "compare-defconfig.py"
DEFCONFIGS = sorted(p.name for p in (EXT / "configs").glob("tipring_*_defconfig"))
BUILDROOT = os.environ.get("TIPRING_BUILDROOT_DIR", "")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REQUIREMENTS = len(PROJECT["dependencies"]) + len(PROJECT["optional-dependencies"]["hw"])
VERSION = re.search(r'^__version__ = "([^"]+)"$',
                    (ROOT / "firmware/tipring/__init__.py").read_text(), re.M)[1]

needs_buildroot = pytest.mark.skipif(
    not (BUILDROOT and (Path(BUILDROOT) / "Makefile").is_file()),
    reason="set TIPRING_BUILDROOT_DIR to a Buildroot checkout to run Buildroot itself",
)

# Packages of the fake Buildroot below (a Buildroot tree is package/<name>/<name>.mk); every
# other BR2_PACKAGE_* symbol of the defconfig is then an option, as in the real tree.
FAKE_PACKAGES = ["python3", "python-cffi", "python-aiohttp", "python-jinja2", "python-serial",
                 "python-dnspython", "python-spidev", "python-alsaaudio", "python-gpiozero",
                 "avahi", "dropbear", "rauc", "systemd", "wpa_supplicant", "e2fsprogs",
                 "uboot-tools", "genimage", "dtc"]


# What Buildroot 2026.08-rc1 builds of the firmware's requirements.
BUILDROOT_VERSIONS = {"python-cffi": "2.0.0", "python-aiohttp": "3.13.5", "python-jinja2": "3.1.6",
                      "python-serial": "3.5", "python-dnspython": "2.8.0", "python-pylibsrtp": "1.0.0",
                      "python-gpiozero": "2.0.1", "python-spidev": "3.8", "python-alsaaudio": "0.11.0"}


def compare(out: Path, br: Path, name: str = "tipring_rpi4_defconfig") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(COMPARE), name, str(EXT), str(br), str(out)],
                          capture_output=True, text=True, check=False, timeout=60)


def fake_run(tmp: Path, name: str = "tipring_rpi4_defconfig") -> tuple[Path, Path, dict]:
    """What `make <defconfig>`, `savedefconfig` and `show-info` leave in O= when all is well:
    .config has every asked symbol plus what Kconfig adds, show-info lists every package."""
    br = tmp / "br"
    for pkg in FAKE_PACKAGES:
        (br / "package" / pkg).mkdir(parents=True)
        (br / "package" / pkg / f"{pkg}.mk").write_text("")
        (br / "package" / pkg / "pkg-extra.mk").write_text("")  # an include, not a package
    (br / "boot/uboot").mkdir(parents=True)
    (br / "boot/uboot/uboot.mk").write_text("")
    out = tmp / "out"
    out.mkdir()
    asked = (EXT / "configs" / name).read_text()
    (out / ".config").write_text("#\n# Buildroot configuration\n#\nBR2_HAVE_DOT_CONFIG=y\n" + asked
                                 + "BR2_PACKAGE_PYTHON_CFFI=y\nBR2_PACKAGE_PYTHON_AIOHTTP=y\n")
    (out / "saved_defconfig").write_text("".join(
        line + "\n" for line in asked.splitlines() if "TIPRING_HARDWARE" not in line))
    (out / "defconfig.log").write_text("#\n# configuration written to .config\n#\n")
    info = {name: {"version": "1.0"} for pkg in FAKE_PACKAGES for name in (pkg, f"host-{pkg}")}
    info.update({p.name: {"version": "1"} for p in (EXT / "package").iterdir() if p.is_dir()})
    info.update({pkg: {"version": version} for pkg, version in BUILDROOT_VERSIONS.items()})
    info.update({"uboot": {"version": "2026.07"}, "linux": {"version": "6.12"},
                 "python3": {"version": "3.14.7"},
                 "python-tipring": {"version": VERSION}})
    write_info(out, info)
    return out, br, info


def write_info(out: Path, info: dict) -> None:
    import json

    # make prints this before show-info's JSON when it writes O=/Makefile first
    (out / "show-info.out").write_text(f"  GEN     {out}/Makefile\n" + json.dumps(info, indent=1))


# -- the comparison, on Buildroot-shaped outputs -------------------------------------------------

def test_compare_accepts_a_defconfig_kept_whole_and_counts_what_it_saw(tmp_path: Path):
    out, br, info = fake_run(tmp_path)
    result = compare(out, br)
    assert result.returncode == 0, result.stdout + result.stderr
    asked = len(re.findall(r"^(?:BR2_\w+=|# BR2_\w+ is not set)",
                           (EXT / "configs/tipring_rpi4_defconfig").read_text(), re.M))
    assert result.stdout == (
        f"tipring_rpi4_defconfig: OK: {asked} symbols kept; savedefconfig {asked - 1} lines "
        f"(1 stated though implied); show-info {len(info)} packages, "
        f"python-tipring {VERSION}, python3 3.14.7; {REQUIREMENTS} requirements met\n")


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda c: c.replace("BR2_PACKAGE_PYTHON_TIPRING_SRTP=y\n", ""),
     "BR2_PACKAGE_PYTHON_TIPRING_SRTP: asked y, dropped"),
    (lambda c: c.replace('BR2_PACKAGE_PYTHON_TIPRING_BOARD="sim"', 'BR2_PACKAGE_PYTHON_TIPRING_BOARD=""'),
     'BR2_PACKAGE_PYTHON_TIPRING_BOARD: asked "sim", is ""'),
    (lambda c: c.replace("# BR2_TARGET_ENABLE_ROOT_LOGIN is not set", "BR2_TARGET_ENABLE_ROOT_LOGIN=y"),
     "BR2_TARGET_ENABLE_ROOT_LOGIN: asked not set, is y"),
], ids=["dropped", "changed", "turned-on"])
def test_compare_names_every_symbol_kconfig_dropped_or_changed(tmp_path: Path, edit, problem):
    out, br, _ = fake_run(tmp_path)
    (out / ".config").write_text(edit((out / ".config").read_text()))
    result = compare(out, br)
    assert result.returncode == 1
    assert result.stdout == f"tipring_rpi4_defconfig: FAIL\n    {problem}\n"


def test_compare_refuses_a_select_whose_dependencies_are_unmet(tmp_path: Path):
    out, br, _ = fake_run(tmp_path)
    (out / "defconfig.log").write_text(
        "\nWARNING: unmet direct dependencies detected for BR2_PACKAGE_PYTHON_GPIOZERO\n"
        "  Depends on [n]: BR2_arm [=n]\n  Selected by [y]:\n"
        "  - BR2_PACKAGE_PYTHON_TIPRING_HARDWARE [=y] && BR2_PACKAGE_PYTHON_TIPRING [=y]\n"
        "#\n# configuration written to .config\n#\n")
    result = compare(out, br)
    assert result.returncode == 1
    assert "BR2_PACKAGE_PYTHON_GPIOZERO: selected although its dependencies are unmet" in result.stdout


def test_compare_wants_every_package_tipring_selects_in_the_build(tmp_path: Path):
    out, br, info = fake_run(tmp_path)
    del info["python-serial"]  # selected by python-tipring, on in .config, but not built
    del info["rauc"]  # asked by the defconfig itself
    write_info(out, info)
    result = compare(out, br)
    assert result.returncode == 1
    assert "BR2_PACKAGE_PYTHON_SERIAL: on, but show-info has no package python-serial" in result.stdout
    assert "BR2_PACKAGE_RAUC: on, but show-info has no package rauc" in result.stdout


def test_compare_follows_the_select_conditions_of_the_architecture(tmp_path: Path):
    """The Pi 4 image is BR2_arm: Buildroot's gpiozero is wanted, the aarch64 one is not."""
    out, br, info = fake_run(tmp_path)
    del info["python-gpiozero-aarch64"]
    write_info(out, info)
    assert compare(out, br).returncode == 0
    del info["python-gpiozero"]
    write_info(out, info)
    result = compare(out, br)
    assert "BR2_PACKAGE_PYTHON_GPIOZERO: on, but show-info has no package python-gpiozero" in result.stdout


def test_compare_checks_the_image_carries_this_firmware_version(tmp_path: Path):
    out, br, info = fake_run(tmp_path)
    info["python-tipring"]["version"] = ""  # the .mk's sed found no __version__
    write_info(out, info)
    result = compare(out, br)
    assert result.returncode == 1
    assert f"python-tipring: show-info has version , firmware/tipring/__init__.py says {VERSION}" \
        in result.stdout


def test_compare_wants_the_versions_pyproject_asks_for(tmp_path: Path, monkeypatch):
    """pyproject.toml's lower bounds, against the versions Buildroot builds (show-info)."""
    out, br, info = fake_run(tmp_path)
    info["python-aiohttp"]["version"] = "3.8.6"  # pyproject asks for a newer one
    del info["python-dnspython"]
    write_info(out, info)
    result = compare(out, br)
    assert result.returncode == 1
    problems = result.stdout.splitlines()[1:]
    assert "    aiohttp>=3.9: the build has python-aiohttp 3.8.6" in problems
    assert "    dnspython>=2.4: required by pyproject.toml, no package in the build" in problems
    # pyserial is python-serial, pyalsaaudio python-alsaaudio: found under Buildroot's names.
    assert not [p for p in problems if "serial" in p or "alsa" in p]


def test_compare_says_what_it_could_not_read(tmp_path: Path):
    out, br, _ = fake_run(tmp_path)
    (out / "show-info.out").write_text("make: *** No rule to make target 'show-info'.\n")
    result = compare(out, br)
    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout == (f"tipring_rpi4_defconfig: FAIL\n    cannot compare: ValueError: "
                             f"{out}/show-info.out: no JSON object in make show-info's output\n")
    (out / ".config").unlink()
    result = compare(out, br)
    assert (result.returncode, result.stderr) == (1, "")
    assert "cannot compare: FileNotFoundError" in result.stdout and ".config" in result.stdout


# -- validate.sh's own arguments -----------------------------------------------------------------

def run_validate(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(VALIDATE), *args], capture_output=True, text=True,
                          check=False, timeout=timeout)


def test_validate_needs_a_buildroot_checkout(tmp_path: Path):
    assert run_validate().returncode == 2
    result = run_validate(str(tmp_path))
    assert result.returncode == 2 and f"{tmp_path} is not a Buildroot checkout" in result.stderr
    result = run_validate(str(tmp_path / "missing"))
    assert result.returncode == 2 and "no folder" in result.stderr


def test_validate_refuses_an_unknown_defconfig(tmp_path: Path):
    for name in ("Makefile", "Config.in"):
        (tmp_path / name).write_text("")
    (tmp_path / "package").mkdir()
    result = run_validate(str(tmp_path), "tipring_rpi9_defconfig")
    assert result.returncode == 2 and "no defconfig" in result.stderr and "rpi9" in result.stderr


def test_validate_is_executable_and_every_defconfig_is_known():
    assert os.access(VALIDATE, os.X_OK)
    assert DEFCONFIGS == ["tipring_rpi3_defconfig", "tipring_rpi4_defconfig", "tipring_rpi5_defconfig"]


# -- with the Buildroot source -------------------------------------------------------------------

@pytest.mark.slow
@needs_buildroot
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", DEFCONFIGS)
def test_validate_passes_every_defconfig(name: str):
    """Kconfig drops a symbol whose dependencies are unmet without a word; validate.sh loads
    the defconfig into the real Buildroot and compares."""
    result = run_validate(BUILDROOT, name, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{name}: OK: " in result.stdout
    assert f"python-tipring {VERSION}" in result.stdout
    assert "validate: all 1 defconfigs keep every symbol they ask for" in result.stdout


@pytest.mark.slow
@needs_buildroot
@pytest.mark.timeout(900)
def test_validate_rejects_a_defconfig_kconfig_would_cut_down(tmp_path: Path):
    """A copy of the tree whose Pi 5 (aarch64) defconfig asks for Buildroot's BR2_arm-only
    gpiozero, and whose python-tipring selects a BR2_arm-only library."""
    repo = tmp_path / "repo"
    shutil.copytree(EXT, repo / "buildroot", symlinks=True)
    (repo / "firmware/tipring").mkdir(parents=True)
    shutil.copy(ROOT / "firmware/tipring/__init__.py", repo / "firmware/tipring/")
    shutil.copy(ROOT / "pyproject.toml", repo)
    defconfig = repo / "buildroot/configs/tipring_rpi5_defconfig"
    defconfig.write_text(defconfig.read_text() + "BR2_PACKAGE_PYTHON_GPIOZERO=y\n")
    config_in = repo / "buildroot/package/python-tipring/Config.in"
    config_in.write_text(config_in.read_text().replace(
        "\tselect BR2_PACKAGE_PYTHON_LGPIO", "\tselect BR2_PACKAGE_BCM2835\n\tselect BR2_PACKAGE_PYTHON_LGPIO"))
    result = subprocess.run(["bash", str(repo / "buildroot/validate.sh"), BUILDROOT,
                             "tipring_rpi5_defconfig"], capture_output=True, text=True,
                            check=False, timeout=900)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "tipring_rpi5_defconfig: FAIL" in result.stdout
    assert "BR2_PACKAGE_PYTHON_GPIOZERO: asked y, dropped" in result.stdout
    assert "BR2_PACKAGE_BCM2835: selected although its dependencies are unmet" in result.stdout
    assert "validate: 1 of 1 defconfigs FAILED: tipring_rpi5_defconfig" in result.stdout


# -- Buildroot's check-package ----------------------------------------------------------------------

def check_package_python() -> str:
    """An interpreter that has what utils/check-package imports (python-magic, flake8)."""
    probe = "import magic, flake8.main.application"
    for python in dict.fromkeys([sys.executable, "/usr/bin/python3", shutil.which("python3")]):
        if python and subprocess.run([python, "-c", probe], capture_output=True,
                                     check=False).returncode == 0:
            return python
    pytest.fail("utils/check-package needs python-magic and flake8 (Debian: apt-get install "
                "python3-magic python3-flake8, or bash .ci/setup test)")


def check_package(tree: Path) -> subprocess.CompletedProcess:
    if shutil.which("shellcheck") is None:
        pytest.fail("utils/check-package runs shellcheck on scripts: apt-get install shellcheck")
    files = sorted(str(p.relative_to(tree.parent)) for p in tree.rglob("*") if p.is_file())
    return subprocess.run([check_package_python(), str(Path(BUILDROOT) / "utils/check-package"),
                           "--br2-external", *files], cwd=tree.parent, capture_output=True,
                          text=True, check=False, timeout=300)


@pytest.mark.slow
@needs_buildroot
def test_check_package_is_clean_on_the_whole_tree():
    result = check_package(EXT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 warnings generated" in result.stderr
    lines = int(re.search(r"(\d+) lines processed", result.stderr)[1])
    assert lines > 1000  # the .mk, Config.in, .hash, defconfig and script files were read


@pytest.mark.slow
@needs_buildroot
def test_check_package_sees_what_it_must_refuse(tmp_path: Path):
    """The clean run above means something only if the same run catches faults in the tree."""
    tree = tmp_path / "buildroot"
    shutil.copytree(EXT, tree, symlinks=True)
    mk = tree / "package/python-lgpio/python-lgpio.mk"
    mk.write_text(mk.read_text() + "PYTHON_LGPIO_EXTRA = 1 \n")
    script = tree / "board/tipring/post-image.sh"
    script.write_text(script.read_text() + "ls $BIN\n")
    apply = tree / "board/tipring/rootfs-overlay/usr/libexec/tipring/network-apply"
    apply.write_text(apply.read_text() + "LEVELS = " + repr(list(range(30))) + "\n")
    result = check_package(tree)
    assert result.returncode == 1
    assert "buildroot/package/python-lgpio/python-lgpio.mk:" in result.stdout
    assert "buildroot/board/tipring/post-image.sh:0: run 'shellcheck'" in result.stdout
    assert "network-apply:0: run 'flake8'" in result.stdout
    assert "3 warnings generated" in result.stderr
