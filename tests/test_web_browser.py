"""The web UI in a real browser (Debian's Chromium via Playwright) against the real aiohttp app
on a loopback port: the main user flows, with and without JavaScript."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import playwright.sync_api as playwright_api  # a test dependency: fail, never skip
import pytest
from test_web_support import PASSWORD, ThreadedServer

from tipring.config import ConfigStore

expect = playwright_api.expect

CHROMIUM = os.environ.get("TIPRING_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("TIPRING_SCREENSHOTS", tempfile.gettempdir())) / "tipring-web"
WAIT_MS = 5000
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    # launch() gives every run a fresh temporary profile (user data dir) of its own.
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        yield launched
        launched.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadedServer]:
    running = ThreadedServer(tmp_path / "data" / "config.toml").start()
    yield running
    running.stop()


def _page(browser: object, *, javascript: bool = True) -> object:
    context = browser.new_context(java_script_enabled=javascript)  # type: ignore[attr-defined]
    context.set_default_timeout(WAIT_MS)
    return context.new_page()


def _shot(page: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def _first_boot(page: object, url: str) -> None:
    page.goto(url + "/")  # type: ignore[attr-defined]
    assert page.url.endswith("/setup")  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.fill("#confirm", PASSWORD)  # type: ignore[attr-defined]
    page.select_option("select[name='device.region']", "GB")  # type: ignore[attr-defined]
    page.fill("input[name='device.timezone']", "Europe/London")  # type: ignore[attr-defined]
    page.click("#setup button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url("**/accounts")  # type: ignore[attr-defined]


def test_first_boot_login_add_account_and_see_it_on_status(browser: object,
                                                           server: ThreadedServer) -> None:
    page = _page(browser)
    page.goto(server.url + "/network")
    assert page.url.endswith("/setup")  # nothing else before a password exists
    _shot(page, "setup")
    page.fill("#password", "short")
    page.fill("#confirm", "short")
    page.click("#setup button[type=submit]")
    assert "at least 12 characters" in page.inner_text("#password-error")
    _first_boot(page, server.url)

    page.click("text=Sign out")
    page.wait_for_url("**/login")
    page.goto(server.url + "/accounts")
    assert "/login" in page.url
    page.fill("#password", PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_url("**/accounts")

    page.click("text=Add an account")
    page.fill("input[name='accounts[0].id']", "office")
    page.fill("input[name='accounts[0].user']", "2001")
    page.fill("input[name='accounts[0].domain']", "pbx.example.net")
    page.fill("input[name='accounts[0].password']", "sip-secret-in-browser")
    page.click("#account button[type=submit]")
    page.wait_for_url("**/accounts")
    assert "office" in page.inner_text("#accounts")
    assert "sip-secret-in-browser" not in page.content()

    page.click("nav >> text=Status")
    page.wait_for_url(server.url + "/")
    assert page.inner_text("[data-key='line0.account']") == "office"
    _shot(page, "status")
    page.context.close()
    saved = ConfigStore(server.config_path).load().config
    assert saved.accounts[0].password.reveal() == "sip-secret-in-browser"
    assert saved.device.region == "GB"


def test_validation_error_is_shown_next_to_the_field(browser: object,
                                                     server: ThreadedServer) -> None:
    page = _page(browser)
    _first_boot(page, server.url)
    page.goto(server.url + "/line")
    page.fill("input[name='lines[0].flash_min_ms']", "1500")  # above flash_max_ms (1100)
    page.fill("input[name='lines[0].tx_gain_db']", "40")
    page.click("#line button[type=submit]")
    field = page.locator(".field.invalid", has=page.locator("input[name='lines[0].tx_gain_db']"))
    assert "must be between -12 and 6, got 40.0" in field.locator(".error").inner_text()
    flash = page.locator(".field.invalid",
                         has=page.locator("input[name='lines[0].flash_min_ms']"))
    assert "must be less than flash_max_ms" in flash.locator(".error").inner_text()
    assert page.input_value("input[name='lines[0].tx_gain_db']") == "40"  # input kept
    _shot(page, "line-error")
    page.context.close()
    assert server.call(lambda: server.device.config.lines[0].tx_gain_db) == 0.0  # type: ignore[union-attr]


def test_virtual_phone_lift_changes_hook_state_live(browser: object,
                                                    server: ThreadedServer) -> None:
    page = _page(browser)
    _first_boot(page, server.url)
    page.goto(server.url + "/phone")
    hook = page.locator("[data-key='line0.hook']")
    assert hook.inner_text() == "on-hook"
    page.locator("[data-live][data-updated]").wait_for()  # the event stream is connected
    page.click("#phone0 button[value=lift]")
    # Updated in place by the event stream: no reload. (Locator waits: the page's CSP forbids
    # the eval that wait_for_function would need.)
    expect(hook).to_have_text("off-hook", timeout=WAIT_MS)
    assert page.url.endswith("/phone")
    assert page.inner_text("[data-key='phone0.switch']") == "lifted (off hook)"
    assert "handset lifted" in page.inner_text("#phone0 .result")
    page.fill("#digits0", "123")
    page.click("#phone0 .keypad button:text('Dial (touch-tone)')")
    expect(page.locator("#phone0 .result")).to_contain_text("123", timeout=WAIT_MS)
    _shot(page, "phone")
    page.click("nav >> text=Status")
    assert page.inner_text("[data-key='line0.hook']") == "off-hook"
    page.context.close()


def test_dial_plan_tester_answers_as_you_type(browser: object, server: ThreadedServer) -> None:
    page = _page(browser)
    _first_boot(page, server.url)
    page.click("nav >> text=Dial plan")
    page.fill("#plan", "( <:1>[2-9]xx[2-9]xxxxxx )")
    page.type("#digits", "5125550123")
    result = page.locator("#dialplan-result")
    expect(result).to_contain_text("call 15125550123", timeout=WAIT_MS)
    assert page.url.endswith("/dialplan")  # answered in place, no form submission
    page.fill("#plan", "( [2-9")
    expect(page.locator("#plan-error")).to_contain_text("position 2", timeout=WAIT_MS)
    _shot(page, "dialplan")
    page.context.close()


def test_works_without_javascript(browser: object, server: ThreadedServer) -> None:
    page = _page(browser, javascript=False)
    _first_boot(page, server.url)
    page.goto(server.url + "/network")
    page.select_option("select[name='network.mode']", "static")
    page.fill("input[name='network.address']", "10.0.0.7/24")
    page.fill("input[name='network.gateway']", "10.0.9.1")
    page.click("#network button[type=submit]")
    error = page.locator("#network\\.gateway-error")
    assert "outside the network" in error.inner_text()
    page.fill("input[name='network.gateway']", "10.0.0.1")
    page.click("#network button[type=submit]")
    page.wait_for_url("**/network")
    assert "Network settings saved" in page.inner_text(".notice")
    page.goto(server.url + "/phone")
    page.click("#phone0 button[value=lift]")
    assert "handset lifted" in page.inner_text(".notice")
    page.goto(server.url + "/")
    assert page.inner_text("[data-key='line0.hook']") == "off-hook"
    _shot(page, "network-nojs")
    page.context.close()
    saved = ConfigStore(server.config_path).load().config.network
    assert (saved.mode, saved.address, saved.gateway) == ("static", "10.0.0.7/24", "10.0.0.1")


def test_call_figures_update_live_and_call_log_page(browser: object,
                                                    server: ThreadedServer) -> None:
    """Issue 8: RTP figures arriving from line 0's audio thread appear on the open status
    page without a reload; a finished call is on the Call log page."""
    import threading
    import time

    from tipring.runtime.calllog import CallLogEntry
    from tipring.runtime.media import MediaStats
    from tipring.runtime.telephony import CallRecord, Telephony

    page = _page(browser)
    _first_boot(page, server.url)
    page.goto(server.url + "/")
    received = page.locator("[data-key='line0.rtp.received']")
    assert received.inner_text() == "-"
    page.locator("[data-live][data-updated]").wait_for()
    device = server.device
    assert device is not None

    def start_call() -> None:
        telephony = Telephony(device.config, device.lines, on_change=device.notify_changed,
                              on_call_ended=device.log_call)
        now = time.monotonic()
        telephony.calls["c"] = CallRecord("c", 0, "outgoing", "1002", time.time(), now,
                                          state="connected", codec="PCMA", connected_at=now)
        device.telephony = telephony
        device.notify_changed()

    server.call(start_call)
    expect(page.locator("[data-key='line0.party']")).to_have_text("to 1002", timeout=WAIT_MS)
    stats = MediaStats(sent_packets=60, received_packets=59, dropped={}, jitter_ms=1.0,
                       cumulative_lost=0, buffer_delay_ms=40.0, buffer_target_ms=40.0, late=0,
                       concealed_ms=0.0, round_trip_ms=None, overruns=0, underruns=0, leg="c")
    hop = threading.Thread(target=device.lines[0]._from_audio_thread, args=(stats,))
    hop.start()
    hop.join()
    expect(received).to_have_text("59 packets", timeout=WAIT_MS)
    assert page.inner_text("[data-key='line0.rtp.rtt']") == "not measured yet"
    _shot(page, "status-call")

    def end_call() -> None:
        device.telephony = None
        device.log_call(CallLogEntry(time=time.time(), line=0, direction="outgoing",
                                     number="1002", duration_s=3.0, outcome="answered",
                                     codec="PCMA"))

    server.call(end_call)
    expect(received).to_have_text("-", timeout=WAIT_MS)
    page.click("nav >> text=Call log")
    page.wait_for_url("**/calls")
    row = page.locator("tr.logged-call")
    expect(row).to_have_count(1)
    assert "1002" in row.inner_text() and "answered" in row.inner_text()
    _shot(page, "call-log")
    page.context.close()


def test_calling_features_and_star_codes_saved(browser: object, server: ThreadedServer) -> None:
    """DND, a forward number and a star code set on the Line page persist; a bad star code is
    shown next to its field and nothing is saved."""
    page = _page(browser)
    _first_boot(page, server.url)
    page.goto(server.url + "/line")
    page.check("input[name='lines[0].do_not_disturb']")
    page.fill("input[name='lines[0].forward_no_answer']", "+441632960001")
    page.fill("input[name='features.do_not_disturb_on']", "*55")
    page.click("#line button[type=submit]")
    page.wait_for_url("**/line")
    assert "Line settings saved" in page.inner_text(".notice")
    assert page.is_checked("input[name='lines[0].do_not_disturb']")
    assert page.input_value("input[name='features.do_not_disturb_on']") == "*55"
    saved = ConfigStore(server.config_path).load().config
    assert saved.lines[0].do_not_disturb and saved.lines[0].forward_no_answer == "+441632960001"
    assert saved.features.do_not_disturb_on == "*55"
    before = server.config_path.read_bytes()

    page.uncheck("input[name='lines[0].do_not_disturb']")
    page.fill("input[name='features.redial']", "*5")  # starts *55
    page.click("#line button[type=submit]")
    error = page.locator("#features\\.redial-error")
    expect(error).to_contain_text("one starts the other")
    assert page.locator(".problems").is_visible()
    _shot(page, "star-code-error")
    page.context.close()
    assert server.config_path.read_bytes() == before
    assert server.call(lambda: server.device.config.lines[0].do_not_disturb)  # type: ignore[union-attr]


def test_firmware_upload_in_the_browser(browser: object, server: ThreadedServer,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chromium sends the form's parts in order, so the CSRF token arrives before the bundle
    and the upload streams past the form size cap; the progress is shown as RAUC reports it."""
    from test_firmware_update import SUCCEEDS, _calls, _stub, make_bundle

    stubs = tmp_path / "bin"
    _stub(stubs, SUCCEEDS)
    monkeypatch.setenv("PATH", f"{stubs}{os.pathsep}{os.environ['PATH']}")
    keys = tmp_path / "keys"
    keys.mkdir()
    import subprocess

    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(keys / "k.pem"),
                    "-out", str(keys / "c.pem"), "-subj", "/CN=test", "-days", "1"],
                   check=True, capture_output=True)
    bundle = make_bundle(tmp_path / "tipring-1.2.raucb", (keys / "k.pem", keys / "c.pem"),
                         payload=os.urandom(600_000))
    page = _page(browser)
    _first_boot(page, server.url)
    page.goto(server.url + "/maintenance")
    page.set_input_files("#bundle", str(bundle))
    page.click("#firmware-upload button[type=submit]")
    page.wait_for_url("**/maintenance#firmware")
    expect(page.locator("#firmware [data-key='state']")).to_have_text("succeeded",
                                                                      timeout=WAIT_MS * 4)
    expect(page.locator("#firmware-message")).to_contain_text("reboot to start it")
    _shot(page, "firmware")
    page.context.close()
    assert [c["args"][0] for c in _calls(stubs)] == ["install"]
