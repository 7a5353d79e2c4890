"""Registration (RFC 3261 10, RFC 3581, RFC 5626 keep-alives) against a scripted registrar."""

from __future__ import annotations

import itertools
import logging
import random

import pytest

from sipnet import FakeRegistrar, VirtualNetwork
from tipring.config.secret import Secret
from tipring.sip.agent import UserAgent
from tipring.sip.registration import (
    Registered,
    RegistrationFailed,
    RegistrationSettings,
    Unregistered,
    backoff,
    refresh_delay,
)

PHONE = ("192.168.1.10", 5060, "udp")
REG = ("203.0.113.5", 5060, "udp")
REG2 = ("203.0.113.6", 5060, "udp")


def settings(**overrides) -> RegistrationSettings:
    values = dict(account="acct", user="alice", domain="tipring.test",
                  password=Secret("secret"), expires=3600, keepalive_s=0)
    values.update(overrides)
    return RegistrationSettings(**values)


def setup(registrar: FakeRegistrar | None = None, *, targets=(REG,), phone=PHONE, seed=1,
          **overrides):
    registrar = registrar or FakeRegistrar()
    net = VirtualNetwork(latency=0.01)
    agent = UserAgent(phone, rng=random.Random(seed))
    agent.add_account(settings(transport=phone[2], **overrides), list(targets))
    net.attach(phone, agent)
    net.attach(targets[-1], registrar)
    return net, agent, registrar


def events(agent: UserAgent) -> list:
    out = []
    while (event := agent.next_event()) is not None:
        out.append(event)
    return out


def registers(registrar: FakeRegistrar) -> list[tuple[float, dict]]:
    return [(t, f) for t, m, f, _ in registrar.requests if m == "REGISTER"]


def test_register_answers_the_challenge_and_refreshes_before_expiry():
    net, agent, registrar = setup()
    agent.register("acct", 0.0)
    net.run(1)
    sent = registers(registrar)
    assert len(sent) == 2  # 401, then the retry with credentials
    assert "authorization" not in sent[0][1] and "authorization" in sent[1][1]
    assert [f["cseq"][0] for _, f in sent] == ["1 REGISTER", "2 REGISTER"]
    assert len({f["call-id"][0] for _, f in sent}) == 1
    assert sent[0][1]["expires"] == ["3600"]
    assert sent[0][1]["contact"] == ["<sip:alice@192.168.1.10:5060>;expires=3600"]
    [registered] = events(agent)
    assert registered == Registered("acct", 3600, "sip:alice@192.168.1.10:5060", REG)
    assert agent.registration("acct").state == "registered"
    # Refresh 10% early: 3600 - 360 = 3240 s after the 200 arrived (at 0.04).
    assert refresh_delay(3600) == 3240
    net.run(3240.03)
    assert len(registers(registrar)) == 2
    net.run(3240.06)
    assert net.sent("192.168.1.10", "REGISTER")[2].sent_at == pytest.approx(3240.04)
    refresh = registers(registrar)[2]
    assert "authorization" in refresh[1]  # pre-authorized with nc=2: no new 401 round trip
    assert "nc=00000002" in refresh[1]["authorization"][0]
    net.run(3241)
    assert len(registers(registrar)) == 3
    assert [type(e) for e in events(agent)] == [Registered]


def test_expiry_comes_from_contact_then_expires_header():
    net, agent, _ = setup(FakeRegistrar(max_expires=600))
    agent.register("acct", 0.0)
    net.run(1)
    assert events(agent)[0].expires == 600
    assert agent.registration("acct").timers.due("refresh") == pytest.approx(0.04 + 540)

    net, agent, _registrar = setup(FakeRegistrar(max_expires=120, contact_expires=False))
    agent.register("acct", 0.0)
    net.run(1)
    assert events(agent)[0].expires == 120
    assert agent.registration("acct").timers.due("refresh") == pytest.approx(0.04 + 120 - 32)


def test_423_retries_with_min_expires():
    net, agent, registrar = setup(FakeRegistrar(min_expires=1800), expires=300)
    agent.register("acct", 0.0)
    net.run(1)
    sent = registers(registrar)
    assert [f["expires"][0] for _, f in sent] == ["300", "300", "1800"]
    [registered] = events(agent)
    assert registered.expires == 1800


