"""Persistent API tokens: stored as SHA-256 digests in a 0600 file beside the configuration,
named, with creation, last use and expiry; they survive a restart (a new device and app on the
same files) and a password change revokes them all, durably."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import stat
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from test_web_support import PASSWORD, csrf_for, run_client, setup_done

from tipring.runtime.app import Device
from tipring.web.tokens import (
    FILE_NAME,
    LAST_USE_STEP_S,
    MAX_TOKENS,
    ApiTokens,
    TokenError,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _flush(tokens: ApiTokens) -> None:
    asyncio.run(tokens.flush())


def test_file_holds_digests_not_tokens_and_is_0600(tmp_path: Path) -> None:
    clock = Clock()
    tokens = ApiTokens.beside(tmp_path / "config.toml", clock)
    token, record = tokens.issue("backup script", 3600)
    _flush(tokens)
    path = tmp_path / FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert token not in text
    stored = json.loads(text)["tokens"]
    assert stored[0]["sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert (stored[0]["name"], stored[0]["created"], stored[0]["expires"]) == (
        "backup script", clock.now, clock.now + 3600)
    assert len(token) >= 43  # 256 bits, URL-safe base64
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]  # no temp file left
    assert record.public().keys() == {"id", "name", "created", "expires", "last_used"}


def test_reload_expiry_last_use_and_revocation(tmp_path: Path) -> None:
    clock = Clock()
    config = tmp_path / "config.toml"
    tokens = ApiTokens.beside(config, clock)
    keep, _ = tokens.issue("keep", 7200)
    short, _ = tokens.issue("short", 60)
    gone, gone_record = tokens.issue("gone", 7200)
    assert tokens.revoke_id(gone_record.id) and not tokens.revoke_id(gone_record.id)
    _flush(tokens)
    clock.now += 61
    again = ApiTokens.beside(config, clock)  # a restart
    assert again.valid(keep) and not again.valid(short) and not again.valid(gone)
    assert not again.valid("") and not again.valid("x" * 200)
    assert [r.name for r in again.listing()] == ["keep"]
    _flush(again)  # the last use, and the expired one dropped
    assert json.loads((tmp_path / FILE_NAME).read_text())["tokens"][0]["last_used"] == clock.now
    first_use = clock.now
    clock.now += LAST_USE_STEP_S / 2
    assert again.check(keep) is not None and not again.dirty  # too soon to write again
    clock.now = first_use + LAST_USE_STEP_S
    assert again.check(keep) is not None and again.dirty
    _flush(again)
    assert ApiTokens.beside(config, clock).listing()[0].last_used == clock.now
    clock.now += 7200
    assert not again.valid(keep)  # expired
    assert again.revoke_all() == 1


def test_bad_requests_and_the_cap(tmp_path: Path) -> None:
    tokens = ApiTokens(tmp_path / FILE_NAME, Clock())
    with pytest.raises(TokenError, match="lifetime"):
        tokens.issue("x", 5)
    with pytest.raises(TokenError, match="lifetime"):
        tokens.issue("x", 10 * 365 * 86400)
    with pytest.raises(TokenError, match="name"):
        tokens.issue("line\nbreak", 3600)
    issued = [tokens.issue(f"t{i}", 3600)[0] for i in range(MAX_TOKENS + 1)]
    assert len(tokens.listing()) == MAX_TOKENS
    assert not tokens.valid(issued[0]) and tokens.valid(issued[-1])  # least recently used went


def test_unusable_file_leaves_no_token_valid(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / FILE_NAME
    for junk in (b"{not json", b'{"tokens": 5}', b'{"tokens": [{"id": "a"}]}'):
        path.write_bytes(junk)
        with caplog.at_level(logging.WARNING, "tipring.web"):
            tokens = ApiTokens.beside(tmp_path / "config.toml")
        assert tokens.listing() == []
        assert "API token file unusable" in caplog.text
        caplog.clear()


def test_api_tokens_survive_a_restart_and_a_password_change_revokes_them(
        tmp_path: Path) -> None:
    config = tmp_path / "config.toml"

    async def first(client: TestClient, device: Device) -> str:
        await setup_done(client)
        bad = await client.post("/api/v1/token", json={"password": PASSWORD,
                                                      "expires_in": 1})
        assert bad.status == 422 and (await bad.json())["errors"][0]["field"] == "expires_in"
        issued = await client.post("/api/v1/token", json={
            "password": PASSWORD, "name": "provisioning", "expires_in": 86400})
        assert issued.status == 200
        body = await issued.json()
        assert body["expires_in"] == 86400 and body["name"] == "provisioning"
        assert body["token"] not in (tmp_path / FILE_NAME).read_text()
        return str(body["token"])

    token = run_client(config, first)
    auth = {"Authorization": f"Bearer {token}"}

    async def after_restart(client: TestClient, device: Device) -> None:
        status = await client.get("/api/v1/status", headers=auth)
        assert status.status == 200  # a new device and app: the token still works
        listed = (await (await client.get("/api/v1/tokens", headers=auth)).json())["tokens"]
        assert [t["name"] for t in listed] == ["provisioning"]
        assert listed[0]["last_used"] is not None and "sha256" not in listed[0]
        other = (await (await client.post("/api/v1/token", json={
            "password": PASSWORD, "name": "other"})).json())
        assert (await client.delete(f"/api/v1/tokens/{other['id']}",
                                    headers=auth)).status == 204
        assert (await client.get("/api/v1/status", headers={
            "Authorization": f"Bearer {other['token']}"})).status == 401
        assert (await client.delete("/api/v1/tokens/nope", headers=auth)).status == 404
        changed = await client.post("/api/v1/password", headers=auth, json={
            "current": PASSWORD, "new": "a brand new admin passphrase"})
        assert changed.status == 204

    run_client(config, after_restart)

    async def after_second_restart(client: TestClient, device: Device) -> None:
        assert (await client.get("/api/v1/status", headers=auth)).status == 401

    run_client(config, after_second_restart)
    assert json.loads((tmp_path / FILE_NAME).read_text())["tokens"] == []


def test_security_page_creates_shows_once_lists_and_revokes(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        token_csrf = await csrf_for(client, "/security")
        wrong = await client.post("/security/tokens", data={
            "csrf": token_csrf, "name": "nas", "lifetime": "30d", "password": "nope"})
        assert wrong.status == 401 and 'id="token-password-error"' in await wrong.text()
        assert "No API tokens." in await (await client.get("/security")).text()
        made = await client.post("/security/tokens", data={
            "csrf": token_csrf, "name": "nas", "lifetime": "30d", "password": PASSWORD})
        assert made.status == 200
        page = await made.text()
        import re
        shown = re.search(r'<code id="token-value">([^<]+)</code>', page)
        assert shown is not None and "nas" in page
        token = shown.group(1)
        again = await (await client.get("/security")).text()
        assert token not in again and 'id="token-value"' not in again  # shown once
        auth = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/api/v1/config", headers=auth)).status == 200
        listed = (await (await client.get("/api/v1/tokens", headers=auth)).json())["tokens"]
        assert listed[0]["expires"] - listed[0]["created"] == 30 * 86400
        revoke = await client.post(f"/security/tokens/{listed[0]['id']}/revoke",
                                   data={"csrf": token_csrf})
        assert revoke.status == 200 and "API token revoked." in await revoke.text()
        assert (await client.get("/api/v1/config", headers=auth)).status == 401

    run_client(tmp_path / "config.toml", scenario)
