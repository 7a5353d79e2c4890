"""Password hashing gives its 16 MiB scrypt buffer back: without the fixed mmap threshold
glibc keeps it resident after the second hash in an executor thread (see web/memory.py)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import concurrent.futures, sys
from tipring.config.passwords import hash_password
from tipring.web.memory import return_large_blocks

def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

fixed = return_large_blocks() if sys.argv[1] == "fixed" else None
pool = concurrent.futures.ThreadPoolExecutor(2)
pool.submit(hash_password, "warm up the thread and the module").result()
before = rss_kib()
for n in range(4):
    pool.submit(hash_password, f"correct horse battery staple {n}").result()
print(fixed, rss_kib() - before)
"""


def _growth(mode: str) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                          check=True, timeout=120)
    fixed, grown = done.stdout.split()
    return fixed, int(grown)


def test_password_hashing_leaves_no_16_mib_behind() -> None:
    fixed, grown = _growth("fixed")
    assert fixed == "True"  # glibc here, as on the image
    assert grown < 4 * 1024, f"{grown} KiB more resident after four hashes"


def test_without_the_fix_the_buffer_stays() -> None:
    """The control: shows the probe measures what the fix is for."""
    _, grown = _growth("default")
    assert grown > 12 * 1024, f"only {grown} KiB: the probe no longer shows the problem"
