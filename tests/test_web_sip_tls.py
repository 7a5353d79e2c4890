"""The device-wide SIP TLS settings on the Accounts page: PEM text areas for the CA and the
client certificate, a write-only one for its key; each refused with its field and reason before
anything is saved; line ends as a browser posts them (CRLF) stored as plain newlines; the key
never shown back. Certificates come from the test CA (tests/peers/pki.py, openssl)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiohttp.test_utils import TestClient
from test_web_support import csrf_for, run_client, setup_done

from peers.pki import TestCa
from tipring.config import ConfigStore, config_from_dict, config_to_dict, default_config
from tipring.runtime.app import Device, _telephony_changed



@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa(tmp_path_factory.mktemp("pki"))


def _crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def test_accounts_page_saves_the_sip_tls_settings(tmp_path: Path, pki: TestCa) -> None:
    config = tmp_path / "config.toml"
    ours = pki.issue("tipring.local")
    ca, cert, key = pki.cert.read_text(), ours.cert.read_text(), ours.key.read_text()

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        page = await (await client.get("/accounts")).text()
        assert 'id="sip-tls"' in page and '<textarea class="pem"' in page
        token = await csrf_for(client, "/accounts")
        refused = await client.post("/accounts/tls", data={
            "csrf": token, "sip.tls_ca": "not a certificate", "sip.tls_certificate": _crlf(cert),
            "sip.tls_key": ""})
        text = await refused.text()
        assert refused.status == 400
        assert "must be certificates in PEM form" in text  # next to sip.tls_ca
        assert "a client certificate and its key go together" in text
        assert device.config.sip.tls_ca == ""  # nothing saved
        saved = await client.post("/accounts/tls", allow_redirects=False, data={
            "csrf": token, "sip.tls_ca": _crlf(ca), "sip.tls_certificate": _crlf(cert),
            "sip.tls_key": _crlf(key)})
        assert saved.status == 303, await saved.text()
        stored = ConfigStore(config).load().config.sip
        assert stored.tls_ca == ca.strip() + "\n" and "\r" not in stored.tls_certificate
        assert stored.tls_key.reveal() == key.strip() + "\n"
        shown = await (await client.get("/accounts")).text()
        assert ca.splitlines()[1] in shown  # public: shown back to check
        assert key.splitlines()[1] not in shown and "stored — leave blank to keep it" in shown
        kept = await client.post("/accounts/tls", allow_redirects=False, data={
            "csrf": token, "sip.tls_ca": "", "sip.tls_certificate": _crlf(cert),
            "sip.tls_key": ""})  # blank key: keep the stored one; blank CA: the system's
        assert kept.status == 303
        stored = ConfigStore(config).load().config.sip
        assert stored.tls_ca == "" and stored.tls_key.reveal() == key.strip() + "\n"
        cleared = await client.post("/accounts/tls", allow_redirects=False, data={
            "csrf": token, "sip.tls_ca": "", "sip.tls_certificate": "", "sip.tls_key": "",
            "sip.tls_key.clear": "on"})
        assert cleared.status == 303
        assert not ConfigStore(config).load().config.sip.tls_key.is_set

    run_client(config, scenario)


def test_a_change_of_sip_tls_settings_restarts_registration(pki: TestCa) -> None:
    """The accounts register again with the new CA or certificate (after a call in progress),
    as for any account change; before, a [sip] change waited for the next reboot."""
    old = default_config()
    raw = config_to_dict(old)
    raw["sip"] = {"tls_ca": pki.cert.read_text()}
    assert _telephony_changed(old, config_from_dict(raw))
    assert not _telephony_changed(old, config_from_dict(config_to_dict(old)))
