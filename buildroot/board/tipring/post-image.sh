#!/usr/bin/env bash
# TipRing post-image: device-tree overlays, config.txt, U-Boot boot script,
# SD-card image (genimage) and the signed RAUC update bundle.
# Arguments: BINARIES_DIR BOARD (rpi3|rpi4|rpi5, from BR2_ROOTFS_POST_SCRIPT_ARGS).
set -euo pipefail

BIN=$1
BOARD=${2:?board name (rpi3, rpi4, rpi5) expected in BR2_ROOTFS_POST_SCRIPT_ARGS}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "${HERE}/../../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=scripts/keys.sh
. "${HERE}/scripts/keys.sh"
export PATH="${HOST_DIR}/bin:${HOST_DIR}/sbin:${PATH}"

SLOT_SIZE=512M
FW=${BIN}/rpi-firmware
profile=$(tipring_config BR2_PACKAGE_PYTHON_TIPRING_BOARD)
profile=${profile:-sim}
compatible=$(tipring_config BR2_TIPRING_RAUC_COMPATIBLE)
compatible=${compatible:-tipring-${BOARD}}
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "${REPO}/firmware/tipring/__init__.py")
build=$(date -u +%Y%m%dT%H%M%SZ)

case ${BOARD} in
	rpi3|rpi4) kernel=zImage; bootcmd=bootz; arch=arm ;;
	rpi5) kernel=Image; bootcmd=booti; arch=arm64 ;;
	*) echo "post-image: unknown board ${BOARD}" >&2; exit 1 ;;
esac

# 1. Overlays: compile hw/overlays/*.dts; enable those the board profile lists.
mkdir -p "${FW}/overlays"
if compgen -G "${REPO}/hw/overlays/*.dts" >/dev/null; then
	for dts in "${REPO}"/hw/overlays/*.dts; do
		name=$(basename "${dts}" .dts)
		cpp -nostdinc -undef -x assembler-with-cpp -P \
			-I "${REPO}/hw/overlays" "${dts}" \
			| dtc -@ -q -I dts -O dtb -o "${FW}/overlays/${name}.dtbo" -
	done
else
	echo ">>> TipRing: hw/overlays has no .dts files; no overlays to build"
fi

overlays=$(python3 - "${REPO}/hw/boards/${profile}.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    names = tomllib.load(f).get("overlays", [])
if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
    sys.exit(f"{sys.argv[1]}: overlays must be a list of overlay names")
print("\n".join(names))
PY
)

# The board's config.txt is rewritten on every run, so overlays never pile up.
config_src=${HERE}/${BOARD}/config.txt
{
	cat "${config_src}"
	echo
	echo "# Overlays of board profile '${profile}' (hw/boards/${profile}.toml)"
	for name in ${overlays}; do
		if [[ ! -e ${FW}/overlays/${name}.dtbo ]]; then
			echo "post-image: board profile ${profile} needs overlay ${name}, which is neither in hw/overlays nor in the firmware's overlays" >&2
			exit 1
		fi
		echo "dtoverlay=${name}"
	done
} > "${FW}/config.txt"

# 2. U-Boot script (A/B slot choice with boot counting).
sed -e "s/@CONSOLE@/ttyAMA0/" -e "s/@KERNEL@/${kernel}/" -e "s/@BOOTCMD@/${bootcmd}/" \
	"${HERE}/boot.cmd.in" > "${BIN}/boot.cmd"
mkimage -A "${arch}" -O linux -T script -C none -n "TipRing A/B boot" \
	-d "${BIN}/boot.cmd" "${BIN}/boot.scr"

# 3. SD-card image.
files=()
for f in "${BIN}"/*.dtb "${FW}"/* "${BIN}/u-boot.bin" "${BIN}/boot.scr"; do
	[[ -e ${f} ]] && files+=("${f#"${BIN}"/}")
done
boot_files=$(printf '\t\t\t"%s",\n' "${files[@]}")
genimage_cfg=${BIN}/genimage.cfg
awk -v files="${boot_files}" -v slot="${SLOT_SIZE}" \
	'{ gsub(/@SLOT_SIZE@/, slot) } /@BOOT_FILES@/ { print files; next } { print }' \
	"${HERE}/genimage.cfg.in" > "${genimage_cfg}"

rootpath=$(mktemp -d)
trap 'rm -rf "${rootpath}"' EXIT
rm -rf "${BUILD_DIR}/genimage.tmp"
genimage --rootpath "${rootpath}" --tmppath "${BUILD_DIR}/genimage.tmp" \
	--inputpath "${BIN}" --outputpath "${BIN}" --config "${genimage_cfg}"

# 4. Signed RAUC bundle with the root file system.
tipring_resolve_keys
bundle_dir=${BUILD_DIR}/tipring-bundle
rm -rf "${bundle_dir}"
mkdir -p "${bundle_dir}"
cp "${BIN}/rootfs.ext4" "${bundle_dir}/rootfs.ext4"
sed -e "s/@COMPATIBLE@/${compatible}/" -e "s/@VERSION@/${version}/" \
	-e "s/@BOARD@/${BOARD}/" -e "s/@BUILD@/${build}/" \
	"${HERE}/rauc/manifest.raucm.in" > "${bundle_dir}/manifest.raucm"
bundle=${BIN}/tipring-${BOARD}-${version}.raucb
rm -f "${bundle}"
rauc bundle --cert="${RAUC_CERT}" --key="${RAUC_KEY}" --keyring="${RAUC_KEYRING}" \
	"${bundle_dir}" "${bundle}"

echo ">>> TipRing: ${BIN}/sdcard.img (flash it) and ${bundle} (upload it on the web page)"
