"""One FXS port, live: the pure `FxsLine` driven by the real SLIC, audio thread and clock.

The runner owns nothing the line decides; it only moves things across: hook edges from the
SLIC's thread and detected digits from the audio thread hop onto the asyncio loop, go into the
state machine with their own timestamps, and the commands that come back are carried out on the
SLIC (linefeed, ringing) and the line's audio thread (tones, caller ID, muting). The line's next
deadline becomes one `loop.call_at`. Events for the phone layer go to `on_event`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from tipring.config.schema import LineConfig
from tipring.hal.api import HookEvent, LinePort, RingCadence
from tipring.line.digitmap import DigitMap
from tipring.line.fxs import FxsLine, LineSettings
from tipring.line.regions import RegionProfile
from tipring.line.signals import (
    LineCommand,
    LineEvent,
    LineOutput,
    MuteFarEnd,
    PlayTone,
    SendCallerId,
    SetLinefeed,
    StartRing,
    StopRing,
    StopTone,
)
from tipring.media.dsp import FskStandard, ToneEvent, ToneEventKind, ToneSegment, dtmf_segments
from tipring.runtime.media import MediaEvent, MediaThread

log = logging.getLogger("tipring.line")


TONE_OVERRIDES = {"dial_tone": "dial", "ringback_tone": "ringback", "busy_tone": "busy",
                  "congestion_tone": "congestion", "call_waiting_tone": "call_waiting"}


def line_profile(profile: RegionProfile, config: LineConfig) -> RegionProfile:
    """The region's profile with the line's own tones and ring cadence, where it has them."""
    for field, tone in TONE_OVERRIDES.items():
        if getattr(config, field):
            profile = profile.with_tone_override(tone, getattr(config, field))
    if config.ring_cadence:
        pairs = [pair.split("/") for pair in config.ring_cadence.replace(" ", "").split(",")]
        profile = dataclasses.replace(profile, ring=RingCadence(
            tuple((int(on) / 1000, int(off) / 1000) for on, off in pairs),
            frequency_hz=profile.ring.frequency_hz))
    return profile


def line_settings(config: LineConfig) -> LineSettings:
    """The configuration's view of a line, in the state machine's terms."""
    return LineSettings(
        flash_min_s=config.flash_min_ms / 1000,
        flash_max_s=config.flash_max_ms / 1000,
        caller_id=None if config.caller_id == "region" else config.caller_id,
        vmwi_lamp=config.message_lamp != "off",
        vmwi_format="sdmf" if config.message_lamp == "sdmf" else "mdmf",
        vmwi_alert=None if config.message_lamp_alert == "standard" else config.message_lamp_alert,
    )


class LineRunner:
    def __init__(self, port: LinePort, profile: RegionProfile, config: LineConfig,
                 on_event: Callable[[LineEvent | MediaEvent], None], *,
                 dial_plan: str | None = None, features: tuple[str, ...] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.port = port
        self.on_event = on_event
        self.clock = clock
        self.audio = MediaThread(port.audio, self._from_audio_thread)
        self._settle(profile, config, dial_plan, features)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def _settle(self, profile: RegionProfile, config: LineConfig, dial_plan: str | None,
                features: tuple[str, ...]) -> None:
        """Take the line's settings: a new line state machine (`self.line`), the ring
        frequency and the audio gains."""
        # The line's own plan plus the star codes; emergency numbers always go through.
        digit_map = DigitMap.compile(dial_plan if dial_plan is not None else config.dial_plan,
                                     emergency=profile.emergency_numbers, features=features)
        self.ring_hz = float(config.ring_frequency_hz)  # 0: each cadence's own (the region's)
        self.audio.set_gains(config.tx_gain_db, config.rx_gain_db)
        self.line = FxsLine(line_profile(profile, config), digit_map, line_settings(config))

    def configure(self, profile: RegionProfile, config: LineConfig,
                  features: tuple[str, ...]) -> None:
        """New line settings (dial plan, star codes, flash times, region): a fresh state
        machine, started from the hook state the SLIC reports now."""
        self._settle(profile, config, None, features)
        if self._loop is not None:
            self.apply(self.line.reset(self.clock(), off_hook=self.port.slic.off_hook))

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        loop = self._loop
        self.port.slic.on_hook_event = lambda ev: loop.call_soon_threadsafe(self._hook, ev)
        self.audio.start()
        self.apply(self.line.reset(self.clock(), off_hook=self.port.slic.off_hook))

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.port.slic.on_hook_event = None
        self.audio.stop()
        self.audio.join(timeout=1.0)

    # --- inputs ---------------------------------------------------------------------------------

    def _hook(self, event: HookEvent) -> None:
        self.apply(self.line.hook(event.off_hook, event.at))

    def _from_audio_thread(self, event: MediaEvent) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._audio_event, event)

    def _audio_event(self, event: MediaEvent) -> None:
        if isinstance(event, ToneEvent):
            if event.kind is ToneEventKind.DIGIT_START:
                # The detector confirms a digit a little after it began; the line wants when.
                self.apply(self.line.dtmf(event.digit, self.clock() + event.offset / 8000))
            return
        self.on_event(event)  # remote digits, statistics, BYE: the phone layer's business

    def _tick(self) -> None:
        self._timer = None
        self.apply(self.line.timer(self.clock()))

    # --- outputs --------------------------------------------------------------------------------

    def apply(self, outputs: list[LineOutput]) -> None:
        for output in outputs:
            if isinstance(output, LineCommand):
                self._execute(output)
            else:
                self.on_event(output)
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.line.next_deadline()
        if deadline is not None and self._loop is not None:
            # asyncio's clock is time.monotonic, the line's too.
            self._timer = self._loop.call_at(deadline, self._tick)

    def _execute(self, command: LineCommand) -> None:
        slic, audio = self.port.slic, self.audio
        if isinstance(command, SetLinefeed):
            slic.set_linefeed(command.state)
        elif isinstance(command, StartRing):
            cadence = command.cadence
            if self.ring_hz and cadence.frequency_hz != self.ring_hz:
                cadence = dataclasses.replace(cadence, frequency_hz=self.ring_hz)
            slic.ring(cadence)
        elif isinstance(command, StopRing):
            slic.stop_ring()
        elif isinstance(command, PlayTone):
            segments = [ToneSegment(s.components, s.on_s, s.off_s) for s in command.plan.segments]
            audio.play_tone(segments, command.plan.repeat_from)
        elif isinstance(command, StopTone):
            audio.stop_tone()
        elif isinstance(command, MuteFarEnd):
            audio.mute_far_end(command.muted)
        elif isinstance(command, SendCallerId):
            if command.kind == "dtmf":
                audio.play_tone(dtmf_segments(str(command.payload), command.dtmf_on_s,
                                              command.dtmf_off_s), repeat_from=None)
            else:
                payload = command.payload
                message = payload if isinstance(payload, bytes) else payload.encode()
                standard = FskStandard.BELL202 if command.kind == "fsk-bell202" else FskStandard.V23
                audio.send_caller_id(message, standard, seizure_bits=command.seizure_bits,
                                     mark_bits=command.mark_bits)
        else:  # pragma: no cover - a command this runner does not know is a programming error
            log.error("unknown line command", extra={"command": type(command).__name__})
