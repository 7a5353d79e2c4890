"""Screenshots of the web UI for the README, taken from the real firmware (`tipring run` on the
sim board) in a real browser (Debian's Chromium via Playwright), during a real call.

Why this shape:
- The pages are shown as a user sees them, so the firmware runs as a separate process with a
  demo configuration in a temporary folder; the status page shows a live call with real RTP
  figures, so the account registers with a Kamailio and calls a baresip that answers by itself
  (the test suite's peers in tests/peers, from their Debian packages).
- The status page names the host and its addresses; the build machine's are swapped for
  documentation ones (RFC 5737/3849) on the way to the browser, so no screenshot carries them.
- README images should be small: the viewport is 1000 px wide at scale 1, and each PNG is
  re-encoded as an indexed (palette) PNG. Chromium itself decodes its screenshot (a canvas in a
  blank page), so no imaging library is needed; numpy (a test dependency) picks the palette.

Run it with `bash .ci/screenshots/take` (which sets up .venv first).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import playwright.sync_api as pw

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))  # the real-peer harness: tests/peers

from peers.baresip import Baresip  # noqa: E402
from peers.kamailio import Kamailio  # noqa: E402
from peers.ports import free_port  # noqa: E402

from tipring.config import ConfigStore, config_from_dict, config_to_dict, default_config  # noqa: E402
from tipring.config.passwords import hash_password  # noqa: E402
from tipring.runtime.app import interface_addresses  # noqa: E402
from tipring.runtime.calllog import CallLog, CallLogEntry  # noqa: E402

CHROMIUM = os.environ.get("TIPRING_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "demo password for screenshots"
WIDTH = 1000
WAIT_MS = 15_000
SHOWN_HOST = "tipring-3f2a1c"
SHOWN_ADDRESSES = ("192.0.2.10", "2001:db8::10")


def demo_config(folder: Path, proxy: Kamailio) -> Path:
    """A configured device: the admin password set, one account on line 1, a fallback account,
    a forward on no answer, a few calls already in the log."""
    raw = config_to_dict(default_config(), reveal_secrets=True)
    raw["device"].update(name="kitchen", region="US", timezone="America/Chicago")
    raw["accounts"] = [
        {"id": "home", "display_name": "Kitchen phone", "user": "1001", "password": "secret1001",
         "domain": "tipring.test", "registrar": proxy.hostport, "expires": 300,
         "keepalive_s": 0, "voicemail": "*97"},
        {"id": "backup", "user": "4420", "password": "not-a-real-password",
         "domain": "sip.example.net", "enabled": False},
    ]
    raw["lines"][0].update(account="home", forward_no_answer="+13125550188", no_answer_s=25)
    raw["web"]["admin_password_hash"] = hash_password(PASSWORD)
    path = folder / "config.toml"
    ConfigStore(path).save(config_from_dict(raw))
    log = CallLog.beside(path)
    now = time.time()
    log.add(CallLogEntry(time=now - 7200, line=0, direction="incoming", number="3125550142",
                         name="Grandma", duration_s=754.0, outcome="answered", status=200,
                         codec="PCMU"))
    log.add(CallLogEntry(time=now - 3400, line=None, direction="incoming", number="",
                         name="Withheld", outcome="missed", reason="anonymous call rejected"))
    log.add(CallLogEntry(time=now - 1900, line=0, direction="outgoing", number="8005550100",
                         outcome="busy", status=486, reason="Busy Here"))
    return path


@contextlib.contextmanager
def firmware(config: Path, web_port: int, sip_port: int) -> Iterator[str]:
    """`tipring run` on the sim board; yields its URL once the web page answers."""
    argv = [str(ROOT / ".venv" / "bin" / "tipring"), "run", "--board", "sim", "--config",
            str(config), "--listen", "127.0.0.1", "--port", str(web_port), "--sip-host",
            "127.0.0.1", "--sip-port", str(sip_port)]
    log = open(config.parent / "tipring.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{web_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/login", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("tipring run did not start:\n"
                                     + (config.parent / "tipring.log").read_text()[-2000:]) from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def hide_machine(data: Path) -> Callable[[pw.Route], None]:
    """A route handler for pages: this machine's host name and addresses become documentation
    ones, and the temporary data folder the device's own (/data/tipring)."""
    found = interface_addresses()

    def handle(route: pw.Route) -> None:
        if route.request.resource_type != "document":
            route.fallback()
            return
        response = route.fetch(max_redirects=0)  # a redirect goes to the browser as it is
        body = response.text().replace(socket.gethostname(), SHOWN_HOST)
        body = body.replace(str(data), "/data/tipring")
        if found:
            body = body.replace(", ".join(found), ", ".join(SHOWN_ADDRESSES[: len(found)]))
        route.fulfill(response=response, body=body)

    return handle


