"""The BR2_EXTERNAL tree in buildroot/, checked statically (CI has no Buildroot source).

What Kconfig would silently get wrong is checked here by reading the files: every runtime
dependency of the distribution is selected under its Buildroot name, each defconfig picks an
architecture on which those selects are allowed, the RAUC slots are the partitions genimage
writes, the hash files are well formed. Loading the defconfigs into a real Buildroot
(buildroot/validate.sh) and Buildroot's check-package are in test_buildroot_validate.py.
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "buildroot"
BOARD = EXT / "board" / "tipring"
OVERLAY = BOARD / "rootfs-overlay"
UNITS = OVERLAY / "usr" / "lib" / "systemd" / "system"
PACKAGES = sorted(p for p in (EXT / "package").iterdir() if p.is_dir())
DEFCONFIGS = {p.name.removeprefix("tipring_").removesuffix("_defconfig"): p
              for p in sorted((EXT / "configs").glob("tipring_*_defconfig"))}

# pyproject name -> Buildroot symbol(s). A dependency missing here fails the test below, so a new
# runtime dependency cannot be added to pyproject.toml without being added to the image.
BUILDROOT_NAME = {
    "cffi": "BR2_PACKAGE_PYTHON_CFFI",
    "aiohttp": "BR2_PACKAGE_PYTHON_AIOHTTP",
    "jinja2": "BR2_PACKAGE_PYTHON_JINJA2",
    "pyserial": "BR2_PACKAGE_PYTHON_SERIAL",
    "dnspython": "BR2_PACKAGE_PYTHON_DNSPYTHON",
    "spidev": "BR2_PACKAGE_PYTHON_SPIDEV",
    "pyalsaaudio": "BR2_PACKAGE_PYTHON_ALSAAUDIO",
    "pylibsrtp": "BR2_PACKAGE_PYTHON_PYLIBSRTP",
    "lgpio": "BR2_PACKAGE_PYTHON_LGPIO",
    # Buildroot's python-gpiozero is BR2_arm only; ours covers aarch64 (Pi 5).
    "gpiozero": ("BR2_PACKAGE_PYTHON_GPIOZERO if BR2_arm",
                 "BR2_PACKAGE_PYTHON_GPIOZERO_AARCH64 if BR2_aarch64"),
}


# Packages whose licence file has no hash from an authoritative source yet: they must not list
# it (legal-info refuses an unhashed licence file) and must install it in the image instead
# (test_prompts_package_* below).
LICENCE_FILES_PENDING = {"tipring-prompts"}


def _requirement_name(spec: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", spec, maxsplit=1)[0].lower().replace("_", "-")


def read_defconfig(path: Path) -> dict[str, str | None]:
    """Symbol -> value; None for `# SYM is not set`."""
    values: dict[str, str | None] = {}
    for line in path.read_text().splitlines():
        if m := re.fullmatch(r"(BR2_\w+)=(.*)", line.strip()):
            values[m[1]] = m[2]
        elif m := re.fullmatch(r"# (BR2_\w+) is not set", line.strip()):
            values[m[1]] = None
    return values


def selects(config_in: Path) -> set[str]:
    """`select` lines of a Config.in, with their `if` condition kept ("SYM if COND")."""
    found = set()
    for line in config_in.read_text().splitlines():
        if m := re.match(r"\s*select\s+(BR2_\w+)(\s+if\s+([^#]+))?", line):
            found.add(m[1] + (f" if {m[3].strip()}" if m[3] else ""))
    return found


def defined_symbols() -> set[str]:
    found = set()
    for path in [EXT / "Config.in", *EXT.glob("package/*/Config.in")]:
        found |= set(re.findall(r"^(?:menu)?config\s+(BR2_\w+)", path.read_text(), re.M))
    return found


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


# -- the tree's skeleton ---------------------------------------------------------------------------

def test_external_desc_names_the_tree_tipring():
    fields = dict(line.split(":", 1) for line in (EXT / "external.desc").read_text().splitlines()
                  if line.strip())
    assert fields["name"].strip() == "TIPRING"
    assert re.fullmatch(r"[A-Za-z0-9_]+", fields["name"].strip())
    assert fields["desc"].strip()


def test_external_mk_includes_every_package():
    text = (EXT / "external.mk").read_text()
    assert "$(BR2_EXTERNAL_TIPRING_PATH)/package/*/*.mk" in text


def test_config_in_sources_every_package_and_only_existing_ones():
    sourced = re.findall(r'^source\s+"\$BR2_EXTERNAL_TIPRING_PATH/(.+)"', (EXT / "Config.in").read_text(), re.M)
    assert sorted(sourced) == sorted(f"package/{p.name}/Config.in" for p in PACKAGES)


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.name)
def test_package_layout_and_variable_prefix(pkg: Path):
    upper = pkg.name.upper().replace("-", "_")
    mk = (pkg / f"{pkg.name}.mk").read_text()
    assert (pkg / "Config.in").is_file() and (pkg / f"{pkg.name}.hash").is_file()
    python = pkg.name.startswith("python-")
    assert ("$(eval $(python-package))" if python else "$(eval $(generic-package))") in mk
    for var in re.findall(r"^([A-Z][A-Z0-9_]*)\s*[+:]?=", mk, re.M):
        assert var.startswith(upper + "_"), f"{pkg.name}.mk sets {var}, outside its {upper}_ prefix"
    config = (pkg / "Config.in").read_text()
    assert re.search(rf"^config BR2_PACKAGE_{upper}$", config, re.M)
    assert ("depends on BR2_PACKAGE_PYTHON3" in config) == python
    for line in config.splitlines():
        assert not line.startswith(" "), f"{pkg.name}/Config.in indents with spaces: {line!r}"


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.name)
def test_hash_files_are_well_formed_and_cover_source_and_licences(pkg: Path):
    lengths = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}
    hashed = set()
    for line in (pkg / f"{pkg.name}.hash").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, digest, name = line.split()
        assert kind in lengths, line
        assert re.fullmatch(rf"[0-9a-f]{{{lengths[kind]}}}", digest), line
        hashed.add(name)
    mk = (pkg / f"{pkg.name}.mk").read_text()
    upper = pkg.name.upper().replace("-", "_")
    version = re.search(rf"^{upper}_VERSION = (\S+)", mk, re.M)
    if source := re.search(rf"^{upper}_SOURCE = (\S+)", mk, re.M):
        assert version, f"{pkg.name}: _SOURCE without a literal _VERSION"
        assert source[1].replace(f"$({upper}_VERSION)", version[1]) in hashed
    licences = re.search(rf"^{upper}_LICENSE_FILES = (.+)$", mk, re.M)
    if pkg.name in LICENCE_FILES_PENDING:
        assert not licences, f"{pkg.name} lists licence files now: drop it from LICENCE_FILES_PENDING"
        return
    assert licences, f"{pkg.name}: no _LICENSE_FILES"
    for name in licences[1].split():
        assert name in hashed, f"{pkg.name}: licence file {name} has no hash"


def test_tipring_licence_hash_matches_the_repository_licence():
    import hashlib

    line = next(line for line in (EXT / "package/python-tipring/python-tipring.hash").read_text().splitlines()
                if line.endswith(" LICENSE"))
    assert line.split()[1] == hashlib.sha256((ROOT / "LICENSE").read_bytes()).hexdigest()


# -- python-tipring ------------------------------------------------------------------------------

def test_every_runtime_dependency_is_selected_under_its_buildroot_name():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = list(project["dependencies"]) + list(project.get("optional-dependencies", {}).get("hw", []))
    chosen = selects(EXT / "package/python-tipring/Config.in")
    for spec in runtime:
        name = _requirement_name(spec)
        assert name in BUILDROOT_NAME, f"{name} (pyproject.toml) has no Buildroot package in this test's map"
        wanted = BUILDROOT_NAME[name]
        for symbol in (wanted,) if isinstance(wanted, str) else wanted:
            assert symbol in chosen, f"python-tipring/Config.in does not select {symbol} for {name}"


def test_external_packages_cover_what_buildroot_lacks():
    assert "BR2_PACKAGE_PYTHON_PYLIBSRTP" in selects(EXT / "package/python-tipring/Config.in")
    srtp = selects(EXT / "package/python-pylibsrtp/Config.in")
    assert {"BR2_PACKAGE_LIBSRTP", "BR2_PACKAGE_OPENSSL", "BR2_PACKAGE_PYTHON_CFFI"} <= srtp
    assert "libsrtp" in (EXT / "package/python-pylibsrtp/python-pylibsrtp.mk").read_text()
    # gpiozero on the Pi 5 needs lgpio (the RP1 has no /dev/gpiomem backend); selected for all boards.
    assert "BR2_PACKAGE_PYTHON_LGPIO" in selects(EXT / "package/python-tipring/Config.in")
    aarch64 = (EXT / "package/python-gpiozero-aarch64/Config.in").read_text()
    assert "depends on BR2_aarch64" in aarch64  # never both gpiozero packages at once
    assert "select BR2_PACKAGE_PYTHON_COLORZERO" in aarch64


def test_python_tipring_builds_from_this_repository_with_its_build_system():
    mk = (EXT / "package/python-tipring/python-tipring.mk").read_text()
    assert "PYTHON_TIPRING_SITE_METHOD = local" in mk
    assert "PYTHON_TIPRING_SITE = $(realpath $(BR2_EXTERNAL_TIPRING_PATH)/..)" in mk
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    assert build["build-backend"] == "setuptools.build_meta"
    assert "PYTHON_TIPRING_SETUP_TYPE = setuptools" in mk
    deps = re.search(r"^PYTHON_TIPRING_DEPENDENCIES = (.+)$", mk, re.M)[1].split()
    host_names = {"cffi": "host-python-cffi", "wheel": "host-python-wheel"}
    for spec in build["requires"]:
        name = _requirement_name(spec)
        if name != "setuptools":  # brought in by SETUP_TYPE = setuptools
            assert host_names[name] in deps, f"build requirement {name} is not a host dependency"
    # The version comes from the package, like setuptools' dynamic version.
    assert "firmware/tipring/__init__.py" in mk
    assert re.search(r'^__version__ = "[^"]+"$', (ROOT / "firmware/tipring/__init__.py").read_text(), re.M)
    # Data files (board profiles) land under /usr/share/tipring, where hal/profile.py looks.
    assert "$(TARGET_DIR)/usr/share/tipring" in mk
    assert "share/tipring/hw/boards" in tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "tool"]["setuptools"]["data-files"]


def test_service_runs_the_firmware_on_port_80_with_restart():
    service = unit(EXT / "package/python-tipring/tipring.service")["Service"]
    assert service["Restart"] == "always"
    assert "--listen 0.0.0.0 --port 80" in service["ExecStart"]
    assert "--board ${TIPRING_BOARD}" in service["ExecStart"]
    assert "TIPRING_CONFIG=/data/tipring/config.toml" in (EXT / "package/python-tipring/tipring.service").read_text()
    assert "GPIOZERO_PIN_FACTORY=lgpio" in (EXT / "package/python-tipring/tipring.service").read_text()
    # The console, when the image has one: systemd splits the unbraced variable into words.
    assert service["ExecStart"].endswith(" $TIPRING_CONSOLE_ARGS")
    mk = (EXT / "package/python-tipring/python-tipring.mk").read_text()
    assert "TIPRING_CONSOLE_ARGS=%s" in mk and "--console /dev/$(PYTHON_TIPRING_CONSOLE)" in mk
    assert "ln -sf /dev/null $(TARGET_DIR)/etc/systemd/system/serial-getty@" in mk


# -- defconfigs ---------------------------------------------------------------------------------

def test_one_defconfig_per_board_family():
    assert set(DEFCONFIGS) == {"rpi3", "rpi4", "rpi5"}


@pytest.mark.parametrize("board", sorted(DEFCONFIGS))
def test_defconfig_architecture_allows_every_hardware_dependency(board: str):
    values = read_defconfig(DEFCONFIGS[board])
    arch = {"rpi3": "BR2_arm", "rpi4": "BR2_arm", "rpi5": "BR2_aarch64"}[board]
    assert values.get(arch) == "y"
    assert "BR2_aarch64" not in values if arch == "BR2_arm" else "BR2_arm" not in values
    kernel = {"rpi3": "bcm2709", "rpi4": "bcm2711", "rpi5": "bcm2712"}[board]
    assert values["BR2_LINUX_KERNEL_DEFCONFIG"] == f'"{kernel}"'
    assert values["BR2_PACKAGE_PYTHON_TIPRING"] == "y"
    assert values["BR2_PACKAGE_PYTHON_TIPRING_HARDWARE"] == "y"
    assert values["BR2_PACKAGE_PYTHON_TIPRING_SRTP"] == "y"
    # The hardware option's gpiozero select must resolve on this architecture.
    gpiozero = [s for s in selects(EXT / "package/python-tipring/Config.in") if "GPIOZERO" in s]
    assert any(s.endswith(f"if {arch}") for s in gpiozero)


def test_pi3_image_covers_3b_3bplus_and_zero_2_w():
    dts = read_defconfig(DEFCONFIGS["rpi3"])["BR2_LINUX_KERNEL_INTREE_DTS_NAME"]
    for name in ("bcm2710-rpi-3-b", "bcm2710-rpi-3-b-plus", "bcm2710-rpi-zero-2-w"):
        assert f"broadcom/{name}" in dts


@pytest.mark.parametrize("board", sorted(DEFCONFIGS))
def test_defconfig_system_choices(board: str):
    values = read_defconfig(DEFCONFIGS[board])
    expected = {
        "BR2_INIT_SYSTEMD": "y",
        "BR2_TARGET_ENABLE_ROOT_LOGIN": None,  # no root password login
        "BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW": None,  # read-only root
        "BR2_PACKAGE_SYSTEMD_NETWORKD": "y",
        "BR2_PACKAGE_SYSTEMD_TIMESYNCD": "y",
        "BR2_PACKAGE_AVAHI": "y",
        "BR2_PACKAGE_AVAHI_DAEMON": "y",
        "BR2_PACKAGE_DROPBEAR": "y",
        "BR2_PACKAGE_RAUC": "y",
        "BR2_PACKAGE_TIPRING_PROMPTS": "y",  # the *** voice menu's words
        "BR2_PACKAGE_UBOOT_TOOLS_FWPRINTENV": "y",
        "BR2_PACKAGE_E2FSPROGS_RESIZE2FS": "y",
        "BR2_PACKAGE_UTIL_LINUX_BINARIES": "y",  # sfdisk, blkid
        "BR2_PACKAGE_HOST_RAUC": "y",
        "BR2_PACKAGE_HOST_UBOOT_TOOLS": "y",
        "BR2_PACKAGE_HOST_GENIMAGE": "y",
        "BR2_PACKAGE_HOST_DTC": "y",
        "BR2_TARGET_UBOOT": "y",
        "BR2_LINUX_KERNEL_INSTALL_TARGET": "y",  # U-Boot loads the kernel from the root slot
        # The UART carries the management console, not a login prompt nobody can use.
        "BR2_TARGET_GENERIC_GETTY": None,
        "BR2_PACKAGE_PYTHON_TIPRING_CONSOLE": '"ttyAMA0"',
        "BR2_ROOTFS_POST_SCRIPT_ARGS": f'"{board}"',
        "BR2_TIPRING_RAUC_COMPATIBLE": f'"tipring-{board}"',
    }
    for symbol, value in expected.items():
        assert values.get(symbol, "<absent>") == value, f"{board}: {symbol}"
    assert "BR2_SYSTEM_DHCP" not in values  # networkd files come from the overlay, not Buildroot


@pytest.mark.parametrize("board", sorted(DEFCONFIGS))
def test_defconfig_paths_exist_and_own_symbols_are_defined(board: str):
    text = DEFCONFIGS[board].read_text()
    for rel in re.findall(r"\$\(BR2_EXTERNAL_TIPRING_PATH\)/([^\s\"]+)", text):
        assert (EXT / rel).exists(), f"{board}: {rel} does not exist"
    ours = defined_symbols()
    for symbol in read_defconfig(DEFCONFIGS[board]):
        if symbol.startswith(("BR2_TIPRING_", "BR2_PACKAGE_PYTHON_TIPRING", "BR2_PACKAGE_PYTHON_PYLIBSRTP",
                              "BR2_PACKAGE_PYTHON_LGPIO", "BR2_PACKAGE_PYTHON_GPIOZERO_AARCH64",
                              "BR2_PACKAGE_TIPRING_PROMPTS")):
            assert symbol in ours, f"{board}: {symbol} is not defined by the external tree"
    values = read_defconfig(DEFCONFIGS[board])
    profile = values["BR2_PACKAGE_PYTHON_TIPRING_BOARD"].strip('"')
    assert (ROOT / "hw/boards" / f"{profile}.toml").is_file()
    config_txt = values["BR2_PACKAGE_RPI_FIRMWARE_CONFIG_FILE"].strip('"')
    assert config_txt.endswith(f"board/tipring/{board}/config.txt")


@pytest.mark.parametrize("board", sorted(DEFCONFIGS))
def test_firmware_config_txt_boots_u_boot_with_the_uart_on(board: str):
    text = (BOARD / board / "config.txt").read_text()
    settings = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["kernel"] == "u-boot.bin"
    assert settings["enable_uart"] == "1"
    assert settings["arm_64bit"] == ("1" if board == "rpi5" else "0")


# -- RAUC, image layout, boot counting -----------------------------------------------------------

def genimage_partitions() -> list[tuple[str, dict[str, str]]]:
    text = (BOARD / "genimage.cfg.in").read_text()
    image = text[text.index("image sdcard.img"):]
    parts = []
    for name, body in re.findall(r"partition\s+([\w-]+)\s*\{(.*?)\}", image, re.S):
        parts.append((name, dict(re.findall(r"([\w-]+)\s*=\s*\"?([^\"\n]+?)\"?\s*$", body, re.M))))
    return parts


def test_rauc_slots_are_the_genimage_root_partitions():
    parts = genimage_partitions()
    assert [name for name, _ in parts] == ["boot", "rootfs-a", "rootfs-b"]
    assert parts[0][1]["partition-type"] == "0xC"
    assert parts[1][1]["image"] == "rootfs.ext4"
    assert parts[1][1]["size"] == parts[2][1]["size"]  # A and B interchangeable
    rauc = configparser.ConfigParser(interpolation=None)
    rauc.read_string((BOARD / "rauc/system.conf.in").read_text())
    assert rauc["system"]["bootloader"] == "uboot"
    assert rauc["keyring"]["path"] == "/etc/rauc/keyring.pem"
    slots = {s: rauc[s] for s in rauc.sections() if s.startswith("slot.")}
    # MBR partitions are numbered in genimage's order: p1 boot, p2 = A, p3 = B.
    assert {s: (v["device"], v["bootname"], v["type"]) for s, v in slots.items()} == {
        "slot.rootfs.0": ("/dev/mmcblk0p2", "A", "ext4"),
        "slot.rootfs.1": ("/dev/mmcblk0p3", "B", "ext4"),
    }
    assert rauc["system"]["data-directory"].startswith("/data/")


def test_boot_script_boots_the_slot_rauc_names():
    script = (BOARD / "boot.cmd.in").read_text()
    assert re.search(r'"A".*?setenv tipring_part 2', script, re.S)
    assert re.search(r'"B".*?setenv tipring_part 3', script, re.S)
    for var in ("BOOT_ORDER", "BOOT_A_LEFT", "BOOT_B_LEFT"):  # RAUC's uboot backend variables
        assert var in script
    assert "saveenv" in script and "rauc.slot=${tipring_slot}" in script
    # every save goes through tipring_save, which keeps the firmware's fdt_addr out of uboot.env
    assert script.count("saveenv") == 1 and "setenv fdt_addr; saveenv" in script
    assert script.count("run tipring_save") == 2
    assert "root=/dev/mmcblk0p${tipring_part}" in script and " ro " in script
    assert "${fdt_addr}" in script  # the firmware's DT, with config.txt's overlays
    env = (OVERLAY / "etc/fw_env.config").read_text()
    assert "/boot/firmware/uboot.env 0x0000 0x4000" in env
    assert 'CONFIG_ENV_FAT_FILE="uboot.env"' in (BOARD / "uboot.fragment").read_text()
    assert "CONFIG_ENV_SIZE=0x4000" in (BOARD / "uboot.fragment").read_text()
    fstab = (OVERLAY / "etc/fstab").read_text()
    assert re.search(r"^/dev/mmcblk0p1\s+/boot/firmware\s+vfat\s+rw", fstab, re.M)
    assert re.search(r"^/dev/root\s+/\s+\S+\s+ro", fstab, re.M)


def test_root_slots_fit_their_partitions():
    slot = re.search(r"^SLOT_SIZE=(\d+)M$", (BOARD / "post-image.sh").read_text(), re.M)
    assert slot
    for board, path in DEFCONFIGS.items():
        size = read_defconfig(path)["BR2_TARGET_ROOTFS_EXT2_SIZE"].strip('"')
        assert size.endswith("M") and int(size[:-1]) <= int(slot[1]), board


def test_data_partition_is_the_fourth_and_created_on_first_boot():
    mount = unit(UNITS / "data.mount")
    assert mount["Mount"]["What"] == "/dev/mmcblk0p4" and mount["Mount"]["Where"] == "/data"
    assert "tipring-data-partition.service" in mount["Unit"]["Requires"]
    script = (OVERLAY / "usr/libexec/tipring/data-partition").read_text()
    assert "PART=${DISK}p4" in script and "--append" in script and "resize2fs" in script
    assert len(genimage_partitions()) == 3  # so p4 is free for it
    for folder in ("/data/tipring", "/data/certs", "/data/log/journal", "/data/rauc", "/data/ssh"):
        assert folder in script


def test_mark_good_confirms_a_slot_only_when_the_firmware_answers():
    script = (OVERLAY / "usr/libexec/tipring/mark-good").read_text()
    assert "rauc status mark-good" in script and "/api/v1/status" in script
    assert "rauc status mark-bad" in script and "systemctl reboot" in script
    watchdog = unit(OVERLAY / "usr/lib/systemd/system.conf.d/tipring-watchdog.conf")
    assert watchdog["Manager"]["RuntimeWatchdogSec"]
    assert "CONFIG_BCM2835_WDT=y" in (BOARD / "linux.fragment").read_text()
    assert "panic=" in (BOARD / "boot.cmd.in").read_text()  # a kernel panic resets too


def test_no_key_material_in_the_tree():
    for path in EXT.rglob("*"):
        if path.is_file():
            assert path.suffix not in {".pem", ".key", ".crt", ".p12"}, path
            assert "PRIVATE KEY-----" not in path.read_text(errors="replace"), path


# -- system services -------------------------------------------------------------------------------

def test_ssh_is_off_until_the_web_page_enables_it():
    from tipring.runtime import ssh  # the firmware side switches exactly these

    dropin = unit(UNITS / "dropbear.service.d/tipring.conf")
    assert dropin["Unit"]["ConditionPathExists"] == f"{ssh.SSH_DIR}/{ssh.ENABLED_FLAG}"
    # after /data is mounted and its 0700 ssh folder laid out
    assert dropin["Unit"]["After"].split() == ["data.mount", "tipring-data-layout.service"]
    assert '"-s"' in (OVERLAY / "etc/default/dropbear").read_text()  # keys only
    shipped = UNITS / "dropbear.service.d/tipring.conf"
    assert Path("/", shipped.relative_to(OVERLAY)) == ssh.IMAGE_DROPIN  # the image's sign
    assert not (UNITS / "tipring-network.path").exists()  # the firmware applies changes live


def test_mdns_answers_as_tipring_local():
    avahi = unit(OVERLAY / "etc/avahi/avahi-daemon.conf")
    assert avahi["server"]["host-name"] == "tipring"


def test_every_enabled_unit_exists():
    script = (BOARD / "post-build.sh").read_text()
    from_buildroot = {"systemd-networkd.service", "systemd-timesyncd.service", "avahi-daemon.service",
                      "dropbear.service"}
    for name in re.findall(r"^enable (\S+) \S+$", script, re.M):
        assert name in from_buildroot or (UNITS / name).is_file() or (
            EXT / "package/python-tipring" / name).is_file(), name


@pytest.mark.parametrize("path", sorted(UNITS.glob("*.*")), ids=lambda p: p.name)
def test_units_parse(path: Path):
    if path.is_dir():
        return
    parsed = unit(path)
    assert "Unit" in parsed
    kind = path.suffix[1:].capitalize()
    assert kind in parsed, f"{path.name} has no [{kind}] section"


# -- scripts -------------------------------------------------------------------------------------------

SHELL_SCRIPTS = sorted([*BOARD.glob("*.sh"), *BOARD.glob("scripts/*.sh"),
                        *(p for p in (OVERLAY / "usr/libexec/tipring").iterdir()
                          if p.read_text().startswith("#!/bin/sh"))])


@pytest.mark.parametrize("path", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_parse(path: Path):
    shell = "sh" if path.read_text().startswith("#!/bin/sh") else "bash"
    result = subprocess.run([shell, "-n", str(path)], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_scripts_are_executable():
    for path in [*SHELL_SCRIPTS, OVERLAY / "usr/libexec/tipring/network-apply"]:
        if path.name != "keys.sh":  # sourced, not run
            assert os.access(path, os.X_OK), path


# -- tipring-prompts -------------------------------------------------------------------------

PROMPTS = EXT / "package" / "tipring-prompts"
DEBIAN_SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")


def run_prompts_mk(tmp_path: Path, target: str, source: Path | None = None) -> str:
    """Run one target of tipring-prompts.mk under a stub of Buildroot's make variables:
    `clips` prints TIPRING_PROMPTS_CLIPS, `install` runs the target install commands with
    $(@D) = `source`, the way Buildroot runs them in the package's build folder."""
    source = source or tmp_path / "build"
    stub = tmp_path / "Makefile"
    stub.write_text(
        f"INSTALL = install\nTARGET_DIR = {tmp_path / 'target'}\n"
        f"TIPRING_PROMPTS_PKGDIR = {PROMPTS}/\n"
        "define sep\n\n\nendef\n"
        f"include {PROMPTS / 'tipring-prompts.mk'}\n"
        "clips:\n\t@echo $(TIPRING_PROMPTS_CLIPS)\n"
        f"install: {source}/.stamp_target_installed\n"
        f"{source}/.stamp_target_installed:\n\t$(TIPRING_PROMPTS_INSTALL_TARGET_CMDS)\n"
    )
    result = subprocess.run(["make", "-s", "-f", str(stub), target], capture_output=True,
                            text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_prompts_package_installs_exactly_the_voice_menu_clips(tmp_path: Path):
    from tipring.phone.voicemenu import MENU_CLIPS

    clips = run_prompts_mk(tmp_path, "clips").split()
    assert len(clips) == len(set(clips))
    assert set(clips) == MENU_CLIPS


def test_prompts_package_puts_clips_licence_and_credits_where_the_firmware_looks(tmp_path: Path):
    """The install commands against a build folder laid out like the upstream tarball (made
    here from Debian's copy of the same clips, plus one the menu does not use)."""
    from tipring.phone.voicemenu import MENU_CLIPS
    from tipring.runtime.prompts import DEFAULT_ROOTS, PromptLibrary

    build = tmp_path / "build"
    for clip in [*MENU_CLIPS, "tt-weasels"]:
        (build / clip).parent.mkdir(parents=True, exist_ok=True)
        (build / f"{clip}.wav").write_bytes((DEBIAN_SOUNDS / f"{clip}.wav").read_bytes())
    (build / "LICENSE-asterisk-core-en-1.6.1").write_text("licence text\n")
    (build / "CREDITS-asterisk-core-en-1.6.1").write_text("credits text\n")
    run_prompts_mk(tmp_path, "install", build)

    installed = tmp_path / "target" / DEFAULT_ROOTS[0].relative_to("/")
    wavs = {p.relative_to(installed).with_suffix("").as_posix() for p in installed.rglob("*.wav")}
    assert wavs == MENU_CLIPS  # nothing the menu does not say
    for clip in MENU_CLIPS:
        assert (installed / f"{clip}.wav").read_bytes() == (DEBIAN_SOUNDS / f"{clip}.wav").read_bytes()
        assert (installed / f"{clip}.wav").stat().st_mode & 0o777 == 0o644
    assert (installed / "LICENSE").read_text() == "licence text\n"
    assert (installed / "CREDITS").read_text() == "credits text\n"
    assert (installed / "README").read_bytes() == (PROMPTS / "README").read_bytes()
    assert PromptLibrary([installed]).available


def test_prompts_package_credits_the_voice_and_names_the_licence():
    readme = " ".join((PROMPTS / "README").read_text().split())
    for words in ("Allison Smith", "Digium", "Attribution-ShareAlike 3.0",
                  "https://creativecommons.org/licenses/by-sa/3.0/", "asterisk-core-sounds-en-wav-1.6.1"):
        assert words in readme
    mk = (PROMPTS / "tipring-prompts.mk").read_text()
    assert "TIPRING_PROMPTS_LICENSE = CC-BY-SA-3.0" in mk
    assert "TIPRING_PROMPTS_STRIP_COMPONENTS = 0" in mk  # the tarball has no top folder
    help_text = " ".join((PROMPTS / "Config.in").read_text().split())
    assert "Allison Smith" in help_text and "CC-BY-SA 3.0" in help_text
