"""cffi build script for `tipring._dsp` (API mode), named by setup.py's `cffi_modules`.

The cdef is the marked block of cext/tipring_dsp.h, so the header is the one place the C interface is
written down. Before anything is compiled, the build checks for a C compiler and the Python headers so
that a fresh machine gets one sentence saying what to install instead of a compiler traceback.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import sysconfig
from pathlib import Path

from cffi import FFI

CEXT = Path(__file__).resolve().parent
HEADER = CEXT / "tipring_dsp.h"
SOURCES = [
    "g711.c", "tone.c", "dtmf.c", "callerid.c", "plc.c", "jbuf.c", "echo.c", "path.c",
]
DEBIAN_HINT = "on Debian: apt-get install build-essential python3-dev libffi-dev"


def _cdef_block(header: str) -> str:
    begin, end = "/* cffi:begin */", "/* cffi:end */"
    if begin not in header or end not in header:
        raise SystemExit(f"{HEADER}: the cffi:begin/cffi:end markers are missing")
    return header.split(begin, 1)[1].split(end, 1)[0]


def _check_toolchain() -> None:
    """Fail early and plainly when the compiler or Python.h is missing."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    compiler = shlex.split(cc)[0]
    if shutil.which(compiler) is None:
        raise SystemExit(
            f"TipRing needs a C compiler to build tipring._dsp, and {compiler!r} was not found "
            f"({DEBIAN_HINT})."
        )
    # A cross build (Buildroot) points sysconfig at the target's data; its headers are in staging.
    if "_PYTHON_SYSCONFIGDATA_NAME" not in os.environ:
        include = Path(sysconfig.get_paths()["include"])
        if not (include / "Python.h").is_file():
            raise SystemExit(
                f"TipRing needs the Python {sys.version_info.major}.{sys.version_info.minor} headers "
                f"to build tipring._dsp, and {include / 'Python.h'} is missing ({DEBIAN_HINT})."
            )


_check_toolchain()

ffibuilder = FFI()
ffibuilder.cdef(_cdef_block(HEADER.read_text()))
ffibuilder.set_source(
    "tipring._dsp",
    '#include "tipring_dsp.h"',
    # Paths relative to the project root, where setuptools runs this script.
    sources=[f"cext/{name}" for name in SOURCES],
    include_dirs=["cext"],
    libraries=["m"],
    # -O3: the echo canceller's filter loops need the loop vectoriser's full cost model.
    extra_compile_args=["-std=c99", "-O3", "-Wall", "-Wextra"],
)

if __name__ == "__main__":
    os.chdir(CEXT.parent)
    ffibuilder.compile(tmpdir="build/cffi", verbose=True)
