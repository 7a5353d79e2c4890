"""RFC 5626 outbound registration: flow identity, Flow-Timer keep-alives, STUN on UDP.

The registrar here is the scripted FakeRegistrar taught outbound: it answers a REGISTER that
says `Supported: outbound` with `Require: outbound` and a Flow-Timer, and answers STUN
Binding requests with the address it saw them come from (XOR-MAPPED-ADDRESS, encoded here
from RFC 5389 independently of tipring.sip.stun). A NAT in the virtual network lets a test
move our public mapping; a silent server lets it kill the flow.
"""

from __future__ import annotations

import ipaddress
import random
import struct

import pytest

from sipnet import FakeRegistrar, VirtualNetwork
from test_sip_registration import PHONE, REG, events, registers, settings
from tipring.sip.agent import UserAgent
from tipring.sip.registration import Registered, RegistrationSettings
from tipring.sip.stun import BindingResponse, binding_request, is_stun, parse_binding_response

INSTANCE = "urn:uuid:6f1d6c0e-2f0b-4d5e-9a43-0a2d35f6c001"
COOKIE = 0x2112A442


def stun_answer(request: bytes, seen: tuple[str, int], software: bytes = b"fake") -> bytes:
    """A Binding success response (RFC 5389 15.2 XOR-MAPPED-ADDRESS, plus SOFTWARE)."""
    tid = request[8:20]
    address = ipaddress.ip_address(seen[0]).packed
    xored = bytes(a ^ b for a, b in zip(address, struct.pack("!I", COOKIE) + tid,
                                        strict=False))
    mapped = struct.pack("!BBH", 0, 1 if len(address) == 4 else 2, seen[1] ^ (COOKIE >> 16))
    attributes = struct.pack("!HH", 0x0020, 4 + len(address)) + mapped + xored
    padded = software + b"\0" * (-len(software) % 4)
    attributes += struct.pack("!HH", 0x8022, len(software)) + padded
    return struct.pack("!HHI", 0x0101, len(attributes), COOKIE) + tid + attributes


class OutboundRegistrar(FakeRegistrar):
    """FakeRegistrar plus RFC 5626: Require: outbound + Flow-Timer, and a STUN responder."""

    def __init__(self, flow_timer: int | None = 30, **kw) -> None:
        super().__init__(**kw)
        self.flow_timer = flow_timer
        self.stun_seen: list[tuple[float, tuple[str, int]]] = []
        self.answer_stun = True

    def receive(self, data: bytes, source, now: float) -> None:
        if is_stun(data):
            self.stun_seen.append((now, (source[0], source[1])))
            if self.answer_stun:
                self._out.append((stun_answer(data, (source[0], source[1])), source))
            return
        super().receive(data, source, now)

    def _register(self, start: str, fields: dict):
        status, extra = super()._register(start, fields)
        supported = ",".join(fields.get("supported", [])).replace(" ", "").split(",")
        if status == 200 and "outbound" in supported:
            extra = [*extra, "Require: outbound"]
            if self.flow_timer is not None:
                extra.append(f"Flow-Timer: {self.flow_timer}")
        return status, extra


def setup(registrar: OutboundRegistrar, **overrides):
    net = VirtualNetwork(latency=0.01)
    agent = UserAgent(PHONE, rng=random.Random(5))
    values = dict(instance_id=INSTANCE, keepalive_s=90.0)
    values.update(overrides)
    agent.add_account(settings(**values), [REG])
    net.attach(PHONE, agent)
    net.attach(REG, registrar)
    return net, agent


def test_register_names_the_flow_and_keeps_it_alive_with_stun_at_the_flow_timer() -> None:
    registrar = OutboundRegistrar(flow_timer=30)
    net, agent = setup(registrar)
    agent.register("acct", 0.0)
    net.run(1)
    [registered] = events(agent)
    assert isinstance(registered, Registered) and registered.outbound
    (_, first), (_, second) = registers(registrar)
    for fields in (first, second):
        assert fields["supported"] == ["outbound"]
        [contact] = fields["contact"]
        assert contact.endswith(f';reg-id=1;+sip.instance="<{INSTANCE}>"')
    net.run(200)
    times = [t for t, _ in registrar.stun_seen]
    # Every 80-100 % of the 30 s Flow-Timer, not the 90 s configured for plain keep-alives.
    assert len(times) >= 6
    gaps = [b - a for a, b in zip([1.0, *times], times, strict=False)][1:]
    assert all(24 - 0.1 <= gap <= 30 + 0.1 for gap in gaps), gaps
    assert not net.sent("192.168.1.10", "OPTIONS")
    assert events(agent) == []  # every ping answered: nothing happened
    assert len(registers(registrar)) == 2


