"""The SIP figures of issue 4, each with a reference measured in the same run:

1. Messages parsed+serialized per second (below).
2. CPU to set up and tear down one call: two `UserAgent`s in memory (no sockets), INVITE with
   SDP / 100 / 180 / 200 with SDP / ACK / BYE / 200, plus the timer runs that free every
   transaction afterwards, timed with `time.process_time`. Reference (a different
   measurement, not a like-for-like stack): a SIPp uac/uas pair on loopback UDP running the
   same message flow, its CPU per call read from the kernel (both processes, user + system,
   socket I/O included) and its call rate at the offered load.
3. Wall time from `SipRuntime.start()` to `Registered` (REGISTER, 401, REGISTER with digest,
   200) against a Kamailio the benchmark starts on loopback (tests/peers/kamailio.py), best
   and median of a few runs. Reference: two OPTIONS round trips to the same Kamailio from a
   plain blocking socket (the network and proxy part of the same two exchanges). The
   SipRuntime constructor runs before start() and is printed on its own.

Part 1 in detail:

No SIP parser library is installed here (and none is pip-installed for this), so the baselines
are floors, not competitors:
- "naive split": split head and body at the blank line, split lines, split each at ':' into a
  list, join them back. No unfolding, compact forms, validation or typed values: the least any
  parser must do.
- "stdlib email": CPython's RFC 5322 header parser (email.parser.BytesHeaderParser, compat32)
  on the header section, written back field by field: the nearest general-purpose parser in
  the standard library (it knows nothing of SIP, so this too is a floor).
TipRing's figure includes everything `parse_message` does (start-line, unfolding, compact
forms, checking Via/From/To/Call-ID/CSeq/Contact/Route/Content-Type) and `serialize`; a
second figure adds the typed reads a transaction layer makes on every message.

Two message sets: a typical call-setup mix (INVITE with SDP, 100/180/200 responses, ACK, BYE,
REGISTER with credentials) and the RFC 4475 torture messages that parse.

Run: .venv/bin/python bench/sip.py [--seconds 1.0] [--calls 1000] [--rounds 5] [--runs 7]
     [--skip-parse] [--skip-peers]   (part 2's reference and part 3 need sipp and kamailio)
About 25 s with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import email.parser
import email.policy
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tipring.config.secret import Secret
from tipring.sdp import MediaPolicy
from tipring.sip import Request, SipParseError, parse_message, serialize
from tipring.sip.agent import UserAgent
from tipring.sip.registration import Registered, RegistrationSettings
from tipring.sip.session import CallAnswered, CallEnded, IncomingCall

ROOT = Path(__file__).resolve().parent.parent
RFC4475 = ROOT.parent / "shared" / "vectors" / "sip" / "rfc4475"

SDP = (
    b"v=0\r\no=- 20518 0 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)
DIALOG = (
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Alice" <sip:alice@example.com>;tag=9fxced76sl\r\n'
    "To: <sip:bob@example.com>{to_tag}\r\n"
    "Call-ID: 3848276298220188511@192.0.2.10\r\n"
    "CSeq: {cseq}\r\n"
    "Contact: <sip:alice@192.0.2.10:5060;transport=udp>\r\n"
    "User-Agent: TipRing/0.1\r\n"
)


def call_setup_mix() -> list[bytes]:
    def msg(start: str, cseq: str, to_tag: str = "", extra: str = "", body: bytes = b"") -> bytes:
        head = start + "\r\n" + DIALOG.format(cseq=cseq, to_tag=to_tag) + extra
        head += f"Content-Length: {len(body)}\r\n\r\n"
        return head.encode() + body

    invite_extra = (
        "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER\r\n"
        "Supported: replaces, timer\r\nContent-Type: application/sdp\r\n"
    )
    return [
        msg("INVITE sip:bob@example.com SIP/2.0", "1 INVITE", extra=invite_extra, body=SDP),
        msg("SIP/2.0 100 Trying", "1 INVITE"),
        msg("SIP/2.0 180 Ringing", "1 INVITE", ";tag=8321234356"),
        msg("SIP/2.0 200 OK", "1 INVITE", ";tag=8321234356", invite_extra, SDP),
        msg("ACK sip:bob@192.0.2.20 SIP/2.0", "1 ACK", ";tag=8321234356"),
        msg("BYE sip:bob@192.0.2.20 SIP/2.0", "2 BYE", ";tag=8321234356"),
        msg(
            "REGISTER sip:example.com SIP/2.0",
            "3 REGISTER",
            extra=(
                'Authorization: Digest username="alice", realm="example.com", '
                'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:example.com", '
                'response="e6f99bf42fe2c9cd7a0fb46d1c4e0dd7", algorithm=MD5\r\nExpires: 3600\r\n'
            ),
        ),
    ]


def torture_set() -> list[bytes]:
    out = []
    for path in sorted(RFC4475.glob("*.dat")):
        data = path.read_bytes()
        try:
            parse_message(data)
        except SipParseError:
            continue
        out.append(data)
    return out


def tipring(data: bytes) -> bytes:
    return serialize(parse_message(data))


def tipring_typed(data: bytes) -> bytes:
    message = parse_message(data)
    try:  # the reads a transaction layer makes (RFC 4475 insuf lacks some: that is fine)
        message.via[0].branch  # noqa: B018
        message.cseq  # noqa: B018
        message.call_id  # noqa: B018
        message.from_.tag  # noqa: B018
        message.to.tag  # noqa: B018
        if isinstance(message, Request):
            message.contacts  # noqa: B018
    except SipParseError:
        pass
    return serialize(message)


def naive_split(data: bytes) -> bytes:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = [line.split(b":", 1) for line in lines[1:]]
    return b"\r\n".join([lines[0], *(b":".join(f) for f in fields)]) + b"\r\n\r\n" + body


_EMAIL = email.parser.BytesHeaderParser(policy=email.policy.compat32)


def stdlib_email(data: bytes) -> bytes:
    head, _, body = data.partition(b"\r\n\r\n")
    start, _, fields = head.partition(b"\r\n")
    message = _EMAIL.parsebytes(fields + b"\r\n\r\n")  # headers only: no MIME walking
    lines = [start.decode("utf-8", "surrogateescape")]
    lines += [f"{name}: {value}" for name, value in message.items()]
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\r\n\r\n" + body


def rate(fn: Callable[[bytes], bytes], messages: list[bytes], seconds: float) -> float:
    """Messages per second, best of five rounds (the least-disturbed round is the figure)."""
    rounds = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(rounds):
            for data in messages:
                fn(data)
        if time.perf_counter() - t0 > seconds / 10:
            break
        rounds *= 2
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(rounds):
            for data in messages:
                fn(data)
        best = max(best, rounds * len(messages) / (time.perf_counter() - t0))
    return best


def print_parse_figures(seconds: float) -> None:
    sets = {"call-setup mix": call_setup_mix(), "RFC 4475 valid": torture_set()}
    print(f"{'message set':16} {'parser':34} {'msgs/s':>10} {'vs naive':>9} {'vs email':>9}")
    for set_name, messages in sets.items():
        naive = rate(naive_split, messages, seconds)
        mail = rate(stdlib_email, messages, seconds)
        rows = [
            ("naive split (floor)", naive),
            ("stdlib email (floor)", mail),
            ("tipring parse+serialize", rate(tipring, messages, seconds)),
            ("tipring + typed reads", rate(tipring_typed, messages, seconds)),
        ]
        for name, value in rows:
            print(f"{set_name:16} {name:34} {value:10.0f} {value / naive:9.2f} {value / mail:9.2f}")


# --- 2. CPU per call set-up and tear-down ---------------------------------------------------

ALICE = ("10.0.0.1", 5060, "udp")
BOB = ("10.0.0.2", 5060, "udp")
FLOW = ["INVITE", "100", "180", "200", "ACK", "BYE", "200"]


class CallPair:
    """Two agents wired back to back in memory: what one sends, the other receives at once.

    The agents draw tags, branches and Call-IDs from the OS generator, as on the device.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.alice = self._agent(ALICE, "alice")
        self.bob = self._agent(BOB, "bob")
        self.by_address = {ALICE[:2]: (self.alice, ALICE), BOB[:2]: (self.bob, BOB)}
        self.media_a = MediaPolicy(address="10.0.0.1", port=4000)
        self.media_b = MediaPolicy(address="10.0.0.2", port=6000)
        self.sent: list[str] = []  # first word of each message's start line, when recording

    @staticmethod
    def _agent(address: tuple[str, int, str], user: str) -> UserAgent:
        ua = UserAgent(address)
        ua.add_account(RegistrationSettings(account="line1", user=user, domain=address[0],
                                            password=Secret("pw"), keepalive_s=0),
                       [], allow_sip_from="any")
        return ua

    def pump(self, record: bool = False) -> None:
        moved = True
        while moved:
            moved = False
            for source_ua, source in ((self.alice, ALICE), (self.bob, BOB)):
                for data, destination in source_ua.datagrams_to_send():
                    if record:
                        word = data.split(b" ", 2)
                        self.sent.append((word[1] if word[0] == b"SIP/2.0" else word[0]).decode())
                    target, _ = self.by_address[destination[:2]]
                    target.receive(data, source, self.now)
                    moved = True

    @staticmethod
    def drain(ua: UserAgent) -> list[object]:
        out = []
        while (event := ua.next_event()) is not None:
            out.append(event)
        return out

    def one_call(self, record: bool = False) -> None:
        alice, bob = self.alice, self.bob
        call = alice.invite("line1", "sip:bob@10.0.0.2", self.media_a, self.now)
        self.pump(record)
        [incoming] = self.drain(bob)
        bob.ring(incoming.call, self.now)  # type: ignore[attr-defined]
        self.pump(record)
        bob.answer(incoming.call, self.media_b, self.now)  # type: ignore[attr-defined]
        self.pump(record)
        alice.hangup(call, self.now)
        self.pump(record)
        if record:
            events = self.drain(alice) + self.drain(bob)
            kinds = [type(e) for e in events]
            assert kinds.count(CallAnswered) == 2 and kinds.count(CallEnded) == 2, events
            assert isinstance(incoming, IncomingCall)
        else:
            self.drain(alice), self.drain(bob)
        # Let every transaction timer (Timer J, K, L, M: at most 64*T1) run out and free it.
        self.now += 40.0
        for ua in (alice, bob):
            while (due := ua.get_timer()) is not None and due <= self.now:
                ua.handle_timer(self.now)
        self.pump(record)

    def check_steady(self) -> None:
        for ua in (self.alice, self.bob):
            assert not ua.sessions and not ua.layer.clients and not ua.layer.servers, \
                "a call left state behind: the figure would not be per call"