def test_server_errors_back_off_exponentially_with_jitter():
    net, agent, registrar = setup(FakeRegistrar(script=lambda r, f: (500, [])))
    agent.register("acct", 0.0)
    net.run(2000)
    failures = [e for e in events(agent) if isinstance(e, RegistrationFailed)]
    sent = [t for t, _ in registers(registrar)]
    assert len(failures) >= 5
    for n, failure in enumerate(failures[:6], 1):
        full = backoff(n, 30, 1800)
        assert full == min(1800, 30 * 2 ** (n - 1))
        assert 0.5 * full <= failure.retry_in <= full
        assert failure.status == 500
    # Each retry goes out exactly when the failure said it would.
    for n in range(5):
        assert sent[n + 1] == pytest.approx(sent[n] + 0.02 + failures[n].retry_in)
    assert len({round(f.retry_in / backoff(n, 30, 1800), 6)
                for n, f in enumerate(failures[:5], 1)}) > 1  # the jitter varies


def test_403_waits_long_and_wrong_password_does_not_loop():
    net, agent, registrar = setup(FakeRegistrar(script=lambda r, f: (403, [])))
    agent.register("acct", 0.0)
    net.run(100)
    [failure] = events(agent)
    assert failure.status == 403 and 1800 <= failure.retry_in <= 3600
    assert len(registers(registrar)) == 1

    net, agent, registrar = setup(FakeRegistrar(password="other"))
    agent.register("acct", 0.0)
    net.run(100)
    [failure] = events(agent)
    assert failure.status == 401 and "wrong credentials" in failure.reason
    assert 1800 <= failure.retry_in <= 3600
    assert len(registers(registrar)) == 2  # one challenge answered once, then stop


def test_failover_to_the_next_address_after_timeout_and_503():
    net, agent, registrar = setup(targets=(("203.0.113.99", 5060, "udp"), REG))
    agent.register("acct", 0.0)
    net.run(40)
    dead = [p for p in net.log if p.destination[0] == "203.0.113.99"]
    assert len(dead) == 11  # Timer E retransmissions to the dead server until F at 32 s
    registered = [e for e in events(agent) if isinstance(e, Registered)]
    assert registered and registered[0].server == REG
    assert registers(registrar)[0][0] == pytest.approx(32.01)  # F at 32, +10 ms latency

    busy = FakeRegistrar(script=lambda r, f: (503, []))
    net, agent, registrar = setup(busy, targets=(REG2, REG))
    second = FakeRegistrar()
    net.attach(REG2, busy)
    net.attach(REG, second)
    agent.register("acct", 0.0)
    net.run(5)
    assert [e.server for e in events(agent) if isinstance(e, Registered)] == [REG]


def test_rport_learns_the_public_address_and_reregisters_with_it():
    net, agent, registrar = setup()
    net.behind_nat(PHONE, ("198.51.100.7", 40000))
    agent.register("acct", 0.0)
    net.run(2)
    [registered] = events(agent)
    assert registered.contact == "sip:alice@198.51.100.7:40000"
    assert list(registrar.bindings) == ["sip:alice@198.51.100.7:40000"]
    last = registers(registrar)[-1][1]
    assert "<sip:alice@192.168.1.10:5060>;expires=0" in last["contact"]  # old binding removed
    assert "rport" in last["via"][0]
    # Once learned it stays: the refresh keeps the public contact and adds no removal.
    net.run(3300)
    refresh = registers(registrar)[-1][1]
    assert refresh["contact"] == ["<sip:alice@198.51.100.7:40000>;expires=3600"]


@pytest.mark.parametrize("method", ["crlf", "options"])
def test_udp_keepalives_at_the_configured_interval(method):
    net, agent, registrar = setup(keepalive_s=25, keepalive_method=method)
    agent.register("acct", 0.0)
    net.run(101)
    if method == "crlf":
        assert registrar.pings == pytest.approx([25.05, 50.05, 75.05, 100.05], abs=0.01)
    else:
        options = [t for t, m, _, _ in registrar.requests if m == "OPTIONS"]
        assert options == pytest.approx([25.05, 50.05, 75.05, 100.05], abs=0.01)
        assert registrar.pings == []


