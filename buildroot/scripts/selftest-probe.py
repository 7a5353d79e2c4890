#!/usr/bin/env python3
"""Facts about an installed TipRing that must not depend on the CPU.

arm64-selftest.sh runs this on the build host and, under qemu-user, in the
Debian arm64 root it installed the firmware wheel into, then compares the
"same" part of the two reports: the C DSP core must give bit-identical G.711
and the same DTMF digits on both (char signedness, endianness and ABI slips
show up here), every module of the package must import, and every core
runtime requirement of the distribution must be installed. The "platform"
part says where it ran: the machine, the CPU the _dsp extension was built
for, and what of the "hw" extra the system lacks (Debian's gpiozero is older
than the image's). Prints one JSON object. Needs only the firmware and
packaging (which building it needs too).
"""

import array
import hashlib
import importlib
import importlib.metadata
import json
import pkgutil
import platform
import struct
import sys

import tipring
from tipring import _dsp
from tipring.media import dsp

ELF_MACHINES = {3: "i386", 40: "arm", 62: "x86_64", 183: "aarch64"}
DIGITS = "1234567890*#ABCD"


def elf_machine(path):
    """The CPU an ELF file was built for, from its header."""
    with open(path, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF":
        return "not ELF"
    order = "<" if head[5] == 1 else ">"
    (machine,) = struct.unpack(order + "H", head[18:20])
    return ELF_MACHINES.get(machine, str(machine))


def g711():
    """SHA-256 of every 16-bit sample encoded and every code decoded."""
    pcm = array.array("h", range(-32768, 32768))
    codes = bytes(range(256))
    digests = {}
    for law in dsp.Law:
        out = bytearray(len(pcm))
        dsp.encode(law, pcm, out)
        digests[f"{law.name.lower()}_encode"] = hashlib.sha256(out).hexdigest()
        linear = array.array("h", bytes(2 * len(codes)))
        dsp.decode(law, codes, linear)
        digests[f"{law.name.lower()}_decode"] = hashlib.sha256(
            linear.tobytes()).hexdigest()
    return digests


def dtmf():
    """Digits the detector hears in the tone generator's DTMF."""
    generator = dsp.ToneGenerator()
    generator.start(dsp.dtmf_segments(DIGITS), repeat_from=None)
    detector = dsp.DtmfDetector()
    frame = array.array("h", bytes(2 * dsp.FRAME))
    heard = []
    for _ in range(10 * len(DIGITS) + 10):  # 140 ms a digit: 7 frames
        generator.generate(frame)
        heard += [e.digit for e in detector.feed(frame)
                  if e.kind is dsp.ToneEventKind.DIGIT_START]
    return "".join(heard)


def modules():
    """Every module of the package, imported; the names that failed."""
    names, failed = [], []
    for info in pkgutil.walk_packages(tipring.__path__, "tipring."):
        if info.name.endswith(".__main__"):
            continue  # running it is `python -m tipring`
        names.append(info.name)
        try:
            importlib.import_module(info.name)
        except Exception as exc:  # report every failure, not just the first
            failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
    return len(names), failed


def requirements(extra):
    """Requirements of the distribution (core, or one extra's own) missing
    or too old."""
    from packaging.requirements import Requirement  # pypa build needs it too

    problems = []
    for spec in importlib.metadata.requires("tipring") or []:
        req = Requirement(spec)
        core = req.marker is None or req.marker.evaluate({"extra": ""})
        if extra is None:
            wanted = core
        else:
            wanted = not core and req.marker.evaluate({"extra": extra})
        if not wanted:
            continue
        try:
            have = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{req}: not installed")
            continue
        if not req.specifier.contains(have, prereleases=True):
            problems.append(f"{req}: {have} is installed")
    return problems


def main():
    count, failed = modules()
    report = {
        "platform": {
            "machine": platform.machine(),
            "python": platform.python_version(),
            "dsp_built_for": elf_machine(_dsp.__file__),
            # Hardware drivers import these lazily; the image has its own.
            "hw_requirements_unmet": requirements("hw"),
        },
        "same": {
            "version": tipring.__version__,
            "dsp_abi": dsp.lib.tr_dsp_abi_version(),
            **g711(),
            "dtmf": dtmf(),
            "modules": count,
            "modules_failed": failed,
            "requirements_unmet": requirements(None),
        },
    }
    json.dump(report, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
