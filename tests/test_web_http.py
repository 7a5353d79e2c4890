"""The web UI and API at the HTTP level: first-boot gating, sign-in, CSRF, rate limiting,
secrets, per-field errors and saving. Fast: in-process app on loopback, no browser."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from pathlib import Path

from aiohttp.test_utils import TestClient
from test_web_support import PASSWORD, csrf_for, csrf_of, run_client, setup_done

from tipring.config import ConfigStore
from tipring.runtime.app import Device
from tipring.web.api import openapi_document

SIP_SECRET = "Zq9-sip-SECRET-value-77"


def _routes(client: TestClient) -> list[tuple[str, str]]:
    out = []
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if route.method == "HEAD" or path is None:
            continue
        concrete = re.sub(r"\{line[^}]*\}", "0", path)
        concrete = re.sub(r"\{action\}", "lift", concrete)
        concrete = re.sub(r"\{index[^}]*\}", "0", concrete)
        concrete = re.sub(r"\{[^}]+\}", "x", concrete)
        out.append((route.method, concrete))
    return out


def test_first_boot_gates_every_route(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"

    async def scenario(client: TestClient, device: Device) -> None:
        routes = _routes(client)
        assert len(routes) > 20
        for method, path in routes:
            if path in ("/setup",) or path.startswith("/static"):
                continue
            response = await client.request(method, path, allow_redirects=False,
                                            data={"csrf": "x"})
            if path.startswith("/api/"):
                assert response.status == 401, (method, path)
                assert "setup" in (await response.json())["error"]
            else:
                assert response.status == 303, (method, path, response.status)
                assert response.headers["Location"] == "/setup"
        assert (await client.get("/static/style.css")).status == 200
        assert not config.exists()  # nothing was written by any of those requests

    run_client(config, scenario)


def test_setup_refuses_weak_password_then_saves_a_hash(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"

    async def scenario(client: TestClient, device: Device) -> None:
        token = await csrf_for(client, "/setup")
        weak = await client.post("/setup", data={
            "csrf": token, "password": "password", "confirm": "password",
            "device.region": "US", "device.timezone": "UTC"})
        assert weak.status == 400
        html = await weak.text()
        assert 'id="password-error"' in html and "at least 12 characters" in html
        assert not config.exists()
        bad_region = await client.post("/setup", data={
            "csrf": token, "password": PASSWORD, "confirm": PASSWORD,
            "device.region": "XX", "device.timezone": "UTC"})
        html = await bad_region.text()
        assert bad_region.status == 400
        assert re.search(r'id="device.region-error">must be one of', html)
        assert not config.exists()
        await setup_done(client)
        assert (await client.get("/", allow_redirects=False)).status == 200  # signed in
        assert (await client.get("/setup", allow_redirects=False)).status == 303  # done for good

    run_client(config, scenario)
    text = config.read_text()
    assert PASSWORD not in text
    stored = ConfigStore(config).load().config.web.admin_password_hash.reveal()
    assert stored.startswith("scrypt$")


def test_signed_out_pages_redirect_and_api_needs_a_token(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        client.session.cookie_jar.clear()
        for method, path in _routes(client):
            if path.startswith("/static") or path in ("/login", "/setup"):
                continue
            if path == "/api/v1/token" and method == "POST":
                continue  # the one public API route: it takes the password
            response = await client.request(method, path, allow_redirects=False)
            if path.startswith("/api/"):
                assert response.status == 401, (method, path)
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            elif method == "GET" and path != "/events":
                assert response.status == 303, (method, path)
                assert response.headers["Location"].startswith("/login")
            else:
                assert response.status in (401, 403), (method, path, response.status)
            bad = await client.request(method, path, allow_redirects=False,
                                       headers={"Authorization": "Bearer not-a-token"})
            assert bad.status in (401, 303, 403), (method, path)

    run_client(tmp_path / "config.toml", scenario)


def test_cookie_flags_and_session_rotation(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        first = await client.get("/setup")
        cookie = first.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        before = first.cookies["tipring_session"].value
        page = await first.text()
        response = await client.post("/setup", data={
            "csrf": csrf_of(page), "password": PASSWORD, "confirm": PASSWORD,
            "device.region": "US", "device.timezone": "UTC"}, allow_redirects=False)
        after = response.cookies["tipring_session"].value
        assert after != before  # a new id at sign-in: a planted id is worthless
        # The old (pre-login) id is not signed in.
        client.session.cookie_jar.clear()
        client.session.cookie_jar.update_cookies({"tipring_session": before})
        assert (await client.get("/", allow_redirects=False)).status == 303

    run_client(tmp_path / "config.toml", scenario)


def test_csrf_and_origin_are_checked(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        saved = config.read_bytes()
        form = {"network.mode": "static", "network.address": "192.168.1.20/24",
                "network.vlan": "0", "network.dns": "", "network.ntp_servers": "pool.ntp.org",
                "network.gateway": ""}
        missing = await client.post("/network", data=form, allow_redirects=False)
        assert missing.status == 403 and "security token" in await missing.text()
        wrong = await client.post("/network", data={**form, "csrf": "forged"},
                                  allow_redirects=False)
        assert wrong.status == 403
        token = await csrf_for(client, "/network")
        cross = await client.post("/network", data={**form, "csrf": token},
                                  headers={"Origin": "http://evil.example"},
                                  allow_redirects=False)
        assert cross.status == 403 and "another site" in await cross.text()
        assert config.read_bytes() == saved
        ok = await client.post("/network", data={**form, "csrf": token}, allow_redirects=False)
        assert ok.status == 303
        assert device.config.network.address == "192.168.1.20/24"

    run_client(config, scenario)
    assert ConfigStore(config).load().config.network.mode == "static"


def test_login_is_rate_limited(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        client.session.cookie_jar.clear()
        token = await csrf_for(client, "/login")
        for _ in range(5):
            wrong = await client.post("/login", data={"csrf": token, "password": "nope"})
            assert wrong.status == 401
        limited = await client.post("/login", data={"csrf": token, "password": PASSWORD},
                                    allow_redirects=False)
        assert limited.status == 429  # even the right password waits
        assert int(limited.headers["Retry-After"]) > 0
        api = await client.post("/api/v1/token", json={"password": PASSWORD})
        assert api.status == 429

    run_client(tmp_path / "config.toml", scenario)


def test_login_logout(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        client.session.cookie_jar.clear()
        token = await csrf_for(client, "/login?next=/network")
        ok = await client.post("/login", data={"csrf": token, "password": PASSWORD,
                                               "next": "/network"}, allow_redirects=False)
        assert ok.status == 303 and ok.headers["Location"] == "/network"
        evil = await csrf_for(client, "/")
        out = await client.post("/logout", data={"csrf": evil}, allow_redirects=False)
        assert out.status == 303
        assert (await client.get("/", allow_redirects=False)).status == 303
        token = await csrf_for(client, "/login")
        redirect = await client.post("/login", data={"csrf": token, "password": PASSWORD,
                                                     "next": "//evil.example/x"},
                                     allow_redirects=False)
        assert redirect.headers["Location"] == "/"  # no open redirect

    run_client(tmp_path / "config.toml", scenario)


async def _add_account(client: TestClient, **overrides: str) -> tuple[int, str]:
    token = await csrf_for(client, "/accounts/new")
    form = {"csrf": token, "accounts[0].id": "home", "accounts[0].enabled": "on",
            "accounts[0].user": "2001", "accounts[0].domain": "pbx.example.net",
            "accounts[0].password": SIP_SECRET, "accounts[0].transport": "udp",
            "accounts[0].expires": "3600", "accounts[0].srtp": "off",
            "accounts[0].dtmf": "rfc4733", "accounts[0].codecs": "PCMU, PCMA",
            "accounts[0].keepalive_s": "30", "accounts[0].allow_sip_from": "registrar"}
    form.update(overrides)
    response = await client.post("/accounts/new", data=form, allow_redirects=False)
    return response.status, await response.text()


def test_field_error_shown_and_last_good_kept(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        saved = config.read_bytes()
        status, html = await _add_account(client, **{"accounts[0].expires": "5"})
        assert status == 400
        error = re.search(r'id="accounts\[0\].expires-error">([^<]*)<', html)
        assert error and "must be between 60 and 86400, got 5" in error.group(1)
        assert 'value="5"' in html  # the user's input is kept
        assert SIP_SECRET not in html  # ... but never a password
        assert config.read_bytes() == saved and device.config.accounts == ()
        status, _ = await _add_account(client)
        assert status == 303
        assert device.config.accounts[0].password.reveal() == SIP_SECRET
        assert device.config.lines[0].account == "home"  # the first account serves line 1

    run_client(config, scenario)
    loaded = ConfigStore(config).load()
    assert loaded.source == "file" and loaded.config.accounts[0].user == "2001"


def test_secrets_never_in_any_response(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        assert (await _add_account(client))[0] == 303
        api = await client.post("/api/v1/token", json={"password": PASSWORD})
        bearer = {"Authorization": f"Bearer {(await api.json())['token']}"}
        bodies = []
        for method, route in _routes(client):
            if method != "GET" or route.startswith("/static") or route == "/events":
                continue
            path = route.replace("/accounts/x", "/accounts/home")
            response = await client.get(path, headers=bearer if "/api/" in path else None)
            no_sip = "sip-trace" in path and device.telephony is None  # nothing to trace
            assert response.status == (409 if no_sip else 200), path
            bodies.append((path, await response.read()))
        token = await csrf_for(client, "/maintenance")
        export = await client.post("/maintenance/export", data={"csrf": token})
        bodies.append(("export", await export.read()))
        assert len(bodies) > 12
        for path, body in bodies:
            assert SIP_SECRET.encode() not in body, path
            assert PASSWORD.encode() not in body, path
            assert b"scrypt$" not in body, path
        with_secrets = await client.post("/maintenance/export",
                                         data={"csrf": token, "secrets": "on"})
        assert SIP_SECRET.encode() in await with_secrets.read()  # the check above can see it
        events = await client.get("/events")
        async with asyncio.timeout(5):
            first_event = await events.content.readuntil(b"\n\n")
        events.close()
        assert b"line0.hook" in first_event and SIP_SECRET.encode() not in first_event
        assert not any(SIP_SECRET in line for line in device.recent_logs.lines)

    run_client(tmp_path / "config.toml", scenario)


def test_import_is_validated_before_writing(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        assert (await _add_account(client))[0] == 303
        saved = config.read_bytes()
        token = await csrf_for(client, "/maintenance")
        bad = b"schema_version = 1\n[web]\nport = 0\n"
        from aiohttp import FormData

        form = FormData()
        form.add_field("csrf", token)
        form.add_field("file", bad, filename="bad.toml")
        response = await client.post("/maintenance/import", data=form)
        assert response.status == 400 and "web.port" in await response.text()
        assert config.read_bytes() == saved
        exported = await (await client.post("/maintenance/export", data={"csrf": token})).read()
        changed = exported.replace(b'user = "2001"', b'user = "2002"')
        form = FormData()
        form.add_field("csrf", token)
        form.add_field("file", changed, filename="good.toml")
        ok = await client.post("/maintenance/import", data=form, allow_redirects=False)
        assert ok.status == 303
        account = device.config.accounts[0]
        assert account.user == "2002" and account.password.reveal() == SIP_SECRET  # kept
        assert device.config.web.admin_password_hash.is_set  # never lost by an import

    run_client(config, scenario)


def test_api_token_config_and_openapi(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        wrong = await client.post("/api/v1/token", json={"password": "nope"})
        assert wrong.status == 401
        token = (await (await client.post("/api/v1/token",
                                          json={"password": PASSWORD})).json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        bad = await client.put("/api/v1/network", json={"vlan": 5000}, headers=auth)
        assert bad.status == 422
        assert (await bad.json())["errors"][0]["field"] == "network.vlan"
        added = await client.post("/api/v1/accounts", headers=auth, json={
            "id": "api", "user": "7", "domain": "sip.example.org", "password": SIP_SECRET})
        assert added.status == 200, await added.text()
        body = await added.text()
        assert SIP_SECRET not in body and json.loads(body)["accounts"][0]["password"] == {
            "set": True}
        lifted = await client.post("/api/v1/phone/0/lift", headers=auth)
        assert lifted.status == 200
        document = await (await client.get("/api/v1/openapi.json", headers=auth)).json()
        assert document == json.loads(json.dumps(openapi_document()))
        revoked = await client.delete("/api/v1/token", headers=auth)
        assert revoked.status == 204
        assert (await client.get("/api/v1/status", headers=auth)).status == 401

    run_client(tmp_path / "config.toml", scenario)


def test_openapi_lists_every_api_route() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"

    async def scenario(client: TestClient, device: Device) -> set[tuple[str, str]]:
        found = set()
        for route in client.app.router.routes():
            info = route.resource.get_info() if route.resource else {}
            path = info.get("path") or info.get("formatter") or ""
            if path.startswith("/api/v1") and route.method != "HEAD":
                clean = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path[len("/api/v1"):])
                found.add((route.method.lower(), clean))
        return found

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        served = run_client(Path(tmp) / "c.toml", scenario)
    documented = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert served == documented
    for path, ops in document["paths"].items():
        for op in ops.values():
            assert op["responses"] and "summary" in op, path
            for parameter in op.get("parameters", []):
                assert parameter["in"] == "query" or "{" + parameter["name"] + "}" in path


def test_password_change_signs_out_other_browsers(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        from aiohttp import ClientSession, CookieJar

        async with ClientSession(str(client.make_url("")),
                                 cookie_jar=CookieJar(unsafe=True)) as other:
            page = await (await other.get("/login")).text()
            response = await other.post("/login", data={"csrf": csrf_of(page),
                                                        "password": PASSWORD})
            assert response.status == 200 and str(response.url).endswith("/")
            token = await csrf_for(client, "/security")
            new = "another long passphrase 42"
            changed = await client.post("/security/password", data={
                "csrf": token, "current": PASSWORD, "password": new, "confirm": new},
                allow_redirects=False)
            assert changed.status == 303
            assert (await client.get("/security", allow_redirects=False)).status == 200
            assert (await other.get("/", allow_redirects=False)).status == 303

    run_client(tmp_path / "config.toml", scenario)


def test_virtual_phone_buttons_drive_the_handset(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        token = await csrf_for(client, "/phone")
        response = await client.post("/phone/0/lift", data={"csrf": token},
                                     allow_redirects=False)
        assert response.status == 303
        for _ in range(200):
            if device.off_hook[0]:
                break
            await asyncio.sleep(0.005)
        assert device.off_hook[0]
        page = await (await client.get("/")).text()
        assert "off-hook" in page
        on_hook = await client.post("/phone/0/hangup", data={"csrf": token},
                                    headers={"Accept": "application/json"})
        assert (await on_hook.json())["ok"] is True
        dial = await client.post("/phone/0/dtmf", data={"csrf": token, "digits": "12"},
                                 headers={"Accept": "application/json"})
        assert dial.status == 409 and "on hook" in (await dial.json())["message"]

    run_client(tmp_path / "config.toml", scenario)


def test_status_events_stream(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        response = await client.get("/events")
        assert response.headers["Content-Type"].startswith("text/event-stream")
        async with asyncio.timeout(5):
            first = await response.content.readuntil(b"\n\n")
        view = json.loads(first.decode().split("data: ", 1)[1])
        assert view["line0.hook"] == "on-hook"
        device.board.handsets[0].lift()  # type: ignore[union-attr]
        async with asyncio.timeout(2):  # pushed on the change, not at the 5 s refresh
            second = await response.content.readuntil(b"\n\n")
        assert json.loads(second.decode().split("data: ", 1)[1])["line0.hook"] == "off-hook"
        response.close()

    run_client(tmp_path / "config.toml", scenario)


def test_factory_reset_needs_password_and_returns_to_first_boot(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        assert (await _add_account(client))[0] == 303
        token = await csrf_for(client, "/maintenance")
        unticked = await client.post("/maintenance/factory-reset",
                                     data={"csrf": token, "password": PASSWORD})
        assert unticked.status == 400
        wrong = await client.post("/maintenance/factory-reset",
                                  data={"csrf": token, "password": "nope", "confirm": "on"})
        assert wrong.status == 401 and device.config.accounts
        rebooted = await client.post("/maintenance/reboot", data={"csrf": token})
        assert "sim board" in await rebooted.text()
        viewer = await (await client.get("/maintenance")).text()
        assert "configuration applied" in viewer and "first-boot setup done" in viewer
        download = await client.get("/maintenance/log.txt")
        assert "attachment" in download.headers["Content-Disposition"]
        assert "reboot requested" in await download.text()
        reset = await client.post("/maintenance/factory-reset", allow_redirects=False,
                                  data={"csrf": token, "password": PASSWORD, "confirm": "on"})
        assert reset.status == 303 and reset.headers["Location"] == "/setup"
        assert device.config.accounts == ()
        assert not device.config.web.admin_password_hash.is_set
        gated = await client.get("/accounts", allow_redirects=False)
        assert gated.headers["Location"] == "/setup"

    run_client(config, scenario)
    assert ConfigStore(config).load().config.accounts == ()


def test_ending_a_session_signs_that_browser_out(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        page = await (await client.get("/security")).text()
        label = re.search(r'/security/sessions/([0-9a-f]{8})/end', page)
        assert label and "(this browser)" in page
        ended = await client.post(f"/security/sessions/{label.group(1)}/end",
                                  data={"csrf": csrf_of(page)}, allow_redirects=False)
        assert ended.headers["Location"] == "/login"
        assert (await client.get("/security", allow_redirects=False)).status == 303

    run_client(tmp_path / "config.toml", scenario)


def test_security_headers_on_pages_and_static_files(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        for path in ("/setup", "/static/app.js", "/nope"):
            response = await client.get(path, allow_redirects=False)
            csp = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["X-Content-Type-Options"] == "nosniff"

    run_client(tmp_path / "config.toml", scenario)


def test_dial_plan_tester_page_and_json(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        page = await (await client.get("/dialplan", params={
            "plan": "( <:1>[2-9]xx[2-9]xxxxxx )", "digits": "5125550123"})).text()
        assert "call 15125550123" in page  # the <:1> rule rewrote it
        data = await (await client.get("/dialplan/test.json", params={
            "plan": "( 1xx | 2xx! )", "digits": "211"})).json()
        assert data["steps"][-1]["outcome"] == "barred"
        broken = await (await client.get("/dialplan/test.json", params={
            "plan": "( [2-9", "digits": "1"})).json()
        assert "position 2" in broken["error"]
        emergency = await (await client.get("/dialplan/test.json", params={
            "plan": "( 9xx! )", "digits": "911"})).json()  # region US: 911 is never barred
        assert emergency["steps"][-1]["says"] == "call 911 (emergency number)"

    run_client(tmp_path / "config.toml", scenario)


def test_api_import_export_password_and_reset(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        token = (await (await client.post("/api/v1/token",
                                          json={"password": PASSWORD})).json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert (await client.post("/api/v1/accounts", headers=auth, json={
            "id": "a", "user": "1", "domain": "d.example", "password": SIP_SECRET})).status == 200
        exported = await (await client.get("/api/v1/config/export", headers=auth)).text()
        assert SIP_SECRET not in exported and "[[accounts]]" in exported
        saved = config.read_bytes()
        bad = await client.post("/api/v1/config/import", headers=auth,
                                data=exported.replace('user = "1"', 'user = "bad user"'))
        assert bad.status == 422 and (await bad.json())["errors"][0]["field"] == "accounts[0].user"
        assert config.read_bytes() == saved
        good = await client.post("/api/v1/config/import", headers=auth,
                                 data=exported.replace('user = "1"', 'user = "2"'))
        assert good.status == 200 and device.config.accounts[0].password.reveal() == SIP_SECRET
        tested = await client.post("/api/v1/dialplan/test", headers=auth,
                                   json={"plan": "( <9:>xxx )", "digits": "9123"})
        assert (await tested.json())["steps"][-1]["says"] == "call 123"
        weak = await client.post("/api/v1/password", headers=auth,
                                 json={"current": PASSWORD, "new": "short"})
        assert weak.status == 422
        new = "a brand new admin passphrase"
        changed = await client.post("/api/v1/password", headers=auth,
                                    json={"current": PASSWORD, "new": new})
        assert changed.status == 204
        assert (await client.get("/api/v1/status", headers=auth)).status == 401  # revoked
        assert (await client.get("/", allow_redirects=False)).status == 303  # browser too
        token = (await (await client.post("/api/v1/token",
                                          json={"password": new})).json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        wrong = await client.post("/api/v1/factory-reset", headers=auth, json={"password": "x"})
        assert wrong.status == 401 and device.config.accounts
        reset = await client.post("/api/v1/factory-reset", headers=auth, json={"password": new})
        assert reset.status == 200 and device.config.accounts == ()
        gated = await client.get("/api/v1/status", headers=auth)
        assert gated.status == 401 and "setup" in (await gated.json())["error"]

    run_client(config, scenario)


def test_status_page_says_which_features_are_on(tmp_path: Path) -> None:
    """A phone that does not ring is explained on the status page (DND, forwarding...)."""
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        assert 'data-key="line0.features">none<' in await (await client.get("/")).text()
        line = dataclasses.replace(device.config.lines[0], do_not_disturb=True,
                                   forward_busy="5550000", call_waiting=False)
        await device.apply_config(dataclasses.replace(device.config, lines=(line,)))
        page = await (await client.get("/")).text()
        assert ('data-key="line0.features">do not disturb, forwarded when busy to 5550000, '
                'call waiting off<') in page

    run_client(tmp_path / "config.toml", scenario)


def test_status_page_says_a_rollback_started_with_the_settings_from_before_the_update(
        tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tipring.config import migrations

    config = tmp_path / "config.toml"

    async def first_boot(client: TestClient, device: Device) -> None:
        await setup_done(client)

    run_client(config, first_boot)
    with monkeypatch.context() as newer:  # an update whose config schema is newer saves once
        newer.setattr(migrations, "CURRENT_SCHEMA_VERSION", 2)
        newer.setattr(migrations, "MIGRATIONS", {1: lambda document: document})
        store = ConfigStore(config)
        store.save(store.load().config)

    async def rolled_back(client: TestClient, device: Device) -> None:
        assert device.loaded is not None and device.loaded.source == "schema-copy"
        token = await csrf_for(client, "/login")  # the password from before the update works
        ok = await client.post("/login", data={"csrf": token, "password": PASSWORD, "next": "/"},
                               allow_redirects=False)
        assert ok.status == 303
        page = await (await client.get("/")).text()
        assert "The device started with the configuration from before a firmware update" in page
        assert "written by newer firmware (schema 2" in page

    run_client(config, rolled_back)
