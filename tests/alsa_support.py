"""A test asoundrc: ALSA `file` PCMs over the `null` plugin, so the real pyalsaaudio code runs.

`tipring_play:OUT=path` records what is played to `path`; `tipring_capture:IN=path` captures the
bytes of `path`; `tipring_play48:OUT=path` is the same recorder behind ALSA's plug layer with a
48 kHz slave, like a USB sound card that only runs at its native rate.

These plugins do not pace in real time: capture returns as soon as it is asked and playback
never fills. So the bytes, formats and period sizes are tested here against real ALSA, and the
"device is the clock" behaviour (read blocks in poll until a period is ready, stop wakes it) is
tested with a fake PCM whose poll descriptor never becomes ready.
"""

from __future__ import annotations

from pathlib import Path

ASOUNDRC = """
pcm.tipring_play {
  @args [ OUT ]
  @args.OUT { type string }
  type file
  slave.pcm { type null }
  file $OUT
  format "raw"
}
pcm.tipring_capture {
  @args [ IN ]
  @args.IN { type string }
  type file
  slave.pcm { type null }
  file "/dev/null"
  infile $IN
  format "raw"
}
pcm.tipring_play48 {
  @args [ OUT ]
  @args.OUT { type string }
  type plug
  slave {
    pcm {
      type file
      slave.pcm { type null }
      file $OUT
      format "raw"
    }
    rate 48000
    format S16_LE
    channels 1
  }
}
"""


def write_asoundrc(directory: Path) -> Path:
    path = directory / "asoundrc"
    path.write_text(ASOUNDRC, encoding="utf-8")
    return path
