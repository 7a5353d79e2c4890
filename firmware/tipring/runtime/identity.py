"""This device's lasting identity for SIP outbound (RFC 5626 +sip.instance): a UUID URN made
once and kept beside the configuration, so it survives restarts and firmware updates (the root
file system is replaced by an update; the data partition is not) and is never the same on two
devices (a MAC-derived id would follow a cloned SD card's configuration to another board only if
copied; a random one made on the board does not even then)."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

FILE_NAME = "instance-id"


def instance_urn(folder: Path) -> str:
    """The `urn:uuid:...` kept in `folder/instance-id`, made on first use. A file that cannot
    be read or holds something else is replaced; if nothing can be written, a new URN for this
    run is returned (outbound still works, the registrar just sees a new instance)."""
    path = folder / FILE_NAME
    try:
        text = path.read_text(encoding="ascii").strip()
        return f"urn:uuid:{uuid.UUID(text.removeprefix('urn:uuid:'))}"
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    urn = f"urn:uuid:{uuid.uuid4()}"
    temporary = path.with_name(f".{FILE_NAME}.tmp")
    try:
        with open(temporary, "w", encoding="ascii") as out:
            out.write(urn + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("instance id not saved", extra={"path": str(path), "reason": str(exc)})
    return urn
