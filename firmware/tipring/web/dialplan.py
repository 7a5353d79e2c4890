"""Dial plan tester: type some digits, see what the adapter would do with them.

By default it tests a line's saved dial plan together with the star codes (which the line's
digit map takes as rules of their own), so what it shows is what that line does; a plan typed
into the page is tested instead, and nothing is saved here (the Line page saves plans). It is
read-only, hence GET: the form works without JavaScript, and the script re-asks
/dialplan/test.json on every keystroke. Results come from `tipring.line.digitmap` itself, digit
by digit as the line state machine calls it, so the tester cannot drift from the real behaviour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from tipring.config import Config
from tipring.line.digitmap import DigitMap, DigitMapError, Match, Outcome
from tipring.line.regions import RegionError, profile
from tipring.phone.features import digit_rules

from .appstate import device
from .render import render

if TYPE_CHECKING:
    from tipring.runtime.app import Device

MAX_PLAN = 2000
MAX_DIGITS = 32


def _explain(result: Match, features: tuple[str, ...] = ()) -> str:
    if result.outcome is Outcome.COMPLETE and result.rule in features:
        return f"star code {result.number}: switch the feature, place no call"
    if result.outcome is Outcome.COMPLETE:
        return f"call {result.number}" + (" (emergency number)" if result.emergency else "")
    if result.outcome is Outcome.PARTIAL:
        timer = result.timer.value if result.timer else "inter-digit"
        return f"wait for more digits ({timer} timer, {result.timeout_s:g} s)"
    if result.outcome is Outcome.BARRED:
        return "barred by a ! rule: reorder tone"
    return "no rule matches: reorder tone"


def emergency_numbers(dev: Device) -> tuple[str, ...]:
    try:
        return profile(dev.config.device.region).emergency_numbers
    except RegionError:
        return ("911", "112")


def _emergency(request: web.Request) -> tuple[str, ...]:
    return emergency_numbers(device(request))


def line_plan(config: Config, line: object) -> tuple[str, tuple[str, ...]]:
    """Line `line`'s saved dial plan and the star codes as digit-map rules; LookupError names
    a line that does not exist."""
    text = str(line).strip()
    if not text.isdigit() or int(text) >= len(config.lines):
        raise LookupError(f"no line {text!r} (lines are 0 to {len(config.lines) - 1})")
    return config.lines[int(text)].dial_plan, digit_rules(config.features.codes())


def test_plan(plan: str, digits: str, emergency: tuple[str, ...],
              features: tuple[str, ...] = ()) -> dict[str, Any]:
    """Plain data for the page and the JSON reply; `error` says what is wrong with the input."""
    plan, digits = plan[:MAX_PLAN], digits.strip().upper()[:MAX_DIGITS]
    try:
        compiled = DigitMap.compile(plan, emergency, features=features)
    except DigitMapError as exc:
        return {"error": str(exc), "position": exc.position}
    bad = sorted({d for d in digits if d not in "0123456789*#ABCD"})
    if bad:
        return {"error": f"not telephone keys: {''.join(bad)}"}
    steps = []
    for end in range(1, len(digits) + 1):
        result = compiled.match(digits[:end])
        steps.append({"dialled": digits[:end], "outcome": result.outcome.value,
                      "says": _explain(result, features), "rule": result.rule})
        if result.outcome is not Outcome.PARTIAL:
            break
    final = compiled.expire(digits) if steps and steps[-1]["outcome"] == "partial" else None
    return {
        "error": None, "steps": steps,
        "if_timer_expires": None if final is None else {
            "outcome": final.outcome.value, "says": _explain(final, features), "rule": final.rule},
    }


def _request_plan(request: web.Request) -> tuple[int, str, tuple[str, ...]]:
    config = device(request).config
    line = request.query.get("line", "0")
    try:
        saved, codes = line_plan(config, line)
    except LookupError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    return int(line), request.query.get("plan", saved), codes


async def dialplan_page(request: web.Request) -> web.Response:
    line, plan, codes = _request_plan(request)
    digits = request.query.get("digits", "")
    emergency = _emergency(request)
    result = (test_plan(plan, digits, emergency, codes)
              if digits or "plan" in request.query else None)
    return render(request, "dialplan.html", plan=plan, digits=digits, result=result,
                  emergency=emergency, line=line, lines=len(device(request).config.lines),
                  codes=device(request).config.features.codes())


async def dialplan_json(request: web.Request) -> web.Response:
    _, plan, codes = _request_plan(request)
    return web.json_response(test_plan(plan, request.query.get("digits", ""),
                                       _emergency(request), codes))


def routes() -> list[web.RouteDef]:
    return [web.get("/dialplan", dialplan_page), web.get("/dialplan/test.json", dialplan_json)]
