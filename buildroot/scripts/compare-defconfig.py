#!/usr/bin/env python3
"""Compare what a TipRing defconfig asks for with what Buildroot made of it.

Run by validate.sh (not on its own) after `make <defconfig>`, `savedefconfig`
and `show-info` in OUT. Arguments: DEFCONFIG_NAME EXTERNAL_TREE BUILDROOT OUT.
Prints one line per defconfig (or one line per problem) and exits 1 when a
symbol the defconfig asks for was dropped or changed, a select ignored unmet
dependencies, or a package that should be in the build is not. Stdlib only,
lines within flake8's defaults so Buildroot's check-package passes it.
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


def show_info(path):
    """show-info's JSON, after whatever make printed before it."""
    lines = path.read_text().splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.startswith("{"))
    return json.loads("".join(lines[first:]))


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
    """Problems: packages turned on but absent from show-info; version."""
    problems = []
    packages = package_symbols(br, ext)
    on = [s for s, v in asked.items() if v == "y"]
    for sym in on + selected_by_tipring(ext, config):
        pkg = packages.get(sym)
        if pkg and pkg not in info:
            problems.append(f"{sym}: on, but show-info has no package {pkg}")
    init = (ext.parent / "firmware/tipring/__init__.py").read_text()
    version = re.search(r'^__version__ = "([^"]+)"$', init, re.M)[1]
    tipring = info.get("python-tipring", {}).get("version")
    if tipring != version:
        problems.append(f"python-tipring: show-info has version {tipring}, "
                        f"firmware/tipring/__init__.py says {version}")
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
    print(f"{name}: OK: {len(asked)} symbols kept; savedefconfig "
          f"{len(saved)} lines ({len(defaults)} stated at their default); "
          f"show-info {len(info)} packages, python-tipring "
          f"{versions['python-tipring']}, python3 {versions['python3']}")
    return 0


if __name__ == "__main__":
    name, ext, br, out = sys.argv[1:5]
    sys.exit(main(name, Path(ext), Path(br), Path(out)))
