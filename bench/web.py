"""The web figures of issue 8: status page server time, and the memory of the whole firmware
process with its web server idle and under load. Targets: the status page (GET /) under 20 ms
of server time here; the process under 60 MB RSS.

1. Server time of GET / (signed in, sim board, one line with an account), in-process: the
   device and its aiohttp app on a loopback port, requests from a client in the same process,
   one at a time. "Server time" is measured by a middleware placed outside every other one,
   so it covers the access checks (session, first-boot gate), gathering the status (system
   facts from /proc included) and the Jinja2 rendering; not the socket or HTTP parsing.
   Median and p95 over N requests; the client's round trip is printed beside it.
   Baseline, same run, same middleware: an aiohttp handler returning the very same bytes,
   rendered once beforehand. The difference is what producing the page costs; the baseline
   is aiohttp's own floor for a reply of that size.
2. RSS of the firmware as users run it (`tipring run --board sim` in a process of its own,
   with an account configured so SIP is up): idle after start-up, then while a client in this
   process sends GET / at a fixed rate (open loop: a request is sent every 1/rate s whatever
   the replies do), sampled from /proc/PID/status every 0.5 s; the peak (VmHWM) too.
   Reference: the RSS of a bare `python3 -c "import aiohttp, jinja2"` process (the interpreter
   and the two libraries every such server carries), measured the same way.

Run: .venv/bin/python bench/web.py [--requests 500] [--rate 50] [--seconds 30] [--idle 3]
About 45 s with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import ClientSession, CookieJar, web
from aiohttp.test_utils import TestClient, TestServer

from tipring.runtime.app import Device, Options
from tipring.web.server import make_app

SERVER_TIME_TARGET_MS = 20.0
RSS_TARGET_MB = 60.0
PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ACCOUNT = {"id": "bench", "user": "2001", "domain": "127.0.0.1:9", "password": "bench-secret"}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def timing_middleware(spent: list[float]) -> web.middleware:
    @web.middleware
    async def timed(request: web.Request, handler):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return await handler(request)
        finally:
            spent.append(time.perf_counter() - start)
    return timed


async def first_boot(get, post) -> None:  # type: ignore[no-untyped-def]
    """Set the admin password through the real form; the client is then signed in."""
    page = await get("/setup")
    answer = await post("/setup", {"csrf": CSRF.search(page).group(1), "password": PASSWORD,
                                   "confirm": PASSWORD, "device.region": "US",
                                   "device.timezone": "UTC"})
    assert answer in (200, 303), f"first-boot setup answered {answer}"


async def _timed_requests(client: TestClient, spent: list[float], count: int
                          ) -> tuple[list[float], list[float], bytes]:
    spent.clear()
    round_trips = []
    body = b""
    for _ in range(count):
        start = time.perf_counter()
        response = await client.get("/")
        body = await response.read()
        round_trips.append(time.perf_counter() - start)
        assert response.status == 200, response.status
    return list(spent), round_trips, body


async def server_time(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        device = Device(Options(Path(tmp) / "config.toml", "sim", sip_host="127.0.0.1",
                                sip_port=_free_port(socket.SOCK_DGRAM)))
        device.start()
        spent: list[float] = []
        app = make_app(device)
        app.middlewares.insert(0, timing_middleware(spent))
        try:
            async with TestClient(TestServer(app)) as client:
                async def get(path: str) -> str:
                    return await (await client.get(path)).text()

                async def post(path: str, data: dict[str, str]) -> int:
                    return (await client.post(path, data=data, allow_redirects=False)).status

                await first_boot(get, post)
                await _add_account(client)
                await _timed_requests(client, spent, 20)  # warm up: templates compiled
                ours, ours_rtt, body = await _timed_requests(client, spent, count)
                assert b'id="lines"' in body, "GET / did not give the status page"
        finally:
            await device.stop_telephony()
            device.close()

    baseline_spent: list[float] = []
    baseline = web.Application(middlewares=[timing_middleware(baseline_spent)])

    async def same_bytes(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    baseline.router.add_get("/", same_bytes)
    async with TestClient(TestServer(baseline)) as client:
        await _timed_requests(client, baseline_spent, 20)
        base, base_rtt, _ = await _timed_requests(client, baseline_spent, count)

    def ms(values: list[float], fraction: float) -> float:
        return percentile(values, fraction) * 1e3

    print(f"1. Server time of GET / (status page, {len(body)} bytes), {count} requests, "
          "in-process, one at a time")
    print(f"   {'':28} {'median':>8} {'p95':>8}   {'round trip median':>18}")
    print(f"   {'tipring status page':28} {ms(ours, .5):6.3f} ms {ms(ours, .95):6.3f} ms   "
          f"{ms(ours_rtt, .5):15.2f} ms")
    print(f"   {'aiohttp, same bytes':28} {ms(base, .5):6.3f} ms {ms(base, .95):6.3f} ms   "
          f"{ms(base_rtt, .5):15.2f} ms")
    print(f"   producing the page costs {ms(ours, .5) - ms(base, .5):.2f} ms at the median "
          f"({statistics.median(ours) / statistics.median(base):.0f}x the baseline); "
          f"target: under {SERVER_TIME_TARGET_MS:.0f} ms -> "
          f"{'met' if ms(ours, .95) < SERVER_TIME_TARGET_MS else 'NOT met'} (p95)")


async def _add_account(client: TestClient) -> None:
    token = (await (await client.post("/api/v1/token", json={"password": PASSWORD})).json())
    answer = await client.post("/api/v1/accounts", json=ACCOUNT,
                               headers={"Authorization": f"Bearer {token['token']}"})
    assert answer.status == 200, await answer.text()


def _free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


async def _wait_listening(base: str, process: subprocess.Popen[bytes]) -> None:
    async with ClientSession() as session:
        for _ in range(200):
            if process.poll() is not None:
                raise RuntimeError(f"tipring run exited with {process.returncode}")
            try:
                async with session.get(base + "/setup") as response:
                    await response.read()
                    return
            except OSError:
                await asyncio.sleep(0.1)
    raise RuntimeError("tipring run did not start listening")


async def _load(session: ClientSession, base: str, rate: float, seconds: float, pid: int
                ) -> tuple[list[float], list[float], int]:
    """GET / every 1/rate s for `seconds` (open loop); RSS sampled every 0.5 s."""
    latencies: list[float] = []
    samples: list[float] = []
    failures = 0

    async def one() -> None:
        nonlocal failures
        start = time.perf_counter()
        try:
            async with session.get(base + "/") as response:
                await response.read()
                if response.status != 200:
                    failures += 1
        except OSError:
            failures += 1
        latencies.append(time.perf_counter() - start)

    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    next_sample = start
    for n in range(int(rate * seconds)):
        due = start + n / rate
        now = loop.time()
        if now >= next_sample:
            samples.append(rss_mb(pid))
            next_sample += 0.5
        if due > now:
            await asyncio.sleep(due - now)  # the load generator's pacing, not the server's
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    samples.append(rss_mb(pid))
    return latencies, samples, failures


async def process_memory(rate: float, seconds: float, idle_s: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            [sys.executable, "-m", "tipring.cli", "run", "--board", "sim", "--config",
             str(Path(tmp) / "config.toml"), "--listen", "127.0.0.1", "--port", str(port),
             "--sip-host", "127.0.0.1", "--sip-port", str(_free_port(socket.SOCK_DGRAM))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await _wait_listening(base, process)
            async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
                async def get(path: str) -> str:
                    async with session.get(base + path) as response:
                        return await response.text()

                async def post(path: str, data: dict[str, str]) -> int:
                    async with session.post(base + path, data=data,
                                            allow_redirects=False) as response:
                        return response.status

                await first_boot(get, post)
                token = await (await session.post(base + "/api/v1/token",
                                                  json={"password": PASSWORD})).json()
                await session.post(base + "/api/v1/accounts", json=ACCOUNT,
                                   headers={"Authorization": f"Bearer {token['token']}"})
                await asyncio.sleep(idle_s)
                idle = rss_mb(process.pid)
                latencies, samples, failures = await _load(session, base, rate, seconds,
                                                           process.pid)
                peak = rss_mb(process.pid, "VmHWM")
        finally:
            process.terminate()
            process.wait(10)
    reference = _bare_rss()
    print("\n2. RSS of `tipring run --board sim` (one account, SIP up), its own process")
    print(f"   idle, {idle_s:.0f} s after start-up      {idle:6.1f} MB")
    print(f"   under {rate:.0f} req/s of GET / for {seconds:.0f} s: median {statistics.median(samples):6.1f} MB,"
          f" max {max(samples):6.1f} MB; peak (VmHWM) {peak:6.1f} MB")
    print(f"   {len(latencies)} requests, {failures} failed; round trip median "
          f"{percentile(latencies, .5) * 1e3:.1f} ms, p95 {percentile(latencies, .95) * 1e3:.1f} ms")
    print(f"   reference: bare python3 with aiohttp and jinja2 imported {reference:6.1f} MB "
          f"(tipring adds {idle - reference:.1f} MB idle)")
    worst = max(idle, *samples)
    print(f"   target: under {RSS_TARGET_MB:.0f} MB idle and under load -> "
          f"{'met' if worst < RSS_TARGET_MB else 'NOT met'} ({worst:.1f} MB at worst)")
    print("   (the peak includes scrypt's 16 MiB working buffer, held for a fraction of a "
          "second at each sign-in or token request)")


def _bare_rss() -> float:
    process = subprocess.Popen(
        [sys.executable, "-c", ("import aiohttp, jinja2, sys; sys.stdout.write('ok\\n'); "
                                "sys.stdout.flush(); sys.stdin.read()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdout.readline() == b"ok\n"
        return rss_mb(process.pid)
    finally:
        process.communicate(b"")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="for the server time")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the load runs")
    parser.add_argument("--idle", type=float, default=3.0, help="settle time before idle RSS")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}")
    asyncio.run(server_time(args.requests))
    asyncio.run(process_memory(args.rate, args.seconds, args.idle))


if __name__ == "__main__":
    main()
