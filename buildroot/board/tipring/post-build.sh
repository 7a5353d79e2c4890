#!/usr/bin/env bash
# TipRing post-build: read-only root with state on /data, RAUC configuration
# and keyring, services enabled. Arguments: TARGET_DIR BOARD (rpi3|rpi4|rpi5,
# from BR2_ROOTFS_POST_SCRIPT_ARGS).
set -euo pipefail

TARGET=$1
BOARD=${2:?board name (rpi3, rpi4, rpi5) expected in BR2_ROOTFS_POST_SCRIPT_ARGS}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=scripts/keys.sh
. "${HERE}/scripts/keys.sh"

# Mount points on the read-only root.
mkdir -p "${TARGET}/data" "${TARGET}/boot/firmware"
[[ -e ${TARGET}/etc/machine-id ]] || : > "${TARGET}/etc/machine-id"

# State that must survive reboots points at the data partition. Until /data
# is mounted the links dangle and the defaults apply (no SSH, no Wi-Fi). The
# network settings are generated into /run/systemd/network by network-apply.
relink() { rm -rf "${TARGET:?}/$2"; mkdir -p "$(dirname "${TARGET}/$2")"; ln -s "$1" "${TARGET}/$2"; }
relink /data/network/wpa_supplicant etc/wpa_supplicant
relink /data/ssh etc/dropbear
relink /data/ssh/root root/.ssh

# Build identity: mark-good uses it to tell a fresh update from a known-good build.
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "${HERE}/../../../firmware/tipring/__init__.py")
echo "${version:-0} ${BOARD} $(date -u +%Y%m%dT%H%M%SZ)" > "${TARGET}/etc/tipring-build-id"

# RAUC: system.conf for this board family and the keyring bundles must match.
if [[ -x ${TARGET}/usr/bin/rauc ]]; then
	compatible=$(tipring_config BR2_TIPRING_RAUC_COMPATIBLE)
	compatible=${compatible:-tipring-${BOARD}}
	mkdir -p "${TARGET}/etc/rauc"
	sed "s/@COMPATIBLE@/${compatible}/" "${HERE}/rauc/system.conf.in" > "${TARGET}/etc/rauc/system.conf"
	tipring_resolve_keys
	install -m 0644 "${RAUC_KEYRING}" "${TARGET}/etc/rauc/keyring.pem"
fi

# Services. Buildroot applies presets before overlays and post-build scripts
# run, so enable ours here.
enable() {
	local unit=$1 target=$2
	if [[ -e ${TARGET}/usr/lib/systemd/system/${unit} ]]; then
		mkdir -p "${TARGET}/etc/systemd/system/${target}.wants"
		ln -sf "/usr/lib/systemd/system/${unit}" "${TARGET}/etc/systemd/system/${target}.wants/${unit}"
	fi
}
enable data.mount local-fs.target
enable tipring-data-layout.service local-fs.target
enable var-log-journal.mount local-fs.target
enable tipring-identity.service sysinit.target
enable tipring.service multi-user.target
enable tipring-mark-good.service multi-user.target
enable tipring-network.service multi-user.target
enable systemd-networkd.service multi-user.target
enable systemd-timesyncd.service sysinit.target
enable avahi-daemon.service multi-user.target
enable dropbear.service multi-user.target
if [[ -e ${TARGET}/usr/lib/systemd/system/wpa_supplicant@.service ]]; then
	mkdir -p "${TARGET}/etc/systemd/system/multi-user.target.wants"
	ln -sf /usr/lib/systemd/system/wpa_supplicant@.service \
		"${TARGET}/etc/systemd/system/multi-user.target.wants/wpa_supplicant@wlan0.service"
fi
