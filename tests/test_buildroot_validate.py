"""buildroot/validate.sh, the check of the external tree against a Buildroot checkout, run
against a stand-in Buildroot (a `make` that loads defconfigs the way Kconfig does, optionally
dropping symbols, and a check-package that passes or warns): CI has no Buildroot, and the
script must say "FAIL" when Kconfig drops a symbol, not only "ok" when nothing is wrong.

The real run against Buildroot 2026.08-rc1-25-ge991fa0716 is recorded in buildroot/README.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VALIDATE = ROOT / "buildroot" / "validate.sh"
DEFCONFIGS = sorted(p.name for p in (ROOT / "buildroot" / "configs").glob("*_defconfig"))

# `make [-s] -C BR BR2_EXTERNAL=.. O=.. [BR2_DEFCONFIG=..] TARGET`, as far as validate.sh uses it.
FAKE_MAKE = '''
import json, os, re, sys
args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
target = [a for a in sys.argv[1:] if "=" not in a and not a.startswith("-")][-1]
out = args["O"]
if target.endswith("_defconfig"):
    ext = args["BR2_EXTERNAL"]
    os.makedirs(out, exist_ok=True)
    drop = set(os.environ.get("DROP", "").split())
    lines = [l for l in open(os.path.join(ext, "configs", target))
             if not (l.split("=")[0] in drop)]
    open(os.path.join(out, ".config"), "w").writelines(lines)
    open(os.path.join(out, "external"), "w").write(ext)
elif target == "savedefconfig":
    open(args["BR2_DEFCONFIG"], "w").write(open(os.path.join(out, ".config")).read())
elif target == "show-info":
    on = re.findall(r"^BR2_PACKAGE_(\\w+)=y$", open(os.path.join(out, ".config")).read(), re.M)
    print(json.dumps({n.lower().replace("_", "-"): {"version": "1.0"} for n in on}))
else:
    sys.exit(f"fake make: {target}?")
'''

FAKE_CHECK_PACKAGE = '''
import os, sys
print(f"{len(sys.argv) - 2} files")
if os.environ.get("WARN"):
    print(sys.argv[-1] + ":3: a warning", file=sys.stderr)
    print("1 warnings generated", file=sys.stderr)
    sys.exit(1)
print("0 warnings generated", file=sys.stderr)
'''


def _script(path: Path, body: str) -> None:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)


@pytest.fixture
def fake_buildroot(tmp_path: Path) -> Path:
    br = tmp_path / "buildroot"
    (br / "utils").mkdir(parents=True)
    (br / "Makefile").write_text("# stand-in\n")
    _script(br / "utils" / "check-package", FAKE_CHECK_PACKAGE)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir / "make", FAKE_MAKE)
    return br


def _validate(br: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = f"{br.parent / 'bin'}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(["bash", str(VALIDATE), str(br), *args], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "PATH": path, "PYTHON": sys.executable,
                               "TMPDIR": str(br.parent), **env})


def test_every_defconfig_passes_when_kconfig_keeps_everything(fake_buildroot: Path) -> None:
    result = _validate(fake_buildroot)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in DEFCONFIGS:
        for step in ("every symbol kept", "savedefconfig", "show-info"):
            assert f"ok   {name}: {step}" in result.stdout
    assert "python-tipring 1.0" in result.stdout
    assert "ok   check-package" in result.stdout
    assert result.stdout.rstrip().endswith("validate: all passed")
    assert not list(fake_buildroot.parent.glob("tipring-validate.*"))  # scratch folder removed


def test_a_dropped_symbol_fails_and_is_named(fake_buildroot: Path) -> None:
    result = _validate(fake_buildroot, "tipring_rpi3_defconfig",
                       DROP="BR2_PACKAGE_RAUC BR2_PACKAGE_PYTHON_TIPRING")
    assert result.returncode == 1
    assert "BR2_PACKAGE_RAUC: asked 'y', got 'absent'" in result.stdout
    assert "FAIL tipring_rpi3_defconfig: Kconfig dropped or changed" in result.stdout
    # and with python-tipring gone, show-info cannot list it
    assert "python-tipring: not enabled" in result.stdout
    assert "FAIL tipring_rpi3_defconfig: show-info" in result.stdout
    assert "tipring_rpi4" not in result.stdout  # only the defconfig asked for
    assert result.stdout.rstrip().endswith("validate: FAILED")


def test_check_package_warnings_fail_and_are_shown(fake_buildroot: Path) -> None:
    result = _validate(fake_buildroot, "tipring_rpi5_defconfig", WARN="1")
    assert result.returncode == 1
    assert "FAIL check-package" in result.stdout and ":3: a warning" in result.stdout


def test_refuses_what_is_not_a_buildroot_checkout(tmp_path: Path) -> None:
    result = _validate(tmp_path / "buildroot")
    assert result.returncode == 2 and "no folder" in result.stderr
    (tmp_path / "elsewhere").mkdir()
    result = _validate(tmp_path / "elsewhere")
    assert result.returncode == 2 and "not a Buildroot checkout" in result.stderr


def test_an_unknown_defconfig_name_fails(fake_buildroot: Path) -> None:
    result = _validate(fake_buildroot, "tipring_rpi9_defconfig")
    assert result.returncode == 1
    assert "FAIL tipring_rpi9_defconfig: no such file" in result.stdout


def test_validate_is_an_executable_script_that_parses() -> None:
    assert os.access(VALIDATE, os.X_OK)
    result = subprocess.run(["bash", "-n", str(VALIDATE)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
