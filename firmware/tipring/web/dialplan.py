"""Dial plan tester: type a plan and some digits, see what the adapter would do with them.

The dial plan is not a configuration setting yet (the line layer's digit maps exist, the schema
field does not), so this page tests a plan typed into it and saves nothing. It is read-only,
hence GET: the form works without JavaScript, and the script re-asks /dialplan/test.json on
every keystroke. Results come from `tipring.line.digitmap` itself, digit by digit as the line
state machine will call it, so the tester cannot drift from the real behaviour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from tipring.line.digitmap import DigitMap, DigitMapError, Match, Outcome
from tipring.line.regions import RegionError, profile

from .appstate import device
from .render import render

if TYPE_CHECKING:
    from tipring.runtime.app import Device

EXAMPLE_PLAN = "( [2-9]xxxxxx | <:1>[2-9]xx[2-9]xxxxxx | 1[2-9]xx[2-9]xxxxxx | 011x. | *xx )"
MAX_PLAN = 2000
MAX_DIGITS = 32


def _explain(result: Match) -> str:
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


def test_plan(plan: str, digits: str, emergency: tuple[str, ...]) -> dict[str, Any]:
    """Plain data for the page and the JSON reply; `error` says what is wrong with the input."""
    plan, digits = plan[:MAX_PLAN], digits.strip().upper()[:MAX_DIGITS]
    try:
        compiled = DigitMap.compile(plan, emergency)
    except DigitMapError as exc:
        return {"error": str(exc), "position": exc.position}
    bad = sorted({d for d in digits if d not in "0123456789*#ABCD"})
    if bad:
        return {"error": f"not telephone keys: {''.join(bad)}"}
    steps = []
    for end in range(1, len(digits) + 1):
        result = compiled.match(digits[:end])
        steps.append({"dialled": digits[:end], "outcome": result.outcome.value,
                      "says": _explain(result), "rule": result.rule})
        if result.outcome is not Outcome.PARTIAL:
            break
    final = compiled.expire(digits) if steps and steps[-1]["outcome"] == "partial" else None
    return {
        "error": None, "steps": steps,
        "if_timer_expires": None if final is None else {
            "outcome": final.outcome.value, "says": _explain(final), "rule": final.rule},
    }


async def dialplan_page(request: web.Request) -> web.Response:
    plan = request.query.get("plan", EXAMPLE_PLAN)
    digits = request.query.get("digits", "")
    emergency = _emergency(request)
    result = test_plan(plan, digits, emergency) if digits or "plan" in request.query else None
    return render(request, "dialplan.html", plan=plan, digits=digits, result=result,
                  emergency=emergency)


async def dialplan_json(request: web.Request) -> web.Response:
    return web.json_response(test_plan(request.query.get("plan", ""),
                                       request.query.get("digits", ""), _emergency(request)))


def routes() -> list[web.RouteDef]:
    return [web.get("/dialplan", dialplan_page), web.get("/dialplan/test.json", dialplan_json)]