def test_dialogs_made_over_the_flow_carry_ob_in_their_contact() -> None:
    net, agent = setup(OutboundRegistrar())
    assert agent.contact_for("acct") == "<sip:alice@192.168.1.10:5060>"  # not yet agreed
    agent.register("acct", 0.0)
    net.run(1)
    assert agent.contact_for("acct") == "<sip:alice@192.168.1.10:5060;ob>"


def test_a_changed_nat_mapping_in_the_stun_answer_re_registers() -> None:
    registrar = OutboundRegistrar(flow_timer=30)
    net, agent = setup(registrar)
    net.behind_nat(PHONE, ("198.51.100.20", 40000))
    agent.register("acct", 0.0)
    net.run(70)  # registered (learning the public address), then STUN pings answered
    assert len(registrar.stun_seen) >= 2
    before = len(registers(registrar))
    net.nat[(PHONE[0], PHONE[1])] = ("198.51.100.20", 40777)  # the NAT moved us
    net.run(110)
    after = registers(registrar)[before:]
    assert after, "the new mapping was not registered"
    assert any("40777" in c for _, f in after for c in f["contact"])
    registration = agent.accounts["acct"].registration
    assert registration.state == "registered" and registration.contact_port == 40777


def test_an_unanswered_stun_ping_fails_the_flow_and_re_registers() -> None:
    registrar = OutboundRegistrar(flow_timer=30)
    net, agent = setup(registrar, pong_timeout_s=5.0)
    agent.register("acct", 0.0)
    net.run(40)
    assert len(registrar.stun_seen) == 1
    count = len(registers(registrar))
    registrar.answer_stun = False
    net.run(80)
    first_silent = registrar.stun_seen[1][0]
    again = [t for t, _ in registers(registrar)[count:]]
    assert again and again[0] == pytest.approx(first_silent + 5.0, abs=0.05)


def test_a_registrar_without_outbound_gets_plain_keepalives() -> None:
    plain = FakeRegistrar()  # ignores Supported: outbound
    net = VirtualNetwork(latency=0.01)
    agent = UserAgent(PHONE, rng=random.Random(5))
    agent.add_account(settings(instance_id=INSTANCE, keepalive_s=20.0), [REG])
    net.attach(PHONE, agent)
    net.attach(REG, plain)
    agent.register("acct", 0.0)
    net.run(70)
    [registered] = events(agent)
    assert not registered.outbound
    assert agent.contact_for("acct") == "<sip:alice@192.168.1.10:5060>"
    assert len(plain.pings) == 3  # CRLF every 20 s, no STUN


def test_without_an_instance_nothing_changes() -> None:
    registrar = OutboundRegistrar()
    net, agent = setup(registrar, instance_id="")
    agent.register("acct", 0.0)
    net.run(1)
    [registered] = events(agent)
    assert not registered.outbound
    (_, fields), *_ = registers(registrar)
    assert "supported" not in fields and "reg-id" not in fields["contact"][0]


def test_bad_instance_ids_are_refused_with_a_clear_error() -> None:
    for bad in ("6f1d6c0e", 'urn:uuid:x">', "urn:uuid:a b"):
        with pytest.raises(ValueError, match="instance_id"):
            RegistrationSettings(account="a", user="u", domain="d", instance_id=bad)
    with pytest.raises(ValueError, match="reg_id"):
        RegistrationSettings(account="a", user="u", domain="d", reg_id=0)


def test_stun_codec_against_the_rfc_5769_ipv4_response() -> None:
    # RFC 5769 2.2 sample response, its XOR-MAPPED-ADDRESS 192.0.2.1:32853 (other
    # attributes, MESSAGE-INTEGRITY and FINGERPRINT included, are skipped).
    sample = bytes.fromhex(
        "0101003c2112a442b7e7a701bc34d686fa87dfae"
        "8022000b7465737420766563746f7220"
        "002000080001a147e112a643"
        "000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
        "80280004c07d4c96")
    response = parse_binding_response(sample)
    assert response == BindingResponse(bytes.fromhex("b7e7a701bc34d686fa87dfae"),
                                       ("192.0.2.1", 32853))
    request = binding_request(b"\x01" * 12)
    assert len(request) == 20 and is_stun(request) and parse_binding_response(request) is None
    assert not is_stun(b"REGISTER sip:x SIP/2.0\r\n\r\n")
    for broken in (sample[:30], sample[:20] + b"\x00\x20\x00\x08", b"\x01\x01" + sample[2:19]):
        assert parse_binding_response(broken) in (None, BindingResponse(sample[8:20], None))
    with pytest.raises(ValueError):
        binding_request(b"short")