def call_cpu(calls: int, rounds: int) -> tuple[float, float]:
    """CPU microseconds per call: (best round, median round) of `rounds` rounds of `calls`."""
    pair = CallPair()
    pair.one_call(record=True)
    assert pair.sent == FLOW, f"unexpected message flow {pair.sent}"
    pair.check_steady()
    for _ in range(calls // 10):  # warm-up
        pair.one_call()
    per_call = []
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(calls):
            pair.one_call()
        per_call.append((time.process_time() - t0) / calls * 1e6)
    pair.check_steady()
    return min(per_call), statistics.median(per_call)


SIPP = shutil.which("sipp") or "/usr/bin/sipp"


def sipp_reference(calls: int, offered_cps: int) -> tuple[float, float] | None:
    """SIPp's built-in uac against its built-in uas on loopback UDP, `calls` calls offered at
    `offered_cps`: (CPU us per call of both processes, calls/s achieved), or None when SIPp
    is missing or a call failed."""
    if not Path(SIPP).exists():
        return None
    sys.path.insert(0, str(ROOT / "tests"))
    from peers.ports import free_port

    uas_port, uac_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    common = ["-i", "127.0.0.1", "-mi", "127.0.0.1", "-t", "u1", "-m", str(calls), "-nostdin",
              "-timeout", "30s", "-timeout_error"]
    with tempfile.TemporaryDirectory(prefix="bench-sipp-") as work:
        uas = subprocess.Popen([SIPP, "-sn", "uas", "-p", str(uas_port), *common], cwd=work,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # let the UAS bind
        t0 = time.perf_counter()
        uac = subprocess.Popen([SIPP, "-sn", "uac", "-p", str(uac_port), *common,
                                "-r", str(offered_cps), "-l", "200", "-d", "0",
                                f"127.0.0.1:{uas_port}"], cwd=work,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, uac_status, uac_usage = os.wait4(uac.pid, 0)
        wall = time.perf_counter() - t0
        uac.returncode = os.waitstatus_to_exitcode(uac_status)
        try:
            _, uas_status, uas_usage = os.wait4(uas.pid, 0)
            uas.returncode = os.waitstatus_to_exitcode(uas_status)
        except ChildProcessError:
            return None
    if uac.returncode != 0 or uas.returncode != 0:
        print(f"  (SIPp reference failed: uac exit {uac.returncode}, uas exit {uas.returncode})")
        return None
    cpu = sum(u.ru_utime + u.ru_stime for u in (uac_usage, uas_usage))
    return cpu / calls * 1e6, calls / wall


def print_call_figures(calls: int, rounds: int, peers: bool) -> None:
    best, median = call_cpu(calls, rounds)
    print(f"\nCPU per call set-up + tear-down ({' / '.join(FLOW)}, SDP offer/answer, "
          f"transactions freed), two UserAgents in memory, {rounds} rounds of {calls} calls:")
    print(f"  tipring  {best:8.0f} us/call (median {median:.0f})  = {1e6 / best:7.0f} calls/s "
          f"on one core (both ends of the call)")
    if not peers:
        return
    offered = 2000
    reference = sipp_reference(4 * calls, offered)
    if reference is None:
        print("  SIPp reference not available")
        return
    cpu, achieved = reference
    print(f"  reference, a different measurement: SIPp 3.6 built-in uac+uas (C++, a scripted "
          f"message exchange rather than a SIP stack, kernel UDP I/O included) on loopback, "
          f"{4 * calls} calls offered at {offered} calls/s:")
    print(f"  SIPp     {cpu:8.1f} us/call (both processes, user+sys)  achieved "
          f"{achieved:.0f} calls/s;  tipring / SIPp CPU = {best / cpu:.1f}x")


# --- 3. start to Registered against Kamailio ------------------------------------------------


async def start_to_registered(proxy: object) -> tuple[float, float]:
    """(seconds from start() to Registered, seconds the SipRuntime constructor took)."""
    from tipring.runtime.sip_runtime import SipRuntime

    registered = asyncio.Event()

    def on_event(event: object) -> None:
        if isinstance(event, Registered):
            registered.set()

    settings = RegistrationSettings(
        account="line1", user="1001", domain="tipring.test", password=Secret("secret1001"),
        registrar=proxy.hostport, expires=300, keepalive_s=0.0)  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    runtime = SipRuntime("127.0.0.1", 0, on_event=on_event)
    t1 = time.perf_counter()
    await runtime.start()
    await runtime.add_account(settings)
    runtime.register("line1")
    await asyncio.wait_for(registered.wait(), 10)
    elapsed = time.perf_counter() - t1
    await runtime.stop()  # un-REGISTERs, so every run starts from no binding
    return elapsed, t1 - t0


def print_register_figures(runs: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from peers.kamailio import KAMAILIO, Kamailio, options_ping

    if not Path(KAMAILIO).exists():
        print("\nkamailio not installed: no start-to-Registered figure")
        return
    with tempfile.TemporaryDirectory(prefix="bench-kamailio-") as work:
        proxy = Kamailio(Path(work), debug=1, max_lifetime=120)
        proxy.start()
        try:
            asyncio.run(start_to_registered(proxy))  # warm-up: imports, Kamailio's first nonce
            timed = [asyncio.run(start_to_registered(proxy)) for _ in range(runs)]
            ours = [t for t, _ in timed]
            constructor = statistics.median(c for _, c in timed)
            assert not proxy.contacts("1001"), "a run left its binding behind"
            floor = []
            for _ in range(runs):
                t0 = time.perf_counter()
                for _ in range(2):
                    assert options_ping(proxy.host, proxy.port, timeout=2.0) == 200
                floor.append(time.perf_counter() - t0)
        finally:
            proxy.stop()
    print(f"\nWall time from SipRuntime.start() to Registered (REGISTER / 401 / REGISTER with "
          f"digest / 200) against Kamailio on loopback, {runs} runs:")
    print(f"  tipring  best {min(ours) * 1e3:6.2f} ms  median {statistics.median(ours) * 1e3:6.2f} ms")
    print(f"  reference: two OPTIONS round trips to the same Kamailio from a blocking socket: "
          f"best {min(floor) * 1e3:.2f} ms  median {statistics.median(floor) * 1e3:.2f} ms;  "
          f"tipring / reference (medians) = "
          f"{statistics.median(ours) / statistics.median(floor):.1f}x")
    print(f"  (before start(): the SipRuntime constructor, median {constructor * 1e3:.2f} ms, not "
          f"counted above)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per parse measurement")
    parser.add_argument("--calls", type=int, default=1000, help="calls per CPU round")
    parser.add_argument("--rounds", type=int, default=5, help="CPU rounds (best is the figure)")
    parser.add_argument("--runs", type=int, default=7, help="start-to-Registered runs")
    parser.add_argument("--skip-parse", action="store_true", help="leave out part 1")
    parser.add_argument("--skip-peers", action="store_true",
                        help="leave out SIPp and Kamailio (part 2's reference and part 3)")
    args = parser.parse_args()
    random.seed()
    started = time.perf_counter()
    if not args.skip_parse:
        print_parse_figures(args.seconds)
    print_call_figures(args.calls, args.rounds, not args.skip_peers)
    if not args.skip_peers:
        print_register_figures(args.runs)
    print(f"\n(benchmark ran {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
