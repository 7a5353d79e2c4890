"""HTTPS: certificate upload checked before it is stored, and the server then speaking TLS with
Secure cookies and HSTS. Test certificates are made with the openssl command."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import ssl
import stat
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from test_web_support import csrf_for, run_client, setup_done

from peers.ports import free_port
from tipring.config import ConfigStore, default_config
from tipring.runtime.app import Device, Options
from tipring.web.server import start_web


def https_config(folder: Path, pair: tuple[bytes, bytes] | None = None, **web: object) -> Path:
    """A config with web.https on (and `web`), beside `pair` as the web certificate if given."""
    if pair is not None:
        (folder / "web-cert.pem").write_bytes(pair[0])
        (folder / "web-key.pem").write_bytes(pair[1])
    config = folder / "config.toml"
    base = default_config()
    ConfigStore(config).save(dataclasses.replace(
        base, web=dataclasses.replace(base.web, https=True, **web)))  # type: ignore[arg-type]
    return config


@contextlib.asynccontextmanager
async def serving(config: Path, port: int) -> AsyncIterator[Device]:
    """The sim device and its web server on 127.0.0.1:`port`, stopped afterwards."""
    device = Device(Options(config, "sim", "127.0.0.1", port))
    device.start()
    stop = await start_web(device)
    try:
        yield device
    finally:
        await stop()
        device.close()


def trusting() -> ssl.SSLContext:
    """A client context that takes any certificate (the tests check which one separately)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _make_pair(directory: Path, name: str) -> tuple[bytes, bytes]:
    cert, key = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", f"/CN={name}.tipring.test"],
        check=True, capture_output=True, timeout=30)
    return cert.read_bytes(), key.read_bytes()


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, bytes]]:
    directory = tmp_path_factory.mktemp("certs")
    return {name: _make_pair(directory, name) for name in ("one", "two")}


def _upload(token: str, cert: bytes, key: bytes, https: bool) -> FormData:
    form = FormData()
    form.add_field("csrf", token)
    form.add_field("cert", cert, filename="cert.pem")
    form.add_field("key", key, filename="key.pem")
    if https:
        form.add_field("https", "on")
    return form


def test_certificate_is_checked_before_it_is_stored(
        tmp_path: Path, pairs: dict[str, tuple[bytes, bytes]]) -> None:
    config = tmp_path / "config.toml"
    cert_file, key_file = tmp_path / "web-cert.pem", tmp_path / "web-key.pem"
    (cert_one, key_one), (_, key_two) = pairs["one"], pairs["two"]

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        token = await csrf_for(client, "/security")
        turned_on = await client.post("/security/https", data={"csrf": token, "https": "on"})
        assert turned_on.status == 400 and "upload them first" in await turned_on.text()
        garbage = await client.post("/security/https",
                                    data=_upload(token, b"not a cert", key_one, True))
        assert garbage.status == 400 and "no PEM certificate" in await garbage.text()
        mismatched = await client.post("/security/https",
                                       data=_upload(token, cert_one, key_two, True))
        text = await mismatched.text()
        assert mismatched.status == 400 and "refused by TLS" in text
        assert not cert_file.exists() and not key_file.exists()
        assert not device.config.web.https
        ok = await client.post("/security/https", data=_upload(token, cert_one, key_one, True))
        page = await ok.text()
        assert ok.status == 200 and "Certificate installed (SHA-256" in page
        assert key_one.decode().splitlines()[1] not in page
        assert device.config.web.https

    run_client(config, scenario)
    assert cert_file.read_bytes() == cert_one and key_file.read_bytes() == key_one
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_https_server_sets_secure_cookie_and_hsts(
        tmp_path: Path, pairs: dict[str, tuple[bytes, bytes]]) -> None:
    config, port = https_config(tmp_path, pairs["one"]), free_port("127.0.0.1")

    async def scenario() -> None:
        async with serving(config, port), aiohttp.ClientSession() as session, \
                asyncio.timeout(10):
            response = await session.get(f"https://127.0.0.1:{port}/setup", ssl=trusting())
            assert response.status == 200
            cookie = response.headers["Set-Cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert response.headers["Strict-Transport-Security"].startswith("max-age=")
            with pytest.raises(aiohttp.ClientError):
                await session.get(f"http://127.0.0.1:{port}/setup")  # no plain HTTP

    asyncio.run(scenario())


def test_first_start_makes_the_devices_own_certificate_and_https_uses_it(tmp_path: Path) -> None:
    """No certificate stored: the device makes its own (fresh key, its mDNS name and addresses),
    shows its fingerprint, and with web.https the server presents exactly that certificate."""
    import hashlib

    from tipring.web import tls

    config, port = https_config(tmp_path), free_port("127.0.0.1")

    async def scenario() -> bytes:
        async with serving(config, port):
            _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trusting())
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            writer.close()
            return der

    der = asyncio.run(scenario())
    files = tls.CertificateFiles.beside(config)
    assert files.present and stat.S_IMODE(files.key.stat().st_mode) == 0o600
    shown = tls.current_fingerprint(files)
    assert shown is not None and shown.replace(":", "").lower() == hashlib.sha256(der).hexdigest()
    text = subprocess.run(["openssl", "x509", "-noout", "-text"], input=files.cert.read_bytes(),
                          capture_output=True, check=True).stdout.decode()
    assert "DNS:tipring.local" in text
    again = tls.current_fingerprint(files)
    assert again == shown  # made once: a restart keeps it (the owner checked that fingerprint)


