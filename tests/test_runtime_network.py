"""Network settings applied through a backend: the exact systemd-networkd and timesyncd files,
the reload commands (stub programs standing in for networkctl and systemctl), the rollback
when an apply fails, and the Network page and API going through it on the sim board."""

from __future__ import annotations

import dataclasses
import runpy
import stat
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from test_web_support import PASSWORD, csrf_for, run_client, setup_done

from tipring.config import ConfigStore, NetworkConfig
from tipring.runtime.app import Device
from tipring.runtime.network import (
    NetworkApplyError,
    NetworkdBackend,
    NetworkFiles,
    SimNetworkBackend,
    backend_for,
    render,
)

NETWORK_APPLY = (Path(__file__).parents[1] / "buildroot/board/tipring/rootfs-overlay"
                 "/usr/libexec/tipring/network-apply")
STATIC = NetworkConfig(mode="static", address="192.168.1.20/24", gateway="192.168.1.1",
                       dns=("192.168.1.1", "9.9.9.9"), ntp_servers=("ntp.example.net",))
STATIC_FILE = ("[Match]\nName=eth0 end0\n\n[Network]\nAddress=192.168.1.20/24\n"
               "Gateway=192.168.1.1\nDNS=192.168.1.1\nDNS=9.9.9.9\nLinkLocalAddressing=ipv6\n")
VLAN_DHCP = NetworkConfig(mode="dhcp", vlan=42, ntp_servers=())


def test_plain_dhcp_needs_no_networkd_file_only_the_ntp_drop_in() -> None:
    assert render(NetworkConfig()) == NetworkFiles({}, "[Time]\nNTP=pool.ntp.org\n")
    assert render(NetworkConfig(ntp_servers=())) == NetworkFiles({}, "")


def test_static_address_gateway_dns_and_ntp_files() -> None:
    assert render(STATIC) == NetworkFiles({"10-tipring-wired.network": STATIC_FILE},
                                          "[Time]\nNTP=ntp.example.net\n")


def test_dhcp_with_extra_dns_servers() -> None:
    files = render(NetworkConfig(dns=("2001:db8::53",), ntp_servers=("a.example", "b.example")))
    assert files == NetworkFiles(
        {"10-tipring-wired.network":
         "[Match]\nName=eth0 end0\n\n[Network]\nDHCP=yes\nDNS=2001:db8::53\n"},
        "[Time]\nNTP=a.example b.example\n")


def test_vlan_gets_a_netdev_and_its_own_network_on_top_of_the_wired_link() -> None:
    assert render(VLAN_DHCP).networkd == {
        "10-tipring-wired.network":
            "[Match]\nName=eth0 end0\n\n[Network]\nVLAN=vlan42\nLinkLocalAddressing=no\n",
        "10-tipring-vlan42.netdev": "[NetDev]\nName=vlan42\nKind=vlan\n\n[VLAN]\nId=42\n",
        "10-tipring-vlan42.network": "[Match]\nName=vlan42\n\n[Network]\nDHCP=yes\n",
    }
    tagged = render(dataclasses.replace(STATIC, vlan=7)).networkd
    assert tagged["10-tipring-vlan7.network"] == STATIC_FILE.replace("eth0 end0", "vlan7")


@pytest.mark.parametrize("network", [NetworkConfig(), STATIC, VLAN_DHCP,
                                     dataclasses.replace(STATIC, vlan=4094, gateway=""),
                                     NetworkConfig(dns=("1.1.1.1",))])
def test_same_files_as_the_images_boot_time_network_apply(network: NetworkConfig) -> None:
    """At boot the image renders the saved settings itself: a reboot must bring back exactly
    what was applied live."""
    image = runpy.run_path(str(NETWORK_APPLY), run_name="network_apply")
    files, timesyncd = image["render"](dataclasses.asdict(network))
    assert render(network) == NetworkFiles(files, timesyncd)


