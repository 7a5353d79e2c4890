"""SIP message throughput: TipRing's parser + serializer against floors measured in the same run.

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

Run: .venv/bin/python bench/sip.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import time
from collections.abc import Callable
from pathlib import Path

from tipring.sip import Request, SipParseError, parse_message, serialize

RFC4475 = Path(__file__).resolve().parent.parent.parent / "shared" / "vectors" / "sip" / "rfc4475"

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    sets = {"call-setup mix": call_setup_mix(), "RFC 4475 valid": torture_set()}
    print(f"{'message set':16} {'parser':34} {'msgs/s':>10} {'vs naive':>9} {'vs email':>9}")
    for set_name, messages in sets.items():
        naive = rate(naive_split, messages, args.seconds)
        mail = rate(stdlib_email, messages, args.seconds)
        rows = [
            ("naive split (floor)", naive),
            ("stdlib email (floor)", mail),
            ("tipring parse+serialize", rate(tipring, messages, args.seconds)),
            ("tipring + typed reads", rate(tipring_typed, messages, args.seconds)),
        ]
        for name, value in rows:
            print(f"{set_name:16} {name:34} {value:10.0f} {value / naive:9.2f} {value / mail:9.2f}")


if __name__ == "__main__":
    main()
