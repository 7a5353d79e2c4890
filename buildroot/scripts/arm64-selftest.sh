#!/usr/bin/env bash
# Build the TipRing wheel on and for 64-bit ARM, install it into a Debian arm64
# root and run the firmware's self-test there, under qemu-user.
#
# Usage: buildroot/scripts/arm64-selftest.sh        (as root; minutes)
#
# Why: the image runs the firmware on ARM, with its C DSP core compiled for
# it; a Buildroot build takes an hour. This takes the same steps as
# Buildroot's python-tipring package in a few minutes: the source as
# python-tipring.mk copies it (its rsync exclusions), the wheel built with
# pypa build without isolation, installed with installer; then
#   - tipring --version (the version firmware/tipring/__init__.py says),
#   - tipring config check on a good and a bad sample configuration (the same
#     verdicts, word for word, as on the build host),
#   - selftest-probe.py: tipring._dsp is an aarch64 ELF and gives bit-identical
#     G.711 and the same DTMF digits as on the build host, every module
#     imports, every runtime requirement is installed.
#
# Needs: root (debootstrap, chroot), debootstrap, qemu-user-static with
# binfmt_misc (Debian: apt-get install debootstrap qemu-user-static
# binfmt-support; this script enables qemu-aarch64 with update-binfmts if it
# is off), a Debian mirror, and the repository's .venv (bash .ci/setup test)
# for the host side of the comparison.
#
# Environment:
#   TIPRING_ARM64_ROOT     the Debian root, made on first use and kept
#                          (default /var/tmp/tipring-arm64-$SUITE); delete it
#                          to start afresh
#   TIPRING_DEBIAN_SUITE   default trixie
#   TIPRING_DEBIAN_MIRROR  default http://deb.debian.org/debian
#   TIPRING_HOST_PYTHON    the build host's Python with TipRing installed
#                          (default .venv/bin/python of this repository)
#   TIPRING_ARM64_KEEP=1   keep the work folder (source, wheel, logs) in the
#                          root's /tmp instead of removing it
# Exit status 0 when every check passed; the last line says which failed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "${HERE}/../.." && pwd)
SUITE=${TIPRING_DEBIAN_SUITE:-trixie}
MIRROR=${TIPRING_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOTFS=${TIPRING_ARM64_ROOT:-/var/tmp/tipring-arm64-${SUITE}}
HOST_PYTHON=${TIPRING_HOST_PYTHON:-${REPO}/.venv/bin/python}
# Debian's names for the runtime dependencies (lgpio is not in Debian: the
# image builds it, the firmware imports it lazily), then what building the
# wheel takes. python3-ply is listed because debootstrap does not resolve
# virtual packages (pycparser depends on python3-ply-lex-3.10, which
# python3-ply provides).
PACKAGES=(python3 python3-cffi python3-aiohttp python3-jinja2 python3-serial
	python3-dnspython python3-pylibsrtp python3-gpiozero python3-spidev
	python3-alsaaudio python3-ply
	gcc libc6-dev python3-dev libffi-dev python3-build python3-installer
	python3-setuptools python3-wheel python3-packaging)

say() { echo "arm64-selftest: $*"; }
die() { echo "arm64-selftest: FAIL: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap and chroot need it)"
command -v debootstrap > /dev/null || die "debootstrap is missing: apt-get install debootstrap"
[[ -x ${HOST_PYTHON} ]] || die "no ${HOST_PYTHON}: run bash .ci/setup test, or set TIPRING_HOST_PYTHON"
"${HOST_PYTHON}" -c "import tipring._dsp" 2> /dev/null ||
	die "${HOST_PYTHON} cannot import tipring._dsp: run bash .ci/setup test"

# -- qemu-user for aarch64 binaries, through binfmt_misc ------------------------------
binfmt=/proc/sys/fs/binfmt_misc
if ! grep -qx enabled "${binfmt}/qemu-aarch64" 2> /dev/null; then
	command -v update-binfmts > /dev/null ||
		die "qemu-aarch64 is not registered in ${binfmt}: apt-get install qemu-user-static binfmt-support"
	[[ -e ${binfmt}/register ]] || mount -t binfmt_misc binfmt_misc "${binfmt}" ||
		die "cannot mount ${binfmt} (a container without it cannot run arm64 binaries)"
	update-binfmts --enable qemu-aarch64 || die "update-binfmts --enable qemu-aarch64 failed"
fi
# F (fix binary): the kernel holds the interpreter open, so it works in the chroot.
grep -q "^flags: .*F" "${binfmt}/qemu-aarch64" ||
	die "qemu-aarch64 is registered without the F flag; use Debian's qemu-user-static"

# -- the Debian arm64 root, made once -------------------------------------------------
stamp=${ROOTFS}/.tipring-selftest-root
wanted="${SUITE} ${MIRROR} ${PACKAGES[*]}"
if [[ ! -f ${stamp} || $(cat "${stamp}") != "${wanted}" ]]; then
	[[ ! -e ${ROOTFS} || -f ${stamp} || -z $(ls -A "${ROOTFS}") ]] ||
		die "${ROOTFS} exists and was not made by this script; remove it or set TIPRING_ARM64_ROOT"
	rm -rf "${ROOTFS:?}"
	say "making the Debian ${SUITE} arm64 root in ${ROOTFS} from ${MIRROR} (once; minutes)"
	include=$(IFS=,; echo "${PACKAGES[*]}")
	if ! debootstrap --arch=arm64 --variant=minbase --include="${include}" \
		"${SUITE}" "${ROOTFS}" "${MIRROR}" > "${ROOTFS}.log" 2>&1; then
		tail -n 15 "${ROOTFS}.log" >&2
		die "debootstrap failed (whole log: ${ROOTFS}.log)"
	fi
	echo "${wanted}" > "${stamp}"
fi
say "root ${ROOTFS}: $(chroot "${ROOTFS}" /usr/bin/uname -m), $(chroot "${ROOTFS}" /usr/bin/python3 --version)"

# -- a work folder inside the root, removed at the end --------------------------------
work=$(mktemp -d "${ROOTFS}/tmp/tipring-selftest.XXXXXX")
if [[ ${TIPRING_ARM64_KEEP:-0} == 1 ]]; then
	trap 'say "kept the work folder ${work}"' EXIT
else
	trap 'rm -rf "${work}"' EXIT
fi
inside=/tmp/$(basename "${work}")
run() {  # run a command in the root, in the work folder, with a clean environment
	chroot "${ROOTFS}" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin \
		HOME="${inside}" LANG=C.UTF-8 TMPDIR="${inside}" PYTHONDONTWRITEBYTECODE=1 \
		/bin/sh -c "cd ${inside} && $1"
}

# The source, as Buildroot copies the local site: python-tipring.mk's rsync
# exclusions (a leading / anchors a pattern at the top) and the VCS folders.
mapfile -t excludes < <(sed -n '/^PYTHON_TIPRING_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS/,/[^\\]$/p' \
	"${REPO}/buildroot/package/python-tipring/python-tipring.mk" |
	grep -o -- "--exclude=[^ ]*" | sed "s/^--exclude=//; s/'//g")
[[ ${#excludes[@]} -gt 5 ]] || die "no rsync exclusions found in python-tipring.mk"
anchored=() floating=(--exclude=.git --exclude=.svn --exclude=.hg)
for pattern in "${excludes[@]}"; do
	if [[ ${pattern} == /* ]]; then anchored+=("--exclude=.${pattern}"); else floating+=("--exclude=${pattern}"); fi
done
mkdir "${work}/src"
tar -C "${REPO}" --anchored "${anchored[@]}" --no-anchored "${floating[@]}" -cf - . |
	tar -C "${work}/src" -xf -
[[ ! -e ${work}/src/tests && ! -e ${work}/src/.venv ]] || die "the exclusions let tests/ or .venv/ through"

say "building the wheel in the root (pypa build, no isolation; compiles tipring._dsp under qemu)"
if ! run "python3 -m build --wheel --no-isolation --outdir dist src" > "${work}/build.log" 2>&1; then
	tail -n 30 "${work}/build.log" >&2
	die "building the wheel failed"
fi
wheels=("${work}"/dist/tipring-*.whl)
[[ ${#wheels[@]} -eq 1 && -f ${wheels[0]} ]] || die "expected one wheel in dist/, got: ${wheels[*]}"
wheel=$(basename "${wheels[0]}")
[[ ${wheel} == *-linux_aarch64.whl ]] || die "the wheel ${wheel} is not for linux_aarch64"
say "built ${wheel}"

# Installed like Buildroot does (python -m installer --prefix=/usr --destdir),
# into a staging folder so the kept root stays clean.
run "python3 -m installer --prefix=/usr --destdir=stage dist/${wheel}" > "${work}/install.log" 2>&1 ||
	{ cat "${work}/install.log" >&2; die "installing the wheel failed"; }
site=$(cd "${work}/stage" && find . -path '*-packages/tipring/__init__.py' | sed 's|/tipring/__init__.py$||; s|^\.||')
[[ -n ${site} ]] || die "the wheel installed no tipring package"
# Debian's Python installs under /usr/local when asked for /usr (Buildroot's
# under /usr): the prefix is what comes before lib/.
prefix=${site%%/lib/*}
# The board profiles, in <prefix>/share, where hal/profile.py looks.
[[ -f ${work}/stage${prefix}/share/tipring/hw/boards/sim.toml ]] ||
	die "the wheel put no board profiles in ${prefix}/share/tipring/hw/boards"
target() {  # run a command with the installed firmware
	run "PYTHONPATH=${inside}/stage${site} PATH=${inside}/stage${prefix}/bin:\$PATH $1"
}

# -- the self-test --------------------------------------------------------------------
failures=()
expected="TipRing $(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "${REPO}/firmware/tipring/__init__.py")"
version=$(target "tipring --version" 2>&1) || true
say "tipring --version: ${version}"
[[ ${version} == "${expected}" ]] || failures+=("tipring --version said '${version}', not '${expected}'")

cat > "${work}/good.toml" <<'TOML'
schema_version = 1

[device]
name = "hall"
region = "DE"
timezone = "Europe/Berlin"

[[accounts]]
id = "home"
user = "4930123"
password = "sample-only"
domain = "sip.example.de"

[[lines]]
account = "home"

[network]
mode = "static"
address = "192.168.1.20/24"
gateway = "192.168.1.1"
TOML
sed -e 's/"DE"/"XX"/' -e 's/"192.168.1.1"/"10.9.9.9"/' "${work}/good.toml" > "${work}/bad.toml"
for sample in good bad; do
	status=0
	got=$(target "tipring config check ${sample}.toml" 2>&1) || status=$?
	host_status=0
	host=$(cd "${work}" && "${HOST_PYTHON}" -m tipring config check "${sample}.toml" 2>&1) || host_status=$?
	say "tipring config check ${sample}.toml: exit ${status}: ${got//$'\n'/ | }"
	want=$([[ ${sample} == good ]] && echo 0 || echo 1)
	[[ ${status} -eq ${want} ]] || failures+=("config check ${sample}.toml exited ${status}, not ${want}")
	[[ ${got} == "${host}" && ${status} -eq ${host_status} ]] ||
		failures+=("config check ${sample}.toml differs from the build host's: ${host}")
done

cp "${HERE}/selftest-probe.py" "${work}/"
target "python3 selftest-probe.py" > "${work}/arm64.json" 2> "${work}/probe.err" ||
	{ cat "${work}/probe.err" >&2; failures+=("selftest-probe.py failed in the arm64 root"); }
(cd "${work}" && "${HOST_PYTHON}" selftest-probe.py) > "${work}/host.json"
say "probe in the arm64 root:"
cat "${work}/arm64.json"
if ! "${HOST_PYTHON}" - "${work}/arm64.json" "${work}/host.json" <<'PY'; then
import json
import sys

arm64, host = (json.load(open(p)) for p in sys.argv[1:3])
problems = []
where = arm64["platform"]
if where["machine"] != "aarch64" or where["dsp_built_for"] != "aarch64":
    problems.append(f"not an aarch64 run: {where}")
for key in sorted(set(arm64["same"]) | set(host["same"])):
    if arm64["same"].get(key) != host["same"].get(key):
        problems.append(f"{key}: arm64 {arm64['same'].get(key)!r}, "
                        f"host {host['same'].get(key)!r}")
for key in ("modules_failed", "requirements_unmet"):
    problems += [f"{key}: {item}" for item in arm64["same"][key]]
for problem in problems:
    print(f"arm64-selftest: {problem}")
sys.exit(1 if problems else 0)
PY
	failures+=("the arm64 probe differs from the build host's (above)")
fi

if [[ ${#failures[@]} -gt 0 ]]; then
	printf 'arm64-selftest: %s\n' "${failures[@]}"
	die "${#failures[@]} check(s) failed"
fi
say "OK: ${wheel} installs and runs on arm64 (Debian ${SUITE}, qemu-user)"
