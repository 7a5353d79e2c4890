"""Issue 8's promise, "a new user can set up the device entirely from the browser", kept in one
run: a device with no configuration, Chromium (Playwright) as the only tool, a real Kamailio as
the provider and a real baresip (answering by itself) as the person called.

The user sets the password, adds the SIP account, gives it to line 1, watches it register on
the Status page, places a call from the Virtual phone page, sees it connected, hangs up and
finds it in the Call log. Nothing is written to the configuration or the device behind the
browser's back."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import test_web_browser
from test_web_browser import WAIT_MS, expect
from test_web_support import PASSWORD, ThreadedServer

from peers.baresip import Baresip
from peers.kamailio import Kamailio
from peers.ports import free_port
from tipring.config import ConfigStore

pytest_plugins = ["peers.fixtures"]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

browser = test_web_browser.browser  # the module-scoped Chromium fixture, shared

# Registration and call set-up cross three processes on a loaded 2-core machine: these waits
# are how long a user would look at the page before calling it broken, not timing margins.
REGISTER_MS = 15_000
CALL_MS = 15_000


@pytest.fixture
def fresh_device(tmp_path: Path) -> Iterator[ThreadedServer]:
    """The sim firmware with no configuration file at all, SIP on a free loopback port."""
    config = tmp_path / "data" / "config.toml"
    running = ThreadedServer(config, sip_host="127.0.0.1",
                             sip_port=free_port("127.0.0.1")).start()
    yield running
    running.stop()


def _nav(page: object, label: str, url_glob: str) -> None:
    page.click(f"nav >> text={label}")  # type: ignore[attr-defined]
    page.wait_for_url(url_glob)  # type: ignore[attr-defined]


def test_new_user_sets_up_registers_calls_and_finds_the_call_in_the_log(
        browser: object, fresh_device: ThreadedServer, kamailio: Kamailio,
        baresip_factory: Callable[..., Baresip]) -> None:
    far = baresip_factory(kamailio.aor("1002"), password="secret1002", answer_mode="auto")
    assert not fresh_device.config_path.exists()
    context = browser.new_context()  # type: ignore[attr-defined]
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()

    # First boot: the only page there is until a password exists.
    page.goto(fresh_device.url + "/")
    assert page.url.endswith("/setup")
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.select_option("select[name='device.region']", "US")
    page.fill("input[name='device.timezone']", "America/Chicago")
    page.click("#setup button[type=submit]")
    page.wait_for_url("**/accounts")
    assert "No account yet" in page.inner_text("main")

    # The provider's account, as a user copies it from the provider's welcome e-mail.
    page.click("text=Add an account")
    page.wait_for_url("**/accounts/new")
    page.fill("input[name='accounts[0].id']", "home")
    page.fill("input[name='accounts[0].display_name']", "Kitchen phone")
    page.fill("input[name='accounts[0].user']", "1001")
    page.fill("input[name='accounts[0].domain']", "tipring.test")
    page.fill("input[name='accounts[0].password']", "secret1001")
    page.fill("input[name='accounts[0].registrar']", kamailio.hostport)
    page.click("#account button[type=submit]")
    page.wait_for_url("**/accounts")
    row = page.locator("#accounts tr.account")
    expect(row).to_have_count(1)
    assert "1001@tipring.test" in row.inner_text()
    assert "secret1001" not in page.content()  # write-only

    # Line 1 uses it (picked on the Line page, saved like any other setting).
    _nav(page, "Line", "**/line")
    page.select_option("select[name='lines[0].account']", "home")
    page.click("#line button[type=submit]")
    page.wait_for_url("**/line")
    assert "Line settings saved" in page.inner_text(".notice")
    assert page.input_value("select[name='lines[0].account']") == "home"

    # Status: registered with the real Kamailio, shown live.
    _nav(page, "Status", fresh_device.url + "/")
    assert page.inner_text("[data-key='line0.account']") == "home"
    expect(page.locator("[data-key='line0.registration']")).to_have_text(
        re.compile(r"^registered \(\d+ s\)$"), timeout=REGISTER_MS)
    far.wait_registered()

    # The virtual phone places a call to 1002; baresip answers by itself.
    _nav(page, "Virtual phone", "**/phone")
    page.locator("[data-live][data-updated]").wait_for()  # the event stream is connected
    page.click("#phone0 button[value=lift]")
    expect(page.locator("[data-key='line0.hook']")).to_have_text("off-hook")
    page.fill("#digits0", "1002#")
    page.click("#phone0 .keypad button:text('Dial (touch-tone)')")
    far.wait_event("CALL_ESTABLISHED", CALL_MS / 1000)

    _nav(page, "Status", fresh_device.url + "/")
    expect(page.locator("[data-key='line0.call']")).to_have_text("outgoing, connected",
                                                                 timeout=CALL_MS)
    assert page.inner_text("[data-key='line0.party']") == "to 1002"
    assert page.inner_text("[data-key='line0.codec']") in ("PCMU", "PCMA")
    # RTP from baresip arrives and the figures are pushed to the open page.
    expect(page.locator("[data-key='line0.rtp.received']")).to_have_text(
        re.compile(r"^\d+ packets$"), timeout=CALL_MS)

    # Hang up on the virtual phone; the far end sees the call end.
    _nav(page, "Virtual phone", "**/phone")
    page.click("#phone0 button[value=hangup]")
    expect(page.locator("[data-key='line0.hook']")).to_have_text("on-hook")
    far.wait_event("CALL_CLOSED", CALL_MS / 1000)

    # The call log lists it, answered, in the time zone chosen at first boot.
    _nav(page, "Call log", "**/calls")
    logged = page.locator("tr.logged-call")
    expect(logged).to_have_count(1)
    text = logged.inner_text()
    assert "1002" in text and "answered" in text, text
    assert re.search(r"\bC[SD]T\b", text), text  # America/Chicago, not UTC
    context.close()

    saved = ConfigStore(fresh_device.config_path).load().config
    assert [a.id for a in saved.accounts] == ["home"]
    assert saved.accounts[0].password.reveal() == "secret1001"
    assert saved.lines[0].account == "home"
    assert saved.device.region == "US" and saved.device.timezone == "America/Chicago"
