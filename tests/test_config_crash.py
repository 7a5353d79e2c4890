"""A process killed with SIGKILL in the middle of saves never leaves an unreadable config."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tipring.config import (
    AccountConfig,
    Config,
    ConfigStore,
    DeviceConfig,
    LineConfig,
    Secret,
    check_file,
    parse_config,
    render_config,
)

KILLS = 40

# Saves the two configs alternately, as fast as it can, until killed.
SAVER = """
import sys
from pathlib import Path
from tipring.config import ConfigStore, parse_config
store = ConfigStore(sys.argv[1])
configs = [parse_config(Path(name).read_text()) for name in sys.argv[2:]]
store.save(configs[0])
print("ready", flush=True)
count = 1
while True:
    store.save(configs[count % 2])
    count += 1
"""


def two_configs() -> tuple[Config, Config]:
    small = Config(device=DeviceConfig(name="small"))
    # Different sizes, so a torn write could not pass for either of them.
    big = Config(
        device=DeviceConfig(name="big", region="FR", timezone="Europe/Paris"),
        lines=(LineConfig(account="a0"), LineConfig(account="a1", ring_frequency_hz=25)),
        accounts=tuple(
            AccountConfig(id=f"a{i}", user=f"{i:04d}", domain=f"sip{i}.example.fr",
                          display_name="Ligne " * 10, password=Secret(f"secret-{i}" * 8))
            for i in range(6)
        ),
    )
    return small, big


@pytest.mark.slow
def test_sigkill_during_saves_never_leaves_an_unreadable_config(tmp_path: Path) -> None:
    small, big = two_configs()
    sources = []
    for index, config in enumerate((small, big)):
        source = tmp_path / f"source{index}.toml"
        source.write_text(render_config(config))
        sources.append(str(source))
    store = ConfigStore(tmp_path / "data" / "config.toml")
    expected_names = {"config.toml", "config.toml.last-good", ".config.toml.lock"}
    rng = random.Random(20240229)
    leftovers_seen = 0
    started = time.monotonic()
    for kill in range(KILLS):
        saver = subprocess.Popen([sys.executable, "-c", SAVER, str(store.path), *sources],
                                 stdout=subprocess.PIPE)
        try:
            assert saver.stdout is not None and saver.stdout.readline() == b"ready\n"
            time.sleep(rng.uniform(0.0, 0.015))
        finally:
            saver.send_signal(signal.SIGKILL)
            saver.wait()
            assert saver.stdout is not None
            saver.stdout.close()
        assert saver.returncode == -signal.SIGKILL

        # Both files are complete copies of one of the two configs, as they are on disk now.
        assert check_file(store.path) == [], kill
        for path in (store.path, store.last_good_path):
            assert parse_config(path.read_text()) in (small, big), (kill, path)
        # Anything else in the directory is a temp file of an interrupted write.
        others = {p.name for p in store.path.parent.iterdir()} - expected_names
        assert all(name.startswith(".config.toml.") and name.endswith(".tmp")
                   for name in others), others
        leftovers_seen += bool(others)

        result = store.load()
        assert (result.source, result.problems) == ("file", []), kill
        assert result.config in (small, big)
    # The next save (of anything) clears the temp files a kill left behind.
    store.save(small)
    assert {p.name for p in store.path.parent.iterdir()} == expected_names
    elapsed = time.monotonic() - started
    print(f"{KILLS} kills in {elapsed:.1f} s, {leftovers_seen} left temp files behind")
