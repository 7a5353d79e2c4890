"""The call log (issue 8): bounded, survives a restart, skips lines it cannot use, never holds
secrets; and how Telephony turns the phone's calls and SIP endings into log entries."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tipring.config import default_config
from tipring.runtime.calllog import CallLog, CallLogEntry
from tipring.runtime.media import MediaStats
from tipring.runtime.telephony import Telephony
from tipring.sip.registration import RegistrationFailed, Registered
from tipring.sip.session import CallAnswered, CallEnded


def entry(number: str, **kw: Any) -> CallLogEntry:
    return CallLogEntry(time=1_700_000_000.0, line=0, direction="outgoing", number=number,
                        **kw)


def test_entries_survive_a_restart_in_order(tmp_path: Path) -> None:
    log = CallLog.beside(tmp_path / "config.toml")
    assert log.path == tmp_path / "calls.jsonl"
    log.load()  # no file yet: empty, no error
    log.add(entry("100", outcome="answered", duration_s=12.5, codec="PCMU"))
    log.add(entry("101", outcome="busy", status=486, reason="Busy Here"))
    again = CallLog.beside(tmp_path / "config.toml")
    again.load()
    assert [e.number for e in again.newest_first()] == ["101", "100"]
    assert again.entries[0] == log.entries[0]
    assert stat.S_IMODE(os.stat(log.path).st_mode) == 0o600  # numbers are personal data


def test_cap_bounds_memory_and_file(tmp_path: Path) -> None:
    log = CallLog(tmp_path / "calls.jsonl", capacity=5)
    for n in range(23):
        log.add(entry(str(n)))
        rows = log.path.read_text().splitlines()
        assert len(rows) <= 2 * 5  # compacted, never unbounded
        assert len(log.entries) <= 5
    assert [e.number for e in log.newest_first()] == ["22", "21", "20", "19", "18"]
    again = CallLog(tmp_path / "calls.jsonl", capacity=5)
    again.load()
    assert [e.number for e in again.newest_first()] == ["22", "21", "20", "19", "18"]
    assert not (tmp_path / "calls.jsonl.tmp").exists()
    assert [e.number for e in log.newest_first(2)] == ["22", "21"]


def test_bad_and_torn_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    good = json.dumps(entry("200").to_json())
    path.write_text("\n".join([
        good,
        "not json at all",
        "[1, 2, 3]",
        json.dumps({"time": 1, "direction": "sideways", "number": "x"}),
        json.dumps({"direction": "incoming", "number": "no time"}),
        json.dumps({**entry("201").to_json(), "outcome": "exploded"}),
        json.dumps({**entry("202").to_json(), "line": "zero"}),
        "",
        json.dumps(entry("203").to_json()),
        '{"time": 5, "direction": "outg',  # torn by a power cut
    ]) + "\n")
    log = CallLog(path)
    log.load()
    assert [e.number for e in log.entries] == ["200", "203"]
    log.add(entry("204"))  # appending after a torn line still gives a readable file
    again = CallLog(path)
    again.load()
    assert [e.number for e in again.entries] == ["200", "203", "204"]


def test_unwritable_log_does_not_raise(tmp_path: Path) -> None:
    log = CallLog(tmp_path / "missing-dir" / "calls.jsonl")
    log.add(entry("300"))  # logged as an error; the call goes on
    assert [e.number for e in log.entries] == ["300"]


# --- Telephony: phone calls -> records -> log entries ------------------------------------------

class FakePhone:
    """Just what Telephony reads of the Phone: its calls and line setups."""

    def __init__(self) -> None:
        self.calls: dict[str, Any] = {}
        self.lines = {0: SimpleNamespace(account="main")}
        self.not_put_through: dict[str, str] = {}

    def call_deadline(self) -> float | None:
        return None

    def sip_event(self, event: object, now: float) -> list[Any]:
        if isinstance(event, CallAnswered) and event.call in self.calls:
            self.calls[event.call].state = "connected"
            self.calls[event.call].media = event.media
        if isinstance(event, CallEnded):
            self.calls.pop(event.call, None)
        return []

    def line_event(self, line: int, event: object, now: float) -> list[Any]:
        return []


def telephony() -> tuple[Telephony, list[CallLogEntry], FakePhone]:
    logged: list[CallLogEntry] = []
    t = Telephony(default_config(), {}, on_call_ended=logged.append, wall=lambda: 1234.0)
    phone = FakePhone()
    t.phone = phone  # type: ignore[assignment]
    t.sip.act = lambda command: command(None, t.sip.clock())  # type: ignore[method-assign]
    return t, logged, phone


def stats(received: int, leg: str = "c1") -> MediaStats:
    return MediaStats(sent_packets=received + 1, received_packets=received, dropped={},
                      jitter_ms=2.345, cumulative_lost=2, buffer_delay_ms=40.0,
                      buffer_target_ms=40.0, late=0, concealed_ms=40.0, round_trip_ms=None,
                      overruns=0, underruns=0, leg=leg)


def test_answered_call_is_logged_with_its_figures() -> None:
    t, logged, phone = telephony()
    media = SimpleNamespace(codec="PCMA")
    phone.calls["c1"] = SimpleNamespace(line=0, direction="outgoing", number="1002",
                                        state="calling", emergency=False, media=None)
    t.line_event(0, object())  # the dialled number went to the phone: a new call
    assert t.call_status(0)["state"] == "calling"
    assert t.call_status(0)["rtp"] is None
    t._sip_event(CallAnswered("c1", media))  # type: ignore[arg-type]
    t.line_event(0, stats(98))
    shown = t.call_status(0)
    assert shown["state"] == "connected" and shown["codec"] == "PCMA"
    assert shown["rtp"]["received_packets"] == 98 and shown["rtp"]["loss_percent"] == 2.0
    assert shown["rtp"]["jitter_ms"] == 2.3
    t._sip_event(CallEnded("c1", 200, "OK", "remote"))
    assert t.call_status(0) is None
    [done] = logged
    assert (done.time, done.outcome, done.number, done.codec) == (1234.0, "answered", "1002",
                                                                  "PCMA")
    assert done.reason == "hung up by the far end" and done.rtp["received_packets"] == 98


def test_failed_outgoing_calls_say_why() -> None:
    for status, reason, by, outcome in [(486, "Busy Here", "remote", "busy"),
                                        (404, "Not Found", "remote", "failed"),
                                        (503, "Service Unavailable", "network", "failed"),
                                        (487, "Request Terminated", "local", "cancelled")]:
        t, logged, phone = telephony()
        phone.calls["c"] = SimpleNamespace(line=0, direction="outgoing", number="5",
                                           state="early", emergency=False, media=None)
        t.line_event(0, object())
        t._sip_event(CallEnded("c", status, reason, by))
        [done] = logged
        assert (done.outcome, done.status, done.reason, done.duration_s) == (
            outcome, status, reason, 0.0), status


def test_unanswered_incoming_call_is_missed_and_hang_up_before_answer_is_cancelled() -> None:
    t, logged, phone = telephony()
    phone.calls["in"] = SimpleNamespace(line=0, direction="incoming", number="777",
                                        state="ringing", emergency=False, media=None)
    t.line_event(0, object())
    t._sip_event(CallEnded("in", 487, "Request Terminated", "remote"))
    assert logged[-1].outcome == "missed" and logged[-1].direction == "incoming"
    phone.calls["out"] = SimpleNamespace(line=0, direction="outgoing", number="9",
                                         state="calling", emergency=False, media=None)
    t.line_event(0, object())
    del phone.calls["out"]  # the handset went on hook; the phone let the call go
    t.line_event(0, object())
    assert logged[-1].outcome == "cancelled" and logged[-1].status is None


def test_registration_words_name_status_reason_and_retry() -> None:
    t, _, _ = telephony()
    from tipring.runtime.telephony import AccountState

    t.accounts["main"] = AccountState()
    assert t.registration("main") == "registering"
    t._sip_event(RegistrationFailed("main", 403, "Forbidden", 30.0))
    words = t.registration("main")
    assert words is not None and words.startswith("failed: 403 Forbidden; retrying in ")
    assert words.endswith(" s") and int(words.split()[-2]) in (29, 30)
    t._sip_event(RegistrationFailed("main", 0, "", None))  # e.g. no answer, no retry planned
    assert t.registration("main") == "failed: no answer"
    t._sip_event(Registered("main", 300, "<sip:1001@h>", ("127.0.0.1", 5060)))
    assert t.registration("main") == "registered (300 s)"
    assert t.registration("other") is None


def test_call_waiting_keeps_figures_on_the_call_that_is_on_the_line() -> None:
    from tipring.web.status import call_view

    t, logged, phone = telephony()
    phone.calls["a"] = SimpleNamespace(line=0, direction="outgoing", number="100",
                                       state="connected", emergency=False, media=None,
                                       held=False)
    t.line_event(0, object())
    phone.calls["b"] = SimpleNamespace(line=0, direction="incoming", number="200",
                                       state="waiting", emergency=False, media=None,
                                       held=False)
    t.line_event(0, stats(50, "a"))
    assert t.call_status(0)["number"] == "100"
    assert t.call_status(0)["rtp"]["received_packets"] == 50
    [waiting] = t.other_calls(0)
    assert waiting["number"] == "200" and waiting["rtp"] is None
    words = call_view("line0", t.call_status(0), t.other_calls(0))["line0.call"]
    assert words == "outgoing, connected; also waiting (call waiting): 200"
    phone.calls["a"].held = True  # flash: the first call goes on hold, the second is answered
    phone.calls["b"].state = "connected"
    t.line_event(0, stats(7, "b"))
    assert t.call_status(0)["number"] == "200"
    assert t.call_status(0)["rtp"]["received_packets"] == 7
    assert t.other_calls(0)[0]["rtp"]["received_packets"] == 50  # the held call's last figures
    assert "also on hold: 100" in call_view("line0", t.call_status(0),
                                            t.other_calls(0))["line0.call"]
    assert not logged


def test_api_form_gives_iso_time_in_the_zone_and_survives_absurd_times() -> None:
    import datetime
    import zoneinfo

    entry = CallLogEntry(time=1_700_000_000.0, line=0, direction="outgoing", number="1")
    berlin = entry.to_api(zoneinfo.ZoneInfo("Europe/Berlin"))
    assert berlin["started"] == "2023-11-14T23:13:20+01:00" and berlin["time"] == 1_700_000_000.0
    assert entry.to_api(datetime.UTC)["started"] == "2023-11-14T22:13:20+00:00"
    absurd = CallLogEntry(time=1e300, line=0, direction="outgoing", number="1")
    assert absurd.to_api(datetime.UTC)["started"] is None
