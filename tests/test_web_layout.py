"""Every page in Debian's Chromium at a desktop and a phone width, checked by assertions on
element boxes: nothing wider than the viewport (no sideways scrolling), no visible text cut off
by a container that hides its overflow, and every form control shown and at least 24 px tall
(the smallest comfortable touch target). Screenshots of each are kept for a human to look at."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import playwright.sync_api as playwright_api  # a test dependency: fail, never skip
import pytest
import requests
from test_web_support import PASSWORD, ThreadedServer

CHROMIUM = os.environ.get("TIPRING_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("TIPRING_SCREENSHOTS", tempfile.gettempdir())) / "tipring-layout"
WIDTHS = {"desktop": (1280, 800), "phone": (375, 740)}
MIN_CONTROL_PX = 24
PAGES = {  # name -> path, with content a real device shows (a long account, a call)
    "status": "/", "accounts": "/accounts", "account": "/accounts/provider-main/edit",
    "line": "/line", "dialplan": "/dialplan?digits=0044207946000", "network": "/network",
    "security": "/security", "maintenance": "/maintenance", "calls": "/calls",
    "phone": "/phone",
}
pytestmark = pytest.mark.slow

# Runs in the page: a list of problems, each naming the element and the figures.
LAYOUT_PROBLEMS = r"""minControl => {
  const view = document.documentElement.clientWidth;
  const problems = [];
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (el.getAttribute('name') ? `[name="${el.getAttribute('name')}"]` : '') +
      (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '');
  const shown = el => {
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    return style.display !== 'none' && style.visibility !== 'hidden' && box.width > 0 && box.height > 0;
  };
  // Inside a container that scrolls or clips sideways on purpose, children may be wider.
  const contained = el => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== 'visible') return true;
    }
    return false;
  };
  if (document.documentElement.scrollWidth > view + 1) {
    problems.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} px wide in a ${view} px viewport`);
  }
  const runsOver = [];
  const outside = el => {
    const box = el.getBoundingClientRect();
    return box.right > view + 1 || box.left < -1;
  };
  for (const el of document.body.querySelectorAll('*')) {
    if (!shown(el)) continue;
    const box = el.getBoundingClientRect();
    // the outermost element that sticks out names the problem; its children add nothing
    if (outside(el) && (el.parentElement === document.body || !outside(el.parentElement)) && !contained(el)) {
      problems.push(`${name(el)} spans ${Math.round(box.left)}..${Math.round(box.right)} px, outside the ${view} px viewport`);
    }
    const style = getComputedStyle(el);
    if (style.overflowX === 'visible' && !contained(el) && el.scrollWidth > el.clientWidth + 1 &&
        box.left + el.scrollWidth > view + 1) runsOver.push(el);
    const clips = style.overflowX === 'hidden' || style.overflowX === 'clip' || style.textOverflow === 'ellipsis';
    if (clips && el.scrollWidth > el.clientWidth + 1 && el.innerText.trim()) {
      problems.push(`${name(el)} cuts off its text: ${el.scrollWidth} px of content in ${el.clientWidth} px`);
    }
  }
  // content wider than its own box and the viewport: name the innermost such element
  for (const el of runsOver) {
    if (!runsOver.some(other => other !== el && el.contains(other))) {
      problems.push(`${name(el)} has content running ${el.scrollWidth - el.clientWidth} px past its box, beyond the viewport`);
    }
  }
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea, button')) {
    if (el.closest('[hidden]')) continue;  // not part of this page's state (e.g. a JS-only panel)
    if (!shown(el)) { problems.push(`${name(el)} is a form control nobody can see`); continue; }
    const height = el.getBoundingClientRect().height;
    if (height < minControl - 0.5) problems.push(`${name(el)} is ${height.toFixed(1)} px tall`);
    if (el.tagName === 'BUTTON') {  // a label broken inside its words reads as letters
      const style = getComputedStyle(el);
      const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.2;
      const lines = (el.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom)) / line;
      const words = el.innerText.trim().split(/\s+/).length;
      if (lines > words + 0.5) problems.push(`${name(el)} "${el.innerText.trim()}" takes ${Math.round(lines)} lines`);
    }
  }
  return problems;
}"""


@pytest.fixture(scope="module")
def device_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = ThreadedServer(tmp_path_factory.mktemp("layout") / "data" / "config.toml").start()
    try:
        _set_up(server.url)
        yield server.url
    finally:
        server.stop()


def _set_up(url: str) -> None:
    """First boot, then what a configured device has: an account with long names on line 0,
    static network settings on a VLAN, and a call dialled on the virtual phone."""
    session = requests.Session()
    csrf = session.get(url + "/setup", timeout=30).text.split('name="csrf" value="')[1]
    answer = session.post(url + "/setup", timeout=30, allow_redirects=False, data={
        "csrf": csrf.split('"')[0], "password": PASSWORD, "confirm": PASSWORD,
        "device.region": "GB", "device.timezone": "Europe/London"})
    assert answer.status_code == 303, answer.text
    token = session.post(url + "/api/v1/token", json={"password": PASSWORD},
                         timeout=30).json()["token"]
    api = {"Authorization": f"Bearer {token}"}
    account = session.post(url + "/api/v1/accounts", headers=api, timeout=30, json={
        "id": "provider-main", "user": "441234567890",
        "domain": "sip.a-rather-long-provider-domain-name.example.co.uk",
        "auth_user": "auth-441234567890-extension", "password": "s3cret-sip-password",
        "registrar": "", "enabled": False})
    assert account.status_code == 200, account.text
    line = session.put(url + "/api/v1/lines/0", headers=api, timeout=30,
                       json={"account": "provider-main"})
    assert line.status_code == 200, line.text
    network = session.put(url + "/api/v1/network", headers=api, timeout=30, json={
        "mode": "static", "address": "192.168.1.20/24", "gateway": "192.168.1.1",
        "dns": ["192.168.1.1"], "vlan": 42})  # the sim board then shows the files it wrote
    assert network.status_code == 200, network.text
    for action, body in (("lift", {}), ("dtmf", {"digits": "00442079460000"}), ("hangup", {})):
        pressed = session.post(f"{url}/api/v1/phone/0/{action}", headers=api, json=body,
                               timeout=30)
        assert pressed.status_code == 200, pressed.text


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        yield launched
        launched.close()


@pytest.fixture(scope="module", params=list(WIDTHS))
def signed_in(request: pytest.FixtureRequest, browser: object,
              device_url: str) -> Iterator[tuple[object, str]]:
    width, height = WIDTHS[request.param]
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": width, "height": height}, is_mobile=request.param == "phone",
        has_touch=request.param == "phone")
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(device_url + "/login")
    page.fill("#password", PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_url(device_url + "/")
    yield page, request.param
    context.close()


@pytest.mark.parametrize("name", list(PAGES))
def test_page_fits_and_shows_every_control(signed_in: tuple[object, str], device_url: str,
                                           name: str) -> None:
    page, width = signed_in
    page.goto(device_url + PAGES[name])  # type: ignore[attr-defined]
    assert page.url.startswith(device_url + PAGES[name].split("?")[0])  # type: ignore[attr-defined]
    page.wait_for_load_state("load")  # type: ignore[attr-defined]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)  # type: ignore[attr-defined]
    problems = page.evaluate(LAYOUT_PROBLEMS, MIN_CONTROL_PX)  # type: ignore[attr-defined]
    assert problems == [], f"{name} at {width} width:\n" + "\n".join(problems)
