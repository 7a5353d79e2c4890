"""SIPp against our stack: malformed requests (UDP and TCP), calls both ways over TCP, and
qop=auth-int checked by SIPp's own digest code.

SIPp is the independent side: its scenario fails (exit code 1) when an answer is not the one
it expects, and its message trace is the record of what we sent. Debian's SIPp (sip-tester
3.6.1) is built without TLS, so SIP over TLS is proven against Kamailio and baresip instead
(test_sip_tls_peers.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from peers.sipp import Sipp
from test_sip_peers import Phone, account, blocking, media, run
from tipring.sip.session import CallAnswered, CallEnded, IncomingCall

pytest_plugins = ["peers.fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(30)]

SippFactory = Callable[..., Sipp]

# Requests framed well enough to be answered but invalid, each expected to get a 400 (Via,
# Call-ID and CSeq stay valid so that SIPp can route and match the answer), then a good one
# that must still get its 200. Over a stream a Content-Length longer than the body only waits
# for more bytes, so that case is for UDP. (peers/scenarios/malformed.xml's CSeq of 2**32
# cannot be used: SIPp itself cannot match the answer to it.)
BAD_REQUESTS = {
    "Content-Length larger than message": (
        "Content-Type: text/plain\nContent-Length: 200\n\nshort body\n"),
    "Bad Max-Forwards header": "Max-Forwards: seventy\nContent-Length: 0\n\n",
    "Bad From header": None,  # the From URI's port is not a number
    "Multiple Content-Length headers": (
        "Content-Type: text/plain\nContent-Length: 4\nContent-Length: 9\n\nabcd\n"),
}


def malformed_scenario(transport: str) -> str:
    steps = []
    cseq = 0
    for reason, extra in BAD_REQUESTS.items():
        if transport == "tcp" and "Content-Length" in reason:
            continue
        cseq += 1
        sender = "<sip:sipp@[local_ip]:[local_port]>;tag=[pid]M[call_number]"
        if extra is None:
            sender = "<sip:sipp@[local_ip]:port>;tag=[pid]M[call_number]"
        tail = extra or "Content-Length: 0\n\n"
        if "Max-Forwards" not in tail:
            tail = "Max-Forwards: 70\n" + tail
        steps.append((sender, cseq, tail, "400"))
    steps.append(("<sip:sipp@[local_ip]:[local_port]>;tag=[pid]M[call_number]", cseq + 1,
                  "Max-Forwards: 70\nContent-Length: 0\n\n", "200"))
    body = "".join(f"""  <send>
    <![CDATA[

      OPTIONS sip:[service]@[remote_ip]:[remote_port];transport={transport} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: {sender}
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} OPTIONS
{"".join("      " + line + chr(10) for line in tail.split(chr(10)))}    ]]>
  </send>
  <recv response="{status}"/>
""" for sender, cseq, tail, status in steps)
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="Malformed requests get 400, good ones still 200">
{body}</scenario>
"""