def _stub(path: Path, log: Path, exit_code: int = 0, say: str = "") -> tuple[str]:
    """A stand-in for networkctl or systemctl: logs its arguments, says something, exits."""
    path.write_text(f'#!/bin/sh\necho "{path.name} $*" >> "{log}"\n'
                    + (f'echo "{say}" >&2\n' if say else "") + f"exit {exit_code}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return (str(path),)


def _backend(tmp_path: Path, *, networkctl_exit: int = 0, say: str = "") -> NetworkdBackend:
    log = tmp_path / "commands.log"
    return NetworkdBackend(
        network_dir=tmp_path / "run/systemd/network",
        timesyncd_dir=tmp_path / "run/systemd/timesyncd.conf.d",
        networkctl=_stub(tmp_path / "networkctl", log, networkctl_exit, say),
        systemctl=_stub(tmp_path / "systemctl", log))


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file() and p.parent.name != root.name}


def _commands(tmp_path: Path) -> list[str]:
    log = tmp_path / "commands.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def test_networkd_backend_writes_replaces_and_removes_its_files(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    run = tmp_path / "run"
    (run / "systemd/network").mkdir(parents=True)
    (run / "systemd/network/90-other.network").write_text("not ours\n")

    backend.apply(STATIC)
    assert _tree(run) == {
        "systemd/network/10-tipring-wired.network": STATIC_FILE,
        "systemd/network/90-other.network": "not ours\n",
        "systemd/timesyncd.conf.d/tipring.conf": "[Time]\nNTP=ntp.example.net\n"}
    assert _commands(tmp_path) == ["networkctl reload",
                                   "systemctl try-restart systemd-timesyncd.service"]

    backend.apply(dataclasses.replace(VLAN_DHCP, ntp_servers=("ntp.example.net",)))
    assert sorted(_tree(run)) == [
        "systemd/network/10-tipring-vlan42.netdev", "systemd/network/10-tipring-vlan42.network",
        "systemd/network/10-tipring-wired.network", "systemd/network/90-other.network",
        "systemd/timesyncd.conf.d/tipring.conf"]
    assert _commands(tmp_path) == ["networkctl reload"]  # same NTP: timesyncd left alone

    backend.apply(NetworkConfig(ntp_servers=()))
    assert _tree(run) == {"systemd/network/90-other.network": "not ours\n"}
    assert _commands(tmp_path) == ["networkctl reload",
                                   "systemctl try-restart systemd-timesyncd.service"]

    backend.apply(NetworkConfig(ntp_servers=()))
    assert _commands(tmp_path) == []  # nothing changed: no reload at all


def test_failed_reload_puts_the_previous_files_back(tmp_path: Path) -> None:
    _backend(tmp_path).apply(STATIC)
    before = _tree(tmp_path / "run")
    _commands(tmp_path)
    failing = _backend(tmp_path, networkctl_exit=1,
                       say="Failed to reload network settings: Connection refused")
    with pytest.raises(NetworkApplyError) as raised:
        failing.apply(VLAN_DHCP)
    assert "networkctl reload failed (exit 1): Failed to reload network settings" in str(
        raised.value)
    assert "the previous ones are still in use" in str(raised.value)
    assert _tree(tmp_path / "run") == before
    # the failed reload, then the rollback's reload of the restored files (this stub fails
    # that one too; the files are back all the same, ready for networkd's next start)
    assert _commands(tmp_path) == ["networkctl reload", "networkctl reload"]


