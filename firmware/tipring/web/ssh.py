"""SSH access on the Security page and at /api/v1/ssh: on or off, and whose keys it takes.

Public keys are not secrets, so they are shown back with their fingerprints (as `ssh-keygen
-l` prints them), which is how an administrator checks that the key on the device is the one
on their laptop. Switching goes through `Device.apply_config`, which applies it to the system
before saving: a refused or failed switch changes neither the running state nor the file.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tipring.config import Config, ConfigError, config_from_dict, config_to_dict
from tipring.config.schema import SshConfig
from tipring.config.sshkey import SshKeyError, parse_public_key
from tipring.runtime.ssh import SshStatus

from .api import apply_edit, json_body
from .appstate import device

FIELD = "ssh.authorized_keys"


def key_rows(keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """What the page and the API show for each stored key."""
    rows = []
    for line in keys:
        try:
            key = parse_public_key(line)
        except SshKeyError:
            continue  # a stored config is validated; never fail a page over one line
        rows.append({"type": key.key_type, "family": key.family, "bits": key.bits,
                     "comment": key.comment, "fingerprint": key.fingerprint})
    return rows


def keys_from_text(text: str) -> tuple[list[str], list[int]]:
    """The keys of a text area, one per line (blank lines and # comments skipped), and the
    line number each came from, so an error can say "line 3"."""
    keys, numbers = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keys.append(stripped)
            numbers.append(number)
    return keys, numbers


def key_errors(error: ConfigError, numbers: list[int]) -> tuple[str | None, list[str]]:
    """The SSH problems of `error` in words for the text area (by line), and the others."""
    mine, other = [], []
    for item in error.errors:
        if item.path == FIELD:
            mine.append(item.reason)
        elif item.path.startswith(FIELD + "["):
            index = int(item.path[len(FIELD) + 1:-1])
            where = f"line {numbers[index]}" if index < len(numbers) else f"key {index + 1}"
            mine.append(f"the key on {where} {item.reason}")
        elif not item.path.startswith("ssh."):
            other.append(str(item))
        else:
            mine.append(str(item))
    return ("; ".join(mine) or None), other


def view(config: SshConfig, status: SshStatus, *, posted_text: str | None = None,
         error: str | None = None, posted_enabled: bool | None = None) -> dict[str, Any]:
    """The Security page's SSH section."""
    return {"enabled": config.enabled if posted_enabled is None else posted_enabled,
            "text": "\n".join(config.authorized_keys) if posted_text is None else posted_text,
            "keys": key_rows(config.authorized_keys), "status": status, "error": error}


def summary(config: SshConfig, status: SshStatus) -> dict[str, Any]:
    """GET /api/v1/ssh: the setting, each key's fingerprint, and whether SSH is on now."""
    return {"enabled": config.enabled, "authorized_keys": list(config.authorized_keys),
            "keys": key_rows(config.authorized_keys),
            "status": {"on": status.on, "detail": status.detail}}


def with_ssh(config: Config, enabled: bool, keys: list[str]) -> Config:
    """`config` with the SSH table replaced, validated (raises ConfigError with field paths)."""
    raw = config_to_dict(config)
    raw["ssh"] = {"enabled": enabled, "authorized_keys": keys}
    return config_from_dict(raw)


async def get_ssh(request: web.Request) -> web.Response:
    dev = device(request)
    return web.json_response(summary(dev.config.ssh, await dev.ssh_status()))


async def put_ssh(request: web.Request) -> web.Response:
    """Body {enabled?, authorized_keys?}: the fields given replace the stored ones."""
    body = await json_body(request)
    config = await apply_edit(request, lambda raw: raw["ssh"].update(body),  # unknown keys and
                              failed="SSH was not changed")                # wrong types: 422
    if isinstance(config, web.Response):
        return config
    return web.json_response(summary(config.ssh, await device(request).ssh_status()))


def routes() -> list[web.RouteDef]:
    return [web.get("/api/v1/ssh", get_ssh), web.put("/api/v1/ssh", put_ssh)]