# A UAS that challenges the INVITE (401: verifyauth reads Authorization only) with
# qop="auth-int" alone, checks the answer with SIPp's verifyauth (which hashes the received
# SDP body into H(A2)), answers 200 when it holds and 403 when it does not, then waits for
# the caller's BYE.
AUTH_INT_UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAS that demands qop=auth-int">
  <recv request="INVITE"/>
  <send>
    <![CDATA[

      SIP/2.0 401 Unauthorized
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]C[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      WWW-Authenticate: Digest realm="sipp.test", nonce="n[pid]x[call_number]", qop="auth-int", algorithm=MD5
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
  <recv request="INVITE" rrs="true">
    <action>
      <verifyauth assign_to="authorized" username="[user]" password="[secret]"/>
    </action>
  </recv>
  <nop hide="true" test="authorized" next="good"/>
  <send>
    <![CDATA[

      SIP/2.0 403 Wrong Digest
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]A[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK" next="end"/>
  <label id="good"/>
  <send retrans="500">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]A[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <label id="end"/>
</scenario>
"""


# A caller whose first two copies of our 200 are "lost": with -nr each <recv> takes the next
# copy, and only the third is ACKed. Then it hangs up.
LOST_200_UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAC that ACKs only the third copy of the 200">
  <send>
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]L[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200"/>
  <recv response="200" timeout="3000"/>
  <recv response="200" rrs="true" timeout="3000"/>
  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      [routes]
      Max-Forwards: 70
      From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]L[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="1500"/>
  <send>
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      [routes]
      Max-Forwards: 70
      From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]L[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" timeout="3000"/>
</scenario>
"""

# The same OPTIONS twice (one branch): the second copy is a retransmission, answered with
# the first answer again, not processed as a new request.
REPEATED_OPTIONS_UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAC that resends its OPTIONS as if our 200 was lost">
""" + """  <send>
    <![CDATA[

      OPTIONS sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-again-[call_number];rport
      Max-Forwards: 70
      From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]R[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 7 OPTIONS
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
""" * 2 + """</scenario>
"""


async def open_phone() -> Phone:
    """Our stack with no account: it answers requests from anyone (nothing to protect)."""
    return await Phone().start()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_malformed_requests_get_400_and_good_ones_still_200(
        sipp_factory: SippFactory, tmp_path: Path, transport: str) -> None:
    scenario = tmp_path / f"malformed_{transport}.xml"
    scenario.write_text(malformed_scenario(transport))

    async def main() -> None:
        phone = await open_phone()
        try:
            uac = sipp_factory(scenario, remote=f"127.0.0.1:{phone.port}", transport=transport,
                               service="1001", timeout=10,
                               extra_args=["-default_behaviors", "all,-bye"])
            result = await blocking(uac.run)
        finally:
            await phone.runtime.stop()
        assert result.ok, result.describe()
        expected = [f"SIP/2.0 400 {reason}" for reason in BAD_REQUESTS
                    if transport == "udp" or "Content-Length" not in reason]
        answers = [m.first_line for m in result.received()]
        assert [a[:len(e)] for a, e in zip(answers, expected, strict=False)] == expected
        assert answers[len(expected):] == ["SIP/2.0 200 OK"]

    run(main)


def test_we_call_sipp_over_tcp(sipp_factory: SippFactory) -> None:
    uas = sipp_factory("uas_answer.xml", transport="tcp", duration_ms=300, timeout=10).start()

    async def main() -> None:
        phone = await Phone().start()
        await phone.runtime.add_account(account(registrar=uas.uri_hostport, transport="tcp"))
        try:
            call = phone.runtime.invite("line1", f"sip:service@{uas.uri_hostport}", media())
            await phone.wait(CallAnswered, timeout=5)
            ended = await phone.wait(CallEnded, timeout=5)
            assert (ended.call, ended.by) == (call, "remote")
        finally:
            await phone.runtime.stop()
        result = await blocking(uas.wait)
        assert result.ok, result.describe()
        assert result.received_methods() == ["INVITE", "ACK"]
        assert result.received_statuses() == [200]
        invite = result.received()[0]
        assert (invite.header("Via") or "").startswith("SIP/2.0/TCP ")
        assert "transport=tcp" in (invite.header("Contact") or "")

    run(main)


def test_sipp_calls_us_over_tcp(sipp_factory: SippFactory) -> None:
    async def main() -> None:
        phone = await open_phone()
        # Not registered anywhere: the account only names our user, open to direct calls.
        await phone.runtime.add_account(account(registrar="127.0.0.1:1", transport="tcp"),
                                        allow_sip_from="any")
        answered: list[str] = []

        def on_event(event: object) -> None:
            phone._event(event)  # type: ignore[arg-type]
            if isinstance(event, IncomingCall):
                answered.append(event.call)
                phone.runtime.answer(event.call, media())

        phone.runtime.on_event = on_event
        try:
            uac = sipp_factory("uac_call.xml", remote=f"127.0.0.1:{phone.port}",
                               transport="tcp", service="1001", duration_ms=300, timeout=10)
            result = await blocking(uac.run)
            ended = await phone.wait(CallEnded, timeout=5)
            assert answered == [ended.call] and ended.by == "remote"
        finally:
            await phone.runtime.stop()
        assert result.ok, result.describe()
        statuses = result.received_statuses()
        assert statuses[0] == 100 and statuses[-2:] == [200, 200]  # INVITE's, then BYE's
        ok = next(m for m in result.received() if m.status == 200)
        assert "transport=tcp" in (ok.header("Contact") or "")  # in-dialog requests: TCP too

    run(main)


@pytest.mark.parametrize(("password", "answer"), [("secret1001", 200), ("not-it", 403)])
def test_auth_int_offered_alone_is_verified_by_sipp(
        sipp_factory: SippFactory, tmp_path: Path, password: str, answer: int) -> None:
    """Our answer to qop="auth-int" hashes the INVITE's SDP; SIPp's verifyauth recomputes it.
    The second case is the control: SIPp configured with another password refuses us."""

    scenario = tmp_path / "auth_int_uas.xml"
    scenario.write_text(AUTH_INT_UAS)
    uas = sipp_factory(scenario, timeout=10, keys={"user": "1001", "secret": password}).start()

    async def main() -> None:
        phone = await Phone().start()
        await phone.runtime.add_account(account(registrar=uas.uri_hostport))
        try:
            call = phone.runtime.invite("line1", f"sip:service@{uas.uri_hostport}", media())
            if answer == 200:
                await phone.wait(CallAnswered, timeout=5)
                phone.runtime.hangup(call)
            ended = await phone.wait(CallEnded, timeout=5)
            assert ended.call == call
            if answer != 200:
                assert ended.status == 403
        finally:
            await phone.runtime.stop()
        result = await blocking(uas.wait)
        assert result.ok, result.describe()
        invites = [m for m in result.received() if m.method == "INVITE"]
        assert len(invites) == 2
        credentials = invites[1].header("Authorization") or ""
        assert "qop=auth-int" in credentials and 'realm="sipp.test"' in credentials
        assert (invites[1].header("Content-Type") or "").startswith("application/sdp")
        assert [m.status for m in result.sent() if (m.status or 0) >= 200 and
                "INVITE" in (m.header("CSeq") or "")] == [401, answer]

    run(main)


def test_lost_200_is_retransmitted_until_sipp_acks_it(sipp_factory: SippFactory,
                                                     tmp_path: Path) -> None:
    """RFC 3261 13.3.1.4: our 200 goes again at T1, 2*T1... until the ACK; the copies are
    the same response, and the call is answered once."""
    scenario = tmp_path / "lost_200.xml"
    scenario.write_text(LOST_200_UAC)

    async def main() -> None:
        phone = await open_phone()
        await phone.runtime.add_account(account(registrar="127.0.0.1:1"), allow_sip_from="any")

        def on_event(event: object) -> None:
            phone._event(event)  # type: ignore[arg-type]
            if isinstance(event, IncomingCall):
                phone.runtime.answer(event.call, media())

        phone.runtime.on_event = on_event
        try:
            uac = sipp_factory(scenario, remote=f"127.0.0.1:{phone.port}", service="1001",
                               timeout=12, extra_args=["-nr"])
            result = await blocking(uac.run)
            ended = await phone.wait(CallEnded, timeout=5)
            assert ended.by == "remote" and len(phone.of(CallAnswered)) == 1
        finally:
            await phone.runtime.stop()
        assert result.ok, result.describe()
        copies = [m.text for m in result.received()
                  if m.status == 200 and "INVITE" in (m.header("CSeq") or "")]
        assert len(copies) == 3 and copies[0] == copies[1] == copies[2]

    run(main)


def test_retransmitted_options_gets_the_same_answer_again(sipp_factory: SippFactory,
                                                          tmp_path: Path) -> None:
    scenario = tmp_path / "options_again.xml"
    scenario.write_text(REPEATED_OPTIONS_UAC)

    async def main() -> None:
        phone = await open_phone()
        try:
            uac = sipp_factory(scenario, remote=f"127.0.0.1:{phone.port}", service="1001",
                               timeout=10, extra_args=["-nr", "-default_behaviors", "all,-bye"])
            result = await blocking(uac.run)
        finally:
            await phone.runtime.stop()
        assert result.ok, result.describe()
        first, second = [m for m in result.received() if m.status == 200]
        assert first.text == second.text  # the same To tag: one transaction, answered again

    run(main)