def pixels(browser: pw.Browser, png: bytes) -> np.ndarray:
    """RGBA pixels of `png`, decoded by Chromium (a canvas in a page of our own)."""
    page = browser.new_page()
    try:
        raw = page.evaluate(
            """async (data) => {
                const image = new Image();
                image.src = "data:image/png;base64," + data;
                await image.decode();
                const canvas = document.createElement("canvas");
                canvas.width = image.width; canvas.height = image.height;
                const ctx = canvas.getContext("2d");
                ctx.drawImage(image, 0, 0);
                const bytes = ctx.getImageData(0, 0, image.width, image.height).data;
                let text = "";
                for (let i = 0; i < bytes.length; i += 0x8000)
                    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
                return [image.width, image.height, btoa(text)];
            }""", base64.b64encode(png).decode())
    finally:
        page.close()
    width, height, data = raw
    return np.frombuffer(base64.b64decode(data), np.uint8).reshape(height, width, 4)


def palette_png(rgba: np.ndarray) -> bytes:
    """An indexed PNG of at most 256 colours: the page's own colours (flat backgrounds, text,
    borders) are the most frequent ones and stay exact; rarer anti-aliasing shades map to the
    nearest of them."""
    height, width = rgba.shape[:2]
    rgb = rgba[:, :, :3].astype(np.int32)
    packed = (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]
    colours, inverse, counts = np.unique(packed.ravel(), return_inverse=True, return_counts=True)
    keep = colours[np.argsort(-counts, kind="stable")[:256]]
    split = np.stack([(keep >> 16) & 255, (keep >> 8) & 255, keep & 255], axis=1)
    every = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=1)
    nearest = np.empty(len(colours), np.uint8)
    for start in range(0, len(colours), 4096):  # bounded memory: 4096 x 256 distances a time
        chunk = every[start:start + 4096, None, :] - split[None, :, :]
        nearest[start:start + 4096] = np.argmin((chunk * chunk).sum(axis=2), axis=1)
    index = nearest[inverse].reshape(height, width)
    rows = np.concatenate([np.zeros((height, 1), np.uint8), index], axis=1)  # filter 0

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0))
            + chunk(b"PLTE", split.astype(np.uint8).tobytes())
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
            + chunk(b"IEND", b""))


class Shooter:
    def __init__(self, browser: pw.Browser, page: pw.Page, out: Path) -> None:
        self.browser, self.page, self.out = browser, page, out
        self.written: list[tuple[str, int]] = []

    def __call__(self, name: str) -> None:
        png = self.page.screenshot(full_page=True)
        small = palette_png(pixels(self.browser, png))
        path = self.out / f"{name}.png"
        path.write_bytes(small)
        self.written.append((path.name, len(small)))
        print(f"{path}: {len(small) // 1024} KiB "
              f"(Chromium's PNG: {len(png) // 1024} KiB)")


def take(url: str, data: Path, far: Baresip, out: Path) -> None:
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update"])
        context = browser.new_context(viewport={"width": WIDTH, "height": 700},
                                      device_scale_factor=1, color_scheme="light")
        context.set_default_timeout(WAIT_MS)
        context.route("**/*", hide_machine(data))
        page = context.new_page()
        shot = Shooter(browser, page, out)
        page.goto(url + "/")
        page.fill("#password", PASSWORD)
        page.click("#login button[type=submit]")
        page.wait_for_url(url + "/")
        pw.expect(page.locator("[data-key='line0.registration']")).to_have_text(
            re.compile(r"^registered"))

        page.goto(url + "/phone")
        page.locator("[data-live][data-updated]").wait_for()
        page.click("#phone0 button[value=lift]")
        page.fill("#digits0", "1002#")
        page.click("#phone0 .keypad button:text('Dial (touch-tone)')")
        far.wait_event("CALL_ESTABLISHED", WAIT_MS / 1000)
        pw.expect(page.locator("[data-key='phone0.heard']")).not_to_have_text("silence")
        page.fill("#digits0", "")
        shot("phone")

        page.goto(url + "/")
        pw.expect(page.locator("[data-key='line0.call']")).to_have_text("outgoing, connected")
        pw.expect(page.locator("[data-key='line0.rtp.received']")).to_have_text(
            re.compile(r"^\d{2,} packets$"))
        page.wait_for_timeout(2500)  # a few seconds of call: duration and figures filled in
        shot("status")

        page.goto(url + "/phone")
        page.click("#phone0 button[value=hangup]")
        far.wait_event("CALL_CLOSED", WAIT_MS / 1000)
        page.goto(url + "/calls")
        shot("call-log")

        page.goto(url + "/accounts")
        shot("accounts")
        page.goto(url + "/accounts/home/edit")
        shot("account")
        page.goto(url + "/line")
        shot("line")
        page.goto(url + "/dialplan")
        page.type("#digits", "3125550123")
        pw.expect(page.locator("#dialplan-result")).not_to_be_empty()
        shot("dialplan")
        for name in ("network", "security", "maintenance"):
            page.goto(f"{url}/{name}")
            shot(name)
        browser.close()
    total = sum(size for _, size in shot.written)
    print(f"{len(shot.written)} screenshots, {total // 1024} KiB in all")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNGs")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tipring-shots-") as tmp:
        folder = Path(tmp)
        with Kamailio(folder / "kamailio") as proxy, \
                Baresip(folder / "baresip", proxy.aor("1002"), password="secret1002",
                        answer_mode="auto", name="baresip") as far:
            config = demo_config(folder / "data", proxy)
            with firmware(config, free_port(), free_port()) as url:
                take(url, config.parent, far, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
