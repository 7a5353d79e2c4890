"""SSH on the Security page and at /api/v1/ssh, on the sim board (whose backend records what
the image's dropbear backend would do): refused without a key or with a bad one (the line
named), on with a key whose fingerprint is OpenSSH's, CSRF and tokens as everywhere, a failed
apply that changes nothing; and the page in Chromium."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import test_web_browser
from aiohttp.test_utils import TestClient
from test_ssh import keygen
from test_web_browser import _first_boot, _page, _shot
from test_web_support import PASSWORD, ThreadedServer, csrf_for, run_client, setup_done

from tipring.config import ConfigStore
from tipring.config.schema import SshConfig
from tipring.runtime.app import Device
from tipring.runtime.ssh import SimSshBackend

browser = test_web_browser.browser  # the module-scoped Chromium fixture, shared
NO_KEY = ("at least one public key is needed to switch SSH on (it takes keys only, never a "
          "password)")


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """An ed25519 public key from ssh-keygen, and its fingerprint as `ssh-keygen -l` says."""
    made = keygen(tmp_path_factory.mktemp("key"), "ed25519", None, "admin@laptop")
    listed = subprocess.run(["ssh-keygen", "-lf", str(made)], check=True, capture_output=True,
                            text=True).stdout.split()
    return made.read_text().strip(), listed[1]


def _state(html: str) -> str:
    found = re.search(r'id="ssh-state">(.*?)</p>', html)
    assert found, "no SSH state on the page"
    return re.sub(r"<[^>]+>", "", found.group(1))


def _error(html: str) -> str | None:
    found = re.search(r'id="ssh-error"[^>]*>(.*?)</p>', html)
    return found.group(1).replace("&#39;", "'") if found else None


async def _post(client: TestClient, enabled: bool, text: str) -> tuple[int, str]:
    data = {"csrf": await csrf_for(client, "/security"), "ssh.authorized_keys": text}
    if enabled:
        data["ssh.enabled"] = "on"
    answer = await client.post("/security/ssh", data=data)
    return answer.status, await answer.text()


def test_security_page_switches_ssh_with_keys_only(tmp_path: Path, key: tuple[str, str]) -> None:
    public, fingerprint = key
    config_path = tmp_path / "config.toml"

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        sim = device.ssh
        assert isinstance(sim, SimSshBackend)
        page = await (await client.get("/security")).text()
        assert _state(page) == "SSH is off." and "No keys." in page

        status, page = await _post(client, True, "")
        assert status == 400 and _error(page) == NO_KEY
        status, page = await _post(client, True, f"# laptop\n{public}\n\nssh-rsa AAAA-bad\n")
        assert status == 400
        assert _error(page) == ("the key on line 4 has key data that is not valid base64 (cut "
                                "short or mistyped?)")
        assert "ssh-rsa AAAA-bad" in page  # the typing is kept
        assert sim.applied == [] and not device.config.ssh.enabled

        status, page = await _post(client, True, f"# laptop\n{public}\n")
        assert status == 200  # after the redirect
        assert "SSH settings saved (1 key(s)). SSH is on (sim board: recorded" in page
        assert _state(page).startswith("SSH is on")
        assert f"<code>{fingerprint}</code>" in page and "admin@laptop" in page
        assert sim.applied == [(True, public + "\n")]
        assert ConfigStore(config_path).load().config.ssh == SshConfig(
            enabled=True, authorized_keys=(public,))

        status, page = await _post(client, False, public)
        assert status == 200 and _state(page) == "SSH is off."
        assert sim.applied[-1] == (False, public + "\n")  # the key stays for next time

        forged = await client.post("/security/ssh", data={
            "csrf": "forged", "ssh.enabled": "on", "ssh.authorized_keys": public})
        assert forged.status == 403 and not device.config.ssh.enabled

    run_client(config_path, scenario)


def test_a_failed_switch_is_reported_and_changes_nothing(tmp_path: Path,
                                                         key: tuple[str, str]) -> None:
    config_path = tmp_path / "config.toml"

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        assert isinstance(device.ssh, SimSshBackend)
        device.ssh.fail_with = "systemctl start dropbear.service failed (exit 1)"
        saved = config_path.read_bytes()
        status, page = await _post(client, True, key[0])
        assert status == 500
        assert ("SSH was not changed: SSH was not switched on (systemctl start dropbear.service "
                "failed (exit 1)); the previous state is still in effect") in page
        assert config_path.read_bytes() == saved and not device.config.ssh.enabled

    run_client(config_path, scenario)


def test_ssh_api(tmp_path: Path, key: tuple[str, str]) -> None:
    public, fingerprint = key

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        assert (await client.get("/api/v1/ssh")).status == 401
        token = (await (await client.post("/api/v1/token", json={"password": PASSWORD}))
                 .json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert await (await client.get("/api/v1/ssh", headers=auth)).json() == {
            "enabled": False, "authorized_keys": [], "keys": [],
            "status": {"on": False, "detail": ""}}

        refused = await client.put("/api/v1/ssh", headers=auth, json={"enabled": True})
        assert refused.status == 422
        assert (await refused.json())["errors"] == [
            {"field": "ssh.authorized_keys", "reason": NO_KEY}]
        refused = await client.put("/api/v1/ssh", headers=auth, json={
            "enabled": True, "authorized_keys": [public, "ssh-dss AAAA"], "shell": "/bin/sh"})
        assert refused.status == 422
        assert {e["field"] for e in (await refused.json())["errors"]} == {
            "ssh.shell", "ssh.authorized_keys[1]"}
        assert (await client.put("/api/v1/ssh", headers=auth, data="[1]")).status == 400

        answer = await client.put("/api/v1/ssh", headers=auth,
                                  json={"enabled": True, "authorized_keys": [public]})
        assert answer.status == 200
        body = await answer.json()
        assert body["status"]["on"] and body["enabled"]
        assert body["keys"] == [{"type": "ssh-ed25519", "family": "ED25519", "bits": 256,
                                 "comment": "admin@laptop", "fingerprint": fingerprint}]
        config = await (await client.get("/api/v1/config", headers=auth)).json()
        assert config["ssh"] == {"enabled": True, "authorized_keys": [public]}
        off = await client.put("/api/v1/ssh", headers=auth, json={"enabled": False})
        assert (await off.json())["status"] == {"on": False, "detail": ""}
        assert device.config.ssh.authorized_keys == (public,)

    run_client(tmp_path / "config.toml", scenario)


@pytest.mark.slow
def test_ssh_on_the_security_page_in_the_browser(browser: object, tmp_path: Path,
                                                 key: tuple[str, str]) -> None:
    public, fingerprint = key
    server = ThreadedServer(tmp_path / "data" / "config.toml").start()
    try:
        page = _page(browser)
        _first_boot(page, server.url)
        page.goto(server.url + "/security")  # type: ignore[attr-defined]
        assert page.inner_text("#ssh-state") == "SSH is off."  # type: ignore[attr-defined]
        page.check("#ssh-enabled")  # type: ignore[attr-defined]
        page.click("#ssh-form button[type=submit]")  # type: ignore[attr-defined]
        assert page.inner_text("#ssh-error") == NO_KEY  # type: ignore[attr-defined]
        assert page.is_checked("#ssh-enabled")  # type: ignore[attr-defined]
        page.fill("#ssh-keys-text", public)  # type: ignore[attr-defined]
        page.click("#ssh-form button[type=submit]")  # type: ignore[attr-defined]
        page.wait_for_url("**/security#ssh")  # type: ignore[attr-defined]
        assert page.inner_text("#ssh-state").startswith("SSH is on")  # type: ignore[attr-defined]
        assert page.inner_text("#ssh-keys code") == fingerprint  # type: ignore[attr-defined]
        _shot(page, "security-ssh")
        page.context.close()  # type: ignore[attr-defined]
        sim = server.call(lambda: server.device.ssh)  # type: ignore[union-attr]
        assert isinstance(sim, SimSshBackend) and sim.status().on
        assert sim.applied == [(True, public + "\n")]
    finally:
        server.stop()
