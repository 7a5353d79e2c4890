"""The virtual phone (sim board only): the buttons of an analog phone, driving `VirtualHandset`.

What a person does to a phone maps one-to-one onto the handset's methods; the firmware sees
exactly what the tests see. Each button is a plain form (works without JavaScript); the script
submits them in the background and the state arrives over /events. "What the phone hears" is
a level over the last second and a WAV download of the last 30 s; caller-ID decoding needs the
line layer's FSK demodulator, which does not exist yet, so the page says so.
"""

from __future__ import annotations

import io
import math
import wave
from array import array
from typing import Any

from aiohttp import web

from tipring.hal.api import SAMPLE_RATE

from .appstate import device
from .render import notify, render, see_other

WAV_SECONDS = 30.0
ACTIONS = ("lift", "hangup", "flash", "dtmf", "rotary")


def _handsets(request: web.Request) -> list[Any]:
    return list(getattr(device(request).board, "handsets", []))


def _level(audio: bytes) -> str:
    samples = array("h")
    samples.frombytes(audio[: len(audio) // 2 * 2])
    if not samples:
        return "nothing (no audio reached the phone in the last second)"
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    if rms < 1:
        return "silence"
    return f"{20 * math.log10(rms / 32768):.0f} dBFS"


def handset_status(request: web.Request) -> list[dict[str, Any]]:
    out = []
    for handset in _handsets(request):
        recent = handset.heard(since=handset.clock.now() - 1.0)
        out.append({"line": handset.line, "off_hook": handset.off_hook,
                    "ringing": handset.ringing, "ring_bursts": len(handset.ring_bursts),
                    "heard": _level(recent)})
    return out


def _handset(request: web.Request) -> Any:
    handsets = _handsets(request)
    try:
        index = int(request.match_info["line"])
    except ValueError:
        raise web.HTTPNotFound() from None
    if not 0 <= index < len(handsets):
        raise web.HTTPNotFound()
    return handsets[index]


def press(handset: Any, action: str, digits: str) -> str:
    """Do `action` on the handset; returns what happened in words. ValueError/RuntimeError
    (e.g. dialling on hook) carry the reason."""
    if action == "lift":
        handset.lift()
        return f"Line {handset.line + 1}: handset lifted."
    if action == "hangup":
        handset.hang_up()
        return f"Line {handset.line + 1}: hung up."
    if action == "flash":
        handset.flash()
        return f"Line {handset.line + 1}: hook flash."
    if action == "dtmf":
        handset.dial_dtmf(digits)
        return f"Line {handset.line + 1}: sent touch-tone digits {digits}."
    if action == "rotary":
        handset.dial_rotary(digits)
        return f"Line {handset.line + 1}: dialling {digits} with the rotary dial."
    raise ValueError(f"unknown action {action!r}")


async def phone_page(request: web.Request) -> web.Response:
    if not _handsets(request):
        raise web.HTTPNotFound(text="The virtual phone exists on the sim board only.")
    from .status import status_view

    phones = handset_status(request)
    return render(request, "phone.html", phones=phones,
                  view=status_view({**device(request).status(), "handsets": phones}))


async def phone_action(request: web.Request) -> web.Response:
    handset = _handset(request)
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise web.HTTPNotFound()
    form = await request.post()
    digits = str(form.get("digits", "")).strip()[:32]
    try:
        message, ok = press(handset, action, digits), True
    except (ValueError, RuntimeError) as exc:
        message, ok = str(exc), False
    if request.headers.get("Accept") == "application/json":  # the page's script
        return web.json_response({"ok": ok, "message": message}, status=200 if ok else 409)
    notify(request, message)
    return see_other("/phone")


async def heard_wav(request: web.Request) -> web.Response:
    handset = _handset(request)
    audio = handset.heard(since=handset.clock.now() - WAV_SECONDS)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(audio)
    return web.Response(body=buffer.getvalue(), content_type="audio/wav", headers={
        "Content-Disposition": f'attachment; filename="line{handset.line + 1}-heard.wav"'})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/phone", phone_page),
        web.post(r"/phone/{line:\d+}/{action}", phone_action),
        web.get(r"/phone/{line:\d+}/heard.wav", heard_wav),
    ]
