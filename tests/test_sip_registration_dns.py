"""RFC 3263 server location as a sans-IO plan, fed canned DNS answers."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tipring.sip.dns import Naptr, Query, Resolution, Srv, order_srv, resolve

ZONE = {
    ("example.com", "NAPTR"): [
        Naptr(20, 10, "s", "SIP+D2U", "_sip._udp.example.com."),
        Naptr(10, 10, "s", "SIP+D2T", "_sip._tcp.example.com."),
        Naptr(30, 10, "s", "SIP+D2X", "_sip._sctp.example.com."),  # unsupported: skipped
    ],
    ("_sip._tcp.example.com", "SRV"): [Srv(10, 0, 5070, "tcp1.example.com.")],
    ("_sip._udp.example.com", "SRV"): [
        Srv(20, 0, 5060, "backup.example.com."),
        Srv(10, 0, 5060, "main.example.com."),
    ],
    ("tcp1.example.com", "A"): ["192.0.2.10"],
    ("main.example.com", "A"): ["192.0.2.1", "192.0.2.2"],
    ("backup.example.com", "A"): ["192.0.2.9"],
    ("main.example.com", "AAAA"): ["2001:db8::1"],
    ("plain.test", "A"): ["198.51.100.1"],
    ("_sip._udp.srvonly.test", "SRV"): [Srv(0, 0, 5080, "sip.srvonly.test.")],
    ("sip.srvonly.test", "A"): ["198.51.100.2"],
}


def lookup(asked: list[Query]):
    def answer(query: Query):
        asked.append(query)
        return ZONE.get((query.name, query.rdtype), [])
    return answer


def test_naptr_then_srv_then_a_in_order():
    asked: list[Query] = []
    targets = resolve(Resolution("example.com", rng=random.Random(1)), lookup(asked))
    assert targets == [
        ("192.0.2.10", 5070, "tcp"),  # NAPTR order 10 first
        ("192.0.2.1", 5060, "udp"), ("192.0.2.2", 5060, "udp"),  # SRV priority 10
        ("192.0.2.9", 5060, "udp"),  # SRV priority 20: the failover target
    ]
    assert asked[0] == Query("example.com", "NAPTR")
    assert Query("_sip._sctp.example.com", "SRV") not in asked


def test_transport_restricts_naptr_and_ipv6_adds_aaaa():
    targets = resolve(Resolution("example.com", transports=("udp",), ipv6=True,
                                 rng=random.Random(1)), lookup([]))
    assert targets[:3] == [("192.0.2.1", 5060, "udp"), ("192.0.2.2", 5060, "udp"),
                           ("2001:db8::1", 5060, "udp")]


def test_no_naptr_falls_back_to_srv_then_a_record():
    assert resolve(Resolution("srvonly.test"), lookup([])) == [("198.51.100.2", 5080, "udp")]
    asked: list[Query] = []
    assert resolve(Resolution("plain.test"), lookup(asked)) == [("198.51.100.1", 5060, "udp")]
    assert [q.rdtype for q in asked] == ["NAPTR", "SRV", "SRV", "SRV", "A"]


def test_explicit_port_skips_naptr_and_srv():
    asked: list[Query] = []
    plan = Resolution("plain.test", 5099, "tcp")
    assert resolve(plan, lookup(asked)) == [("198.51.100.1", 5099, "tcp")]
    assert asked == [Query("plain.test", "A")]


def test_explicit_transport_uses_its_srv_and_tls_port():
    asked: list[Query] = []
    assert resolve(Resolution("plain.test", transport="tls"), lookup(asked)) == [
        ("198.51.100.1", 5061, "tls")]
    assert asked[0] == Query("_sips._tcp.plain.test", "SRV")


def test_ip_literal_needs_no_query():
    plan = Resolution("[2001:db8::5]")
    assert plan.next_query() is None
    assert plan.targets == [("2001:db8::5", 5060, "udp")]


def test_answer_must_match_the_question():
    plan = Resolution("example.com")
    with pytest.raises(ValueError):
        plan.answer(Query("other", "A"), [])


def test_srv_weights_shape_the_order():
    records = [Srv(1, 90, 5060, "heavy"), Srv(1, 10, 5060, "light"), Srv(0, 0, 5060, "first")]
    rng = random.Random(3)
    firsts = Counter()
    for _ in range(2000):
        ordered = order_srv(records, rng)
        assert ordered[0].target == "first"
        assert sorted(r.target for r in ordered) == ["first", "heavy", "light"]
        firsts[ordered[1].target] += 1
    assert 0.85 < firsts["heavy"] / 2000 < 0.95


def test_dot_target_means_no_service():
    zone = {("_sip._udp.none.test", "SRV"): [Srv(0, 0, 0, ".")],
            ("none.test", "A"): ["198.51.100.3"]}
    plan = Resolution("none.test", transport="udp")
    # RFC 2782: the service is decidedly not there, so no guess at the A record either.
    assert resolve(plan, lambda q: zone.get((q.name, q.rdtype), [])) == []


def test_dnspython_rdata_become_plan_records():
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    from tipring.sip.dns import records_from_rdata

    def rdata(kind: str, text: str):
        return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(kind), text)

    assert records_from_rdata("NAPTR", [rdata("NAPTR", '10 20 "S" "SIP+D2T" "" _sip._tcp.x.')]) \
        == [Naptr(10, 20, "S", "SIP+D2T", "_sip._tcp.x.")]
    assert records_from_rdata("SRV", [rdata("SRV", "1 5 5070 pbx.x.")]) == [Srv(1, 5, 5070, "pbx.x.")]
    assert records_from_rdata("A", [rdata("A", "192.0.2.7")]) == ["192.0.2.7"]
    assert records_from_rdata("AAAA", [rdata("AAAA", "2001:db8::7")]) == ["2001:db8::7"]
    # Upper-case flags still count as "s" terminal NAPTRs in the plan.
    zone = {("x", "NAPTR"): records_from_rdata("NAPTR", [rdata("NAPTR",
                                                               '10 20 "S" "SIP+D2T" "" _sip._tcp.x.')]),
            ("_sip._tcp.x", "SRV"): [Srv(1, 5, 5070, "pbx.x.")], ("pbx.x", "A"): ["192.0.2.7"]}
    assert resolve(Resolution("x"), lambda q: zone.get((q.name, q.rdtype), [])) == [
        ("192.0.2.7", 5070, "tcp")]
