#!/usr/bin/env python3
"""Compare what a TipRing defconfig asks for with what Buildroot made of it.

Run by validate.sh (not on its own) after `make <defconfig>`, `savedefconfig`
and `show-info` in OUT. Arguments: DEFCONFIG_NAME EXTERNAL_TREE BUILDROOT OUT.
Prints one line per defconfig (or one line per problem) and exits 1 when a
symbol the defconfig asks for was dropped or changed, a select ignored unmet
dependencies, a package that should be in the build is not, or one is older
than pyproject.toml asks (checked when the build host's Python has tomllib).
Stdlib only, lines within flake8's defaults so Buildroot's check-package
passes it.
"""

import json
import re
import sys
from pathlib import Path

SET = re.compile(r"(BR2_\w+)=(.*)")
UNSET = re.compile(r"# (BR2_\w+) is not set")
UNMET = re.compile(r"unmet direct dependencies detected for (\w+)")


def symbols(path):
    """Symbol -> value of a defconfig or .config; None for "is not set"."""
    values = {}
    for line in path.read_text().splitlines():
        if m := SET.fullmatch(line.strip()):
            values[m[1]] = m[2]
        elif m := UNSET.fullmatch(line.strip()):
            values[m[1]] = None
    return values


def package_symbols(br, ext):
    """Kconfig symbol -> package name for every package of both trees."""
    found = {"BR2_LINUX_KERNEL": "linux"}
    tops = ((br / "package", "BR2_PACKAGE_"),
            (ext / "package", "BR2_PACKAGE_"),
            (br / "boot", "BR2_TARGET_"))
    for top, prefix in tops:
        for mk in top.rglob("*.mk"):
            if mk.parent.name != mk.stem:
                continue  # an include, not a package
            upper = mk.stem.upper().replace("-", "_")
            found[prefix + upper] = mk.stem
            found["BR2_PACKAGE_HOST_" + upper] = "host-" + mk.stem
    return found


def selected_by_tipring(ext, config):
    """Symbols python-tipring's Config.in selects, where option and `if` hold.

    Only the `select SYM [if SYM]` form the package uses is understood.
    """
    wanted, owner = [], None
    select = re.compile(r"\s*select\s+(BR2_\w+)(?:\s+if\s+(BR2_\w+))?")
    config_in = ext / "package/python-tipring/Config.in"
    for line in config_in.read_text().splitlines():
        if m := re.match(r"config\s+(BR2_\w+)", line):
            owner = m[1]
            continue
        m = select.match(line)
        holds = m and (not m[2] or config.get(m[2]) == "y")
        if holds and config.get(owner) == "y":
            wanted.append(m[1])
    return wanted


def version_key(text):
    """Release numbers of a version, to compare: "3.13.5" -> (3, 13, 5)."""
    return tuple(int(n) for n in re.findall(r"\d+", text.split("-")[0])[:4])


OPERATORS = {
    ">=": lambda have, want: have >= want,
    ">": lambda have, want: have > want,
    "<=": lambda have, want: have <= want,
    "<": lambda have, want: have < want,
    "==": lambda have, want: have == want,
    "!=": lambda have, want: have != want,
}


