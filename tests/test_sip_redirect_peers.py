"""Call forwarding by 302 against real peers on loopback: baresip calls us through Kamailio,
our phone forwards the call with `UserAgent.redirect`, and a second baresip answers.

Both ways a forward is followed in the field are played: the caller follows the 302 (baresip
1.0 does, through libre's session code) with the proxy passing it back, or the proxy follows
it (Kamailio's uac_redirect module, as a provider's proxy does) and the caller only sees the
answer. Either way a real peer reads our 302's Contact, ACKs the 302, and the call comes up
where it points. Last, SIPp calls us directly and judges a two-target 302 with its own
regular expressions (Contact order and q-values, Diversion, To tag).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from peers.baresip import Baresip
from peers.kamailio import Kamailio
from test_sip_peers import Phone, blocking, registered_phone
from tipring.sip.agent import UserAgent
from tipring.sip.message import Response, parse_message
from tipring.sip.session import CallEnded, IncomingCall

pytest_plugins = ["peers.fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(30)]

BaresipFactory = Callable[..., Baresip]


class ForwardingKamailio(Kamailio):
    """The test Kamailio plus uac_redirect: a 3xx to an INVITE it relayed is followed (at
    most 3 Contacts, in q order) instead of being passed back to the caller."""

    def _config(self) -> str:
        config = super()._config()
        load = 'loadmodule "tm.so"\n'
        locate = "\n    route(LOCATION);\n}\n"
        assert load in config and config.count(locate) == 1, "tests/peers/kamailio.py changed"
        # uac_redirect binds the acc API when it starts, whether or not it accounts.
        config = config.replace(load, load + 'loadmodule "acc.so"\nloadmodule "uac_redirect.so"\n')
        config = config.replace(locate, """
    if (is_method("INVITE")) {
        t_on_failure("FOLLOW_3XX");
    }
    route(LOCATION);
}

