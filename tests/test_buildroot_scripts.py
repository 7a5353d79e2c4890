"""The image's scripts, run for real outside Buildroot.

post-build.sh and post-image.sh run against fake target/images folders, with the host tools
Buildroot would build (mkimage, genimage, rauc, dtc) replaced by stubs that record their
arguments; network-apply renders systemd-networkd files into a temporary folder.
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "buildroot"
BOARD = EXT / "board" / "tipring"
OVERLAY = BOARD / "rootfs-overlay"

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")

STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
for a in "$@"; do [ "$a" = "-" ] && cat > /dev/null; done  # read stdin like the real tool
# create the file named by -o, or else the last argument, like the real tool would
out=""; prev=""
for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
[ -n "$out" ] || for a in "$@"; do out="$a"; done
case "$(basename "$0")" in
    genimage) touch "$BINARIES_DIR/sdcard.img" ;;
    *) [ -n "$out" ] && : > "$out" ;;
esac
"""


def _env(tmp: Path, config: str) -> dict[str, str]:
    (tmp / ".config").write_text(config)
    env = dict(os.environ)
    env.update(BR2_CONFIG=str(tmp / ".config"), HOME=str(tmp / "home"),
               TIPRING_KEYS_DIR=str(tmp / "keys"))
    for name in ("TIPRING_RAUC_KEY", "TIPRING_RAUC_CERT", "TIPRING_RAUC_KEYRING"):
        env.pop(name, None)
    return env


