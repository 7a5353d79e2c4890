#!/usr/bin/env bash
# Load every TipRing defconfig into a real Buildroot and fail if Kconfig
# silently dropped or changed a symbol it asks for.
#
# Usage: buildroot/validate.sh BUILDROOT_DIR [DEFCONFIG...]
#   BUILDROOT_DIR  a Buildroot checkout (never part of this repository)
#   DEFCONFIG      e.g. tipring_rpi4_defconfig; default: every configs/*_defconfig
#
# Why: Kconfig drops a symbol whose dependencies are unmet without an error
# (an aarch64 image asking for a BR2_arm-only package just loses it), so a
# defconfig can look right and build an image without the firmware's
# libraries. For each defconfig, in a temporary output folder:
#   1. make BR2_EXTERNAL=<this tree> O=<tmp> <defconfig>: every symbol the
#      defconfig sets (and every "is not set") must have that value in .config,
#      and Kconfig must not warn about unmet dependencies of a select;
#   2. make savedefconfig (into <tmp>, never over configs/): counts the
#      symbols the defconfig states that savedefconfig would leave out
#      (defaults, or forced by a select: kept on purpose, they document
#      intent; reported, not failed);
#   3. make show-info: every package the defconfig turns on, and every package
#      python-tipring selects, is in the build; python-tipring's version is
#      the one in firmware/tipring/__init__.py; the versions Buildroot builds
#      meet pyproject.toml's requirements (and the hw extra's).
# The comparisons are in scripts/compare-defconfig.py.
# Exit status: 0 all good, 1 a check failed (each failure names the symbol or
# package), 2 bad usage. tests/test_buildroot_validate.py runs this script when
# TIPRING_BUILDROOT_DIR is set, so there is one implementation of the check.
set -euo pipefail

usage() { echo "usage: $0 BUILDROOT_DIR [DEFCONFIG...]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
BR=$(cd "$1" 2>/dev/null && pwd) || { echo "validate: no folder $1" >&2; exit 2; }
shift
if [[ ! -f ${BR}/Makefile || ! -f ${BR}/Config.in || ! -d ${BR}/package ]]; then
	echo "validate: ${BR} is not a Buildroot checkout" >&2
	exit 2
fi
EXT=$(cd "$(dirname "$0")" && pwd)
if [[ $# -eq 0 ]]; then
	for path in "${EXT}"/configs/*_defconfig; do
		set -- "$@" "$(basename "${path}")"
	done
fi
for name in "$@"; do
	[[ -f ${EXT}/configs/${name} ]] || { echo "validate: no defconfig ${EXT}/configs/${name}" >&2; exit 2; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tipring-validate.XXXXXX")
trap 'rm -rf "${WORK}"' EXIT
version=$(sed -n 's/^export BR2_VERSION := //p' "${BR}/Makefile")
echo "validate: Buildroot ${version:-?} at ${BR}; external tree ${EXT}"

failed=()
for name in "$@"; do
	out=${WORK}/${name%_defconfig}
	mkdir -p "${out}"
	if ! make -C "${BR}" BR2_EXTERNAL="${EXT}" O="${out}" "${name}" > "${out}/defconfig.log" 2>&1; then
		echo "${name}: FAIL: make ${name} failed:"
		tail -n 20 "${out}/defconfig.log" | sed 's/^/    /'
		failed+=("${name}")
		continue
	fi
	# One make run for both targets (each run parses every package, ~10 s);
	# show-info's JSON follows make's own messages on stdout.
	if ! make -s -C "${BR}" O="${out}" BR2_DEFCONFIG="${out}/saved_defconfig" \
		savedefconfig show-info > "${out}/show-info.out" 2> "${out}/show-info.err"; then
		echo "${name}: FAIL: make savedefconfig show-info failed:"
		tail -n 20 "${out}/show-info.err" | sed 's/^/    /'
		failed+=("${name}")
		continue
	fi
	if ! python3 "${EXT}/scripts/compare-defconfig.py" "${name}" "${EXT}" "${BR}" "${out}"; then
		failed+=("${name}")
	fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
	echo "validate: ${#failed[@]} of $# defconfigs FAILED: ${failed[*]}"
	exit 1
fi
echo "validate: all $# defconfigs keep every symbol they ask for"
