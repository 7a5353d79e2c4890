"""`pip install .` builds the C extension into a working wheel; a missing compiler says so plainly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

BUILD_INPUTS = ["pyproject.toml", "setup.py", "README.md", "LICENSE", "cext", "firmware", "hw"]


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean copy of the build inputs, so building never writes into the checkout."""
    dest = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info", "_dsp.c", "build")
    for name in BUILD_INPUTS:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    return dest


def pip_wheel(src: Path, out: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-w", str(out),
         str(src)],
        check=False, capture_output=True, text=True, env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.fixture(scope="module")
def wheel(source_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = pip_wheel(source_copy, out)
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("tipring-*.whl")
    return built


def test_wheel_holds_the_extension_and_package_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("tipring/_dsp") and n.endswith(".so") for n in names), names
    for needed in ("tipring/media/dsp.py", "tipring/hal/api.py", "tipring/web/templates/status.html",
                   "tipring/cli.py"):
        assert needed in names
    assert not any(n.startswith("tests/") for n in names), "tests must not ship in the image"
    assert any(n.endswith(".data/data/share/tipring/hw/boards/sim.toml") for n in names), names


def test_installed_wheel_encodes_without_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True, timeout=120,
    )
    probe = (
        "import tipring.media.dsp as d, tipring;"
        "out = bytearray(2); d.encode(d.Law.ULAW, b'\\x00\\x00\\xff\\x7f', out);"
        "print(tipring.__file__); print(out.hex())"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], check=False, cwd=tmp_path, capture_output=True, text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(target)},
    )
    assert result.returncode == 0, result.stderr
    where, codes = result.stdout.split()
    assert where.startswith(str(target))
    assert codes == "ff80"  # mu-law of 0 and of full scale positive


def test_missing_compiler_gives_a_clear_error(source_copy: Path, tmp_path: Path) -> None:
    result = pip_wheel(source_copy, tmp_path, env={"CC": "/nonexistent/bin/cc"})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "TipRing needs a C compiler" in output
    assert "apt-get install build-essential" in output


def test_missing_python_headers_give_a_clear_error(tmp_path: Path) -> None:
    # Point sysconfig's include directory at an empty folder, as on a machine without python3-dev.
    probe = (
        "import sysconfig, runpy; real = sysconfig.get_paths;"
        f"sysconfig.get_paths = lambda *a, **k: {{**real(*a, **k), 'include': {str(tmp_path)!r}}};"
        f"runpy.run_path({str(ROOT / 'cext' / 'build_dsp.py')!r})"
    )
    env = {k: v for k, v in os.environ.items() if k != "_PYTHON_SYSCONFIGDATA_NAME"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env=env, timeout=60, check=False)
    assert result.returncode != 0
    assert "TipRing needs the Python" in result.stderr and "headers" in result.stderr
    assert str(tmp_path / "Python.h") in result.stderr
