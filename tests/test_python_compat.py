"""The firmware uses nothing that Python 3.12-3.14 removed, deprecated or changed under it.

CI runs 3.11 but the image runs 3.14, where such a use fails only on the device. The scan
(python_compat.py) is static, so it guards 3.14 without a 3.14 interpreter; the snippet tests
prove every rule fires on the use it describes and that look-alikes stay quiet.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from python_compat import (
    ALL_RULES,
    METHOD_RULES,
    MODULE_RULES,
    NAME_RULES,
    SHAPE_RULES,
    scan_source,
    scan_tree,
)

FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"


def _name_snippets(name: str) -> list[str]:
    """`a.b.c` used through a plain import, an alias and a `from` import."""
    parent, last = name.rsplit(".", 1)
    root = parent.split(".")[0]
    return [f"import {root}\n{name}()\n",
            f"import {parent} as alias\nalias.{last}\n",
            f"from {parent} import {last}\n"]


_METHOD_SNIPPETS = {
    "getmark": "import wave\nwave.open('ring.wav').getmark(1)\n",
    "setmark": "import wave\nwave.open('ring.wav', 'wb').setmark(1, 0, 'x')\n",
    "getmarkers": "import wave\nwith wave.open('ring.wav') as prompt:\n    prompt.getmarkers()\n",
    "is_reserved": "from pathlib import PurePath\nPurePath('nul').is_reserved()\n",
}

_SHAPE_SNIPPETS = {
    "re.sub/re.subn/re.split positional count, maxsplit or flags": [
        "import re\nre.sub(r'\\s+', ' ', header, 1)\n",
        "import re\nre.subn('a', 'b', text, 0, re.I)\n",
        "from re import split\nsplit(',', value, 1)\n"],
    "return/break/continue leaving a finally block": [
        "def close():\n    try:\n        pass\n    finally:\n        return None\n",
        "for port in ports:\n    try:\n        pass\n    finally:\n        continue\n",
        "while True:\n    try:\n        pass\n    finally:\n        if done:\n            break\n"],
    "functools.partial as a class attribute": [
        "import functools\nclass Line:\n    on_hook = functools.partial(print, 'on')\n",
        "from functools import partial\nclass Line:\n    on_hook: object = partial(print)\n"],
    "__trunc__ without __int__ or __index__": [
        "class Level:\n    def __trunc__(self):\n        return 0\n"],
    "array.array('u')": ["import array\narray.array('u', 'digits')\n"],
    "TarFile.extract/extractall without filter=": [
        "import tarfile\nwith tarfile.open(bundle) as tar:\n    tar.extractall(target)\n",
        "import tarfile\ntarfile.open(bundle).extract('rootfs.img', target)\n"],
    "shutil.rmtree(onerror=)": ["import shutil\nshutil.rmtree(spool, onerror=report)\n"],
    "concurrent.futures.ProcessPoolExecutor without mp_context=": [
        "from concurrent.futures import ProcessPoolExecutor\nProcessPoolExecutor(2)\n",
        "import concurrent.futures\nconcurrent.futures.ProcessPoolExecutor()\n"],
    "threading.RLock with arguments": ["import threading\nthreading.RLock(None)\n"],
    "argparse.BooleanOptionalAction with type/choices/metavar": [
        ("import argparse\nparser.add_argument('--srtp', action=argparse.BooleanOptionalAction,"
        " metavar='ON')\n")],
    "strptime day of month without a year": [
        "import datetime\ndatetime.datetime.strptime(text, '%b %d %H:%M')\n",
        "import time\ntime.strptime(text, '%d/%m')\n"],
}


def _snippets(rule_id: str) -> list[str]:
    if rule_id in MODULE_RULES:
        return [f"import {rule_id}\n", f"from {rule_id} import thing\n",
                f"import {rule_id}.sub as alias\n"]
    if rule_id in NAME_RULES:
        return _name_snippets(rule_id)
    method = next(name for name, rule in METHOD_RULES.items() if rule.id == rule_id)
    return [_METHOD_SNIPPETS[method]]


def _cases() -> list[tuple[str, str]]:
    cases = []
    for rule in ALL_RULES:
        shapes = _SHAPE_SNIPPETS.get(rule.id)
        cases += [(rule.id, snippet) for snippet in shapes or _snippets(rule.id)]
    return cases


def test_firmware_uses_nothing_that_3_12_to_3_14_removed_or_deprecated() -> None:
    findings = scan_tree(FIRMWARE)
    assert len(list(FIRMWARE.rglob("*.py"))) > 50  # the scan saw the package
    assert not findings, "\n".join(str(f) for f in findings)


@pytest.mark.parametrize(("rule_id", "snippet"), _cases())
def test_each_rule_fires_on_the_use_it_describes(rule_id: str, snippet: str) -> None:
    assert rule_id in {f.rule.id for f in scan_source(snippet)}, snippet


def test_every_shape_rule_has_snippets() -> None:
    assert set(_SHAPE_SNIPPETS) == set(SHAPE_RULES)


@pytest.mark.parametrize("snippet", [
    "import asyncio\nasync def main():\n    asyncio.get_running_loop()\nasyncio.run(main())\n",
    "def get_event_loop():\n    return None\nget_event_loop()\n",  # ours, not asyncio's
    "import inspect\ninspect.iscoroutinefunction(print)\n",
    "import re\nre.sub(r'\\s+', ' ', header, count=1)\nre.split(',', value, maxsplit=1)\n",
    "import re\nPATTERN = re.compile(',')\nPATTERN.split(value, 1)\nPATTERN.sub('', text, 1)\n",
    "import datetime\ndatetime.datetime.now(datetime.UTC)\n",
    "import datetime\ndatetime.datetime.strptime(text, '%d %b %Y')\n",
    "import functools\nclass Line:\n    on_hook = staticmethod(functools.partial(print))\n",
    "import functools\nclass Line:\n    def __init__(self):\n        self.cb = functools.partial(print)\n",
    "class Level:\n    def __trunc__(self):\n        return 0\n    def __int__(self):\n        return 0\n",
    "import array\narray.array('h', bytes(320))\n",
    "import tarfile\nwith tarfile.open(bundle) as tar:\n    tar.extractall(target, filter='data')\n",
    "import zipfile\nzipfile.ZipFile(bundle).extractall(target)\n",  # zipfile has no filters
    "import shutil\nshutil.rmtree(spool, onexc=report)\n",
    "import multiprocessing\nctx = multiprocessing.get_context('spawn')\nctx.Process(target=f)\n",
    ("import concurrent.futures\nimport multiprocessing\nconcurrent.futures.ProcessPoolExecutor("
    "mp_context=multiprocessing.get_context('spawn'))\n"),
    "import threading\nthreading.RLock()\n",
    ("import multiprocessing\nmultiprocessing.set_start_method('spawn')\n"
     "multiprocessing.Process(target=f).start()\n"),
    "import argparse\nparser.add_argument('--srtp', action=argparse.BooleanOptionalAction)\n",
    ("for port in ports:\n    try:\n        pass\n    finally:\n        for line in port:\n"
    "            break\n"),
    "try:\n    pass\nfinally:\n    def later():\n        return 1\n",
    "import hashlib\nhashlib.scrypt(b'pw', salt=b's', n=2, r=1, p=1)\n",
    "import wave\nwave.open('ring.wav').getnframes()\n",
    "import audioop_lts\n",  # a PyPI package, not the removed module
])
def test_look_alikes_and_replacements_are_not_flagged(snippet: str) -> None:
    assert scan_source(snippet) == []


def test_a_finding_says_where_which_release_and_what_to_use_instead() -> None:
    source = "import asyncio as aio\n\n\ndef start():\n    return aio.get_event_loop()\n"
    [finding] = scan_source(source, "runtime/app.py")
    text = str(finding)
    assert text.startswith("runtime/app.py:5: asyncio.get_event_loop: raises RuntimeError")
    assert "(Python 3.14)" in text and "use asyncio.get_running_loop()" in text


def test_every_rule_names_its_release_and_a_replacement() -> None:
    ids = [rule.id for rule in ALL_RULES]
    assert len(ids) == len(set(ids))
    for rule in ALL_RULES:
        assert rule.version in ("3.12", "3.13", "3.14", "3.15"), rule
        assert "What's New" in rule.fact or "pending-removal" in rule.fact or "gh-" in rule.fact
        assert rule.instead, rule