def test_failed_write_puts_the_previous_files_back(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    backend.apply(STATIC)
    before = _tree(tmp_path / "run")
    blocker = tmp_path / "elsewhere"
    blocker.write_text("a file where the drop-in folder should be\n")
    broken = dataclasses.replace(backend, timesyncd_dir=blocker)
    with pytest.raises(NetworkApplyError, match="writing the files"):
        broken.apply(dataclasses.replace(STATIC, address="192.168.1.30/24"))
    assert _tree(tmp_path / "run") == before


def test_a_missing_networkctl_is_a_failed_apply_not_a_crash(tmp_path: Path) -> None:
    backend = dataclasses.replace(_backend(tmp_path),
                                  networkctl=(str(tmp_path / "no-such-networkctl"),))
    with pytest.raises(NetworkApplyError, match="could not run"):
        backend.apply(STATIC)
    assert not list((tmp_path / "run/systemd/network").glob("10-tipring-*"))


def test_real_boards_apply_through_networkd_only_on_the_tipring_image(tmp_path: Path) -> None:
    image_default = tmp_path / "90-tipring-dhcp.network"
    assert isinstance(backend_for("sim", image_default), SimNetworkBackend)
    assert backend_for("ag1171", image_default) is None  # another OS runs this network
    image_default.write_text("[Match]\nName=eth*\n")
    assert isinstance(backend_for("si3215", image_default), NetworkdBackend)


# -- the device, the page and the API ---------------------------------------------------------

async def _token(client: TestClient) -> dict[str, str]:
    answer = await client.post("/api/v1/token", json={"password": PASSWORD})
    return {"Authorization": f"Bearer {(await answer.json())['token']}"}


def test_saving_network_settings_applies_them_on_the_sim_board(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        sim = device.network
        assert isinstance(sim, SimNetworkBackend) and sim.running is None
        answer = await client.put("/api/v1/network", headers=await _token(client), json={
            "mode": "static", "address": "192.168.1.20/24", "gateway": "192.168.1.1",
            "dns": ["192.168.1.1", "9.9.9.9"], "ntp_servers": ["ntp.example.net"]})
        assert answer.status == 200, await answer.text()
        assert sim.running == render(STATIC)
        shown = await (await client.get("/network")).text()
        assert "/run/systemd/network/10-tipring-wired.network" in shown
        assert "Address=192.168.1.20/24\nGateway=192.168.1.1\nDNS=192.168.1.1" in shown
        assert "/run/systemd/timesyncd.conf.d/tipring.conf" in shown
        page = await client.post("/network", allow_redirects=True, data={
            "csrf": await csrf_for(client, "/network"), "network.mode": "dhcp",
            "network.address": "192.168.1.20/24", "network.gateway": "192.168.1.1",
            "network.dns": "", "network.ntp_servers": "pool.ntp.org", "network.vlan": "42"})
        assert page.status == 200
        assert "recorded as the image would write them" in await page.text()
        assert sim.running == render(NetworkConfig(
            address="192.168.1.20/24", gateway="192.168.1.1", vlan=42))
        applied = len(sim.applied)
        await client.put("/api/v1/device", headers=await _token(client),
                         json={"name": "kitchen"})
        assert len(sim.applied) == applied  # other settings leave the network alone

    run_client(tmp_path / "config.toml", scenario)


def test_a_failed_apply_leaves_the_previous_configuration_running(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        auth = await _token(client)
        # the image's backend, pointed at a folder here, with a networkctl that fails
        device.network = _backend(tmp_path)
        assert (await client.put("/api/v1/network", headers=auth, json={
            "mode": "static", "address": "192.168.1.20/24", "gateway": "192.168.1.1",
            "dns": ["192.168.1.1", "9.9.9.9"], "ntp_servers": ["ntp.example.net"]})).status == 200
        files = _tree(tmp_path / "run")
        saved = config_path.read_bytes()
        device.network = _backend(tmp_path, networkctl_exit=1, say="networkd is not running")

        answer = await client.put("/api/v1/network", headers=auth, json={"vlan": 42})
        assert answer.status == 500
        assert "networkd is not running" in (await answer.json())["error"]
        page = await client.post("/network", data={
            "csrf": await csrf_for(client, "/network"), "network.mode": "dhcp",
            "network.address": "", "network.gateway": "", "network.dns": "",
            "network.ntp_servers": "pool.ntp.org", "network.vlan": "0"})
        assert page.status == 500
        assert "previous ones are still in use" in await page.text()

        assert _tree(tmp_path / "run") == files  # the running network: unchanged
        assert config_path.read_bytes() == saved  # the saved settings: unchanged
        assert device.config.network == STATIC
        assert ConfigStore(config_path).load().config.network == STATIC

    run_client(config_path, scenario)