failure_route[FOLLOW_3XX] {
    if (t_is_canceled()) {
        exit;
    }
    if (t_check_status("3[0-9][0-9]")) {
        xlog("L_NOTICE", "following $T_reply_code to $T_rpl($ct)\\n");
        get_redirects("3:3");
        t_relay();
    }
}
""")
        return config


@pytest.fixture
def forwarding_kamailio(tmp_path: Path) -> Iterator[Kamailio]:
    from peers.fixtures import require  # after pytest_plugins registered it

    require("kamailio")
    proxy = ForwardingKamailio(tmp_path / "kamailio")
    try:
        yield proxy.start()
    finally:
        proxy.stop()


def spy_on_sends(phone: Phone) -> list[bytes]:
    """Every datagram/stream chunk our runtime sends, recorded (the runtime's own _send)."""
    sent: list[bytes] = []
    runtime: Any = phone.runtime
    original = runtime._send

    def send(data: bytes, address: Any) -> None:
        sent.append(data)
        original(data, address)

    runtime._send = send
    return sent


def top_via_of_invite(log: str) -> str:
    """The top Via of the first INVITE in a baresip log (its SIP trace)."""
    head = log[log.index("\nINVITE sip:"):]
    via = next(line for line in head.split("\n") if line.startswith("Via:"))
    return via.removeprefix("Via:").strip()


def run(main: Callable[[], Any]) -> None:
    asyncio.run(asyncio.wait_for(main(), 20))  # the whole exchange is bounded well under 20 s


@pytest.mark.parametrize("follower", ["baresip", "kamailio"])
def test_baresip_calls_us_we_forward_with_302_and_the_other_baresip_answers(
        request: pytest.FixtureRequest, baresip_factory: BaresipFactory, follower: str) -> None:
    """`follower` "baresip": the plain test Kamailio relays our 302 back and the calling
    baresip sends a new INVITE to the Contact. "kamailio": the proxy follows the 302 itself
    and the caller only ever sees the answer."""
    proxy: Kamailio = request.getfixturevalue(
        "kamailio" if follower == "baresip" else "forwarding_kamailio")
    caller = baresip_factory(proxy.aor("1002"), password="secret1002", name="caller")
    # The forwarding target needs no registration: the 302 names its own address.
    target = baresip_factory(f"sip:1003@{proxy.hostport}", register=False,
                             answer_mode="auto", name="target")

    async def main() -> None:
        phone = await registered_phone(proxy)
        sent = spy_on_sends(phone)
        try:
            await blocking(caller.dial, proxy.aor("1001"))
            incoming = await phone.wait(IncomingCall, timeout=10)
            phone.runtime.act(lambda agent, now: agent.ring(incoming.call, now))
            await blocking(caller.wait_event, "CALL_RINGING", 5)

            def forward(agent: UserAgent, now: float) -> None:
                agent.redirect(incoming.call, [target.direct_uri], now, diversion="no-answer")

            phone.runtime.act(forward)
            ended = await phone.wait(CallEnded)
            assert (ended.call, ended.status, ended.by) == (incoming.call, 302, "local")

            # The caller's call comes up with the target, which answered it.
            established = await blocking(target.wait_event, "CALL_ESTABLISHED", 8)
            assert "1002" in str(established.get("peeruri", ""))
            await blocking(caller.wait_event, "CALL_ESTABLISHED", 5)
            assert "CALL_CLOSED" not in caller.event_types()

            # What we sent: one 302 (it was ACKed, so Timer G never resent it) whose Contact
            # is the target; and our agent kept nothing of the call.
            moved = [parse_message(d) for d in sent if d.startswith(b"SIP/2.0 302 ")]
            assert len(moved) == 1, [d.split(b"\r\n", 1)[0] for d in sent]
            assert isinstance(moved[0], Response)
            [contact] = moved[0].contacts
            assert str(contact.uri) == target.direct_uri
            agent = phone.runtime.agent
            assert agent is not None and incoming.call not in agent.sessions
            invite_servers = [tx for tx in agent.layer.servers.values() if tx.is_invite]
            assert all(tx.state in ("confirmed", "terminated") for tx in invite_servers)

            await blocking(caller.hangup)
            await blocking(target.wait_event, "CALL_CLOSED", 5)
        finally:
            await phone.runtime.stop()
        log = proxy.log_text()
        followed_by_proxy = f"following 302 to <{target.direct_uri}>" in log
        assert followed_by_proxy == (follower == "kamailio"), log[-3000:]
        # Who sent the INVITE the target answered (its top Via): the caller, or the proxy.
        sender = caller.sip_port if follower == "baresip" else proxy.port
        assert top_via_of_invite(target.log_text()).startswith(f"SIP/2.0/UDP 127.0.0.1:{sender};")

    run(main)


# SIPp calls us and checks the 3xx itself (its own header extraction and regular
# expressions, `check_it` fails the call on a mismatch), then ACKs it as RFC 3261 17.1.1.3
# says: the INVITE's Via branch ([branch-4]: four scenario messages back) and the response's
# To tag.
UAC_EXPECTS_REDIRECT = r"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAC expecting a 302 with two Contacts">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]U[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="302" timeout="5000">
    <action>
      <ereg regexp="^SIP/2\.0 302 Moved Temporarily" search_in="msg" check_it="true"
            assign_to="status"/>
      <ereg regexp="^ *&lt;sip:2000@192\.0\.2\.30&gt;;q=1\.0$" search_in="hdr" header="Contact:"
            occurrence="1" check_it="true" assign_to="first"/>
      <ereg regexp="^ *&lt;sip:2001@192\.0\.2\.31;transport=tcp&gt;;q=0\.9$" search_in="hdr"
            header="Contact:" occurrence="2" check_it="true" assign_to="second"/>
      <ereg regexp="reason=user-busy" search_in="hdr" header="Diversion:" check_it="true"
            assign_to="diversion"/>
      <ereg regexp=";tag=." search_in="hdr" header="To:" check_it="true" assign_to="tag"/>
    </action>
  </recv>
  <send>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-4];rport
      Max-Forwards: 70
      From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]U[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="300"/>
  <Reference variables="status,first,second,diversion,tag"/>
</scenario>
"""


def test_sipp_checks_our_302_and_acks_it(sipp_factory: Callable[..., Any],
                                         tmp_path: Path) -> None:
    """Busy forwarding straight away (no ringing), two targets, SIPp as the judge."""
    from peers.ports import free_port
    from test_sip_peers import account

    scenario = tmp_path / "uac_expects_redirect.xml"
    scenario.write_text(UAC_EXPECTS_REDIRECT)

    async def main() -> None:
        sipp_port = free_port("127.0.0.1")
        phone = await Phone().start()
        sent = spy_on_sends(phone)
        try:
            # The account's server is SIPp's address, so its INVITE is from a trusted source.
            await phone.runtime.add_account(account(registrar=f"127.0.0.1:{sipp_port}"))

            def busy_forward(event: Any) -> None:
                phone._event(event)
                if isinstance(event, IncomingCall):
                    phone.runtime.act(lambda agent, now: agent.redirect(
                        event.call, ["sip:2000@192.0.2.30", "sip:2001@192.0.2.31;transport=tcp"],
                        now, diversion="user-busy"))

            phone.runtime.on_event = busy_forward
            uac = sipp_factory(scenario, remote=f"127.0.0.1:{phone.port}", service="1001",
                               local_port=sipp_port, timeout=8)
            result = await blocking(uac.run)
            assert result.ok, result.describe()
            assert result.received_statuses()[-1] == 302
            ended = await phone.wait(CallEnded)
            assert (ended.status, ended.by) == (302, "local")
            await asyncio.sleep(0.6)  # past Timer G's first interval (T1): no resend of the 302
            moved = [d for d in sent if d.startswith(b"SIP/2.0 302 ")]
            assert len(moved) == 1
            agent = phone.runtime.agent
            assert agent is not None
            assert all(tx.state in ("confirmed", "terminated")
                       for tx in agent.layer.servers.values() if tx.is_invite)
        finally:
            await phone.runtime.stop()

    run(main)