@needs_openssl
def test_post_build_sets_up_read_only_root_rauc_and_services(tmp_path: Path):
    target = tmp_path / "target"
    shutil.copytree(OVERLAY, target, symlinks=True)
    (target / "usr/bin").mkdir(parents=True)
    (target / "usr/bin/rauc").write_text("#!/bin/sh\n")
    (target / "usr/bin/rauc").chmod(0o755)
    (target / "etc/dropbear").symlink_to("/var/run/dropbear")  # what Buildroot's dropbear leaves
    shutil.copy(EXT / "package/python-tipring/tipring.service", target / "usr/lib/systemd/system/")
    env = _env(tmp_path, 'BR2_TIPRING_RAUC_COMPATIBLE="tipring-rpi4"\n')

    result = subprocess.run(["bash", str(BOARD / "post-build.sh"), str(target), "rpi4"],
                            check=False, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr

    conf = (target / "etc/rauc/system.conf").read_text()
    assert "compatible=tipring-rpi4" in conf and "@" not in conf
    keyring = (target / "etc/rauc/keyring.pem").read_text()
    assert "BEGIN CERTIFICATE" in keyring and "PRIVATE KEY" not in keyring
    # The development key was made outside the tree, and only there.
    assert (tmp_path / "keys/dev.key.pem").is_file()
    assert oct((tmp_path / "keys/dev.key.pem").stat().st_mode & 0o777) == "0o600"
    assert os.readlink(target / "etc/dropbear") == "/data/ssh"
    assert os.readlink(target / "root/.ssh") == "/data/ssh/root"
    assert os.readlink(target / "etc/wpa_supplicant") == "/data/network/wpa_supplicant"
    assert (target / "data").is_dir() and (target / "boot/firmware").is_dir()
    wants = target / "etc/systemd/system"
    for unit, where in [("tipring.service", "multi-user"), ("tipring-mark-good.service", "multi-user"),
                        ("data.mount", "local-fs"), ("tipring-identity.service", "sysinit"),
                        ("tipring-network.service", "multi-user")]:
        assert os.readlink(wants / f"{where}.target.wants" / unit) == f"/usr/lib/systemd/system/{unit}"
    assert (target / "etc/tipring-build-id").read_text().split()[1] == "rpi4"


def _fake_repo(tmp: Path, profile: str) -> Path:
    """A copy of the tree beside a hw/ the test controls (hw/overlays belongs to the hardware work)."""
    repo = tmp / "repo"
    shutil.copytree(EXT, repo / "buildroot", symlinks=True)
    (repo / "firmware/tipring").mkdir(parents=True)
    shutil.copy(ROOT / "firmware/tipring/__init__.py", repo / "firmware/tipring/")
    (repo / "hw/boards").mkdir(parents=True)
    (repo / "hw/boards/test.toml").write_text(profile)
    return repo


def _run_post_image(tmp: Path, repo: Path, board: str, dtb: str) -> subprocess.CompletedProcess:
    host_bin = tmp / "host/bin"
    host_bin.mkdir(parents=True)
    log = tmp / "tools.log"
    for tool in ("mkimage", "genimage", "rauc", "dtc"):
        (host_bin / tool).write_text(STUB.format(log=log))
        (host_bin / tool).chmod(0o755)
    (host_bin / "python3").symlink_to(sys.executable)
    images = tmp / "images"
    (images / "rpi-firmware/overlays").mkdir(parents=True)
    (images / "rpi-firmware/overlays/miniuart-bt.dtbo").write_bytes(b"")
    (images / "rpi-firmware/config.txt").write_text("stale\n")
    for name in (dtb, "u-boot.bin", "rootfs.ext4"):
        (images / name).write_bytes(b"")
    (tmp / "build").mkdir()
    env = _env(tmp, f'BR2_PACKAGE_PYTHON_TIPRING_BOARD="test"\nBR2_TIPRING_RAUC_COMPATIBLE="tipring-{board}"\n')
    env.update(HOST_DIR=str(tmp / "host"), BUILD_DIR=str(tmp / "build"), BINARIES_DIR=str(images))
    return subprocess.run(["bash", str(repo / "buildroot/board/tipring/post-image.sh"), str(images), board],
                          check=False, env=env, capture_output=True, text=True, timeout=120)


@needs_openssl
def test_post_image_without_overlays_builds_image_and_signed_bundle(tmp_path: Path):
    repo = _fake_repo(tmp_path, 'name = "test"\ndriver = "sim"\n')
    result = _run_post_image(tmp_path, repo, "rpi4", "bcm2711-rpi-4-b.dtb")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no overlays to build" in result.stdout
    images = tmp_path / "images"
    config = (images / "rpi-firmware/config.txt").read_text()
    assert config.startswith((BOARD / "rpi4/config.txt").read_text())  # regenerated, not appended to
    assert "stale" not in config
    boot = (images / "boot.cmd").read_text()
    assert "console=ttyAMA0,115200" in boot and "/boot/zImage" in boot and "bootz ${kernel_addr_r}" in boot
    assert " loglevel=4 " in boot  # the UART is the management console too: errors and worse
    assert not [line for line in boot.splitlines() if "@" in line and not line.startswith("#")]
    cfg = (images / "genimage.cfg").read_text()
    for name in ('"bcm2711-rpi-4-b.dtb"', '"rpi-firmware/config.txt"', '"rpi-firmware/overlays"',
                 '"u-boot.bin"', '"boot.scr"'):
        assert name in cfg
    assert "@" not in cfg and "size = 512M" in cfg
    tools = (tmp_path / "tools.log").read_text().splitlines()
    assert any(t.startswith("mkimage -A arm ") for t in tools)
    assert any(t.startswith("genimage ") for t in tools)
    bundle = next(t for t in tools if t.startswith("rauc bundle"))
    assert f"--key={tmp_path}/keys/dev.key.pem" in bundle and "tipring-rpi4-" in bundle
    manifest = (tmp_path / "build/tipring-bundle/manifest.raucm").read_text()
    assert "compatible=tipring-rpi4" in manifest and "filename=rootfs.ext4" in manifest
    assert "@" not in manifest


@needs_openssl
@pytest.mark.skipif(shutil.which("cpp") is None, reason="cpp (the C preprocessor) is not installed")
def test_post_image_builds_and_enables_the_profile_overlays(tmp_path: Path):
    repo = _fake_repo(tmp_path, 'name = "test"\ndriver = "sim"\noverlays = ["tipring-test", "miniuart-bt"]\n')
    (repo / "hw/overlays").mkdir()
    (repo / "hw/overlays/tipring-test.dts").write_text("/dts-v1/;\n/plugin/;\n/ { };\n")
    result = _run_post_image(tmp_path, repo, "rpi5", "bcm2712-rpi-5-b.dtb")
    assert result.returncode == 0, result.stdout + result.stderr
    images = tmp_path / "images"
    assert (images / "rpi-firmware/overlays/tipring-test.dtbo").exists()
    config = (images / "rpi-firmware/config.txt").read_text()
    assert config.endswith("dtoverlay=tipring-test\ndtoverlay=miniuart-bt\n")
    boot = (images / "boot.cmd").read_text()
    assert "/boot/Image" in boot and "booti ${kernel_addr_r}" in boot
    assert any(t.startswith("mkimage -A arm64 ") for t in (tmp_path / "tools.log").read_text().splitlines())


@needs_openssl
def test_post_image_refuses_a_profile_overlay_that_does_not_exist(tmp_path: Path):
    repo = _fake_repo(tmp_path, 'name = "test"\ndriver = "sim"\noverlays = ["si3215-missing"]\n')
    result = _run_post_image(tmp_path, repo, "rpi3", "bcm2710-rpi-3-b.dtb")
    assert result.returncode != 0
    assert "needs overlay si3215-missing" in result.stderr


def test_dev_key_script_refuses_to_write_into_the_repository(tmp_path: Path):
    inside = EXT / "keys-must-not-be-here"
    env = dict(os.environ, TIPRING_KEYS_DIR=str(inside))
    result = subprocess.run(["bash", str(BOARD / "scripts/make-dev-keys.sh")], env=env, check=False,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "refusing" in result.stderr
    assert not inside.exists()


# -- network-apply -----------------------------------------------------------------------------------

@pytest.fixture
def network_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TIPRING_NETWORK_DIR", str(tmp_path / "network"))
    monkeypatch.setenv("TIPRING_TIMESYNCD_DIR", str(tmp_path / "timesyncd"))
    monkeypatch.setenv("TIPRING_NETWORK_NO_RELOAD", "1")
    return runpy.run_path(str(OVERLAY / "usr/libexec/tipring/network-apply"), run_name="network_apply")


def test_network_dhcp_default_needs_no_file(network_apply):
    files, ntp = network_apply["render"]({"mode": "dhcp", "ntp_servers": ["pool.ntp.org"]})
    assert files == {}
    assert ntp == "[Time]\nNTP=pool.ntp.org\n"


def test_network_static_address(network_apply):
    files, _ = network_apply["render"]({"mode": "static", "address": "192.168.1.20/24",
                                        "gateway": "192.168.1.1", "dns": ["9.9.9.9", "1.1.1.1"]})
    text = files["10-tipring-wired.network"]
    assert "Name=eth0 end0" in text and "Address=192.168.1.20/24" in text
    assert "Gateway=192.168.1.1" in text and "DNS=9.9.9.9\nDNS=1.1.1.1" in text and "DHCP" not in text


def test_network_vlan(network_apply):
    files, _ = network_apply["render"]({"mode": "dhcp", "vlan": 42})
    assert "VLAN=vlan42" in files["10-tipring-wired.network"]
    assert "Id=42" in files["10-tipring-vlan42.netdev"]
    assert "Name=vlan42" in files["10-tipring-vlan42.network"] and "DHCP=yes" in files["10-tipring-vlan42.network"]


def test_network_apply_writes_and_clears_files(network_apply, tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text('[network]\nmode = "static"\naddress = "10.0.0.5/8"\nntp_servers = ["ntp.example"]\n')
    assert network_apply["apply"](config) == 0
    assert (tmp_path / "network/10-tipring-wired.network").is_file()
    assert "ntp.example" in (tmp_path / "timesyncd/tipring.conf").read_text()
    config.write_text('[network]\nmode = "dhcp"\nntp_servers = []\n')
    assert network_apply["apply"](config) == 0
    assert list((tmp_path / "network").iterdir()) == []
    assert not (tmp_path / "timesyncd/tipring.conf").exists()


def test_network_apply_leaves_the_network_alone_on_a_bad_file(network_apply, tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text('[network]\nmode = "static"\naddress = "10.0.0.5/8"\n')
    assert network_apply["apply"](config) == 0
    config.write_text("[network\n")
    assert network_apply["apply"](config) == 1
    assert (tmp_path / "network/10-tipring-wired.network").is_file()


# -- identity --------------------------------------------------------------------------------------

def _identity(tmp: Path) -> dict[str, str]:
    env = dict(os.environ, TIPRING_DT=str(tmp / "dt"), TIPRING_NET=str(tmp / "net"),
               TIPRING_RUN=str(tmp / "run"), TIPRING_SET_HOSTNAME="true")
    result = subprocess.run(["sh", str(OVERLAY / "usr/libexec/tipring/identity")], env=env,
                            check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in (tmp / "run/identity.env").read_text().splitlines())


def test_identity_from_the_device_tree_mac(tmp_path: Path):
    node = tmp_path / "dt/soc/ethernet@7d580000"
    node.mkdir(parents=True)
    (node / "local-mac-address").write_bytes(bytes([0xDC, 0xA6, 0x32, 0x0A, 0xBC, 0x1F]))
    (tmp_path / "dt/aliases").mkdir()
    (tmp_path / "dt/aliases/ethernet0").write_bytes(b"/soc/ethernet@7d580000\0")
    (tmp_path / "net/eth0").mkdir(parents=True)
    (tmp_path / "net/eth0/address").write_text("02:00:00:00:00:01\n")
    assert _identity(tmp_path) == {"TIPRING_DEVICE_ID": "tipring-0abc1f", "TIPRING_MAC": "dc:a6:32:0a:bc:1f"}


def test_identity_from_wifi_then_serial(tmp_path: Path):
    (tmp_path / "net/wlan0").mkdir(parents=True)
    (tmp_path / "net/wlan0/address").write_text("B8:27:EB:12:34:56\n")
    assert _identity(tmp_path)["TIPRING_DEVICE_ID"] == "tipring-123456"
    (tmp_path / "net/wlan0/address").unlink()
    (tmp_path / "dt").mkdir()
    (tmp_path / "dt/serial-number").write_bytes(b"10000000a1b2c3d4\0")
    assert _identity(tmp_path) == {"TIPRING_DEVICE_ID": "tipring-b2c3d4", "TIPRING_MAC": ""}


def _install_hooks(tmp: Path, console: str) -> Path:
    """The python-tipring package's install hooks, run by make as Buildroot would run them
    (qstrip and INSTALL as Buildroot defines them; the package's own lines verbatim)."""
    target = tmp / "target"
    (target / "usr/share/tipring/hw/boards").mkdir(parents=True)
    (target / "usr/share/tipring/hw/boards/sim.toml").write_text("")
    mk = (EXT / "package/python-tipring/python-tipring.mk").read_text()
    ours = "\n".join(line for line in mk.splitlines() if not line.startswith("$(eval"))
    (tmp / "Makefile").write_text(
        'qstrip = $(strip $(subst ",,$(1)))\n'
        "INSTALL = install\n"
        f"TARGET_DIR = {target}\n"
        f"PYTHON_TIPRING_PKGDIR = {EXT / 'package/python-tipring'}\n"
        'BR2_PACKAGE_PYTHON_TIPRING_BOARD = "sim"\n'
        f'BR2_PACKAGE_PYTHON_TIPRING_CONSOLE = "{console}"\n'
        f"{ours}\n"
        "all:\n\t$(PYTHON_TIPRING_INSTALL_DATA)\n\t$(PYTHON_TIPRING_INSTALL_INIT_SYSTEMD)\n")
    subprocess.run(["make", "-s", "-C", str(tmp)], check=True, capture_output=True)
    return target


def _exec_start_argv(target: Path) -> list[str]:
    """tipring.service's ExecStart as systemd expands it with /etc/default/tipring: ${VAR} is
    one word, an unbraced $VAR word splits at whitespace into zero or more."""
    env = dict(line.split("=", 1) for line in
               (target / "etc/default/tipring").read_text().splitlines())
    unit = (target / "usr/lib/systemd/system/tipring.service").read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    argv: list[str] = []
    for word in exec_start.removeprefix("ExecStart=").split():
        if word.startswith("${"):
            argv.append(env[word[2:-1]])
        elif word.startswith("$"):
            argv += env[word[1:]].split()
        else:
            argv.append(word)
    return argv


def test_the_uart_runs_the_console_and_no_login_prompt(tmp_path: Path):
    from tipring.cli import build_parser

    target = _install_hooks(tmp_path, "ttyAMA0")
    argv = _exec_start_argv(target)
    args = build_parser().parse_args(argv[1:])
    assert (args.board, args.console, args.port) == ("sim", "/dev/ttyAMA0", 80)
    units = target / "etc/systemd/system"
    assert _masked(units) == ["getty@tty1.service", "serial-getty@ttyAMA0.service"]


def _masked(units: Path) -> list[str]:
    """The units masked in /etc/systemd/system (symlinks to /dev/null), and nothing else there."""
    entries = sorted(units.iterdir())
    assert all(entry.is_symlink() and os.readlink(entry) == "/dev/null" for entry in entries)
    return [entry.name for entry in entries]


def test_an_image_without_a_console_starts_none(tmp_path: Path):
    from tipring.cli import build_parser

    target = _install_hooks(tmp_path, "")
    args = build_parser().parse_args(_exec_start_argv(target)[1:])
    assert args.console is None and args.board == "sim"
    # No UART getty to mask, but the HDMI screen's login prompt (root has no password) still is.
    assert _masked(target / "etc/systemd/system") == ["getty@tty1.service"]
