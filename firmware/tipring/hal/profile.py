"""Board profiles: `hw/boards/NAME.toml` says which driver runs a board and how it is wired.

A profile is data; `open_board` imports the named driver only when it is used, so a machine
without gpiozero/spidev/alsaaudio can still run the sim board. Any problem (unknown name, bad
file, missing hardware) is a `HardwareError` whose message says what to fix.
"""

from __future__ import annotations

import importlib
import os
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tipring.hal.api import Board, HardwareError

MAX_LINES = 2

# driver name -> (module, factory function name); the factory takes the profile.
DRIVERS: dict[str, tuple[str, str]] = {
    "sim": ("tipring.hal.sim", "open_sim_board"),
    "ag1171": ("tipring.hal.ag1171", "open_ag1171_board"),
    "si3215": ("tipring.hal.si3215", "open_si3215_board"),
}


@dataclass(frozen=True)
class BoardProfile:
    name: str
    driver: str
    lines: int
    description: str = ""
    path: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # driver-specific tables, unparsed


def profile_dirs() -> list[Path]:
    """Where profiles are looked up, first match wins.

    $TIPRING_BOARDS (a path list), /etc/tipring/boards (local overrides), the source checkout's
    hw/boards (so a development tree runs its own edits), then the copies installed with the
    package under <prefix>/share/tipring/hw/boards (/usr/share/... in the image).
    """
    dirs = [Path(p) for p in os.environ.get("TIPRING_BOARDS", "").split(os.pathsep) if p]
    dirs.append(Path("/etc/tipring/boards"))
    dirs.append(Path(__file__).resolve().parents[3] / "hw" / "boards")
    for prefix in dict.fromkeys((sys.prefix, "/usr")):
        dirs.append(Path(prefix) / "share" / "tipring" / "hw" / "boards")
    return dirs


def find_profile(spec: str, dirs: list[Path] | None = None) -> Path:
    """Resolve `spec`: a path to a .toml file, or a profile name looked up in `profile_dirs()`."""
    candidate = Path(spec)
    if candidate.suffix == ".toml" or os.sep in spec:
        if candidate.is_file():
            return candidate
        raise HardwareError(f"board profile file {spec} does not exist")
    if not spec.replace("-", "").replace("_", "").isalnum():
        raise HardwareError(f"board profile name {spec!r} is not a plain name")
    searched = dirs if dirs is not None else profile_dirs()
    for d in searched:
        path = d / f"{spec}.toml"
        if path.is_file():
            return path
    known = sorted({p.stem for d in searched if d.is_dir() for p in d.glob("*.toml")})
    raise HardwareError(
        f"no board profile named {spec!r} (known: {', '.join(known) or 'none'}; "
        f"searched {', '.join(str(d) for d in searched)})"
    )


def load_profile(path: Path) -> BoardProfile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise HardwareError(f"board profile {path}: {exc}") from exc
    data = dict(data)
    name = data.pop("name", path.stem)
    driver = data.pop("driver", None)
    lines = data.pop("lines", 1)
    description = data.pop("description", "")
    if not isinstance(name, str) or not name:
        raise HardwareError(f"board profile {path}: name must be a non-empty string")
    if driver not in DRIVERS:
        raise HardwareError(
            f"board profile {path}: driver must be one of {', '.join(sorted(DRIVERS))}, got {driver!r}"
        )
    if isinstance(lines, bool) or not isinstance(lines, int) or not 1 <= lines <= MAX_LINES:
        raise HardwareError(f"board profile {path}: lines must be 1..{MAX_LINES}, got {lines!r}")
    if not isinstance(description, str):
        raise HardwareError(f"board profile {path}: description must be a string")
    return BoardProfile(name, driver, lines, description, path, data)


def open_board(profile: BoardProfile) -> Board:
    """Start the profile's driver and return the running board."""
    module_name, factory_name = DRIVERS[profile.driver]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HardwareError(
            f"board {profile.name!r} needs the {profile.driver} driver, which cannot load: {exc}"
        ) from exc
    factory: Callable[[BoardProfile], Board] = getattr(module, factory_name)
    return factory(profile)
