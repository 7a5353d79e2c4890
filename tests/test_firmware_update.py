"""Firmware update: a RAUC bundle uploaded on the Maintenance page or to the API is streamed to
the data directory, checked for the bundle layout (SquashFS, CMS signature, 8-byte big-endian
signature size) before it gets its final name, and handed to `rauc install`. The bundles are
built here with a real CMS signature from openssl; `rauc` is a stub on PATH that records its
arguments and the file it was given, and prints progress as RAUC's client does."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from test_web_support import PASSWORD, csrf_for, run_client, setup_done

from tipring.runtime.app import Device
from tipring.runtime.firmware_update import (
    BUNDLE_NAME,
    BundleError,
    FirmwareUpdate,
    check_bundle,
)

STUB = """#!{python}
import hashlib, json, os, pathlib, sys, time
here = pathlib.Path(__file__).parent
bundle = pathlib.Path(sys.argv[2])
data = bundle.read_bytes()
record = {{"args": sys.argv[1:], "sha256": hashlib.sha256(data).hexdigest(),
          "mode": oct(bundle.stat().st_mode & 0o777)}}
(here / "calls.jsonl").open("a").write(json.dumps(record) + "\\n")
release = here / "release"
if (here / "hold").exists():
    while not release.exists():
        time.sleep(0.05)
print("  0% Installing", flush=True)
print("  0% Determining slot states", flush=True)
print(" 20% Determining slot states done.", flush=True)
print(" 20% Checking bundle", flush=True)
print(" 40% Checking bundle done.", flush=True)
{outcome}
"""
SUCCEEDS = """print(" 80% Copying image to rootfs.1", flush=True)
print("100% Installing done.", flush=True)
print("Installing `%s` succeeded" % bundle, flush=True)
"""
FAILS = """print("LastError: Failed to check bundle identifier: Compatible mismatch: Expected "
      "'tipring-rpi4' but bundle manifest has 'tipring-rpi3'", flush=True)
