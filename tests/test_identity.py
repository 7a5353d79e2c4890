"""The device's outbound instance id: made once, kept, and what REGISTER carries."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

from tipring.runtime.identity import FILE_NAME, instance_urn

pytest_plugins = ["peers.fixtures"]


def test_made_once_and_kept(tmp_path: Path) -> None:
    first = instance_urn(tmp_path)
    assert first.startswith("urn:uuid:") and uuid.UUID(first[9:]).version == 4
    assert instance_urn(tmp_path) == first
    assert (tmp_path / FILE_NAME).read_text().strip() == first


def test_a_damaged_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_bytes(b"\xff not a uuid")
    urn = instance_urn(tmp_path)
    assert uuid.UUID(urn[9:]) and instance_urn(tmp_path) == urn


def test_an_unwritable_folder_still_gives_an_id(tmp_path: Path) -> None:
    urn = instance_urn(tmp_path / "missing")
    assert urn.startswith("urn:uuid:") and not (tmp_path / "missing").exists()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_an_outbound_account_registers_with_the_devices_instance(
        tmp_path: Path, kamailio_factory) -> None:
    from test_ata_features import config_file
    from test_ata_calls import running_device
    from tipring.config import ConfigStore, config_from_dict, config_to_dict

    proxy = kamailio_factory()
    path = config_file(tmp_path, proxy)
    raw = config_to_dict(ConfigStore(path).load().config, reveal_secrets=True)
    raw["accounts"][0]["outbound"] = True
    ConfigStore(path).save(config_from_dict(raw))

    async def main() -> bytes:
        device = await running_device(path)
        try:
            assert device.telephony is not None
            return next(r.data for r in device.telephony.sip.trace.records()
                        if r.direction == "out" and r.data.startswith(b"REGISTER "))
        finally:
            await device.stop_telephony()
            device.close()

    register = asyncio.run(asyncio.wait_for(main(), 45))
    urn = instance_urn(path.parent)
    assert f'+sip.instance="<{urn}>"'.encode() in register and b"reg-id=1" in register
    assert os.stat(path.parent / FILE_NAME).st_size > 0