def test_the_certificate_is_made_even_before_the_data_folder_exists(tmp_path: Path) -> None:
    from tipring.web import tls

    files = tls.CertificateFiles.beside(tmp_path / "not-yet" / "config.toml")
    assert tls.make_self_signed(files, ["tipring.local", "fe80::1%eth0", "192.0.2.7"])
    assert files.present
    text = subprocess.run(["openssl", "x509", "-noout", "-text"], input=files.cert.read_bytes(),
                          capture_output=True, check=True).stdout.decode()
    assert "IP Address:192.0.2.7" in text and "fe80" not in text
    blocked = tls.CertificateFiles.beside(tmp_path / "file" / "config.toml")
    (tmp_path / "file").write_text("a file where the folder should be")
    assert tls.make_self_signed(blocked, ["tipring.local"]) is None  # logged, never raised


def test_plain_http_port_sends_browsers_to_the_https_page(
        tmp_path: Path, pairs: dict[str, tuple[bytes, bytes]]) -> None:
    """web.redirect_port: http://device/... answers 308 to https://device:port/... (same path
    and query, the Host's name kept), sets no cookie and serves no page; a Host header that is
    not a plain name is replaced by the listen address, so nobody can aim the redirect."""
    port, plain = free_port("127.0.0.1"), free_port("127.0.0.1")
    config = https_config(tmp_path, pairs["one"], redirect_port=plain)

    async def scenario() -> None:
        async with serving(config, port), aiohttp.ClientSession() as session, \
                asyncio.timeout(10):
            for method in ("GET", "POST"):
                moved = await session.request(
                    method, f"http://127.0.0.1:{plain}/calls?page=2", allow_redirects=False)
                assert moved.status == 308, method
                assert moved.headers["Location"] == f"https://127.0.0.1:{port}/calls?page=2"
                assert "Set-Cookie" not in moved.headers
            named = await session.get(f"http://127.0.0.1:{plain}/",
                                      headers={"Host": "tipring.local"},
                                      allow_redirects=False)
            assert named.headers["Location"] == f"https://tipring.local:{port}/"
            aimed = await session.get(f"http://127.0.0.1:{plain}/",
                                      headers={"Host": "evil.test/@x"},
                                      allow_redirects=False)
            assert aimed.headers["Location"] == f"https://127.0.0.1:{port}/"
            landed = await session.get(f"http://127.0.0.1:{plain}/setup", ssl=trusting())
            assert landed.status == 200 and str(landed.url).startswith("https://")
        with socket.socket() as probe:  # stopping the web stops the redirect too
            probe.bind(("127.0.0.1", plain))

    asyncio.run(scenario())


def test_security_page_sets_the_redirect_port(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        token = await csrf_for(client, "/security")
        form = {"csrf": token, "web.listen": "127.0.0.1", "web.port": "8080"}
        same = await client.post("/security/web", data={**form, "web.redirect_port": "8080"})
        assert same.status == 400
        assert "must not be the web port itself (8080)" in await same.text()
        assert device.config.web.redirect_port == 0
        ok = await client.post("/security/web", data={**form, "web.redirect_port": "8081"},
                               allow_redirects=False)
        assert ok.status == 303 and device.config.web.redirect_port == 8081

    run_client(config, scenario)


def test_redirect_port_must_differ_from_the_web_port() -> None:
    from tipring.config import ConfigError, config_from_dict, config_to_dict, default_config

    raw = config_to_dict(default_config())
    raw["web"]["redirect_port"] = raw["web"]["port"]
    with pytest.raises(ConfigError) as refused:
        config_from_dict(raw)
    assert "web.redirect_port: must not be the web port itself" in str(refused.value)
