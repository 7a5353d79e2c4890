#!/usr/bin/env bash
# Check this BR2_EXTERNAL tree against a Buildroot checkout, without building anything:
#   buildroot/validate.sh BUILDROOT_DIR [NAME_defconfig...]   (default: every configs/*_defconfig)
#
# For each defconfig: `make BR2_EXTERNAL=... NAME` into a scratch output folder, then fail if
# Kconfig dropped or changed any symbol the defconfig asks for (Kconfig does that without a
# word when a dependency is unmet); `make savedefconfig` (the configuration round-trips) and
# `make show-info` (every package of the tree is known to Buildroot's make, with its version).
# Then Buildroot's own linter, utils/check-package, on every file of the tree; it is run from
# the Buildroot folder so that Buildroot's flake8 settings apply, and needs python-magic,
# flake8 and shellcheck (Debian: python3-magic flake8 shellcheck).
# Prints one line per step; exits 1 if anything failed. Set KEEP=1 to keep the output folders.
set -euo pipefail

usage() { echo "usage: $0 BUILDROOT_DIR [NAME_defconfig...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
BR=$(cd "$1" 2>/dev/null && pwd) || { echo "validate: no folder $1" >&2; exit 2; }
shift
[ -f "$BR/Makefile" ] && [ -x "$BR/utils/check-package" ] ||
	{ echo "validate: $BR is not a Buildroot checkout" >&2; exit 2; }
EXT=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3}

if [ $# -eq 0 ]; then
	set -- "$EXT"/configs/*_defconfig
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tipring-validate.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
	echo "validate: output folders kept in $WORK"
else
	trap 'rm -rf "$WORK"' EXIT
fi
echo "validate: Buildroot $(git -C "$BR" describe --always --tags 2>/dev/null || echo "(not a git checkout)") at $BR"

failed=0
fail() { echo "FAIL $*"; failed=1; }

# Every symbol the defconfig sets (or says is not set) must read the same in .config.
compare() {
	"$PYTHON" - "$1" "$2" <<'EOF'
import re, sys

def symbols(path):
    found = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if m := re.fullmatch(r"(BR2_\w+)=(.*)", line):
            found[m[1]] = m[2]
        elif m := re.fullmatch(r"# (BR2_\w+) is not set", line):
            found[m[1]] = None
    return found

wanted, have = symbols(sys.argv[1]), symbols(sys.argv[2])
lost = [f"{k}: asked {v!r}, got {have.get(k, 'absent')!r}" for k, v in wanted.items()
        if have.get(k) != v and not (v is None and k not in have)]
for line in lost:
    print("  " + line)
sys.exit(1 if lost else 0)
EOF
}

# show-info's JSON must list python-tipring and every package of this tree the .config enables,
# each with a version (arch-only packages, e.g. python-gpiozero-aarch64, are off elsewhere).
known() {
	"$PYTHON" - "$1" "$2" "$EXT/package" <<'EOF'
import json, pathlib, re, sys

info = json.load(open(sys.argv[1], encoding="utf-8"))
on = set(re.findall(r"^(BR2_PACKAGE_\w+)=y$", open(sys.argv[2], encoding="utf-8").read(), re.M))
ours = sorted(p.name for p in pathlib.Path(sys.argv[3]).iterdir() if p.is_dir())
enabled = [p for p in ours if "BR2_PACKAGE_" + p.upper().replace("-", "_") in on]
problems = [f"{p}: enabled but not in show-info, or without a version"
            for p in enabled if p not in info or not info[p].get("version")]
if "python-tipring" not in enabled:
    problems.append("python-tipring: not enabled")
off = [p for p in ours if p not in enabled]
print(f"  {len(info)} packages; ours: "
      + ", ".join(f"{p} {info[p].get('version', '?')}" for p in enabled if p in info)
      + (f" (off here: {', '.join(off)})" if off else ""))
for problem in problems:
    print("  " + problem)
sys.exit(1 if problems else 0)
EOF
}

for defconfig in "$@"; do
	name=$(basename "$defconfig")
	[ -f "$EXT/configs/$name" ] || { fail "$name: no such file in $EXT/configs"; continue; }
	out="$WORK/${name%_defconfig}"
	log="$out.log"
	if ! make -C "$BR" BR2_EXTERNAL="$EXT" O="$out" "$name" >"$log" 2>&1; then
		fail "$name: make $name"; tail -n 20 "$log"; continue
	fi
	if compare "$EXT/configs/$name" "$out/.config"; then
		echo "ok   $name: every symbol kept ($(grep -c '^BR2_' "$EXT/configs/$name") set)"
	else
		fail "$name: Kconfig dropped or changed the symbols above"
	fi
	if make -C "$BR" O="$out" BR2_DEFCONFIG="$out/saved_defconfig" savedefconfig >>"$log" 2>&1 &&
		compare "$out/saved_defconfig" "$out/.config" >/dev/null; then
		echo "ok   $name: savedefconfig ($(grep -c '^BR2_' "$out/saved_defconfig") symbols)"
	else
		fail "$name: savedefconfig"; tail -n 20 "$log"
	fi
	if make -s -C "$BR" O="$out" show-info >"$out.json" 2>>"$log" &&
		known "$out.json" "$out/.config"; then
		echo "ok   $name: show-info"
	else
		fail "$name: show-info"; tail -n 20 "$log"
	fi
done

mapfile -t files < <(find "$EXT" -type f ! -name '*.md' ! -name README | sort)
if (cd "$BR" && "$PYTHON" utils/check-package -b "${files[@]}") >"$WORK/check-package.log" 2>&1; then
	echo "ok   check-package: $(tail -n 2 "$WORK/check-package.log" | tr '\n' ' ')"
else
	fail "check-package:"; cat "$WORK/check-package.log"
fi

if [ $failed = 0 ]; then echo "validate: all passed"; else echo "validate: FAILED"; fi
exit $failed
