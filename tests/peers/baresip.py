"""baresip as the far-end phone, driven over its ctrl_tcp interface (netstring JSON).

No sound card: audio comes from a WAV through ``aufile`` and goes to ALSA's ``null`` device;
the ``sndfile`` filter records what is sent (``*-enc.wav``) and received (``*-dec.wav``).
baresip 1.0's aufile ends the call at the end of the file, so the source WAV is padded with
silence up to ``max_call_seconds``.
"""

from __future__ import annotations

import contextlib
import json
import re
import math
import socket
import struct
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .ports import free_port
from .process import PeerError, PeerProcess

BARESIP = "/usr/bin/baresip"
MODULES = "/usr/lib/baresip/modules"
RATE = 8000
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def write_tone_wav(path: Path, seconds: float, hz: float = 440.0, amplitude: int = 8000) -> Path:
    """A 16-bit mono 8 kHz sine (``hz=0``: silence)."""
    frames = int(seconds * RATE)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        if hz:
            step = 2 * math.pi * hz / RATE
            out.writeframes(b"".join(struct.pack("<h", int(amplitude * math.sin(step * i))) for i in range(frames)))
        else:
            out.writeframes(b"\0\0" * frames)
    return path


def _padded_copy(source: Path, target: Path, seconds: float) -> Path:
    """``source`` (16-bit mono) followed by silence up to ``seconds``."""
    with wave.open(str(source), "rb") as src:
        if src.getsampwidth() != 2 or src.getnchannels() != 1:
            raise ValueError(f"{source}: baresip's aufile source needs 16-bit mono PCM")
        rate = src.getframerate()
        frames = src.readframes(src.getnframes())
    total = max(int(seconds * rate), len(frames) // 2)
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames + b"\0\0" * (total - len(frames) // 2))
    return target


class Baresip:
    """One baresip user agent with one account.

    ``aor``: the account, e.g. ``sip:1002@127.0.0.1:5060`` (its host:port is the registrar and
    outbound proxy when ``register`` is true). ``answer_mode``: ``auto`` answers at once,
    ``manual`` waits for :meth:`accept`. ``audio``: a 16-bit mono WAV to send (default: a 440 Hz
    tone). ``max_lifetime``: baresip quits by itself after this many seconds whatever happens.
    """

    def __init__(
        self,
        workdir: Path,
        aor: str,
        *,
        sip_port: int | None = None,
        password: str | None = None,
        auth_user: str | None = None,
        register: bool = True,
        regint: int = 600,
        outbound: str | None = None,
        answer_mode: str = "auto",
        audio: Path | None = None,
        tone_hz: float = 440.0,
        max_call_seconds: float = 60.0,
        max_lifetime: int = 120,
        codecs: tuple[str, ...] = ("PCMU", "PCMA"),
        extra_account_params: str = "",
        host: str = "127.0.0.1",
        name: str = "baresip",
    ) -> None:
        if answer_mode not in ("auto", "manual", "early"):
            raise ValueError("answer_mode must be auto, manual or early")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.aor = aor
        self.name = name
        self.host = host
        self.sip_port = sip_port or free_port(host, span=2)  # TLS listener takes port + 1
        self.ctrl_port = free_port(host)
        self.rtp_port = free_port(host, span=10)
        self.password = password
        self.auth_user = auth_user
        self.register = register
        self.regint = regint
        self.outbound = outbound
        self.answer_mode = answer_mode
        self.codecs = codecs
        self.extra_account_params = extra_account_params
        self.max_lifetime = max_lifetime
        self.record_dir = self.workdir / "recordings"
        self.log_path = self.workdir / "baresip.log"
        self.source_wav = self.workdir / "source.wav"
        if audio is None:
            write_tone_wav(self.source_wav, max_call_seconds, tone_hz)
        else:
            _padded_copy(Path(audio), self.source_wav, max_call_seconds)
        self.process: PeerProcess | None = None
        self.startup_seconds: float | None = None
        self.events: list[dict[str, Any]] = []
        self._responses: dict[str, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._token = 0
        self._send_lock = threading.Lock()

    # --- addresses -------------------------------------------------------------------------

    @property
    def contact_hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.sip_port}"

    @property
    def user(self) -> str:
        return self.aor.split(":", 1)[1].split("@", 1)[0]

    @property
    def direct_uri(self) -> str:
        """Where to send a request to reach this phone without a proxy."""
        return f"sip:{self.user}@{self.contact_hostport}"

    # --- configuration ---------------------------------------------------------------------

    def write_config(self) -> None:
        self.record_dir.mkdir(exist_ok=True)
        config = f"""# Written by tests/peers/baresip.py
poll_method epoll
sip_listen {self.contact_hostport}
net_interface {self.host}
sip_trans_bsize 128
call_local_timeout 120
call_max_calls 4
audio_player alsa,null
audio_source aufile,{self.source_wav}
audio_alert alsa,null
audio_level no
rtp_ports {self.rtp_port}-{self.rtp_port + 9}
rtp_timeout 0
jitter_buffer_delay 1-10
statmode_default off
snd_path {self.record_dir}
ctrl_tcp_listen {self.host}:{self.ctrl_port}
module_path {MODULES}
module g711.so
module aufile.so
module alsa.so
module sndfile.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
"""
        (self.workdir / "config").write_text(config)
        params = [f"answermode={self.answer_mode}", f"audio_codecs={','.join(self.codecs)}"]
        if self.auth_user:
            params.append(f"auth_user={self.auth_user}")
        if self.password is not None:
            params.append(f"auth_pass={self.password}")
        params.append(f"regint={self.regint if self.register else 0}")
        if self.outbound:
            params.append(f'outbound="{self.outbound}"')
        if self.extra_account_params:
            params.append(self.extra_account_params.lstrip(";"))
        (self.workdir / "accounts").write_text(f"<{self.aor}>;{';'.join(params)}\n")
        (self.workdir / "contacts").write_text("")

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Baresip:
        self.write_config()
        started = time.monotonic()
        argv = [BARESIP, "-s", "-f", str(self.workdir), "-t", str(self.max_lifetime)]
        self.process = PeerProcess(self.name, argv, self.log_path, cwd=self.workdir)
        self.process.start()
        try:
            self.process.wait_for_log(r"baresip is ready", timeout)
            self._connect(started + timeout)
            if self.register:
                self.wait_registered(max(0.5, started + timeout - time.monotonic()))
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        if self.process is not None:
            self.process.stop()
        if self._reader is not None:
            self._reader.join(2)

    def __enter__(self) -> Baresip:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        return self.process.log_text() if self.process else ""

    def _connect(self, deadline: float) -> None:
        while True:
            try:
                self._sock = socket.create_connection((self.host, self.ctrl_port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise PeerError(f"{self.name}: ctrl_tcp not listening\n{self.process.log_tail() if self.process else ''}") from None
                time.sleep(0.05)
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, name=f"{self.name}-ctrl", daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        assert self._sock is not None
        buf = b""
        while True:
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._cond.notify_all()
                return
            buf += chunk
            while True:
                colon = buf.find(b":")
                if colon < 0:
                    break
                length = int(buf[:colon])
                if len(buf) < colon + 1 + length + 1:
                    break
                payload = buf[colon + 1 : colon + 1 + length]
                buf = buf[colon + 2 + length :]
                message = json.loads(payload)
                with self._cond:
                    if message.get("response"):
                        self._responses[str(message.get("token"))] = message
                    elif message.get("event"):
                        message["received_at"] = time.monotonic()
                        self.events.append(message)
                    self._cond.notify_all()

    # --- commands --------------------------------------------------------------------------

    def command(self, name: str, params: str = "", timeout: float = 5.0) -> str:
        """Run one menu command (``dial``, ``accept``, ``hangup``, ...); its output text."""
        if self._sock is None:
            raise PeerError(f"{self.name} not started")
        with self._send_lock:
            self._token += 1
            token = str(self._token)
            data = json.dumps({"command": name, "params": params, "token": token}).encode()
            self._sock.sendall(str(len(data)).encode() + b":" + data + b",")
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self._responses:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not (self.process and self.process.running()):
                    raise PeerError(f"{self.name}: no response to {name!r}\n{self.process.log_tail() if self.process else ''}")
                self._cond.wait(remaining)
            response = self._responses.pop(token)
        if not response.get("ok"):
            raise PeerError(f"{self.name}: {name} {params!r} refused: {response.get('data')}")
        return str(response.get("data", ""))

    def dial(self, uri: str) -> None:
        self.command("dial", uri)

    def accept(self) -> None:
        self.command("accept")

    def hangup(self) -> None:
        self.command("hangup")

    def hold(self) -> None:
        self.command("hold")

    def resume(self) -> None:
        self.command("resume")

    def send_dtmf(self, digits: str, gap: float = 0.25) -> None:
        """RFC 4733 telephone-events, one digit at a time."""
        for digit in digits:
            self.command("sndcode", digit)
            time.sleep(gap)

    def reginfo(self) -> str:
        return self.command("reginfo")

    # --- events ----------------------------------------------------------------------------

    def wait_event(
        self,
        kind: str,
        timeout: float = 10.0,
        since: int = 0,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """The first event of type ``kind`` (e.g. ``CALL_ESTABLISHED``) at index >= ``since``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events[since:]:
                    if event.get("type") == kind and (where is None or where(event)):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [e.get("type") for e in self.events]
                    raise PeerError(f"{self.name}: no {kind} within {timeout} s (events: {seen})\n{self.process.log_tail() if self.process else ''}")
                self._cond.wait(min(remaining, 0.2))

    def event_types(self) -> list[str]:
        with self._cond:
            return [str(e.get("type")) for e in self.events]

    def wait_registered(self, timeout: float = 10.0) -> None:
        """Registered = REGISTER_OK seen, or reginfo reports OK (the event may precede our connection)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                types = [e.get("type") for e in self.events]
            if "REGISTER_OK" in types:
                return
            if "REGISTER_FAIL" in types:
                fail = next(e for e in self.events if e.get("type") == "REGISTER_FAIL")
                raise PeerError(f"{self.name}: registration failed: {fail.get('param')}")
            if re.search(r"\bOK\b", _ANSI.sub("", self.reginfo())):
                return
            if time.monotonic() > deadline:
                raise PeerError(f"{self.name}: not registered after {timeout} s\n{self.reginfo()}")
            time.sleep(0.1)

    def recordings(self) -> dict[str, list[Path]]:
        """The sndfile dumps: ``enc`` (sent) and ``dec`` (received) WAVs, oldest first."""
        files = sorted(self.record_dir.glob("dump-*.wav"))
        return {
            "enc": [f for f in files if f.name.endswith("-enc.wav")],
            "dec": [f for f in files if f.name.endswith("-dec.wav")],
        }