def test_tcp_keepalive_without_pong_reregisters():
    phone = ("192.168.1.10", 5060, "tcp")
    reg = ("203.0.113.5", 5060, "tcp")
    net, agent, registrar = setup(targets=(reg,), phone=phone, keepalive_s=30)
    agent.register("acct", 0.0)
    net.run(65)
    assert registrar.pings == pytest.approx([30.05, 60.05], abs=0.001)
    assert len(registers(registrar)) == 2  # pongs came back: nothing else happened
    registrar.pong = False
    net.run(100.03)
    assert len(registers(registrar)) == 2
    net.run(101)
    # The ping at 90.04 gets no pong within 10 s: the flow is dead, so register again.
    assert registers(registrar)[2][0] == pytest.approx(100.05, abs=0.001)


def test_unregister_removes_the_binding():
    net, agent, registrar = setup()
    agent.register("acct", 0.0)
    net.run(1)
    assert registrar.bindings
    agent.unregister("acct", 1.0)
    net.run(5)
    last = registers(registrar)[-1][1]
    assert last["expires"] == ["0"] and last["contact"][0].endswith(";expires=0")
    assert registrar.bindings == {}
    assert [type(e) for e in events(agent)] == [Registered, Unregistered]
    net.run(10000)
    assert agent.get_timer() is None


def test_outbound_proxy_gets_a_loose_route():
    net, agent, registrar = setup(outbound_proxy="proxy.tipring.test")
    agent.register("acct", 0.0)
    net.run(1)
    first = registers(registrar)[0][1]
    assert first["route"] == ["<sip:proxy.tipring.test;lr>"]
    request_line = net.sent("192.168.1.10", "REGISTER")[0].first_line
    assert request_line == "REGISTER sip:tipring.test SIP/2.0"


def test_garbage_from_the_network_never_raises():
    net, agent, _registrar = setup()
    agent.register("acct", 0.0)
    for junk in (b"\x00\xff" * 40, b"SIP/2.0 200 OK\r\n\r\n", b"INVITE x SIP/2.0\r\nVia: bad\r\n\r\n",
                 b"\r\n\r\n"):
        agent.receive(junk, REG, 0.001)
    net.run(1)
    assert isinstance(events(agent)[0], Registered)


def test_backup_registrar_after_every_primary_address_failed():
    backup = FakeRegistrar()
    net = VirtualNetwork(latency=0.01)
    agent = UserAgent(PHONE, rng=random.Random(1))
    agent.add_account(settings(backup_registrar="backup.tipring.test"), [REG],
                      backup_targets=[REG2])
    net.attach(PHONE, agent)
    net.attach(REG2, backup)  # nothing answers at REG
    agent.register("acct", 0.0)
    net.run(40)
    [registered] = [e for e in events(agent) if isinstance(e, Registered)]
    assert registered.server == REG2
    lines = [p.first_line for p in net.sent("192.168.1.10", "REGISTER")]
    assert set(lines[:11]) == {"REGISTER sip:tipring.test SIP/2.0"}
    assert lines[11:] == ["REGISTER sip:backup.tipring.test SIP/2.0"] * 2  # 401, then 200
    assert registers(backup)[0][0] == pytest.approx(32.01)
    # INVITEs from the backup are trusted like the primary's.
    assert agent.accounts["acct"].trusts(REG2[0]) and agent.accounts["acct"].trusts(REG[0])


def test_settings_from_the_account_config():
    from tipring.config.schema import AccountConfig

    config = AccountConfig(id="line1", user="alice", domain="voip.example", auth_user="a1",
                           password=Secret("pw"), transport="tcp", keepalive_s=20,
                           outbound_proxy="proxy.example:5070")
    made = RegistrationSettings.from_account(config)
    assert (made.account, made.user, made.auth_user, made.transport, made.keepalive_s,
            made.outbound_proxy) == ("line1", "alice", "a1", "tcp", 20.0, "proxy.example:5070")
    assert str(made.registrar_uri) == "sip:voip.example;transport=tcp"


def test_the_password_never_reaches_a_log(caplog):
    caplog.set_level(logging.DEBUG)
    net, agent, _ = setup(FakeRegistrar(password="other"), password=Secret("hunter2-secret"))
    agent.register("acct", 0.0)
    net.run(100)
    assert caplog.records  # the failure was logged...
    assert "hunter2" not in caplog.text  # ...without the password
    assert "hunter2" not in repr(agent.registration("acct").settings)


# --- failback to the first registrar address ----------------------------------------------


