"""The firmware wheel built for and run on 64-bit ARM (Debian arm64 root, qemu-user).

buildroot/scripts/arm64-selftest.sh does the work: it builds the wheel the way the image's
python-tipring package does, installs it into a Debian arm64 root made with debootstrap and
runs `tipring --version`, `tipring config check` and a probe of the C DSP core there, comparing
with the build host. It takes minutes (longer the first time, when debootstrap runs), needs root
and qemu-user-static, so it runs only when TIPRING_ARM64_SELFTEST=1.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "buildroot/scripts/arm64-selftest.sh"
VERSION = re.search(r'^__version__ = "([^"]+)"$',
                    (ROOT / "firmware/tipring/__init__.py").read_text(), re.M)[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("TIPRING_ARM64_SELFTEST") != "1",
                       reason="opt-in (minutes, root, qemu-user): TIPRING_ARM64_SELFTEST=1"),
]


@pytest.mark.timeout(3600)
def test_wheel_built_for_arm64_runs_the_self_test_there():
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, check=False,
                            timeout=3600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("arm64-selftest: OK: tipring-") and "linux_aarch64.whl" in lines[-1]
    assert f"arm64-selftest: tipring --version: TipRing {VERSION}" in lines
    assert "arm64-selftest: tipring config check good.toml: exit 0: good.toml: ok" in lines
    bad = next(line for line in lines if "config check bad.toml" in line)
    assert "exit 1" in bad and "device.region" in bad and "network.gateway" in bad
    # The probe's report from the arm64 root, printed between its heading and the end.
    start = lines.index("arm64-selftest: probe in the arm64 root:") + 1
    end = next(i for i in range(start, len(lines)) if lines[i] == "}") + 1
    probe = json.loads("\n".join(lines[start:end]))
    assert probe["platform"]["machine"] == "aarch64"
    assert probe["platform"]["dsp_built_for"] == "aarch64"
    assert probe["same"]["dtmf"] == "1234567890*#ABCD"
    assert probe["same"]["modules_failed"] == [] and probe["same"]["requirements_unmet"] == []
    assert probe["same"]["version"] == VERSION
