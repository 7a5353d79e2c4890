"""SSH access: the public-key rule (against keys made by OpenSSH's own ssh-keygen, whose
fingerprints ours must equal), the [ssh] table, the image's dropbear backend against a
temporary /data/ssh and a stub systemctl that records its arguments, and the device applying
it at start and with a save (a failed apply changes nothing)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import stat
import subprocess
from pathlib import Path

import pytest

from tipring.config import ConfigError, ConfigStore, NetworkConfig, config_from_dict
from tipring.config.schema import MAX_SSH_KEYS, SshConfig
from tipring.config.sshkey import SshKeyError, parse_public_key
from tipring.runtime.app import Device, Options
from tipring.runtime.network import SimNetworkBackend, render
from tipring.runtime.ssh import (
    DropbearBackend,
    SimSshBackend,
    SshApplyError,
    authorized_keys_text,
    backend_for,
)

# (ssh-keygen -t, -b, what our parser reports as bits)
KINDS = [("ed25519", None, 256), ("ecdsa", "256", 256), ("ecdsa", "384", 384),
         ("ecdsa", "521", 521), ("rsa", "2048", 2048), ("rsa", "3072", 3072)]


def keygen(folder: Path, kind: str, bits: str | None, comment: str = "admin@laptop") -> Path:
    """A fresh key pair from OpenSSH's ssh-keygen; returns the .pub file."""
    name = folder / f"id_{kind}{bits or ''}"
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *(["-b", bits] if bits else []), "-N", "",
                    "-C", comment, "-f", str(name)], check=True, capture_output=True, timeout=120)
    return name.with_suffix(".pub")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    made = {f"{kind}{bits or ''}": keygen(folder, kind, bits) for kind, bits, _ in KINDS}
    made["rsa1024"] = keygen(folder, "rsa", "1024")
    return made


def pub(keys: dict[str, Path], name: str) -> str:
    return keys[name].read_text().strip()


@pytest.mark.parametrize(("kind", "bits", "expected_bits"), KINDS)
def test_fingerprint_and_size_equal_ssh_keygen_l(keys: dict[str, Path], kind: str,
                                                 bits: str | None, expected_bits: int) -> None:
    key = parse_public_key(pub(keys, f"{kind}{bits or ''}"))
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(keys[f"{kind}{bits or ''}"])],
                            check=True, capture_output=True, text=True).stdout.split()
    # ssh-keygen -l: "<bits> SHA256:<base64> <comment> (<family>)"
    assert listed == [str(expected_bits), key.fingerprint, "admin@laptop", f"({key.family})"]
    assert key.bits == expected_bits and key.comment == "admin@laptop"
    assert key.line() == pub(keys, f"{kind}{bits or ''}")
    assert parse_public_key(key.line().replace(" ", "\t", 1)) == key  # tabs separate too


def _blob(*parts: bytes) -> str:
    return base64.b64encode(b"".join(len(p).to_bytes(4, "big") + p for p in parts)).decode()


P384_IN_P256 = _blob(b"ecdsa-sha2-nistp256", b"nistp384", b"\x04" + bytes(96))
COMPRESSED_P256 = _blob(b"ecdsa-sha2-nistp256", b"nistp256", b"\x02" + bytes(32))
EVEN_EXPONENT_RSA = _blob(b"ssh-rsa", b"\x01\x00", b"\x00" + b"\xff" * 256)


