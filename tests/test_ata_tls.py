"""The device's own TLS settings (`[sip]` in the configuration: a CA, a client certificate and
its key, as PEM text) used for real: the device on the sim board registers over TLS with a
Kamailio whose certificate a test CA signed and which demands a client certificate; without
the CA, or with a key that does not load, the status says why it cannot register."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from peers.kamailio import Kamailio
from peers.pki import TestCa
from peers.ports import free_port
from test_ata_calls import until
from test_ata_features import config_file
from tipring.config import ConfigStore, config_from_dict, config_to_dict
from tipring.runtime.app import Device, Options

pytest_plugins = ["peers.fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def tls_config(tmp_path: Path, proxy: Kamailio, **sip: str) -> Path:
    path = config_file(tmp_path, proxy)
    raw = config_to_dict(ConfigStore(path).load().config, reveal_secrets=True)
    raw["accounts"][0].update(registrar=proxy.tls_hostport, transport="tls")
    raw["sip"] = sip
    ConfigStore(path).save(config_from_dict(raw))
    return path


def registration_after(path: Path, settle_s: float = 8.0) -> str:
    async def main() -> str:
        device = Device(Options(path, "sim", sip_host="127.0.0.1",
                                sip_port=free_port("127.0.0.1")))
        device.start()
        await device.start_telephony()
        try:
            words = lambda: str(device.status()["lines"][0]["registration"])  # noqa: E731
            try:
                await until(lambda: not words().startswith("registering"), settle_s, "settled")
            except AssertionError:
                pass
            return words()
        finally:
            await device.stop_telephony()
            device.close()

    return asyncio.run(asyncio.wait_for(main(), 45))


@pytest.fixture
def pki(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path / "pki")


def test_configured_ca_and_client_certificate_register_over_tls(
        tmp_path: Path, kamailio_factory: Callable[..., Kamailio], pki: TestCa) -> None:
    server, ours = pki.issue("127.0.0.1"), pki.issue("127.0.0.1")
    proxy = kamailio_factory(transport="tls", tls=(server.cert, server.key), client_ca=pki.cert)
    path = tls_config(tmp_path, proxy, tls_ca=pki.cert.read_text(),
                      tls_certificate=ours.cert.read_text(), tls_key=ours.key.read_text())
    assert registration_after(path).startswith("registered")
    assert not any(p.name.startswith(".sip-tls-") for p in path.parent.iterdir())  # key copy gone


def test_without_the_ca_the_server_is_not_trusted(
        tmp_path: Path, kamailio_factory: Callable[..., Kamailio], pki: TestCa) -> None:
    server = pki.issue("127.0.0.1")
    proxy = kamailio_factory(transport="tls", tls=(server.cert, server.key))
    words = registration_after(tls_config(tmp_path, proxy))
    # The handshake failure reaches the registration as a transport failure (503), and the
    # status says which: the user can tell an untrusted server from a wrong port.
    assert words.startswith("failed: 503 Transport error: server certificate not trusted: "
                            "unable to get local issuer certificate"), words


def test_a_key_that_does_not_match_the_certificate_is_reported(
        tmp_path: Path, kamailio_factory: Callable[..., Kamailio], pki: TestCa) -> None:
    server, ours, other = pki.issue("127.0.0.1"), pki.issue("127.0.0.1"), pki.issue("127.0.0.1")
    proxy = kamailio_factory(transport="tls", tls=(server.cert, server.key))
    path = tls_config(tmp_path, proxy, tls_ca=pki.cert.read_text(),
                      tls_certificate=ours.cert.read_text(), tls_key=other.key.read_text())
    words = registration_after(path, settle_s=1.0)
    assert words.startswith("cannot start: SIP TLS settings do not load")
    assert "PRIVATE KEY" not in words
