"""Calling features and star codes in the web UI and API: the Line page's "Calling features"
group and "Star codes" section, the account's message-waiting and voicemail fields, the API's
/features and line/account bodies, the OpenAPI schemas, and the dial-plan tester using the
line's saved plan with the star codes."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp.test_utils import TestClient
from test_web_support import PASSWORD, run_client, setup_done

from tipring.config import ConfigStore
from tipring.runtime.app import Device
from tipring.web.api import openapi_document


async def _page_form(client: TestClient, path: str = "/line") -> dict[str, str]:
    """Every input of a form page with the value the page shows (what a browser posts)."""
    import re

    page = await (await client.get(path)).text()
    form: dict[str, str] = {}
    for tag in re.findall(r"<input [^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        if name is None:
            continue
        if 'type="checkbox"' in tag:
            if " checked" in tag:
                form[name.group(1)] = "on"
            continue
        value = re.search(r'value="([^"]*)"', tag)
        form[name.group(1)] = value.group(1) if value else ""
    for select in re.finditer(r'<select name="([^"]+)".*?</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', select.group(0))
        form[select.group(1)] = chosen.group(1) if chosen else ""
    import html
    return {k: html.unescape(v) for k, v in form.items()}


def test_line_page_saves_calling_features_and_star_codes(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        page = await (await client.get("/line")).text()
        assert "Calling features" in page and "Star codes" in page
        assert 'name="features.do_not_disturb_on" id="features.do_not_disturb_on" value="*78"' \
            in page
        form = await _page_form(client)
        assert form["lines[0].dial_plan"] == "(*47[0-9*].|*x.|x.)"
        form.update({"lines[0].do_not_disturb": "on", "lines[0].forward_busy": "5551234",
                     "lines[0].no_answer_s": "30", "features.do_not_disturb_on": "*55",
                     "features.voicemail": ""})
        saved = await client.post("/line", data=form, allow_redirects=False)
        assert saved.status == 303, await saved.text()
        stored = ConfigStore(config).load().config
        assert stored.lines[0].do_not_disturb and stored.lines[0].forward_busy == "5551234"
        assert stored.lines[0].no_answer_s == 30
        assert stored.features.do_not_disturb_on == "*55" and stored.features.voicemail == ""
        again = await (await client.get("/line")).text()
        assert 'name="lines[0].do_not_disturb" id="lines[0].do_not_disturb" checked' in again

    run_client(config, scenario)


def test_bad_star_code_and_forward_show_field_errors_and_save_nothing(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        before = config.read_bytes()
        form = await _page_form(client)
        form.update({"features.redial": "*7",  # starts *72, *73, *78...
                     "features.call_return": "69",  # no * or #
                     "lines[0].forward_all": "not a number", "lines[0].do_not_disturb": "on"})
        refused = await client.post("/line", data=form)
        assert refused.status == 400
        page = await refused.text()
        assert 'id="features.redial-error"' in page and "one starts the other" in page
        assert 'id="features.call_return-error"' in page
        assert "must be * or # followed by 1 to 4 digits" in page
        assert 'id="lines[0].forward_all-error"' in page and "sip: URI" in page
        assert 'value="*7"' in page  # the user's typing is kept
        assert config.read_bytes() == before and not device.config.lines[0].do_not_disturb

    run_client(config, scenario)


def test_fallback_account_choices_and_cross_check(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        for index, name in enumerate(("home", "office")):
            form = await _page_form(client, "/accounts/new")
            form.update({f"accounts[{index}].id": name, f"accounts[{index}].user": "1",
                         f"accounts[{index}].domain": "a.example"})
            added = await client.post("/accounts/new", data=form, allow_redirects=False)
            assert added.status == 303, await added.text()
        form = await _page_form(client)
        assert form["lines[0].account"] == "home"
        page = await (await client.get("/line")).text()
        assert '<option value="office">office</option>' in page
        form["lines[0].fallback_account"] = "home"  # the line's own account
        refused = await client.post("/line", data=form)
        assert refused.status == 400
        assert "must differ from account" in await refused.text()
        form["lines[0].fallback_account"] = "office"
        assert (await client.post("/line", data=form, allow_redirects=False)).status == 303
        assert device.config.lines[0].fallback_account == "office"

    run_client(tmp_path / "config.toml", scenario)


def test_account_page_message_waiting_and_voicemail(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        page = await (await client.get("/accounts/new")).text()
        assert 'name="accounts[0].message_waiting"' in page
        assert '<option value="subscribe" selected>' in page
        base = await _page_form(client, "/accounts/new")
        base.update({"accounts[0].id": "pbx", "accounts[0].user": "10",
                     "accounts[0].domain": "pbx.example",
                     "accounts[0].message_waiting": "unsolicited"})
        bad = await client.post("/accounts/new", data={**base, "accounts[0].voicemail": "vm!"})
        assert bad.status == 400 and 'id="accounts[0].voicemail-error"' in await bad.text()
        assert device.config.accounts == ()
        good = await client.post("/accounts/new", data={**base, "accounts[0].voicemail": "*97"},
                                 allow_redirects=False)
        assert good.status == 303
        account = device.config.accounts[0]
        assert (account.message_waiting, account.voicemail) == ("unsolicited", "*97")

    run_client(tmp_path / "config.toml", scenario)


def test_api_features_lines_and_accounts(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"

    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        token = (await (await client.post("/api/v1/token",
                                          json={"password": PASSWORD})).json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        codes = await (await client.get("/api/v1/features", headers=auth)).json()
        assert codes["do_not_disturb_on"] == "*78"
        clash = await client.put("/api/v1/features", headers=auth, json={"redial": "*7"})
        assert clash.status == 422
        errors = (await clash.json())["errors"]
        assert errors[0]["field"] == "features.redial" and "starts" in errors[0]["reason"]
        before = config.read_bytes()
        bad_type = await client.put("/api/v1/lines/0", headers=auth,
                                    json={"do_not_disturb": "yes", "no_answer_s": 1})
        assert bad_type.status == 422
        fields = {e["field"] for e in (await bad_type.json())["errors"]}
        assert fields == {"lines[0].do_not_disturb", "lines[0].no_answer_s"}
        assert config.read_bytes() == before
        done = await client.put("/api/v1/features", headers=auth, json={"voicemail": "#98"})
        assert done.status == 200 and (await done.json())["features"]["voicemail"] == "#98"
        line = await client.put("/api/v1/lines/0", headers=auth, json={
            "do_not_disturb": True, "forward_all": "sip:desk@pbx.example",
            "dial_plan": "( 1xx | *xx )"})
        assert line.status == 200, await line.text()
        assert (await line.json())["lines"][0]["forward_all"] == "sip:desk@pbx.example"
        account = await client.post("/api/v1/accounts", headers=auth, json={
            "id": "a", "user": "1", "domain": "d.example", "message_waiting": "off",
            "voicemail": "8000"})
        assert account.status == 200
        shown = await (await client.get("/api/v1/accounts/a", headers=auth)).json()
        assert (shown["message_waiting"], shown["voicemail"]) == ("off", "8000")
        stored = ConfigStore(config).load().config
        assert stored.features.voicemail == "#98" and stored.lines[0].do_not_disturb
        tested = await (await client.post("/api/v1/dialplan/test", headers=auth,
                                          json={"digits": "123"})).json()
        assert tested["steps"][-1]["says"] == "call 123"  # the saved ( 1xx | *xx ) plan
        missing = await client.post("/api/v1/dialplan/test", headers=auth,
                                    json={"digits": "1", "line": 5})
        assert missing.status == 404

    run_client(config, scenario)


def test_openapi_describes_every_config_field() -> None:
    from dataclasses import fields

    from tipring.config import AccountConfig, LineConfig
    from tipring.config.schema import FeatureCodes

    document = json.loads(json.dumps(openapi_document()))  # JSON-clean
    schemas = document["components"]["schemas"]
    for name, cls in (("Line", LineConfig), ("Account", AccountConfig),
                      ("FeatureCodes", FeatureCodes)):
        assert set(schemas[name]["properties"]) == {f.name for f in fields(cls)}, name
    line = schemas["Line"]["properties"]
    assert line["do_not_disturb"] == {"type": "boolean", "default": False}
    assert line["no_answer_s"] == {"type": "integer", "default": 20}
    assert schemas["Account"]["properties"]["message_waiting"]["enum"] == [
        "subscribe", "unsolicited", "off"]
    assert schemas["Account"]["properties"]["password"]["writeOnly"] is True
    assert schemas["Account"]["required"] == ["id"]
    assert schemas["FeatureCodes"]["properties"]["forward_all_on"]["default"] == "*72"
    body = document["paths"]["/lines/{index}"]["put"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Line"}
    assert document["paths"]["/features"]["put"]["requestBody"]["content"][
        "application/json"]["schema"]["$ref"].endswith("/FeatureCodes")


def test_dial_plan_tester_uses_the_saved_plan_and_star_codes(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        page = await (await client.get("/dialplan", params={"digits": "*78"})).text()
        assert "(*47[0-9*].|*x.|x.)" in page  # the line's saved plan is in the box
        assert "star code *78" in page
        form = await _page_form(client)
        form.update({"lines[0].dial_plan": "( <:1>[2-9]xx[2-9]xxxxxx )"})
        assert (await client.post("/line", data=form, allow_redirects=False)).status == 303
        data = await (await client.get("/dialplan/test.json",
                                       params={"digits": "5125550123"})).json()
        assert data["steps"][-1]["says"] == "call 15125550123"
        typed = await (await client.get("/dialplan/test.json", params={
            "plan": "( 1xx | 2xx! )", "digits": "211"})).json()
        assert typed["steps"][-1]["outcome"] == "barred"
        assert (await client.get("/dialplan", params={"line": "7"})).status == 404

    run_client(tmp_path / "config.toml", scenario)
