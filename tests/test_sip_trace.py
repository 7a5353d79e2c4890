"""The SIP trace: credentials masked, bounded by bytes, and a pcap that readers open.

The pcap is read back by a reader written here from the libpcap, Ethernet, IPv4/IPv6, UDP and
TCP formats (checksums included), and by sngrep headless, which must find the SIP dialogs in
it. The end-to-end test registers a SipRuntime with Kamailio over UDP and TCP and checks that
neither the password nor the digest response it really sent is anywhere in the download.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from peers.kamailio import Kamailio
from test_sip_peers import Phone, account, blocking, run
from tipring.runtime.siptrace import RECORD_OVERHEAD, SipTrace
from tipring.sip.registration import Registered
from tipring.sip.stun import binding_request

pytest_plugins = ["peers.fixtures"]

LOCAL = ("192.0.2.10", 5060)
REMOTE = ("198.51.100.7", 5060)
RESPONSE = "6629fae49393a05397450978507c4ef1"
CNONCE = "0a4f113b"
AUTHORIZATION = (
    f'Digest username="1001", realm="tipring.test", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
    f'uri="sip:tipring.test", response="{RESPONSE}", algorithm=MD5, cnonce="{CNONCE}", '
    f"qop=auth, nc=00000001"
)


def register(authorization: str = AUTHORIZATION, name: str = "Authorization") -> bytes:
    return (
        "REGISTER sip:tipring.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\r\n"
        "From: <sip:1001@tipring.test>;tag=a1\r\nTo: <sip:1001@tipring.test>\r\n"
        "Call-ID: c1@test\r\nCSeq: 2 REGISTER\r\n"
        f"{name}: {authorization}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def clock() -> float:
    clock.now += 0.25  # type: ignore[attr-defined]
    return clock.now  # type: ignore[attr-defined]


clock.now = 1_700_000_000.0  # type: ignore[attr-defined]


# --- masking -----------------------------------------------------------------------------------


def test_digest_credentials_keep_what_identifies_the_attempt_and_lose_the_rest() -> None:
    trace = SipTrace(clock=clock)
    trace.record("out", "udp", LOCAL, REMOTE, register())
    trace.record("out", "udp", LOCAL, REMOTE, register(
        AUTHORIZATION.replace("Digest ", "DIGEST ").replace(", ", ",\r\n "),
        "proxy-authorization"))
    trace.record("out", "udp", LOCAL, REMOTE, register("Bearer eyJhbGciOiJIUzI1NiJ9.secret"))
    first, folded, bearer = (r.data.decode() for r in trace.records())
    line = next(x for x in first.split("\r\n") if x.startswith("Authorization:"))
    assert line == (
        'Authorization: Digest username="1001", realm="tipring.test", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:tipring.test", response="***", '
        'algorithm=MD5, cnonce="***", qop=auth, nc=00000001')
    assert "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\r\n" in first  # the rest as sent
    assert first.endswith("Content-Length: 0\r\n\r\n")
    # A folded credential (continuation lines) is masked line by line, whatever the case.
    assert RESPONSE not in folded and CNONCE not in folded
    assert 'proxy-authorization: DIGEST username="1001"\r\n ***\r\n ***\r\n' in folded
    assert "Bearer ***" in bearer and "eyJ" not in bearer


@pytest.mark.parametrize("cut", [3, 40, 200, 215, 260, 330])
def test_a_credential_split_between_stream_reads_is_still_masked(cut: int) -> None:
    data = register()
    trace = SipTrace(clock=clock)
    trace.record("out", "tcp", LOCAL, REMOTE, data[:cut])
    trace.record("out", "tcp", LOCAL, REMOTE, data[cut:])
    stored = b"".join(r.data for r in trace.records())
    assert RESPONSE.encode() not in stored and CNONCE.encode() not in stored
    assert RESPONSE[:8].encode() not in stored
    assert stored.startswith(b"REGISTER sip:tipring.test SIP/2.0\r\n")
    assert stored.endswith(b"Content-Length: 0\r\n\r\n")
    assert all(r.data.endswith(b"\n") for r in trace.records())  # whole lines only


def test_bounded_by_bytes_oldest_first_and_switchable() -> None:
    trace = SipTrace(max_bytes=4096, clock=clock)
    sizes = []
    for n in range(40):
        trace.record("in", "udp", LOCAL, REMOTE, register().replace(b"c1@test", f"c{n}@t".encode()))
        sizes.append(trace.size)
    assert max(sizes) <= 4096
    kept = trace.records()
    assert 5 <= len(kept) < 40
    assert kept[-1].data.count(b"c39@t") == 1 and b"c0@t" not in b"".join(r.data for r in kept)
    assert trace.size == sum(len(r.data) + RECORD_OVERHEAD for r in kept)
    trace.enabled = False
    trace.record("in", "udp", LOCAL, REMOTE, register())
    assert len(trace.records()) == len(kept)
    trace.clear()
    assert trace.records() == [] and trace.size == 0
    assert SipTrace().pcap() == struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    trace.enabled = True
    trace.record("in", "udp", LOCAL, REMOTE, b"\r\n\r\n")  # a keep-alive is not a message
    trace.record("out", "udp", LOCAL, REMOTE, binding_request(b"\x01" * 12))  # nor is STUN
    assert trace.records() == []
    with pytest.raises(ValueError):
        SipTrace(max_bytes=0)


# --- the pcap, read back -------------------------------------------------------------------------


@dataclass
class Packet:
    time: float
    src: tuple[str, int]
    dst: tuple[str, int]
    proto: str
    seq: int | None
    payload: bytes


def checksum_ok(data: bytes) -> bool:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def read_pcap(blob: bytes) -> list[Packet]:
    """Parse a classic little-endian pcap of Ethernet frames; check every checksum."""
    magic, major, minor, _, _, snaplen, linktype = struct.unpack_from("<IHHiIII", blob)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1) and snaplen >= 65535
    packets, offset = [], 24
    while offset < len(blob):
        seconds, micros, caplen, length = struct.unpack_from("<IIII", blob, offset)
        assert caplen == length and micros < 1_000_000
        frame = blob[offset + 16:offset + 16 + caplen]
        assert len(frame) == caplen
        offset += 16 + caplen
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        ip = frame[14:]
        if ethertype == 0x0800:
            assert ip[0] == 0x45 and checksum_ok(ip[:20])
            total, proto = struct.unpack_from("!H", ip, 2)[0], ip[9]
            assert total == len(ip)
            src, dst = ipaddress.IPv4Address(ip[12:16]), ipaddress.IPv4Address(ip[16:20])
            pseudo = ip[12:20] + struct.pack("!BBH", 0, proto, total - 20)
            l4 = ip[20:]
        else:
            assert ethertype == 0x86DD and ip[0] >> 4 == 6
            length, proto = struct.unpack_from("!HB", ip, 4)
            assert length == len(ip) - 40
            src, dst = ipaddress.IPv6Address(ip[8:24]), ipaddress.IPv6Address(ip[24:40])
            pseudo = ip[8:40] + struct.pack("!IxxxB", length, proto)
            l4 = ip[40:]
        assert checksum_ok(pseudo + l4), "transport checksum"
        sport, dport = struct.unpack_from("!HH", l4)
        if proto == 17:
            assert struct.unpack_from("!H", l4, 4)[0] == len(l4)
            packets.append(Packet(seconds + micros / 1e6, (str(src), sport), (str(dst), dport),
                                  "udp", None, l4[8:]))
        else:
            assert proto == 6
            seq = struct.unpack_from("!I", l4, 4)[0]
            header = (l4[12] >> 4) * 4
            packets.append(Packet(seconds + micros / 1e6, (str(src), sport), (str(dst), dport),
                                  "tcp", seq, l4[header:]))
    return packets


def test_pcap_carries_each_record_with_valid_headers_and_running_tcp_sequence() -> None:
    trace = SipTrace(clock=clock)
    v6_local, v6_remote = ("2001:db8::10", 5060), ("2001:db8::7", 5080)
    options = register().replace(b"REGISTER sip", b"OPTIONS sip")
    trace.record("out", "udp", LOCAL, REMOTE, options)
    trace.record("in", "udp", LOCAL, REMOTE, b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    trace.record("out", "tcp", LOCAL, ("198.51.100.8", 5060), options)
    trace.record("out", "tcp", LOCAL, ("198.51.100.8", 5060), b"\r\n\r\n")
    trace.record("in", "tcp", LOCAL, ("198.51.100.8", 5060), b"SIP/2.0 200 OK\r\n")
    trace.record("in", "tcp", LOCAL, ("198.51.100.8", 5060), b"Content-Length: 0\r\n\r\n")
    trace.record("out", "tls", v6_local, v6_remote, options)
    big = b"MESSAGE sip:x SIP/2.0\r\n" + b"a" * 70000 + b"\r\n"
    trace.record("out", "tcp", LOCAL, ("198.51.100.8", 5060), big)
    packets = read_pcap(trace.pcap())
    records = trace.records()
    assert [p.payload for p in packets[:7]] == [r.data for r in records[:7]]
    assert b"".join(p.payload for p in packets[7:]) == big and len(packets) == 9
    assert packets[0].src == LOCAL and packets[0].dst == REMOTE and packets[0].proto == "udp"
    assert packets[1].src == REMOTE and packets[1].dst == LOCAL
    assert packets[6].src == v6_local and packets[6].dst == v6_remote
    assert [p.time for p in packets[:7]] == pytest.approx([r.time for r in records[:7]], abs=1e-6)
    # Each TCP direction is one byte stream: sequence numbers run on without gaps.
    out = [p for p in packets if p.proto == "tcp" and p.src == LOCAL]
    n = len(records[2].data)  # the OPTIONS as stored (its credential masked)
    assert n < len(options)
    assert [p.seq for p in out] == [1, 1 + n, 5 + n, 5 + n + 65000]
    back = [p for p in packets if p.proto == "tcp" and p.dst == LOCAL]
    assert [p.seq for p in back] == [1, 1 + len(b"SIP/2.0 200 OK\r\n")]


SNGREP = shutil.which("sngrep")


@pytest.mark.skipif(SNGREP is None, reason="sngrep (Debian package sngrep) is not installed")
def test_sngrep_finds_the_dialogs_in_the_pcap(tmp_path: Path) -> None:
    trace = SipTrace(clock=clock)
    for n, (transport, remote) in enumerate([("udp", REMOTE), ("tcp", ("198.51.100.8", 5060))]):
        request = register().replace(b"c1@test", f"dialog{n}@test".encode())
        answer = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\r\n"
                  b"From: <sip:1001@tipring.test>;tag=a1\r\nTo: <sip:1001@tipring.test>;tag=b\r\n"
                  + f"Call-ID: dialog{n}@test\r\n".encode()
                  + b"CSeq: 2 REGISTER\r\nContent-Length: 0\r\n\r\n")
        cut = 150 if transport == "tcp" else len(request)  # a stream read split in two
        trace.record("out", transport, LOCAL, remote, request[:cut])
        if request[cut:]:
            trace.record("out", transport, LOCAL, remote, request[cut:])
        trace.record("in", transport, LOCAL, remote, answer)
    capture = tmp_path / "trace.pcap"
    capture.write_bytes(trace.pcap())
    kept = tmp_path / "sip.pcap"
    result = subprocess.run([SNGREP, "-N", "-I", str(capture), "-O", str(kept)],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert "Dialog count: 2" in result.stdout, result.stdout
    # What sngrep saved as SIP is every message we recorded (TCP reassembled across reads).
    saved = b"".join(p.payload for p in read_pcap(kept.read_bytes()))
    for n in range(2):
        assert saved.count(f"Call-ID: dialog{n}@test".encode()) == 2


# --- end to end: SipRuntime against Kamailio -----------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_runtime_traces_registrations_without_secrets(kamailio: Kamailio) -> None:
    sent: list[bytes] = []

    async def main() -> None:
        phone = await Phone().start()
        runtime = phone.runtime
        tap = runtime.transports.on_wire
        assert tap is not None

        def also_keep(direction: str, transport: str, local: tuple[str, int],
                      remote: tuple[str, int], data: bytes) -> None:
            if direction == "out":
                sent.append(data)  # what really left, to look for in the download
            tap(direction, transport, local, remote, data)

        runtime.transports.on_wire = also_keep
        try:
            await runtime.add_account(account(kamailio, account="udp"))
            await runtime.add_account(account(kamailio, account="tcp", user="1002",
                                              password="secret1002", transport="tcp"))
            runtime.register("udp")
            runtime.register("tcp")
            await phone.wait(Registered, count=2, timeout=10)
            assert len(await blocking(kamailio.contacts)) == 2
        finally:
            await runtime.stop()
        blob = runtime.trace.pcap()
        packets = read_pcap(blob)
        firsts = [(p.proto, p.payload.split(b"\r\n", 1)[0]) for p in packets]
        for proto in ("udp", "tcp"):
            lines = [line for kind, line in firsts if kind == proto]
            assert lines[:4] == [b"REGISTER sip:127.0.0.1:%d%s SIP/2.0" % (
                kamailio.port, b";transport=tcp" if proto == "tcp" else b""),
                b"SIP/2.0 401 Unauthorized", lines[0], b"SIP/2.0 200 OK"], lines
        ours = [p for p in packets if p.dst[1] == kamailio.port]
        assert ours and all(p.src[0] == "127.0.0.1" and p.src[1] > 0 for p in ours)
        responses = re.findall(rb'response="([0-9a-f]{32})"', b"".join(sent))
        assert len(responses) >= 2  # the digests that really went out...
        for secret in [*responses, b"secret1001", b"secret1002"]:
            assert secret not in blob  # ...are nowhere in the download
        assert blob.count(b'response="***"') == len(responses)

    run(main)