def requirements(ext, config):
    """pyproject.toml's runtime requirements the image must meet: the
    dependencies, and the hw extra when the hardware option is on."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11 on the build host
        return None
    pyproject = tomllib.loads((ext.parent / "pyproject.toml").read_text())
    project = pyproject["project"]
    wanted = list(project["dependencies"])
    if config.get("BR2_PACKAGE_PYTHON_TIPRING_HARDWARE") == "y":
        wanted += project.get("optional-dependencies", {}).get("hw", [])
    return wanted


def requirement_met(spec, info):
    """A problem when no package of the build meets `spec`, else None.

    Buildroot names a Python distribution python-NAME, without a leading
    "py" (pyserial: python-serial), and this tree adds -aarch64 variants.
    """
    m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(.*)", spec.split(";")[0])
    name, specifier = m[1].lower().replace("_", "-"), m[2]
    stems = [name, name.removeprefix("py")]
    candidates = [f"python-{s}{tail}"
                  for s in stems for tail in ("", "-aarch64")]
    pkg = next((c for c in candidates if c in info), None)
    if pkg is None:
        return f"{spec}: required by pyproject.toml, no package in the build"
    have = info[pkg].get("version", "")
    for clause in filter(None, (c.strip() for c in specifier.split(","))):
        op, want = re.match(r"(>=|<=|==|!=|>|<)\s*(\S+)", clause).groups()
        if not OPERATORS[op](version_key(have), version_key(want)):
            return f"{spec}: the build has {pkg} {have}"
    return None


def show_info(path):
    """show-info's JSON, after whatever make printed before it."""
    lines = path.read_text().splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("{")]
    if not starts:
        raise ValueError(f"{path}: no JSON object in make show-info's output")
    return json.loads("".join(lines[starts[0]:]))


def kept(asked, config, log):
    """Problems: symbols dropped or changed, selects of unmet symbols."""
    problems = [f"{sym}: selected although its dependencies are unmet"
                for sym in sorted(set(UNMET.findall(log)))]
    for sym, value in asked.items():
        have = config.get(sym)
        if have != value:
            shown = "dropped" if have is None else f"is {have}"
            wanted = "not set" if value is None else value
            problems.append(f"{sym}: asked {wanted}, {shown}")
    return problems


def built(asked, config, info, br, ext):
    """Problems: packages turned on but absent from show-info, the
    firmware's version, its requirements' versions."""
    problems = []
    packages = package_symbols(br, ext)
    on = [s for s, v in asked.items() if v == "y"]
    for sym in on + selected_by_tipring(ext, config):
        pkg = packages.get(sym)
        if pkg and pkg not in info:
            problems.append(f"{sym}: on, but show-info has no package {pkg}")
    init = (ext.parent / "firmware/tipring/__init__.py").read_text()
    version = re.search(r'^__version__ = "([^"]+)"$', init, re.M)
    version = version[1] if version else None
    tipring = info.get("python-tipring", {}).get("version")
    if tipring != version:
        problems.append(f"python-tipring: show-info has version {tipring}, "
                        f"firmware/tipring/__init__.py says {version}")
    for spec in requirements(ext, config) or []:
        if problem := requirement_met(spec, info):
            problems.append(problem)
    return problems


def main(name, ext, br, out):
    asked = symbols(ext / "configs" / name)
    config = symbols(out / ".config")
    saved = symbols(out / "saved_defconfig")
    info = show_info(out / "show-info.out")
    problems = kept(asked, config, (out / "defconfig.log").read_text())
    problems += built(asked, config, info, br, ext)
    if problems:
        print(f"{name}: FAIL")
        for problem in problems:
            print(f"    {problem}")
        return 1
    defaults = [s for s in asked if s not in saved]
    versions = {p: info.get(p, {}).get("version")
                for p in ("python-tipring", "python3")}
    wanted = requirements(ext, config)
    met = (f"{len(wanted)} requirements met" if wanted is not None
           else "requirements not checked (no tomllib)")
    print(f"{name}: OK: {len(asked)} symbols kept; savedefconfig "
          f"{len(saved)} lines ({len(defaults)} stated though implied); "
          f"show-info {len(info)} packages, python-tipring "
          f"{versions['python-tipring']}, python3 {versions['python3']}; "
          f"{met}")
    return 0


if __name__ == "__main__":
    name, ext, br, out = sys.argv[1:5]
    try:
        sys.exit(main(name, Path(ext), Path(br), Path(out)))
    except (OSError, ValueError, KeyError) as exc:  # a file missing or odd
        print(f"{name}: FAIL\n    cannot compare: {type(exc).__name__}: {exc}")
        sys.exit(1)