def failover_setup(**overrides):
    """The first address (REG) is dead at start; the second (REG2) answers."""
    net = VirtualNetwork(latency=0.01)
    agent = UserAgent(PHONE, rng=random.Random(3))
    agent.add_account(settings(**overrides), [REG, REG2])
    secondary = FakeRegistrar()
    net.attach(PHONE, agent)
    net.attach(REG2, secondary)
    return net, agent, secondary


def ok_times(net: VirtualNetwork, server: tuple[str, int, str]) -> list[float]:
    """When `server` sent a 2xx to a REGISTER (each one a binding granted)."""
    return [p.sent_at for p in net.log if p.source[:2] == server[:2]
            and p.first_line.startswith("SIP/2.0 200") and b"REGISTER" in p.data]


def test_failback_returns_to_the_first_address_once_it_answers():
    net, agent, secondary = failover_setup()
    agent.register("acct", 0.0)
    net.run(40)
    assert [e.server for e in events(agent) if isinstance(e, Registered)] == [REG2]
    primary = FakeRegistrar()
    net.run(100)
    net.attach(REG, primary)  # the first registrar comes back
    net.run(600)
    [back] = events(agent)
    assert isinstance(back, Registered) and back.server == REG
    registration = agent.accounts["acct"].registration
    assert registration.server == REG and not registration.timers.running("failback")
    # The probe went out one failback interval (300 s) after the backup binding was made.
    assert registers(primary)[0][0] == pytest.approx(ok_times(net, REG2)[0] + 300, abs=0.1)
    # The backup binding was never removed (nor refreshed) during or after the move: it
    # served calls until the primary took over and then simply expires.
    assert all(f["expires"] != ["0"] for _, f in registers(secondary))
    assert len(ok_times(net, REG2)) == 1
    net.run(4000)  # refreshes now go to the first address
    assert len(ok_times(net, REG)) == 2 and len(ok_times(net, REG2)) == 1
    assert events(agent) == [Registered("acct", 3600, back.contact, REG)]


def test_failback_probe_to_a_dead_first_address_never_drops_the_backup_binding():
    # Short bindings so refreshes fall inside probes; the binding must never lapse.
    net, agent, _ = failover_setup(expires=600, failback_s=250)
    agent.register("acct", 0.0)
    net.run(3000)
    assert [type(e) for e in events(agent)] == [Registered] + [Registered] * (
        len(ok_times(net, REG2)) - 1)  # refreshes only: no failure was ever reported
    registration = agent.accounts["acct"].registration
    assert registration.server == REG2 and registration.state == "registered"
    granted = ok_times(net, REG2)
    assert granted[0] == pytest.approx(32.02, abs=0.01) and len(granted) >= 5
    assert all(b - a < 600 for a, b in itertools.pairwise(granted))
    assert 3000 - granted[-1] < 600
    # Probes: REGISTER bursts to the first address, each a Timer E series ended by Timer F.
    probes = [p.sent_at for p in net.sent("192.168.1.10", "REGISTER")
              if p.destination[:2] == REG[:2] and p.sent_at > 40]
    starts = [t for i, t in enumerate(probes) if i == 0 or t - probes[i - 1] > 40]
    assert len(starts) >= 5
    assert starts[0] == pytest.approx(granted[0] + 250, abs=0.1)
    # No probe ran while a refresh was due: each probe starts at least Timer F before the
    # next refresh, or right after one.
    for start in starts:
        later = [t for t in granted if t > start]
        before = [t for t in granted if t <= start]
        assert (later and later[0] - start >= 32) or (before and start - before[-1] < 1) \
            or not later
    # The probe due at 564 s would have spanned the refresh at 572 s: it followed it instead.
    assert any(abs(start - g) < 1 for start in starts for g in granted[1:])


def test_no_failback_when_turned_off_and_none_needed_on_the_first_address():
    net, agent, _ = failover_setup(failback_s=0)
    agent.register("acct", 0.0)
    net.run(40)
    net.attach(REG, FakeRegistrar())
    net.run(3000)
    assert agent.accounts["acct"].registration.server == REG2
    assert not [p for p in net.log if p.destination[:2] == REG[:2] and p.sent_at > 40]
    net, agent, _ = setup()
    agent.register("acct", 0.0)
    net.run(1000)
    assert not agent.accounts["acct"].registration.timers.running("failback")
