"""The real-peer harness proves itself: Kamailio, baresip and SIPp against each other.

Each test asserts on what a peer actually did (the registrar's location table, exact response
codes in SIPp's message trace, baresip's call events), so a wrong peer set-up fails here
before the SIP stack's own tests depend on it.
"""

from __future__ import annotations

import array
import math
import os
import subprocess
import time
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from peers.baresip import Baresip
from peers.kamailio import Kamailio, options_ping
from peers.process import live_pids
from peers.sipp import SCENARIOS, Sipp, parse_trace

pytest_plugins = ["peers.fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(30)]

KamailioFactory = Callable[..., Kamailio]
BaresipFactory = Callable[..., Baresip]
SippFactory = Callable[..., Sipp]


def register(sipp_factory: SippFactory, proxy: Kamailio, user: str, password: str, expires: int) -> Sipp:
    return sipp_factory(
        "uac_register_digest.xml",
        remote=proxy.hostport,
        service=user,
        auth_user=user,
        password=password,
        keys={"expires": str(expires)},
        timeout=10,
    )


# --- registrar -----------------------------------------------------------------------------


def test_register_with_the_right_password_stores_the_contact(
    kamailio: Kamailio, sipp_factory: SippFactory
) -> None:
    assert options_ping(kamailio.host, kamailio.port) == 200
    assert kamailio.contacts() == []

    uac = register(sipp_factory, kamailio, "1001", "secret1001", 300)
    result = uac.run()

    assert result.ok, result.describe()
    assert result.sent_methods() == ["REGISTER", "REGISTER"]
    assert result.received_statuses() == [401, 200]
    challenge = result.received()[0].header("WWW-Authenticate") or ""
    assert challenge.startswith("Digest") and 'realm="tipring.test"' in challenge
    assert (result.sent()[1].header("Authorization") or "").startswith("Digest")

    (binding,) = kamailio.contacts("1001")
    assert binding.address == f"sip:1001@127.0.0.1:{uac.local_port}"
    assert 290 <= binding.expires <= 300
    assert binding.user_agent == "sipp-tipring-test"
    assert kamailio.contacts("1002") == []
    # The ctl socket answers kamcmd too.
    assert f"127.0.0.1:{uac.local_port}" in kamailio.kamcmd("ul.dump")

    # Expires 0 removes the binding.
    unregister = sipp_factory(
        "uac_register_digest.xml",
        remote=kamailio.hostport,
        local_port=uac.local_port,
        service="1001",
        auth_user="1001",
        password="secret1001",
        keys={"expires": "0"},
        timeout=10,
        name="unregister",
    ).run()
    assert unregister.ok, unregister.describe()
    assert kamailio.contacts("1001") == []


@pytest.mark.parametrize(("transport", "host"), [("tcp", "127.0.0.1"), ("udp", "::1")])
def test_register_over_tcp_and_ipv6(
    kamailio_factory: KamailioFactory, sipp_factory: SippFactory, transport: str, host: str
) -> None:
    proxy = kamailio_factory(transport=transport, host=host)
    assert proxy.uri == (f"sip:127.0.0.1:{proxy.port};transport=tcp" if transport == "tcp" else f"sip:[::1]:{proxy.port}")
    uac = sipp_factory(
        "uac_register_digest.xml",
        remote=proxy.hostport,
        host=host,
        transport=transport,
        service="1002",
        auth_user="1002",
        password="secret1002",
        timeout=10,
    )
    result = uac.run()
    assert result.ok, result.describe()
    (binding,) = proxy.contacts("1002")
    assert binding.socket == f"{transport}:{proxy.hostport}"
    assert binding.address == f"sip:1002@{uac.uri_hostport}"


@pytest.mark.parametrize("reply", [401, 403])
def test_register_with_a_wrong_password_is_refused(
    kamailio_factory: KamailioFactory, sipp_factory: SippFactory, reply: int
) -> None:
    proxy = kamailio_factory(bad_credentials_reply=reply)
    started = time.monotonic()
    result = register(sipp_factory, proxy, "1001", "not-the-password", 300).run()

    assert result.returncode == 1, result.describe()
    assert time.monotonic() - started < 5  # the refusal ends the exchange, no timeout
    assert result.sent_methods() == ["REGISTER", "REGISTER"]
    assert result.received_statuses()[0] == 401
    assert result.received_statuses()[-1] == reply
    assert 200 not in result.received_statuses()
    assert proxy.contacts() == []


def test_register_below_min_expires_gets_423(
    kamailio_factory: KamailioFactory, sipp_factory: SippFactory
) -> None:
    proxy = kamailio_factory(min_expires=60)

    too_brief = register(sipp_factory, proxy, "1002", "secret1002", 30).run()
    assert too_brief.returncode == 1, too_brief.describe()
    assert too_brief.received_statuses()[:2] == [401, 423]
    assert too_brief.received()[1].header("Min-Expires") == "60"
    assert proxy.contacts("1002") == []

    enough = register(sipp_factory, proxy, "1002", "secret1002", 60).run()
    assert enough.ok, enough.describe()
    (binding,) = proxy.contacts("1002")
    assert 55 <= binding.expires <= 60


# --- calls ---------------------------------------------------------------------------------


def _rms(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        samples = array.array("h", wav.readframes(wav.getnframes()))
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def _request_block(log: str, method: str) -> str:
    """The first ``method`` request baresip's SIP trace shows it received."""
    start = log.find(f"\n{method} sip:")
    assert start >= 0, f"no {method} in log"
    end = log.find("\n\n", start + 1)
    return log[start:end]


def test_baresip_calls_baresip_through_kamailio(
    kamailio: Kamailio, baresip_factory: BaresipFactory
) -> None:
    alice = baresip_factory(kamailio.aor("1001"), password="secret1001", name="alice")
    bob = baresip_factory(kamailio.aor("1002"), password="secret1002", name="bob", tone_hz=1000)

    (alice_binding,) = kamailio.contacts("1001")
    (bob_binding,) = kamailio.contacts("1002")
    assert alice_binding.address.endswith(f"@127.0.0.1:{alice.sip_port}")
    assert bob_binding.address.endswith(f"@127.0.0.1:{bob.sip_port}")

    alice.dial(kamailio.aor("1002"))
    out = alice.wait_event("CALL_ESTABLISHED")
    into = bob.wait_event("CALL_ESTABLISHED")
    assert out["direction"] == "outgoing" and into["direction"] == "incoming"
    assert out["id"] == into["id"]  # the same Call-ID: one dialog through the proxy
    assert into["peeruri"] == kamailio.aor("1001")

    alice.send_dtmf("1#")
    first = bob.wait_event("CALL_DTMF_START")
    second = bob.wait_event("CALL_DTMF_START", where=lambda e: e is not first)
    assert [first["param"], second["param"]] == ["1", "#"]

    time.sleep(0.5)  # some audio both ways
    alice.hangup()
    assert alice.wait_event("CALL_CLOSED")["id"] == out["id"]
    assert bob.wait_event("CALL_CLOSED")["id"] == into["id"]

    # The INVITE was challenged (407) and the BYE came through the proxy (loose routing).
    assert "407 Proxy Authentication Required" in alice.log_text()
    bye = _request_block(bob.log_text(), "BYE")
    assert f"Via: SIP/2.0/UDP 127.0.0.1:{kamailio.port}" in bye
    # Bob heard Alice's tone: RTP flowed on loopback.
    received = bob.recordings()["dec"]
    assert received and _rms(received[-1]) > 1000


def test_manual_answer_hold_and_resume(kamailio: Kamailio, baresip_factory: BaresipFactory) -> None:
    alice = baresip_factory(kamailio.aor("1001"), password="secret1001", name="alice")
    bob = baresip_factory(kamailio.aor("1002"), password="secret1002", name="bob", answer_mode="manual")

    alice.dial(kamailio.aor("1002"))
    incoming = bob.wait_event("CALL_INCOMING")
    assert incoming["peeruri"] == kamailio.aor("1001")
    alice.wait_event("CALL_RINGING")
    time.sleep(0.3)
    assert "CALL_ESTABLISHED" not in bob.event_types()  # manual: it rings until accepted
    bob.accept()
    alice.wait_event("CALL_ESTABLISHED")
    bob.wait_event("CALL_ESTABLISHED")

    mark = len(bob.events)
    alice.hold()
    bob.wait_event("CALL_REMOTE_SDP", since=mark)
    mark = len(bob.events)
    alice.resume()
    bob.wait_event("CALL_REMOTE_SDP", since=mark)
    offers = bob.log_text().split("\nINVITE sip:")[1:]
    assert len(offers) == 3  # the call, hold, resume
    assert "a=sendonly" in offers[1] and "a=sendrecv" in offers[2]

    bob.hangup()
    alice.wait_event("CALL_CLOSED")
    bob.wait_event("CALL_CLOSED")


def test_calling_an_unregistered_user_gets_404(
    kamailio: Kamailio, baresip_factory: BaresipFactory
) -> None:
    alice = baresip_factory(kamailio.aor("1001"), password="secret1001", name="alice")
    alice.dial(kamailio.aor("1002"))  # 1002 exists but has not registered
    closed = alice.wait_event("CALL_CLOSED")
    assert closed["param"].startswith("404")


def test_sipp_uas_answers_a_baresip_call_directly(
    baresip_factory: BaresipFactory, sipp_factory: SippFactory
) -> None:
    uas = sipp_factory("uas_answer.xml", duration_ms=300, timeout=10).start()
    phone = baresip_factory("sip:1001@127.0.0.1", register=False, name="caller")

    phone.dial(f"sip:2000@{uas.uri_hostport}")
    phone.wait_event("CALL_ESTABLISHED")
    closed = phone.wait_event("CALL_CLOSED")  # SIPp hangs up
    result = uas.wait()

    assert result.ok, result.describe()
    assert result.received_methods() == ["INVITE", "ACK"]
    assert result.sent_statuses() == [180, 200]
    assert result.sent_methods() == ["BYE"]
    assert result.received_statuses() == [200]
    assert "Connection reset by peer" in closed["param"]
    assert result.sent()[2].first_line.startswith("BYE sip:1001-")  # to baresip's Contact


def test_sipp_uac_calls_baresip_directly(
    baresip_factory: BaresipFactory, sipp_factory: SippFactory
) -> None:
    phone = baresip_factory("sip:3000@127.0.0.1", register=False, name="callee")
    uac = sipp_factory("uac_call.xml", remote=phone.contact_hostport, service="3000", duration_ms=300)
    result = uac.run()

    assert result.ok, result.describe()
    assert result.sent_methods() == ["INVITE", "ACK", "BYE"]
    assert result.received_statuses()[-2:] == [200, 200]
    assert phone.wait_event("CALL_ESTABLISHED")["peeruri"] == f"sip:sipp@{uac.uri_hostport}"
    assert phone.wait_event("CALL_CLOSED")["param"] == "Connection reset by peer"


# What each UAS scenario must see from a correct caller (baresip here), and send.
UAS_SCENARIOS = {
    "uas_487.xml": ("cancel", ["INVITE", "CANCEL", "ACK"], [180, 200, 487]),
    "uas_cancel_race.xml": ("cancel", ["INVITE", "CANCEL", "ACK", "BYE"], [180, 200, 200, 200]),
    "uas_redirect_302.xml": ("wait", ["INVITE", "ACK"], [302]),
    "uas_481.xml": ("hangup", ["INVITE", "ACK", "BYE"], [180, 200, 481]),
    "uas_lost_ack.xml": ("wait", ["INVITE", "ACK", "ACK", "ACK"], [180, 200, 200, 200]),
}


@pytest.mark.parametrize("scenario", sorted(UAS_SCENARIOS))
def test_uas_scenarios_hold_against_a_real_caller(
    baresip_factory: BaresipFactory, sipp_factory: SippFactory, scenario: str
) -> None:
    action, requests, statuses = UAS_SCENARIOS[scenario]
    # The 302 points at a second SIPp that answers: baresip follows redirects.
    moved = sipp_factory("uas_answer.xml", name="moved", duration_ms=200, timeout=10).start()
    target = f"sip:elsewhere@{moved.uri_hostport}"
    uas = sipp_factory(scenario, timeout=10, keys={"target": target}).start()
    phone = baresip_factory("sip:1001@127.0.0.1", register=False, name="caller")

    phone.dial(f"sip:2000@{uas.uri_hostport}")
    if action == "cancel":
        phone.wait_event("CALL_RINGING")
        phone.hangup()
    elif action == "hangup":
        phone.wait_event("CALL_ESTABLISHED")
        phone.hangup()
    result = uas.wait()
    phone.wait_event("CALL_CLOSED")

    assert result.ok, result.describe()
    assert result.received_methods() == requests
    assert result.sent_statuses() == statuses
    if scenario == "uas_redirect_302.xml":
        assert result.sent()[0].header("Contact") == f"<{target}>"
        followed = moved.wait()
        assert followed.ok, followed.describe()
        assert followed.received()[0].first_line == f"INVITE {target} SIP/2.0"
    else:
        moved.stop()
    if scenario == "uas_lost_ack.xml":
        copies = [m.text for m in result.sent() if m.status == 200]
        assert copies[0] == copies[1] == copies[2]  # true retransmissions
        assert result.sent_methods() == ["BYE"]


def test_malformed_scenario_sends_what_it_claims(
    kamailio: Kamailio, sipp_factory: SippFactory
) -> None:
    # Kamailio is not the target of this scenario (it answers the bad Max-Forwards with 483),
    # but its reason phrase shows the first request is malformed the way the scenario says.
    result = sipp_factory("malformed.xml", remote=kamailio.hostport, service="1001", timeout=10).run()
    assert result.returncode == 1
    assert result.received()[0].first_line == "SIP/2.0 400 Content-Length mis-match"
    assert result.sent()[0].header("Content-Length") == "200"


# --- the harness itself --------------------------------------------------------------------


def test_scenarios_are_well_formed_xml() -> None:
    import xml.etree.ElementTree as ET

    names = sorted(p.name for p in SCENARIOS.glob("*.xml"))
    assert names == sorted(
        [
            "malformed.xml",
            "uac_call.xml",
            "uac_notify_mwi.xml",
            "uac_register_digest.xml",
            "uas_481.xml",
            "uas_487.xml",
            "uas_answer.xml",
            "uas_cancel_race.xml",
            "uas_lost_ack.xml",
            "uas_redirect_302.xml",
        ]
    )
    for name in names:
        root = ET.parse(SCENARIOS / name).getroot()
        assert root.tag == "scenario" and root.get("name"), name


def test_trace_parser_reads_sipp_message_blocks() -> None:
    text = (
        "----------------------------------------------- 2026-01-01 00:00:00.000000\n"
        "UDP message sent (10 bytes):\n\nOPTIONS sip:a@b SIP/2.0\nCSeq: 1 OPTIONS\n\n"
        "----------------------------------------------- 2026-01-01 00:00:00.100000\n"
        "UDP message received [10] bytes :\n\nSIP/2.0 400 Bad Request\nCSeq: 1 OPTIONS\n\n"
    )
    sent, got = parse_trace(text)
    assert (sent.direction, sent.method, sent.status) == ("sent", "OPTIONS", None)
    assert (got.direction, got.status, got.header("cseq")) == ("received", 400, "1 OPTIONS")


def test_peers_are_bounded_and_leave_no_processes(tmp_path: Path) -> None:
    # A UAS nobody calls ends at its timeout, with a failure code, by itself.
    idle = Sipp(tmp_path / "idle", "uas_answer.xml", timeout=1).start()
    started = time.monotonic()
    assert idle.wait().returncode != 0
    assert time.monotonic() - started < 5

    proxy = Kamailio(tmp_path / "kam")
    phone = Baresip(tmp_path / "phone", proxy.aor("1001"), password="secret1001")
    with proxy, phone:
        assert proxy.process and phone.process and idle.process
        groups = [proxy.process.pid, phone.process.pid, idle.process.pid]
        assert proxy.wait_for_contacts("1001")
        assert phone.process.running()
    for group in groups:
        found = subprocess.run(["pgrep", "-g", str(group)], check=False, capture_output=True, text=True)
        assert found.returncode == 1, f"process group {group} still has {found.stdout.split()}"
    assert not [pid for pid in live_pids() if pid in groups]
    with pytest.raises(ProcessLookupError):
        os.kill(groups[0], 0)