print("Installing `%s` failed" % bundle, file=sys.stderr, flush=True)
sys.exit(1)
"""


def _stub(directory: Path, outcome: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "rauc"
    path.write_text(STUB.format(python=sys.executable, outcome=outcome))
    path.chmod(0o755)
    return path


def _calls(directory: Path) -> list[dict[str, object]]:
    log = directory / "calls.jsonl"
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    keys = tmp_path_factory.mktemp("keys")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(keys / "key.pem"),
                    "-out", str(keys / "cert.pem"), "-subj", "/CN=TipRing test signing",
                    "-days", "2"], check=True, capture_output=True)
    return keys / "key.pem", keys / "cert.pem"


def _squashfs(payload: bytes, *, magic: bytes = b"hsqs", major: int = 4) -> bytes:
    """A SquashFS 4.0 superblock and `payload`, padded to 4 KiB as mksquashfs does."""
    used = 96 + len(payload)
    superblock = struct.pack("<4sIIIIHHHHHHQQ6Q", magic, 1, 1_700_000_000, 131072, 0, 1, 17,
                             0, 1, major, 0, 0, used, *([used - 8] * 6))
    image = superblock + payload
    return image + bytes(-len(image) % 4096)


def make_bundle(where: Path, signer: tuple[Path, Path], payload: bytes = b"rootfs" * 5000,
                **squash: object) -> Path:
    image = where.with_suffix(".img")
    image.write_bytes(_squashfs(payload, **squash))  # type: ignore[arg-type]
    signature = subprocess.run(
        ["openssl", "cms", "-sign", "-binary", "-outform", "DER", "-in", str(image),
         "-signer", str(signer[1]), "-inkey", str(signer[0]), "-nosmimecap"],
        check=True, capture_output=True).stdout
    where.write_bytes(image.read_bytes() + signature + struct.pack(">Q", len(signature)))
    image.unlink()
    return where


# -- the layout check --------------------------------------------------------------------------

def test_a_signed_bundle_passes_and_damaged_ones_say_why(tmp_path: Path,
                                                         signer: tuple[Path, Path]) -> None:
    good = make_bundle(tmp_path / "good.raucb", signer)
    facts = check_bundle(good)
    data = good.read_bytes()
    assert facts.size == len(data) and facts.image_bytes == 96 + 30000
    assert 300 < facts.signature_bytes < 4096  # a CMS with the signer's certificate

    def refused(name: str, content: bytes) -> str:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(BundleError) as caught:
            check_bundle(path)
        return str(caught.value)

    assert "does not start with a SquashFS" in refused("zip", b"PK\x03\x04" + data[4:])
    assert "too small" in refused("tiny", b"hsqs")
    assert "not signed" in refused("unsigned", data[:-8] + bytes(8))
    assert "more than RAUC accepts" in refused("truncated", data[:-100])
    assert "overlap" in refused("overlap", data[:-8] + struct.pack(">Q", len(data) - 50))
    assert "not a CMS" in refused("garbled", data[:facts.size - 8 - facts.signature_bytes]
                                  + b"\x00" * facts.signature_bytes + data[-8:])
    assert "version 3.0" in refused("v3", make_bundle(tmp_path / "v3.raucb", signer,
                                                      major=3).read_bytes())


# -- through the web page and the API ----------------------------------------------------------

@pytest.fixture
def rauc_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    stubs = tmp_path / "bin"
    _stub(stubs, SUCCEEDS)
    monkeypatch.setenv("PATH", f"{stubs}{os.pathsep}{os.environ['PATH']}")
    yield stubs


async def _upload(client: TestClient, bundle: Path | None, *, csrf: str | None) -> object:
    form = FormData()
    if csrf is not None:
        form.add_field("csrf", csrf)
    if bundle is not None:
        form.add_field("bundle", bundle.read_bytes(), filename=bundle.name,
                       content_type="application/octet-stream")
    else:
        form.add_field("bundle", b"", filename="", content_type="application/octet-stream")
    return await client.post("/maintenance/firmware", data=form, allow_redirects=False)


def _files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_page_upload_is_checked_then_installed(tmp_path: Path, rauc_on_path: Path,
                                               signer: tuple[Path, Path]) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    bundle = make_bundle(tmp_path / "tipring-rpi4-1.2.raucb", signer,
                         payload=os.urandom(400_000))  # larger than the request cap of forms

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        token = await csrf_for(client, "/maintenance")
        response = await _upload(client, bundle, csrf=token)
        assert response.status == 303  # type: ignore[attr-defined]
        assert device.firmware.task is not None
        await device.firmware.task
        status = device.firmware.status()
        assert status["state"] == "succeeded" and status["percent"] == 100
        assert "reboot to start it" in status["message"]
        assert "Installing done." in status["output"][-2]
        page = await (await client.get("/maintenance")).text()
        assert "Installed into the other root slot" in page
        assert (await (await client.get("/maintenance/firmware.json")).json())[
            "state"] == "succeeded"

    run_client(data_dir / "config.toml", scenario)
    calls = _calls(rauc_on_path)
    assert [c["args"] for c in calls] == [["install", str(data_dir / BUNDLE_NAME)]]
    assert calls[0]["sha256"] == hashlib.sha256(bundle.read_bytes()).hexdigest()  # all of it
    assert calls[0]["mode"] == "0o600"  # RAUC refuses bundles others could write
    assert BUNDLE_NAME not in _files(data_dir)  # removed after the install


def test_rejected_uploads_write_nothing(tmp_path: Path, rauc_on_path: Path,
                                        signer: tuple[Path, Path]) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    good = make_bundle(tmp_path / "good.raucb", signer, payload=b"x" * 200_000)
    disk_image = tmp_path / "sdcard.img"
    disk_image.write_bytes(b"\x00" * 446 + good.read_bytes()[:20_000])

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        before = _files(data_dir)
        token = await csrf_for(client, "/maintenance")
        wrong = await _upload(client, disk_image, csrf=token)
        assert wrong.status == 400  # type: ignore[attr-defined]
        text = await wrong.text()  # type: ignore[attr-defined]
        assert "does not start with a SquashFS image" in text and "Nothing was written" in text
        assert (await _upload(client, None, csrf=token)).status == 400  # type: ignore[attr-defined]
        device.firmware.max_bytes = 100_000
        big = await _upload(client, good, csrf=token)
        assert big.status == 413  # type: ignore[attr-defined]
        assert "larger than" in await big.text()  # type: ignore[attr-defined]
        forged = await _upload(client, good, csrf="not-the-token")
        assert forged.status == 403  # type: ignore[attr-defined]
        no_token = await _upload(client, good, csrf=None)
        assert no_token.status == 403  # type: ignore[attr-defined]
        assert _files(data_dir) == before  # no temp file, no bundle
        assert device.firmware.state == "idle" and device.firmware.task is None

    run_client(data_dir / "config.toml", scenario)
    assert _calls(rauc_on_path) == []  # the installer was never started


def test_failed_install_says_why(tmp_path: Path, signer: tuple[Path, Path]) -> None:
    failing = _stub(tmp_path / "failing", FAILS)
    bundle = make_bundle(tmp_path / "b.raucb", signer)
    data_dir = tmp_path / "data"
    data_dir.mkdir()

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        device.firmware.rauc = str(failing)
        response = await _upload(client, bundle, csrf=await csrf_for(client, "/maintenance"))
        assert response.status == 303  # type: ignore[attr-defined]
        assert device.firmware.task is not None
        await device.firmware.task
        status = device.firmware.status()
        assert status["state"] == "failed" and status["percent"] == 40
        assert "Compatible mismatch" in status["message"]
        assert "running firmware is unchanged" in status["message"]
        assert "Compatible mismatch" in await (await client.get("/maintenance")).text()
        device.firmware.rauc = str(tmp_path / "no-such-rauc")
        await _upload(client, bundle, csrf=await csrf_for(client, "/maintenance"))
        await device.firmware.task
        assert "could not be started" in device.firmware.message
        assert BUNDLE_NAME not in _files(data_dir)

    run_client(data_dir / "config.toml", scenario)
    assert len(_calls(tmp_path / "failing")) == 1


def test_api_upload_progress_and_one_at_a_time(tmp_path: Path, rauc_on_path: Path,
                                               signer: tuple[Path, Path]) -> None:
    bundle = make_bundle(tmp_path / "b.raucb", signer).read_bytes()
    (rauc_on_path / "hold").touch()  # the stub waits for "release"

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        token = (await (await client.post("/api/v1/token",
                                          json={"password": PASSWORD})).json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert (await (await client.get("/api/v1/firmware", headers=auth)).json())[
            "state"] == "idle"
        bad = await client.post("/api/v1/firmware", headers=auth, data=b"not a bundle" * 20)
        assert bad.status == 400 and "SquashFS" in (await bad.json())["error"]
        started = await client.post("/api/v1/firmware", headers=auth, data=bundle)
        assert started.status == 202 and (await started.json())["state"] == "installing"
        busy = await client.post("/api/v1/firmware", headers=auth, data=bundle)
        assert busy.status == 409
        (rauc_on_path / "release").touch()
        assert device.firmware.task is not None
        await asyncio.wait_for(device.firmware.task, 60)
        done = await (await client.get("/api/v1/firmware", headers=auth)).json()
        assert done["state"] == "succeeded" and done["percent"] == 100

    run_client(tmp_path / "data" / "config.toml", scenario)
    assert len(_calls(rauc_on_path)) == 1


def test_receive_streams_in_chunks_and_cleans_up_on_a_broken_upload(tmp_path: Path) -> None:
    update = FirmwareUpdate(tmp_path)

    async def broken() -> object:
        yield b"hsqs" + bytes(1000)
        raise ConnectionResetError("client went away")

    async def main() -> None:
        (tmp_path / f".{BUNDLE_NAME}.0123456789ab.part").write_bytes(b"torn by a power cut")
        with pytest.raises(ConnectionResetError):
            await update.receive(broken())  # type: ignore[arg-type]

    asyncio.run(main())
    assert list(tmp_path.iterdir()) == [] and update.state == "idle"


# -- what the image must provide for the handoff -----------------------------------------------

BUILDROOT = Path(__file__).resolve().parent.parent / "buildroot"


def test_the_image_can_run_the_handoff() -> None:
    """`rauc install` asks the RAUC service over D-Bus; RAUC's D-Bus policy lets root call the
    installer, and the web server runs in tipring.service as root (no User=), so no extra rule
    is needed. The service writes bundles to /data/tipring (beside the configuration), which is
    on the data partition RAUC trusts (an ext4 on a root-owned block device). The bundles we
    check are the verity format the manifest asks for and system.conf accepts."""
    import configparser

    unit = (BUILDROOT / "package/python-tipring/tipring.service").read_text()
    service = [line.strip() for line in unit.splitlines()]
    assert not any(line.startswith(("User=", "DynamicUser=")) for line in service)
    assert "Environment=TIPRING_CONFIG=/data/tipring/config.toml" in service
    for defconfig in (BUILDROOT / "configs").glob("tipring_*_defconfig"):
        text = defconfig.read_text().splitlines()
        assert {"BR2_PACKAGE_RAUC=y", "BR2_PACKAGE_RAUC_DBUS=y", "BR2_PACKAGE_DBUS=y"} <= set(
            text), defconfig.name
    system = configparser.ConfigParser(interpolation=None)
    system.read_string((BUILDROOT / "board/tipring/rauc/system.conf.in").read_text())
    assert system["keyring"]["path"] == "/etc/rauc/keyring.pem"
    assert "max-bundle-signature-size" not in system["system"]  # RAUC's 64 KiB default holds
    manifest = configparser.ConfigParser(interpolation=None)
    manifest.read_string((BUILDROOT / "board/tipring/rauc/manifest.raucm.in").read_text())
    assert manifest["bundle"]["format"] == "verity"
    assert "-plain" in system["system"]["bundle-formats"]
