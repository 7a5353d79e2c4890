"""schemathesis against the device's own OpenAPI document, over HTTP to the real aiohttp app on
a loopback port, with a bearer token: every operation, positive and negative examples, every
response checked for a server error and for conformance to the document (status codes, content
types, response schemas). Small and derandomized so it stays quick and repeatable."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis  # a test dependency: fail, never skip
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import load_all_checks
from schemathesis.specs.openapi.checks import positive_data_acceptance
from aiohttp.test_utils import TestClient
from test_web_support import PASSWORD, ThreadedServer, run_client, setup_done

from tipring.runtime.app import Device
from tipring.web.openapi import openapi_document

EXAMPLES = 16
OPERATIONS = [(method.upper(), path) for path, item in openapi_document()["paths"].items()
              for method in item]
# "A body the schema allows is accepted" holds only where JSON Schema can say everything the
# device checks. Config tables are validated beyond it (host names, cross-field rules such as
# "user is required when the account is enabled"), passwords against a list of well-known ones,
# token names for printable characters, SSH keys by decoding them (and SSH on needs one), and a
# firmware bundle or configuration file by parsing it; there a 422 or 400 for schema-valid data
# is the device being stricter, not wrong.
STRICTER_THAN_SCHEMA = {
    ("POST", "/token"), ("POST", "/accounts"), ("PUT", "/accounts/{id}"),
    ("PUT", "/lines/{index}"), ("PUT", "/features"), ("PUT", "/network"), ("PUT", "/device"),
    ("POST", "/password"), ("POST", "/config/import"), ("POST", "/firmware"),
    ("PUT", "/ssh"),
}
pytestmark = pytest.mark.slow
load_all_checks()


@schemathesis.serializer("application/toml")
def _toml_text(ctx: schemathesis.SerializationContext, value: object) -> bytes:
    """A configuration import is TOML text; schemathesis generates it as a string."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


def _first_boot(url: str) -> requests.Session:
    session = requests.Session()
    page = session.get(url + "/setup", timeout=30).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf, "no CSRF token on the first-boot page"
    answer = session.post(url + "/setup", timeout=30, allow_redirects=False, data={
        "csrf": csrf.group(1), "password": PASSWORD, "confirm": PASSWORD,
        "device.region": "US", "device.timezone": "UTC"})
    assert answer.status_code == 303, answer.text
    return session


@pytest.fixture(scope="module")
def device_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    config = Path(tmp_path_factory.mktemp("fuzz")) / "data" / "config.toml"
    server = ThreadedServer(config).start()
    try:
        _first_boot(server.url)
        tokens = {}
        for name in ("shared", "revoked"):  # DELETE /token revokes its own: not the shared one
            answer = requests.post(server.url + "/api/v1/token", timeout=30,
                                   json={"password": PASSWORD, "name": name})
            assert answer.status_code == 200, answer.text
            tokens[name] = answer.json()["token"]
        yield server.url, tokens
    finally:
        server.stop()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms_and_never_fails_on_the_server(
        device_api: tuple[str, dict[str, str]], method: str, path: str) -> None:
    url, tokens = device_api
    token = tokens["revoked" if (method, path) == ("DELETE", "/token") else "shared"]
    excluded = [positive_data_acceptance] if (method, path) in STRICTER_THAN_SCHEMA else []
    schema = schemathesis.openapi.from_url(url + "/api/v1/openapi.json",
                                           headers={"Authorization": f"Bearer {token}"})
    operation = schema[path][method]

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                          operation.as_strategy(GenerationMode.NEGATIVE)))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=url + "/api/v1",
                               headers={"Authorization": f"Bearer {token}"},
                               excluded_checks=excluded, timeout=30)

    check()


def test_api_answers_in_json_for_what_aiohttp_refuses(tmp_path: Path) -> None:
    """The fixes the fuzzing asked for: no route, wrong method, unknown query parameter and a
    bad `secrets` value all come back as {"error": ...} with a 4xx the document lists."""
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        token = (await (await client.post("/api/v1/token", json={"password": PASSWORD}))
                 .json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        answers = {
            "no route": await client.put("/api/v1/lines/x", headers=auth, json={}),
            "method": await client.patch("/api/v1/status", headers=auth),
            "unknown query": await client.get("/api/v1/config/export?secret=true",
                                              headers=auth),
            "bad value": await client.get("/api/v1/config/export?secrets=yes", headers=auth),
        }
        assert {k: r.status for k, r in answers.items()} == {
            "no route": 404, "method": 405, "unknown query": 400, "bad value": 400}
        for answer in answers.values():
            assert answer.content_type == "application/json"
            assert (await answer.json())["error"]
        assert answers["method"].headers["Allow"]
        assert "secret" in (await answers["unknown query"].json())["error"]
        plain = await client.get("/api/v1/config/export?secrets=false", headers=auth)
        assert plain.status == 200 and "scrypt$" not in await plain.text()

    run_client(tmp_path / "config.toml", scenario)