@pytest.mark.parametrize(("line", "reason"), [
    ("", "is empty"),
    ("ssh-dss AAAAB3NzaC1kc3M=", "must start with one of the key types ssh-ed25519"),
    ('command="/bin/sh" ssh-ed25519 AAAA', "options before it (such as command=...) are not"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----", "is a private key: paste the public key"),
    ("ssh-ed25519", "has the type ssh-ed25519 but no key data"),
    ("ssh-ed25519 AAAA!!!!", "not valid base64"),
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5A", "not valid base64"),  # cut in the middle of a quad
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==", "cut short: the key data ends inside"),
    (f"ssh-rsa {_blob(b'ssh-ed25519', bytes(32))}",
     "says ssh-rsa but its data holds a 'ssh-ed25519' key"),
    (f"ssh-ed25519 {_blob(b'ssh-ed25519', bytes(31))}", "not 32 bytes long"),
    (f"ssh-ed25519 {_blob(b'ssh-ed25519', bytes(32), b'more')}", "8 bytes of extra data"),
    (f"ecdsa-sha2-nistp256 {P384_IN_P256}",
     "names the curve 'nistp384' inside a ecdsa-sha2-nistp256 key"),
    (f"ecdsa-sha2-nistp256 {COMPRESSED_P256}",
     "not an uncompressed 65-byte point"),
    (f"ssh-rsa {EVEN_EXPONENT_RSA}",
     "unusable RSA exponent (256)"),
    ("ssh-ed25519 AAAA\nssh-ed25519 AAAA", "a single line without control characters"),
    ("ssh-rsa " + "A" * 9000, "a public key is at most 8192"),
])
def test_bad_keys_are_refused_with_a_reason(line: str, reason: str) -> None:
    with pytest.raises(SshKeyError) as refused:
        parse_public_key(line)
    assert reason in str(refused.value)


def test_short_rsa_is_refused(keys: dict[str, Path]) -> None:
    with pytest.raises(SshKeyError, match="RSA key of 1024 bits: at least 2048 are needed"):
        parse_public_key(pub(keys, "rsa1024"))


def _errors(raw: dict[str, object]) -> dict[str, str]:
    with pytest.raises(ConfigError) as refused:
        config_from_dict(raw)
    return {e.path: e.reason for e in refused.value.errors}


def test_ssh_is_off_by_default_and_cannot_go_on_without_a_key(keys: dict[str, Path]) -> None:
    assert config_from_dict({}).ssh == SshConfig(enabled=False, authorized_keys=())
    assert _errors({"ssh": {"enabled": True}}) == {
        "ssh.authorized_keys": "at least one public key is needed to switch SSH on (it takes "
                               "keys only, never a password)"}
    key = pub(keys, "ed25519")
    assert config_from_dict({"ssh": {"enabled": True, "authorized_keys": [key]}}).ssh.enabled
    # keys kept while off, so switching back on needs no paste
    assert config_from_dict({"ssh": {"authorized_keys": [key]}}).ssh.authorized_keys == (key,)


def test_each_bad_key_is_named_by_its_index(keys: dict[str, Path]) -> None:
    good, short = pub(keys, "ed25519"), pub(keys, "rsa1024")
    errors = _errors({"ssh": {"enabled": True, "authorized_keys": [good, short, "ssh-rsa x"]}})
    assert set(errors) == {"ssh.authorized_keys[1]", "ssh.authorized_keys[2]"}
    assert "1024 bits" in errors["ssh.authorized_keys[1]"]
    assert "base64" in errors["ssh.authorized_keys[2]"]
    assert _errors({"ssh": {"authorized_keys": [good, good.replace("admin@laptop", "again")]}}
                   ) == {"ssh.authorized_keys": "key 2 is the same key as key 1"}
    assert _errors({"ssh": {"authorized_keys": [good] * (MAX_SSH_KEYS + 1)}})[
        "ssh.authorized_keys"] == f"must have at most {MAX_SSH_KEYS} keys, got {MAX_SSH_KEYS + 1}"
    assert _errors({"ssh": {"enabled": "yes"}}) == {
        "ssh.enabled": 'expected a boolean, got "yes"'}


def test_the_ssh_table_survives_the_store(tmp_path: Path, keys: dict[str, Path]) -> None:
    ssh = SshConfig(enabled=True, authorized_keys=(pub(keys, "ed25519"), pub(keys, "rsa3072")))
    store = ConfigStore(tmp_path / "config.toml")
    store.save(dataclasses.replace(config_from_dict({}), ssh=ssh))
    assert "[ssh]\nenabled = true\n" in (tmp_path / "config.toml").read_text()
    assert store.load().config.ssh == ssh


# -- the image's backend -----------------------------------------------------------------------

def _systemctl(folder: Path, *, start_exit: int = 0, active: str = "active") -> tuple[str]:
    """A stand-in for systemctl: records its arguments; `start` may fail; `is-active` says."""
    script = folder / "systemctl"
    script.write_text(f'#!/bin/sh\necho "$*" >> "{folder / "systemctl.log"}"\n'
                      f'case "$1" in\n'
                      f'  start) [ {start_exit} = 0 ] || echo "Job for dropbear.service failed" >&2;'
                      f' exit {start_exit} ;;\n'
                      f'  is-active) echo {active} ;;\n'
                      f'esac\nexit 0\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return (str(script),)


def _calls(folder: Path) -> list[str]:
    log = folder / "systemctl.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_dropbear_backend_writes_the_keys_flag_and_switches_the_service(
        tmp_path: Path, keys: dict[str, Path]) -> None:
    data = tmp_path / "data/ssh"
    backend = DropbearBackend(ssh_dir=data, systemctl=_systemctl(tmp_path))
    ed, ec = pub(keys, "ed25519"), pub(keys, "ecdsa256")

    backend.apply(SshConfig(enabled=True, authorized_keys=(ed, "  " + ec + "  ")))
    assert (data / "root/authorized_keys").read_text() == f"{ed}\n{ec}\n"
    assert _mode(data / "root/authorized_keys") == 0o600
    assert _mode(data) == _mode(data / "root") == 0o700
    assert (data / "enabled").exists()
    assert _calls(tmp_path) == ["start dropbear.service"]
    status = backend.status()
    assert status.on and status.detail == "dropbear.service is running"
    assert _calls(tmp_path) == ["is-active dropbear.service"]

    backend.apply(SshConfig(enabled=False, authorized_keys=(ed,)))
    assert not (data / "enabled").exists()
    assert (data / "root/authorized_keys").read_text() == f"{ed}\n"  # kept for next time
    assert _calls(tmp_path) == ["stop dropbear.service"]
    assert not backend.status().on and _calls(tmp_path) == []  # no flag: no need to ask

    backend.apply(SshConfig())
    assert not (data / "root/authorized_keys").exists()
    assert _calls(tmp_path) == ["stop dropbear.service"]
    assert sorted(p.name for p in data.rglob("*")) == ["root"]  # no temp files left


def test_a_failed_start_puts_everything_back(tmp_path: Path, keys: dict[str, Path]) -> None:
    data = tmp_path / "ssh"
    ed, rsa = pub(keys, "ed25519"), pub(keys, "rsa2048")
    DropbearBackend(ssh_dir=data, systemctl=_systemctl(tmp_path)).apply(
        SshConfig(authorized_keys=(ed,)))
    _calls(tmp_path)
    failing = DropbearBackend(ssh_dir=data, systemctl=_systemctl(tmp_path, start_exit=1))
    with pytest.raises(SshApplyError) as raised:
        failing.apply(SshConfig(enabled=True, authorized_keys=(rsa,)))
    assert str(raised.value) == (
        "SSH was not switched on (systemctl start dropbear.service failed (exit 1): Job for "
        "dropbear.service failed); the previous state is still in effect")
    assert not (data / "enabled").exists()
    assert (data / "root/authorized_keys").read_text() == f"{ed}\n"
    assert _calls(tmp_path) == ["start dropbear.service", "stop dropbear.service"]


def test_a_started_but_dead_dropbear_is_not_reported_on(tmp_path: Path,
                                                        keys: dict[str, Path]) -> None:
    backend = DropbearBackend(ssh_dir=tmp_path / "ssh",
                              systemctl=_systemctl(tmp_path, active="failed"))
    backend.apply(SshConfig(enabled=True, authorized_keys=(pub(keys, "ed25519"),)))
    assert backend.status() == type(backend.status())(
        False, "switched on, but dropbear.service is failed")


def test_a_missing_systemctl_or_unwritable_folder_is_an_error_not_a_crash(
        tmp_path: Path, keys: dict[str, Path]) -> None:
    on = SshConfig(enabled=True, authorized_keys=(pub(keys, "ed25519"),))
    missing = DropbearBackend(ssh_dir=tmp_path / "ssh",
                              systemctl=(str(tmp_path / "no-such-systemctl"),))
    with pytest.raises(SshApplyError, match="could not run"):
        missing.apply(on)
    assert not (tmp_path / "ssh/enabled").exists()
    assert not missing.status().on
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the folder should be\n")
    with pytest.raises(SshApplyError, match="the SSH files cannot be read"):
        DropbearBackend(ssh_dir=blocker, systemctl=_systemctl(tmp_path)).apply(on)
    dangling = tmp_path / "dangling"
    dangling.mkdir()
    (dangling / "root").symlink_to(tmp_path / "not-mounted")  # like /root/.ssh without /data
    with pytest.raises(SshApplyError, match="writing the files"):
        DropbearBackend(ssh_dir=dangling, systemctl=_systemctl(tmp_path)).apply(on)
    assert not (dangling / "enabled").exists()
    assert _calls(tmp_path) == []  # nothing was switched


def test_backend_choice(tmp_path: Path) -> None:
    dropin = tmp_path / "tipring.conf"
    assert isinstance(backend_for("sim", dropin), SimSshBackend)
    assert backend_for("ag1171", dropin) is None  # another OS: its own SSH
    dropin.write_text("[Unit]\nConditionPathExists=/data/ssh/enabled\n")
    assert isinstance(backend_for("si3215", dropin), DropbearBackend)


def test_only_valid_lines_reach_authorized_keys(keys: dict[str, Path]) -> None:
    assert authorized_keys_text([pub(keys, "ed25519"), "ssh-rsa broken"]) == (
        pub(keys, "ed25519") + "\n")
    assert authorized_keys_text([]) == ""


# -- the device --------------------------------------------------------------------------------

def _device(tmp_path: Path, ssh: SshConfig) -> Device:
    config_path = tmp_path / "config.toml"
    ConfigStore(config_path).save(dataclasses.replace(config_from_dict({}), ssh=ssh))
    device = Device(Options(config_path, "sim"))
    device.start()
    return device


def test_the_device_applies_the_saved_ssh_state_at_start(tmp_path: Path,
                                                         keys: dict[str, Path]) -> None:
    """After an update (or a restored configuration) the files on /data follow the config."""
    key = pub(keys, "ed25519")

    async def scenario() -> None:
        device = _device(tmp_path, SshConfig(enabled=True, authorized_keys=(key,)))
        try:
            assert isinstance(device.ssh, SimSshBackend) and device.ssh.applied == []
            await device.apply_ssh_at_start()
            assert device.ssh.applied == [(True, key + "\n")]
            assert device.ssh_seen.on
            device.ssh = DropbearBackend(ssh_dir=tmp_path / "ssh",
                                         systemctl=_systemctl(tmp_path))
            await device.apply_ssh_at_start()
            assert (tmp_path / "ssh/enabled").exists()
            assert _calls(tmp_path) == ["start dropbear.service", "is-active dropbear.service"]
            device.ssh = DropbearBackend(ssh_dir=tmp_path / "ssh",
                                         systemctl=(str(tmp_path / "none"),))
            await device.apply_ssh_at_start()  # logged, not raised: the firmware still starts
            assert not device.ssh_seen.on
        finally:
            device.close()

    asyncio.run(scenario())


def test_a_failed_ssh_apply_saves_nothing_and_puts_the_network_back(
        tmp_path: Path, keys: dict[str, Path]) -> None:
    key = pub(keys, "ed25519")

    async def scenario() -> None:
        device = _device(tmp_path, SshConfig())
        try:
            saved = (tmp_path / "config.toml").read_bytes()
            assert isinstance(device.network, SimNetworkBackend)
            assert isinstance(device.ssh, SimSshBackend)
            device.ssh.fail_with = "dropbear is broken"
            wanted = dataclasses.replace(
                device.config, network=NetworkConfig(vlan=42),
                ssh=SshConfig(enabled=True, authorized_keys=(key,)))
            with pytest.raises(SshApplyError, match="dropbear is broken"):
                await device.apply_config(wanted)
            assert (tmp_path / "config.toml").read_bytes() == saved
            assert device.config.ssh == SshConfig()
            assert device.network.running == render(NetworkConfig())  # put back
            device.ssh.fail_with = ""

            def refuse(_config: object) -> None:
                raise OSError(28, "No space left on device")

            device.store.save = refuse  # type: ignore[method-assign]
            with pytest.raises(OSError, match="No space left"):
                await device.apply_config(wanted)
            # applied, then put back to what is saved when the save failed
            assert device.ssh.applied == [(True, key + "\n"), (False, "")]
            assert device.config.ssh == SshConfig()
        finally:
            device.close()

    asyncio.run(scenario())


@pytest.mark.slow
def test_tipring_run_applies_the_saved_ssh_state_before_it_runs(tmp_path: Path,
                                                                keys: dict[str, Path]) -> None:
    from test_runtime import Firmware, free_port

    config = tmp_path / "data" / "config.toml"
    ConfigStore(config).save(dataclasses.replace(config_from_dict({}), ssh=SshConfig(
        enabled=True, authorized_keys=(pub(keys, "ed25519"),))))
    firmware = Firmware("run", "--board", "sim", "--config", str(config), "--listen",
                        "127.0.0.1", "--port", str(free_port()))
    try:
        applied = firmware.wait_for("SSH recorded")
        firmware.wait_for("msg=running")  # after SSH was applied, not instead of it
    finally:
        firmware.kill()
    assert applied.endswith("enabled=True keys=1")
