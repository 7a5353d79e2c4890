"""CPU per call-second: the firmware against baresip carrying the same call, same machine, same run.

The sim-board device (bench/sim_call.py) calls baresip through Kamailio on loopback; speech
(Debian's asterisk-core-sounds-en-wav) flows both ways: the handset speaks, baresip plays a file.
Over `--seconds` of the connected call we read, from /proc:
- this process (the whole firmware: SIP and line on the loop thread, the audio thread, the sim
  board's clock) and its audio thread alone;
- baresip's process (its SIP stack, RTP, jitter buffer, codec, and the file source and sndfile
  recorder it runs for the tests' benefit).
The sim board itself does work real hardware does not (the virtual handset mixes its speech in
Python for every period). Its cost is measured during the call: the audio thread's CPU time
(time.thread_time) spent inside the sim port's read and write, the handset's mixing included;
the firmware's figure without it is the one compared. A separate loop with no firmware behind
it (same speech, afterwards) is printed as a cross-check, but not used: run apart, at another
moment of a shared machine, its figure wandered by half between runs.
Target (issue 5): the firmware no more than baresip.

Run: .venv/bin/python bench/call_cpu.py [--seconds 60] [--calls 3]     (needs kamailio, baresip)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
from sim_call import call_rig, dial, hang_up, media_thread, process_cpu, thread_cpu

from tipring.hal.sim import create_sim_board

SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")


def speech(seconds: float) -> np.ndarray:
    """The package's prompts back to back, `seconds` long."""
    chunks, total = [], 0
    while total < seconds * 8000:
        for path in sorted(SOUNDS.glob("*.wav")):
            with wave.open(str(path)) as w:
                if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (8000, 1, 2):
                    continue
                chunks.append(np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"))
            total += len(chunks[-1])
            if total >= seconds * 8000:
                break
    return np.concatenate(chunks)[: int(seconds * 8000)]


def write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


class PortCpu:
    """CPU time the calling thread spends inside an audio port's read and write (the sim board's
    own work, in the audio thread, during the call)."""

    def __init__(self, port: Any) -> None:
        self.seconds = 0.0
        read, write = port.read, port.write

        def timed_read() -> bytes:
            start = time.thread_time()
            try:
                return read()
            finally:
                self.seconds += time.thread_time() - start

        def timed_write(period: bytes) -> None:
            start = time.thread_time()
            try:
                write(period)
            finally:
                self.seconds += time.thread_time() - start

        port.read, port.write = timed_read, timed_write  # the instance's, for this call only


async def measure_call(workdir: Path, seconds: float) -> dict[str, float]:
    talk = speech(seconds + 20)
    async with call_rig(workdir, call_seconds=seconds + 20,
                        far_audio=write_wav(workdir / "far.wav", talk)) as rig:
        port_cpu = PortCpu(rig.device.board.lines[0].audio)
        await dial(rig)
        rig.phone.speak(talk.tobytes())
        await asyncio.sleep(2.0)  # past call set-up: the steady state of a call
        audio = media_thread()
        assert audio.native_id is not None and rig.far.process is not None
        far_pid = rig.far.process.pid
        assert far_pid is not None
        start = (time.monotonic(), process_cpu(), thread_cpu(audio.native_id),
                 process_cpu(far_pid), port_cpu.seconds)
        await asyncio.sleep(seconds)
        end = (time.monotonic(), process_cpu(), thread_cpu(audio.native_id),
               process_cpu(far_pid), port_cpu.seconds)
        call = rig.device.status()["lines"][0]["call"]
        if rig.device.status()["lines"][0]["state"] != "connected":
            raise RuntimeError("the call did not last the measurement")
        await hang_up(rig)
        dumps = rig.far.recordings()["dec"]
        recorded = 0.0
        if dumps:  # baresip really decoded the call (its recording of what it received)
            with wave.open(str(dumps[-1])) as w:
                recorded = w.getnframes() / w.getframerate()
    wall = end[0] - start[0]
    return {"wall": wall, "firmware": (end[1] - start[1]) / wall,
            "audio thread": (end[2] - start[2]) / wall, "baresip": (end[3] - start[3]) / wall,
            "sim board": (end[4] - start[4]) / wall,
            "received": float(call["rtp"]["received_packets"] if call and call["rtp"] else 0),
            "recorded": recorded}


def sim_board_alone(seconds: float) -> float:
    """CPU per second of the sim line's audio port and handset with no firmware: one thread
    reads and writes periods in time while the handset speaks."""
    board = create_sim_board(1)
    try:
        handset, port = board.handsets[0], board.lines[0].audio
        handset.lift()
        handset.speak(speech(seconds + 2).tobytes())
        silence = bytes(320)
        cpu: list[float] = []

        def loop() -> None:
            port.start()
            native = threading.get_native_id()
            first = thread_cpu(native)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                port.read()
                port.write(silence)
            cpu.append(thread_cpu(native) - first)
            port.stop()

        worker = threading.Thread(target=loop, name="sim-alone")
        worker.start()
        worker.join()
        return cpu[0] / seconds
    finally:
        board.close()


def report(figures: dict[str, float], alone: float) -> float:
    """Print one call's figures; returns its ratio without the sim board."""
    firmware, baresip, sim = figures["firmware"], figures["baresip"], figures["sim board"]
    print(f"call of {figures['wall']:.1f} s measured ({figures['received']:.0f} packets "
          f"received by the device, {figures['recorded']:.1f} s decoded and recorded by baresip)")
    print("CPU seconds per call-second (user + system, from /proc):")
    print(f"  firmware process (sim board included) {firmware:.4f}")
    print(f"    of which its audio thread           {figures['audio thread']:.4f}")
    print(f"  sim board in the call (handset + port) {sim:.4f}   (run alone afterwards: {alone:.4f})")
    print(f"  firmware without the sim board        {max(firmware - sim, 0.0):.4f}")
    print(f"  baresip (same call)                   {baresip:.4f}")
    ratio = max(firmware - sim, 0.0) / baresip
    print(f"ratio firmware / baresip: {firmware / baresip:.2f} "
          f"(without the sim board: {ratio:.2f}); target <= 1")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured call time")
    parser.add_argument("--calls", type=int, default=1,
                        help="calls in a row (each one's figures, then the ratios' spread: on a "
                             "shared machine one call's ratio moves by about a tenth)")
    args = parser.parse_args()
    ratios = []
    for n in range(args.calls):
        if args.calls > 1:
            print(f"--- call {n + 1} of {args.calls}")
        with tempfile.TemporaryDirectory(prefix="call-cpu-") as tmp:
            figures = asyncio.run(measure_call(Path(tmp), args.seconds))
        ratios.append(report(figures, sim_board_alone(min(args.seconds, 20.0))))
    if len(ratios) > 1:
        print(f"ratio without the sim board over {len(ratios)} calls: median "
              f"{statistics.median(ratios):.2f}, lowest {min(ratios):.2f}, highest "
              f"{max(ratios):.2f}; target <= 1")


if __name__ == "__main__":
    main()
