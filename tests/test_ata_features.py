"""Calling features end to end: the device on the sim board registered with Kamailio, baresip
phones as the other parties, all on loopback and the real clock.

Star codes are keyed on the virtual handset as a subscriber would; the far ends are real SIP
user agents, so what is checked is what they see (busy, redirected, transferred) and hear."""

from __future__ import annotations

import array
import asyncio
import contextlib
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from peers.baresip import Baresip
from peers.kamailio import Kamailio
from peers.ports import free_port
from test_ata_calls import goertzel_power, running_device, until
from tipring.config import ConfigStore, config_from_dict, config_to_dict, default_config
from tipring.hal.sim import VirtualHandset
from tipring.runtime.app import Device

pytest_plugins = ["peers.fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

USERS = {"1001": "secret1001", "1002": "secret1002", "1003": "secret1003"}


@pytest.fixture
def proxy(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    return kamailio_factory(users=USERS)


def config_file(tmp_path: Path, proxy: Kamailio, **line: object) -> Path:
    raw = config_to_dict(default_config(), reveal_secrets=True)
    raw["accounts"] = [{"id": "main", "user": "1001", "password": "secret1001",
                        "domain": "tipring.test", "registrar": proxy.hostport, "expires": 300,
                        "keepalive_s": 0, "message_waiting": "off"}]
    raw["lines"][0].update({"account": "main", **line})
    raw["web"]["port"] = free_port("127.0.0.1")
    path = tmp_path / "config.toml"
    ConfigStore(path).save(config_from_dict(raw))
    return path


def line_state(device: Device) -> str:
    return str(device.status()["lines"][0]["state"])


async def key(device: Device, phone: VirtualHandset, digits: str) -> None:
    """Lift, wait for dial tone, key `digits`."""
    phone.lift()
    await until(lambda: line_state(device) == "dial-tone", 3, "dial tone")
    phone.dial_dtmf(digits)


async def hang_up(device: Device, phone: VirtualHandset) -> None:
    phone.hang_up()
    await until(lambda: line_state(device) == "idle", 3, "on hook")


def second_device_config(tmp_path: Path, proxy: Kamailio, user: str, **line: object) -> Path:
    """The configuration of another TipRing on the same proxy, as `user`."""
    folder = tmp_path / f"ata-{user}"
    folder.mkdir()
    path = config_file(folder, proxy, **line)
    raw = config_to_dict(ConfigStore(path).load().config, reveal_secrets=True)
    raw["accounts"][0].update(user=user, password=USERS[user])
    ConfigStore(path).save(config_from_dict(raw))
    return path


def run(main: Callable[[Device, VirtualHandset], object], path: Path, timeout: float = 75) -> None:
    async def body() -> None:
        device = await running_device(path)
        phone: VirtualHandset = device.board.handsets[0]  # type: ignore[union-attr]
        try:
            await main(device, phone)  # type: ignore[misc]
        finally:
            await device.stop_telephony()
            device.close()

    asyncio.run(asyncio.wait_for(body(), timeout))


def closed_reason(far: Baresip, since: int = 0) -> str:
    return str(far.wait_event("CALL_CLOSED", 10, since=since).get("param", ""))


def test_star_78_refuses_calls_until_star_79_and_is_saved(
        tmp_path: Path, proxy: Kamailio, baresip_factory: Callable[..., Baresip]) -> None:
    bob = baresip_factory(proxy.aor("1002"), password="secret1002")
    path = config_file(tmp_path, proxy)

    async def main(device: Device, phone: VirtualHandset) -> None:
        await key(device, phone, "*78")
        await until(lambda: device.config.lines[0].do_not_disturb, 5, "DND saved")
        assert device.status()["lines"][0]["features"] == "do not disturb"
        await hang_up(device, phone)
        assert ConfigStore(path).load().config.lines[0].do_not_disturb  # on disk too
        await asyncio.to_thread(bob.dial, proxy.aor("1001"))
        reason = await asyncio.to_thread(closed_reason, bob)
        assert "486" in reason and not phone.ring_bursts
        await key(device, phone, "*79")
        await until(lambda: not device.config.lines[0].do_not_disturb, 5, "DND off saved")
        await hang_up(device, phone)
        since = len(bob.events)
        await asyncio.to_thread(bob.dial, proxy.aor("1001"))
        await until(lambda: phone.ring_bursts, 10, "ringing again")
        assert "CALL_CLOSED" not in [e.get("type") for e in bob.events[since:]]

    run(main, path)


def test_star_72_forwards_every_call_to_the_number_keyed(
        tmp_path: Path, proxy: Kamailio, baresip_factory: Callable[..., Baresip]) -> None:
    # Bob sends everything through the proxy, as a provider's phone does: the 302's Contact is
    # in the provider's domain (sip:1003@tipring.test), which only the proxy knows.
    bob = baresip_factory(proxy.aor("1002"), password="secret1002", name="bob",
                          outbound=f"sip:{proxy.hostport};lr")
    carol = baresip_factory(proxy.aor("1003"), password="secret1003", name="carol",
                            answer_mode="auto")
    path = config_file(tmp_path, proxy)

    async def main(device: Device, phone: VirtualHandset) -> None:
        await key(device, phone, "*721003#")
        await until(lambda: device.config.lines[0].forward_all == "1003", 5, "forward saved")
        await hang_up(device, phone)
        await asyncio.to_thread(bob.dial, proxy.aor("1001"))
        # Bob's baresip follows the 302 (Diversion: unconditional) to Carol, who answers.
        await asyncio.to_thread(carol.wait_event, "CALL_ESTABLISHED", 10)
        await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED", 10)
        assert not phone.ring_bursts
        await asyncio.to_thread(bob.hangup)

    run(main, path)


def test_no_answer_forwarding_after_the_ring_time(
        tmp_path: Path, proxy: Kamailio, baresip_factory: Callable[..., Baresip]) -> None:
    bob = baresip_factory(proxy.aor("1002"), password="secret1002", name="bob",
                          outbound=f"sip:{proxy.hostport};lr")
    carol = baresip_factory(proxy.aor("1003"), password="secret1003", name="carol",
                            answer_mode="auto")
    path = config_file(tmp_path, proxy, forward_no_answer="1003", no_answer_s=5)

    async def main(device: Device, phone: VirtualHandset) -> None:
        await asyncio.to_thread(bob.dial, proxy.aor("1001"))
        await until(lambda: phone.ring_bursts, 10, "ringing")
        started = asyncio.get_running_loop().time()
        await asyncio.to_thread(carol.wait_event, "CALL_ESTABLISHED", 15)
        assert asyncio.get_running_loop().time() - started > 4  # after the ring time
        await until(lambda: not phone.ringing, 3, "the phone stops ringing")
        assert line_state(device) == "idle"
        await asyncio.to_thread(bob.hangup)

    run(main, path)


def test_blind_transfer_flash_dial_hang_up(
        tmp_path: Path, proxy: Kamailio, baresip_factory: Callable[..., Baresip]) -> None:
    """Bob calls us; we flash, dial Carol and hang up while she rings: Bob gets our REFER,
    calls Carol himself, and they talk (Carol hears Bob's 440 Hz tone)."""
    bob = baresip_factory(proxy.aor("1002"), password="secret1002", name="bob",
                          outbound=f"sip:{proxy.hostport};lr")
    carol = baresip_factory(proxy.aor("1003"), password="secret1003", name="carol",
                            answer_mode="manual", tone_hz=1300.0)
    path = config_file(tmp_path, proxy)

    async def main(device: Device, phone: VirtualHandset) -> None:
        await asyncio.to_thread(bob.dial, proxy.aor("1001"))
        await until(lambda: phone.ring_bursts, 10, "ringing")
        phone.lift()
        await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED", 5)
        await asyncio.sleep(0.5)
        await consult(device, phone, "1003#")
        await asyncio.to_thread(carol.wait_event, "CALL_INCOMING", 10)
        since = len(carol.events)
        phone.hang_up()
        # Carol's first call (ours) is cancelled; Bob's follows the REFER.
        await asyncio.to_thread(carol.wait_event, "CALL_INCOMING", 10, since)
        await asyncio.to_thread(carol.accept)
        await asyncio.to_thread(carol.wait_event, "CALL_ESTABLISHED", 10)
        await until(lambda: device.telephony is not None and not device.telephony.calls, 10,
                    "our calls released")
        assert line_state(device) == "idle"
        await asyncio.sleep(2)
        await asyncio.to_thread(carol.hangup)

    run(main, path)
    with wave.open(str(carol.recordings()["dec"][-1])) as w:
        data = array.array("h", w.readframes(w.getnframes()))[:: w.getnchannels()]
        step = max(1, w.getframerate() // 8000)
    audio = array.array("h", data[::step])
    assert goertzel_power(audio[-8000:], 440.0) > 20 * goertzel_power(audio[-8000:], 1700.0)


@contextlib.asynccontextmanager
async def bob_on_a_second_tipring(bob_path: Path, device: Device,
                                  phone: VirtualHandset) -> AsyncIterator[
                                      tuple[Device, VirtualHandset]]:
    """Bob, a second TipRing, calls us (1001) and we answer; stopped on the way out."""
    bob_device = await running_device(bob_path)
    bob: VirtualHandset = bob_device.board.handsets[0]  # type: ignore[union-attr]
    try:
        await key(bob_device, bob, "1001#")
        await until(lambda: phone.ring_bursts, 10, "ringing")
        phone.lift()
        await until(lambda: line_state(bob_device) == "connected", 5, "Bob connected")
        yield bob_device, bob
    finally:
        await bob_device.stop_telephony()
        bob_device.close()


async def consult(device: Device, phone: VirtualHandset, digits: str) -> None:
    """Flash (the call is held), wait for recall dial tone, dial a second party."""
    phone.flash()
    await until(lambda: line_state(device) == "dial-tone", 3, "recall dial tone")
    phone.dial_dtmf(digits)


def test_attended_transfer_talk_to_carol_then_hang_up(
        tmp_path: Path, proxy: Kamailio, baresip_factory: Callable[..., Baresip]) -> None:
    """Bob calls us; we flash, call Carol, talk to her, hang up: Bob gets a REFER whose target
    carries Replaces naming our call to Carol; Bob's INVITE replaces it and Bob and Carol talk.

    Bob is a second TipRing on the sim board: baresip 1.0 (Debian 12) mangles a Refer-To with
    URI headers (it turns the escaped Replaces into part of the Request-URI, which the proxy
    answers with 404), so it cannot be the transferee of an attended transfer."""
    carol = baresip_factory(proxy.aor("1003"), password="secret1003", name="carol",
                            answer_mode="auto", tone_hz=1300.0)
    path = config_file(tmp_path, proxy)
    bob_path = second_device_config(tmp_path, proxy, "1002")

    async def main(device: Device, phone: VirtualHandset) -> None:
        async with bob_on_a_second_tipring(bob_path, device, phone) as (bob_device, bob):
            await consult(device, phone, "1003#")
            await asyncio.to_thread(carol.wait_event, "CALL_ESTABLISHED", 10)
            await until(lambda: line_state(device) == "connected", 5, "talking to Carol")
            since, bursts = len(carol.events), len(phone.ring_bursts)
            phone.hang_up()
            await asyncio.to_thread(carol.wait_event, "CALL_ESTABLISHED", 10, since)
            await until(lambda: device.telephony is not None and not device.telephony.calls,
                        10, "our calls released")
            # Nothing rang back: the transfer worked, the held call was handed over.
            assert line_state(device) == "idle" and len(phone.ring_bursts) == bursts
            bob_calls = bob_device.telephony.calls if bob_device.telephony else {}
            assert [r.state for r in bob_calls.values()] == ["connected"]
            heard = array.array("h")

            def carol_heard() -> bool:
                heard[:] = array.array("h")
                heard.frombytes(bob.heard())
                window = heard[-4000:]
                return len(window) > 800 and goertzel_power(window, 1300.0) > 20 * \
                    goertzel_power(window, 1700.0)

            await until(carol_heard, 8, "Carol's 1300 Hz tone on Bob's handset")
            bob.hang_up()
            await asyncio.to_thread(carol.wait_event, "CALL_CLOSED", 10, since)

    run(main, path)


def test_star_67_withholds_our_number_and_anonymous_rejection_refuses_it(
        tmp_path: Path, proxy: Kamailio, baresip_factory: Callable[..., Baresip]) -> None:
    """*67 calls Carol (baresip) with an anonymous From and Privacy: id; a second TipRing with
    anonymous-call rejection on refuses the same kind of call with 433, and its call log says
    why, while a call showing its number rings it."""
    carol = baresip_factory(proxy.aor("1003"), password="secret1003", name="carol",
                            answer_mode="manual")
    path = config_file(tmp_path, proxy)
    bob_path = second_device_config(tmp_path, proxy, "1002", anonymous_rejection=True)

    async def main(device: Device, phone: VirtualHandset) -> None:
        await key(device, phone, "*671003#")
        event = await asyncio.to_thread(carol.wait_event, "CALL_INCOMING", 10)
        assert event["peeruri"] == "sip:anonymous@anonymous.invalid"
        assert event["peerdisplayname"] == "Anonymous"
        await asyncio.to_thread(carol.hangup)
        await hang_up(device, phone)
        bob_device = await running_device(bob_path)
        bob: VirtualHandset = bob_device.board.handsets[0]  # type: ignore[union-attr]
        try:
            await key(device, phone, "*671002#")
            await until(lambda: bob_device.call_log.entries, 10, "Bob's log of the refusal")
            [entry] = bob_device.call_log.entries
            assert entry.outcome == "missed" and "withheld" in entry.reason
            assert not bob.ring_bursts
            await until(lambda: any(e.status == 433 for e in device.call_log.entries), 10,
                        "our side saw 433")
            await hang_up(device, phone)
            await key(device, phone, "1002#")
            await until(lambda: bob.ring_bursts, 10, "a call with a number rings Bob")
        finally:
            await bob_device.stop_telephony()
            bob_device.close()

    run(main, path)


def hears_tone(phone: VirtualHandset, hz: float) -> Callable[[], bool]:
    """A check: the last half second the handset heard is dominated by `hz`."""
    def check() -> bool:
        heard = array.array("h")
        heard.frombytes(phone.heard())
        window = heard[-4000:]
        return len(window) > 800 and goertzel_power(window, hz) > 20 * goertzel_power(window,
                                                                                     1700.0)
    return check


def test_call_waiting_flash_swaps_between_two_real_callers(
        tmp_path: Path, proxy: Kamailio, baresip_factory: Callable[..., Baresip]) -> None:
    """Bob (440 Hz) calls and we talk; Carol (1300 Hz) calls: the call-waiting tone; a flash
    puts Bob on hold and we hear Carol; another flash and we hear Bob again; Bob hangs up and
    the phone stays with Carol on hold until a flash takes her back."""
    bob = baresip_factory(proxy.aor("1002"), password="secret1002", name="bob")
    carol = baresip_factory(proxy.aor("1003"), password="secret1003", name="carol",
                            tone_hz=1300.0)
    path = config_file(tmp_path, proxy)

    async def main(device: Device, phone: VirtualHandset) -> None:
        await asyncio.to_thread(bob.dial, proxy.aor("1001"))
        await until(lambda: phone.ring_bursts, 10, "ringing")
        phone.lift()
        await until(hears_tone(phone, 440.0), 8, "Bob's tone")
        await asyncio.to_thread(carol.dial, proxy.aor("1001"))
        await asyncio.to_thread(carol.wait_event, "CALL_RINGING", 10)
        await until(lambda: device.telephony is not None and any(
                        r.state == "waiting" for r in device.telephony.calls.values()),
                    5, "Carol waiting")
        phone.flash()
        await asyncio.to_thread(carol.wait_event, "CALL_ESTABLISHED", 10)
        await until(hears_tone(phone, 1300.0), 8, "Carol's tone after the flash")
        phone.flash()
        await until(hears_tone(phone, 440.0), 8, "Bob's tone again after a second flash")
        await asyncio.to_thread(bob.hangup)
        await until(lambda: device.telephony is not None and len(device.telephony.calls) == 1,
                    5, "Bob gone")
        phone.flash()
        await until(hears_tone(phone, 1300.0), 8, "Carol taken off hold")
        phone.hang_up()
        await asyncio.to_thread(carol.wait_event, "CALL_CLOSED", 10)

    run(main, path)


def heard_contains(phone: VirtualHandset, pcm: bytes) -> bool:
    """Whether the handset heard exactly these samples (prompts are played as recorded)."""
    heard = phone.heard()
    at = heard.find(pcm)
    while at >= 0 and at % 2:
        at = heard.find(pcm, at + 1)
    return at >= 0


def test_voice_menu_reads_the_address_and_resets_the_password_only_with_the_hook(
        tmp_path: Path, proxy: Kamailio) -> None:
    from tipring.phone.voicemenu import address_clips
    from tipring.runtime.app import interface_addresses
    from tipring.runtime.prompts import PromptLibrary

    library = PromptLibrary()
    path = config_file(tmp_path, proxy)
    raw = config_to_dict(ConfigStore(path).load().config, reveal_secrets=True)
    raw["web"]["admin_password_hash"] = "scrypt$placeholder-hash"
    ConfigStore(path).save(config_from_dict(raw))

    async def main(device: Device, phone: VirtualHandset) -> None:
        assert device.config.web.admin_password_hash.is_set
        await key(device, phone, "***")
        await until(lambda: heard_contains(phone, library.pcm(["hello"])), 10, "the greeting")
        phone.dial_dtmf("1")
        spoken = library.pcm(address_clips(interface_addresses()))
        await until(lambda: heard_contains(phone, spoken), 30, "the address, word for word")
        phone.dial_dtmf("91")  # password reset, confirmed
        await asyncio.sleep(2.5)
        phone.hang_up()
        await asyncio.sleep(1.5)
        for lift in range(3):
            phone.lift()
            await asyncio.sleep(1.5)
            if lift < 2:
                phone.hang_up()
                await asyncio.sleep(1.5)
        await until(lambda: not device.config.web.admin_password_hash.is_set, 5,
                    "password cleared")
        assert not ConfigStore(path).load().config.web.admin_password_hash.is_set
        await until(lambda: heard_contains(phone, library.pcm(["removed"])), 10,
                    "'password removed'")

    run(main, path)


def test_a_number_not_in_service_gets_sit_and_the_recorded_intercept(
        tmp_path: Path, proxy: Kamailio) -> None:
    from tipring.runtime.prompts import PromptLibrary

    intercept = PromptLibrary().pcm(["ss-noservice"])
    path = config_file(tmp_path, proxy)

    async def main(device: Device, phone: VirtualHandset) -> None:
        await key(device, phone, "1999#")  # no such user: the proxy answers 404
        await until(lambda: any(e.status == 404 for e in device.call_log.entries), 10, "404")
        await until(lambda: heard_contains(phone, intercept), 15, "the intercept")

    run(main, path)


def recorded(far: Baresip) -> array.array:
    """What `far` received (its decoded audio), at about 8 kHz: the longest recording, since
    baresip starts a new file when a re-INVITE (hold, resume) restarts its audio."""
    longest = max(far.recordings()["dec"], key=lambda path: path.stat().st_size)
    with wave.open(str(longest)) as w:
        data = array.array("h", w.readframes(w.getnframes()))[:: w.getnchannels()]
        step = max(1, w.getframerate() // 8000)
    return array.array("h", data[::step])


def dominant(audio: array.array, hz: float, against: float = 1700.0) -> bool:
    return goertzel_power(audio, hz) > 20 * goertzel_power(audio, against)


def tone(hz: float, seconds: float) -> array.array:
    import math

    return array.array("h", (int(6000 * math.sin(2 * math.pi * hz * n / 8000))
                             for n in range(int(8000 * seconds))))


def handset_hears(phone: VirtualHandset, *tones_hz: float) -> bool:
    heard = array.array("h")
    heard.frombytes(phone.heard())
    window = heard[-4000:]
    return len(window) > 800 and all(dominant(window, hz) for hz in tones_hz)


def test_three_way_call_mixes_both_parties_and_the_phone(
        tmp_path: Path, proxy: Kamailio, baresip_factory: Callable[..., Baresip]) -> None:
    """Bob calls; we flash, call Carol, flash again: all three talk, mixed by our audio path.
    Bob speaks 440 Hz, Carol 1300 Hz, we 1000 Hz: each hears the other two, nobody hears
    themselves. Carol is baresip (checked in its recording). Bob is a second TipRing: he is
    held while we call Carol, and baresip 1.0 stops recording what it decodes once it has
    been held and resumed, so his ear is his handset's."""
    carol = baresip_factory(proxy.aor("1003"), password="secret1003", name="carol",
                            answer_mode="auto", tone_hz=1300.0)
    path = config_file(tmp_path, proxy)
    bob_path = second_device_config(tmp_path, proxy, "1002")

    async def main(device: Device, phone: VirtualHandset) -> None:
        async with bob_on_a_second_tipring(bob_path, device, phone) as (bob_device, bob):
            bob.speak(tone(440.0, 30))
            await until(hears_tone(phone, 440.0), 8, "Bob's voice")
            await consult(device, phone, "1003#")
            await asyncio.to_thread(carol.wait_event, "CALL_ESTABLISHED", 10)
            await until(hears_tone(phone, 1300.0), 8, "Carol while consulting")
            phone.flash()
            await until(lambda: device.telephony is not None and
                        device.telephony.phone is not None and
                        device.telephony.phone.conference == {0}, 5, "three-way call")
            phone.speak(tone(1000.0, 10))
            await until(lambda: handset_hears(phone, 440.0, 1300.0), 8, "both on our handset")
            await until(lambda: handset_hears(bob, 1300.0, 1000.0), 8, "Carol and us on Bob's")
            heard = array.array("h")
            heard.frombytes(bob.heard())
            window = heard[-4000:]
            assert goertzel_power(window, 440.0) < goertzel_power(window, 1300.0) / 20
            await asyncio.sleep(2)
            phone.hang_up()
            await asyncio.to_thread(carol.wait_event, "CALL_CLOSED", 10)
            await until(lambda: line_state(bob_device) != "connected", 5, "Bob's call ended")

    run(main, path)
    carol_heard = recorded(carol)[-12000:-4000]
    assert dominant(carol_heard, 440.0) and dominant(carol_heard, 1000.0), "Carol's ear"
    assert goertzel_power(carol_heard, 1300.0) < goertzel_power(carol_heard, 440.0) / 20


def test_message_waiting_lights_the_lamp_and_stutters_the_dial_tone(
        tmp_path: Path, proxy: Kamailio, sipp_factory: Callable[..., object]) -> None:
    """The registrar's unsolicited message-summary NOTIFY (as Asterisk sends it): the idle
    phone gets the visual indicator as on-hook FSK (GR-30 MDMF 0x82, parameter 0x0B = on),
    lifting gives stutter dial tone; "no" turns the lamp off again."""
    import spandsp_oracle as sd

    path = config_file(tmp_path, proxy)
    raw = config_to_dict(ConfigStore(path).load().config, reveal_secrets=True)
    raw["accounts"][0]["message_waiting"] = "unsolicited"
    ConfigStore(path).save(config_from_dict(raw))

    def indicator(phone: VirtualHandset) -> list[bytes | None]:
        """The visual indicator of every message-waiting burst the phone received on hook."""
        audio = array.array("h")
        audio.frombytes(phone.caller_id_audio())
        found = []
        for message in sd.adsi_rx(audio, sd.ADSI_STANDARD_CLASS):
            fields = sd.adsi_fields(message, sd.ADSI_STANDARD_CLASS)
            if fields and fields[0][0] == 0x82:
                found.append(dict(fields[1:]).get(0x0B))
        return found

    async def main(device: Device, phone: VirtualHandset) -> None:
        target = f"127.0.0.1:{device.options.sip_port}"

        def notify(waiting: str, voice: str) -> None:
            sipp = sipp_factory("uac_notify_mwi.xml", remote=target, service="1001",
                                keys={"waiting": waiting, "voice": voice})
            assert sipp.run().ok  # type: ignore[attr-defined]

        await asyncio.to_thread(notify, "yes", "2/0")
        await until(lambda: device.telephony is not None and
                    device.telephony.messages_waiting.get("main"), 5, "MWI noted")
        await until(lambda: indicator(phone) == [b"\xff"], 10, "lamp on (VMWI FSK)")
        assert device.status()["lines"][0]["features"] == "messages waiting"
        assert not phone.ring_bursts  # data without ringing
        phone.lift()
        await until(lambda: device.lines[0].line.tone == "stutter_dial", 3, "stutter dial tone")
        await hang_up(device, phone)
        await asyncio.to_thread(notify, "no", "0/2")
        # (The line may say "on" again after the call before it hears "off": the latest wins.)
        await until(lambda: indicator(phone)[-1:] == [b"\x00"], 10, "lamp off")
        phone.lift()
        await until(lambda: device.lines[0].line.tone == "dial", 3, "plain dial tone")

    run(main, path)


def test_emergency_number_goes_out_despite_dnd_hidden_id_and_a_plan_without_it(
        tmp_path: Path, proxy: Kamailio) -> None:
    path = config_file(tmp_path, proxy, dial_plan="(1xxx)", do_not_disturb=True,
                       hide_caller_id=True)

    async def main(device: Device, phone: VirtualHandset) -> None:
        await key(device, phone, "911")  # completes at once: no timer, no '#'

        def invite() -> bytes | None:
            assert device.telephony is not None
            return next((r.data for r in device.telephony.sip.trace.records()
                         if r.direction == "out" and r.data.startswith(b"INVITE sip:911@")),
                        None)

        sent = await until(invite, 5, "the emergency INVITE")
        assert b"anonymous" not in sent.lower() and b"From: <sip:1001@" in sent
        await key_after_hang_up(device, phone, "5551234#")  # the plan still bars the rest
        await until(lambda: device.lines[0].line.tone == "congestion", 5, "reorder")

    run(main, path)


async def key_after_hang_up(device: Device, phone: VirtualHandset, digits: str) -> None:
    await hang_up(device, phone)
    await key(device, phone, digits)


def test_fallback_account_carries_calls_while_the_main_one_cannot_register(
        tmp_path: Path, proxy: Kamailio, baresip_factory: Callable[..., Baresip]) -> None:
    bob = baresip_factory(proxy.aor("1002"), password="secret1002", name="bob")
    path = config_file(tmp_path, proxy)
    raw = config_to_dict(ConfigStore(path).load().config, reveal_secrets=True)
    raw["accounts"][0]["password"] = "wrong-password"
    raw["accounts"].append({**raw["accounts"][0], "id": "backup", "user": "1003",
                            "password": "secret1003"})
    raw["lines"][0]["fallback_account"] = "backup"
    ConfigStore(path).save(config_from_dict(raw))

    async def main(device: Device, phone: VirtualHandset) -> None:
        await until(lambda: device.telephony is not None and device.telephony.registration(
            "main").startswith("failed"), 10, "main account refused")
        await until(lambda: device.telephony is not None and device.telephony.registration(
            "backup").startswith("registered"), 10, "backup registered")
        await key(device, phone, "1002#")
        event = await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED", 10)
        assert event["peeruri"].startswith("sip:1003@")  # placed on the fallback account
        await asyncio.to_thread(bob.hangup)
        await hang_up(device, phone)
        await asyncio.to_thread(bob.dial, proxy.aor("1003"))
        await until(lambda: phone.ring_bursts, 10, "a call to the fallback rings the line")

    # The main account fails to register, so the usual "registered" wait does not apply.
    async def body() -> None:
        from tipring.runtime.app import Options

        device = Device(Options(path, "sim", sip_host="127.0.0.1",
                                sip_port=free_port("127.0.0.1")))
        device.start()
        await device.start_telephony()
        phone: VirtualHandset = device.board.handsets[0]  # type: ignore[union-attr]
        try:
            await main(device, phone)
        finally:
            await device.stop_telephony()
            device.close()

    asyncio.run(asyncio.wait_for(body(), 75))
