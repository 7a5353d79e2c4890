"""Firmware update: take a RAUC bundle, check it, and hand it to `rauc install`.

RAUC does the real work (signature against the keyring in the image, compatible string, writing
the other root slot, switching the boot order), so a failed install leaves the running slot as it
was. What this module adds is what a web upload needs first: the upload is streamed to a hidden
temp file in the data directory (never held in RAM: bundles are hundreds of MiB), capped in size,
and checked for the bundle layout before it is renamed to its final name; a rejected upload
leaves nothing behind. Then `rauc install FILE` runs as a child process and its progress lines
("  20% Checking bundle", "LastError: ...") become the state the page and the API show.

The bundle layout (RAUC's documentation and its bundle reader): a SquashFS image (magic "hsqs";
in the verity format followed by its hash tree), then the CMS signature (DER), then the size of
that signature as an 8-byte big-endian integer at the very end. RAUC refuses signatures larger
than max-bundle-signature-size (64 KiB by default) and bundle files writable by other users, so
the file is written 0600 and closed before the handoff.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import re
import secrets
import shutil
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger("tipring.update")

BUNDLE_NAME = "update.raucb"
MAX_BUNDLE_BYTES = 512 * 1024 * 1024  # a root slot's size (genimage): no real bundle is larger
MAX_SIGNATURE_BYTES = 64 * 1024  # RAUC's default max-bundle-signature-size
SQUASHFS_MAGIC = b"hsqs"
SUPERBLOCK_BYTES = 96  # SquashFS 4.0 superblock; bytes_used is the u64 (LE) at offset 40
OUTPUT_LINES = 40
_PROGRESS = re.compile(r"^\s*(\d{1,3})% (.*)$")

State = Literal["idle", "receiving", "installing", "succeeded", "failed"]


class BundleError(ValueError):
    """The upload is not a bundle this device can take; the message says why, for the user."""


class BundleTooLarge(BundleError):
    """Over the size cap (HTTP 413)."""


class UpdateBusy(RuntimeError):
    """An upload or installation is already under way."""


@dataclass(frozen=True)
class BundleFacts:
    size: int
    image_bytes: int  # the SquashFS image's own size (its superblock's bytes_used)
    signature_bytes: int


def check_bundle(path: Path) -> BundleFacts:
    """Check the RAUC bundle layout of the file at `path`; raises BundleError saying what is
    wrong. (The signature itself is RAUC's to verify, against the image's keyring.)"""
    size = path.stat().st_size
    if size < SUPERBLOCK_BYTES + 8 + 2:
        raise BundleError(f"the file is too small to be a RAUC bundle ({size} bytes)")
    with path.open("rb") as file:
        head = file.read(SUPERBLOCK_BYTES)
        file.seek(size - 8)
        (signature_bytes,) = struct.unpack(">Q", file.read(8))
        if head[:4] != SQUASHFS_MAGIC:
            raise BundleError("not a RAUC bundle: it does not start with a SquashFS image "
                              "(a .raucb file is expected, not a disk image or archive)")
        major, minor = struct.unpack_from("<HH", head, 28)
        if (major, minor) != (4, 0):
            raise BundleError(f"unsupported SquashFS version {major}.{minor} (RAUC uses 4.0)")
        if signature_bytes == 0:
            raise BundleError("the bundle is not signed (its signature size is 0)")
        if signature_bytes > MAX_SIGNATURE_BYTES:
            raise BundleError(f"the signature size at the end of the file says "
                              f"{signature_bytes} bytes, more than RAUC accepts "
                              f"({MAX_SIGNATURE_BYTES}): the file is truncated or not a bundle")
        signature_at = size - 8 - signature_bytes
        (image_bytes,) = struct.unpack_from("<Q", head, 40)
        if signature_at < SUPERBLOCK_BYTES or image_bytes > signature_at:
            raise BundleError("the SquashFS image and the signature overlap: the file is "
                              "truncated or damaged")
        file.seek(signature_at)
        der = file.read(min(signature_bytes, 6))
    if _der_length(der) != signature_bytes:
        raise BundleError("the signature block is not a CMS (DER) structure of the size the "
                          "bundle says")
    return BundleFacts(size, image_bytes, signature_bytes)


def _der_length(head: bytes) -> int | None:
    """Total length of the DER SEQUENCE starting `head` (tag, length octets, contents)."""
    if len(head) < 2 or head[0] != 0x30:
        return None
    first = head[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if not 1 <= count <= 4 or len(head) < 2 + count:
        return None
    return 2 + count + int.from_bytes(head[2:2 + count], "big")


class FirmwareUpdate:
    """One upload-then-install at a time; its state is what the page and the API show."""

    def __init__(self, data_dir: Path, rauc: str = "rauc",
                 max_bytes: int = MAX_BUNDLE_BYTES) -> None:
        self.data_dir = data_dir
        self.rauc = rauc
        self.max_bytes = max_bytes
        self.state: State = "idle"
        self.percent: int | None = None
        self.step = ""
        self.message = ""
        self.output: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES)
        self.finished_wall: float | None = None
        self.task: asyncio.Task[None] | None = None  # the running install, if any

    @property
    def busy(self) -> bool:
        return self.state in ("receiving", "installing")

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "percent": self.percent, "step": self.step,
                "message": self.message, "output": list(self.output),
                "finished": self.finished_wall}

    async def receive(self, chunks: AsyncIterator[bytes],
                      announced: int | None = None) -> Path:
        """Stream an upload to a temp file, check it and give it its final name; raises
        BundleError (nothing kept), UpdateBusy or OSError (nothing kept)."""
        if self.busy:
            raise UpdateBusy("an update is already under way")
        if announced is not None and announced > self.max_bytes:
            raise BundleTooLarge(f"the file is larger than {self.max_bytes // 2**20} MiB")
        self.state, self.percent, self.step, self.message = "receiving", None, "receiving", ""
        self.output.clear()
        final = self.data_dir / BUNDLE_NAME
        for stale in (final, *self.data_dir.glob(f".{BUNDLE_NAME}.*.part")):
            _remove(stale)  # left by a power cut during an earlier upload or install
        temp = self.data_dir / f".{BUNDLE_NAME}.{secrets.token_hex(6)}.part"
        loop = asyncio.get_running_loop()
        try:
            if announced is not None and announced > shutil.disk_usage(self.data_dir).free:
                raise BundleError("the data partition has no room for this file")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                received = 0
                async for chunk in chunks:
                    received += len(chunk)
                    if received > self.max_bytes:
                        raise BundleTooLarge(f"the file is larger than "
                                             f"{self.max_bytes // 2**20} MiB")
                    await loop.run_in_executor(None, os.write, fd, chunk)
                await loop.run_in_executor(None, os.fsync, fd)
            finally:
                os.close(fd)
            if received == 0:
                raise BundleError("the upload was empty")
            facts = await loop.run_in_executor(None, check_bundle, temp)
            os.replace(temp, final)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            self.state = "idle"
            if isinstance(exc, BundleError):
                log.warning("firmware upload refused", extra={"reason": str(exc)})
            raise
        log.info("firmware bundle received", extra={"bytes": facts.size,
                                                    "signature_bytes": facts.signature_bytes})
        return final

    def start_install(self, bundle: Path) -> asyncio.Task[None]:
        """Run `rauc install` on `bundle` in the background (the bundle is removed after)."""
        self.state, self.percent, self.step = "installing", 0, "starting the installer"
        self.task = asyncio.get_running_loop().create_task(self._install(bundle))
        return self.task

    async def _install(self, bundle: Path) -> None:
        last_error = ""
        try:
            process = await asyncio.create_subprocess_exec(
                self.rauc, "install", str(bundle), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        except OSError as exc:
            self._finish(False, f"the installer could not be started ({self.rauc}: "
                                f"{exc.strerror or exc}); nothing was changed")
            _remove(bundle)
            return
        assert process.stdout is not None
        try:
            async for raw in process.stdout:
                line = raw.decode("utf-8", "replace").rstrip()
                if not line:
                    continue
                self.output.append(line)
                progress = _PROGRESS.match(line)
                if progress:
                    self.percent, self.step = min(int(progress.group(1)), 100), progress.group(2)
                elif line.startswith("LastError: "):
                    last_error = line.removeprefix("LastError: ")
            code = await process.wait()
        finally:
            _remove(bundle)
        if code == 0:
            self._finish(True, "Installed into the other root slot: reboot to start it.")
        else:
            why = last_error or (self.output[-1] if self.output else f"exit status {code}")
            self._finish(False, f"The installation failed: {why}. The running firmware is "
                                "unchanged.")

    def _finish(self, ok: bool, message: str) -> None:
        self.state = "succeeded" if ok else "failed"
        self.message = message
        self.finished_wall = time.time()
        (log.info if ok else log.error)("firmware update finished",
                                        extra={"ok": ok, "result": message})


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
