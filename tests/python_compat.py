"""An AST scan for standard-library uses that Python 3.12-3.14 removed, deprecated or changed.

The image runs Python 3.14 while CI runs 3.11, so a call that 3.14 removed would pass every test
here and fail only on the device. `scan_source` finds such uses statically; each rule says which
release changed what (the fact from that release's "What's New" or its deprecation list) and
what to use instead, so a finding is a fix, not a puzzle. Names are resolved through the module's
imports (`import asyncio as aio`, `from datetime import datetime`), so an alias does not hide a
use and an unrelated local name does not raise a false alarm.

Only changes that can break or warn at run time belong here, never soft deprecations.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rule:
    """One change: `id` names the API, `version` the release, `fact` what it did there."""

    id: str
    version: str
    fact: str
    instead: str

    def message(self) -> str:
        return f"{self.id}: {self.fact} (Python {self.version}); use {self.instead}"


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: Rule

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule.message()}"


_MODULE_REPLACEMENTS = {
    "distutils": "setuptools, or sysconfig for paths", "imp": "importlib",
    "asynchat": "asyncio", "asyncore": "asyncio", "smtpd": "aiosmtpd",
    "audioop": "the C core (tipring._dsp), or audioop-lts for a benchmark baseline",
    "crypt": "hashlib (scrypt, as config/passwords.py does)", "pipes": "shlex.quote",
    "uu": "base64", "cgi": "urllib.parse and email.message", "telnetlib": "asyncio streams",
    "imghdr": "a check of the file's magic bytes", "lib2to3": "ast",
}


def _removed_modules(version: str, fact: str, names: str) -> list[Rule]:
    return [Rule(name, version, fact, _MODULE_REPLACEMENTS.get(name, "a maintained package"))
            for name in names.split()]


# Importing any of these fails on the release named.
MODULE_RULES = {rule.id: rule for rule in [
    *_removed_modules("3.12", "removed (PEP 632 for distutils; What's New 3.12 'Removed')",
                      "distutils imp asynchat asyncore smtpd"),
    *_removed_modules("3.13", "removed, a PEP 594 dead battery (What's New 3.13 'Removed')",
                      "aifc audioop cgi cgitb chunk crypt imghdr mailcap msilib nis nntplib "
                      "ossaudiodev pipes sndhdr spwd sunau telnetlib uu xdrlib"),
    *_removed_modules("3.13", "removed (What's New 3.13 'Removed')", "lib2to3 tkinter.tix"),
]}

_GONE_314 = "removed (What's New 3.14 'Removed')"
_WATCHERS = ("AbstractChildWatcher SafeChildWatcher MultiLoopChildWatcher FastChildWatcher "
             "ThreadedChildWatcher PidfdChildWatcher get_child_watcher set_child_watcher")
_POLICY = "get_event_loop_policy set_event_loop_policy AbstractEventLoopPolicy DefaultEventLoopPolicy"

# Fully qualified names whose use (attribute, call or `from` import) fails or warns.
NAME_RULES = {rule.id: rule for rule in [
    Rule("asyncio.get_event_loop", "3.14",
         "raises RuntimeError when no loop is set (What's New 3.14; DeprecationWarning since 3.12)",
         "asyncio.get_running_loop() inside a coroutine or callback, or asyncio.run()"),
    *[Rule(f"asyncio.{name}", "3.14", "the event loop policy system is deprecated, removal "
           "in 3.16 (What's New 3.14 'Deprecated')", "asyncio.run(..., loop_factory=...) or "
           "asyncio.Runner") for name in _POLICY.split()],
    Rule("asyncio.iscoroutinefunction", "3.14", "deprecated, removal in 3.16 (What's New 3.14)",
         "inspect.iscoroutinefunction"),
    *[Rule(f"asyncio.{name}", "3.14", f"{_GONE_314}; child watchers are no longer needed",
           "asyncio.create_subprocess_exec as is") for name in _WATCHERS.split()],
    *[Rule(f"ast.{name}", "3.14", _GONE_314, "ast.Constant")
      for name in ("Num", "Str", "Bytes", "NameConstant", "Ellipsis")],
    *[Rule(f"pkgutil.{name}", "3.14", _GONE_314, "importlib.util.find_spec")
      for name in ("find_loader", "get_loader")],
    *[Rule(f"importlib.abc.{name}", "3.14", _GONE_314, "importlib.resources.abc")
      for name in ("ResourceReader", "Traversable", "TraversableResources")],
    *[Rule(f"sqlite3.{name}", "3.14", _GONE_314, "sqlite3.sqlite_version")
      for name in ("version", "version_info")],
    *[Rule(f"pty.{name}", "3.14", _GONE_314, "pty.openpty") for name in ("master_open",
                                                                           "slave_open")],
    Rule("urllib.parse.Quoter", "3.14", _GONE_314, "urllib.parse.quote"),
    Rule("codecs.open", "3.14", "deprecated (What's New 3.14 'Deprecated')",
         "open(path, mode, encoding=...)"),
    *[Rule(name, "3.12", "deprecated, DeprecationWarning (What's New 3.12 'Deprecated')",
           "timezone-aware datetime.datetime.now(datetime.UTC) / fromtimestamp(t, datetime.UTC)")
      for name in ("datetime.datetime.utcnow", "datetime.datetime.utcfromtimestamp")],
    *[Rule(name, "3.12", "DeprecationWarning, removal in 3.17 (What's New 3.12; the 3.14 removal "
           "was postponed)", "collections.abc.Buffer or bytes | bytearray")
      for name in ("typing.ByteString", "collections.abc.ByteString")],
    *[Rule(f"ssl.{name}", "3.12", "removed (What's New 3.12 'Removed')",
           "ssl.SSLContext.wrap_socket with check_hostname") for name in ("wrap_socket",
                                                                          "match_hostname")],
    Rule("locale.format", "3.12", "removed (What's New 3.12 'Removed')", "locale.format_string"),
    Rule("locale.resetlocale", "3.13", "removed (What's New 3.13 'Removed')",
         "locale.setlocale(locale.LC_ALL, '')"),
    Rule("locale.getdefaultlocale", "3.15", "DeprecationWarning, removal in 3.15 "
         "(pending-removal list of 3.13/3.14)", "locale.getlocale / locale.getencoding"),
    *[Rule(f"typing.{name}", "3.13", "removed (What's New 3.13 'Removed')",
           "the names from typing itself") for name in ("io", "re")],
    Rule("typing.no_type_check_decorator", "3.13", "deprecated (What's New 3.13)",
         "nothing: no type checker supports it"),
    Rule("ctypes.SetPointerType", "3.13", "deprecated (What's New 3.13)",
         "ctypes.POINTER with a complete type"),
    *[Rule(f"glob.{name}", "3.13", "deprecated (What's New 3.13)", "glob.glob(..., root_dir=)")
      for name in ("glob0", "glob1")],
    *[Rule(f"unittest.{name}", "3.13", "removed (What's New 3.13 'Removed')",
           "unittest.TestLoader methods") for name in ("findTestCases", "makeSuite",
                                                       "getTestCaseNames")],
    *[Rule(f"multiprocessing.{name}", "3.14", "the default start method on Linux is now "
           "'forkserver', not 'fork' (What's New 3.14): targets must pickle, no inherited state",
           "multiprocessing.get_context('spawn' or 'forkserver') named explicitly")
      for name in ("Process", "Pool", "Manager")],
]}

# Method names flagged whatever the receiver: an AST does not know its type, and these names
# belong to nothing else in the standard library.
METHOD_RULES = {
    **{name: Rule(f"Wave_read.{name}()", "3.13", "deprecated, removal in 3.15 (What's New 3.13)",
                  "nothing: the markers were always empty")
       for name in ("getmark", "setmark", "getmarkers")},
    "is_reserved": Rule("PurePath.is_reserved()", "3.13", "deprecated (What's New 3.13)",
                        "os.path.isreserved"),
}

SHAPE_RULES = {rule.id: rule for rule in [
    Rule("re.sub/re.subn/re.split positional count, maxsplit or flags", "3.13",
         "DeprecationWarning when passed positionally (What's New 3.13 'Deprecated')",
         "count=, maxsplit=, flags= keywords"),
    Rule("return/break/continue leaving a finally block", "3.14",
         "SyntaxWarning (PEP 765, What's New 3.14)", "a flag checked after the try statement"),
    Rule("functools.partial as a class attribute", "3.14",
         "partial is now a method descriptor and binds self (What's New 3.14 'Porting'; "
         "FutureWarning in 3.13)", "staticmethod(functools.partial(...))"),
    Rule("__trunc__ without __int__ or __index__", "3.14",
         "int() no longer falls back to __trunc__ (What's New 3.14)", "define __int__"),
    Rule("array.array('u')", "3.13", "DeprecationWarning, removal in 3.16 (What's New 3.13)",
         "array.array('w')"),
    Rule("TarFile.extract/extractall without filter=", "3.14",
         "the default extraction filter is now 'data' (What's New 3.14; DeprecationWarning "
         "since 3.12)", "an explicit filter='data'"),
    Rule("shutil.rmtree(onerror=)", "3.12", "deprecated (What's New 3.12)", "onexc="),
    Rule("concurrent.futures.ProcessPoolExecutor without mp_context=", "3.14",
         "the default start method on Linux is now 'forkserver' (What's New 3.14)",
         "mp_context=multiprocessing.get_context(...)"),
    Rule("threading.RLock with arguments", "3.13", "DeprecationWarning, arguments refused "
         "from 3.15 (pending-removal list of What's New 3.14)", "threading.RLock()"),
    Rule("argparse.BooleanOptionalAction with type/choices/metavar", "3.14", _GONE_314,
         "a plain BooleanOptionalAction"),
    Rule("strptime day of month without a year", "3.13", "DeprecationWarning: leap days fail to "
         "parse; 3.15 changes the default (What's New 3.13)", "a format with the year in it"),
]}

_RE_POSITIONAL_LIMIT = {"re.sub": 3, "re.subn": 3, "re.split": 2}
_DAY_WITHOUT_YEAR = re.compile(r"%d")
_YEAR = re.compile(r"%[YyG]")


def scan_source(source: str, path: str = "<snippet>") -> list[Finding]:
    """Every finding in one module's text, sorted by line; a syntax error propagates."""
    tree = ast.parse(source, path)
    found = {(path, line, rule) for line, rule in _Scan(tree).findings()}
    return sorted((Finding(*f) for f in found), key=lambda f: (f.line, f.rule.id))


def scan_tree(root: Path) -> list[Finding]:
    """Every finding in the .py files under `root`, paths relative to `root`'s parent."""
    findings = []
    for file in sorted(root.rglob("*.py")):
        findings += scan_source(file.read_text(encoding="utf-8"),
                                str(file.relative_to(root.parent)))
    return findings


class _Scan:
    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.aliases = _import_aliases(tree)
        # A module that names its start method does not depend on the default.
        self.start_method_set = any(
            isinstance(node, ast.Call)
            and self.qualified(node.func) == "multiprocessing.set_start_method"
            for node in ast.walk(tree))

    def findings(self) -> Iterator[tuple[int, Rule]]:
        for node in ast.walk(self.tree):
            for check in self._checks:
                for rule in check(self, node):
                    yield node.lineno, rule  # type: ignore[attr-defined]

    def qualified(self, node: ast.AST) -> str | None:
        """`a.b.c` with `a` replaced by what its import binds; None when not from an import."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualified(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def _imports(self, node: ast.AST) -> Iterator[Rule]:
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules = [node.module]
            yield from (NAME_RULES[f"{node.module}.{a.name}"] for a in node.names
                        if f"{node.module}.{a.name}" in NAME_RULES)
        for module in modules:
            yield from (rule for name, rule in MODULE_RULES.items()
                        if module == name or module.startswith(name + "."))

    def _names(self, node: ast.AST) -> Iterator[Rule]:
        if isinstance(node, ast.Name | ast.Attribute):
            name = self.qualified(node)
            if name in NAME_RULES and not (self.start_method_set
                                           and name.startswith("multiprocessing.")):
                yield NAME_RULES[name]

    def _methods(self, node: ast.AST) -> Iterator[Rule]:
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in METHOD_RULES):
            yield METHOD_RULES[node.func.attr]

    def _calls(self, node: ast.AST) -> Iterator[Rule]:
        if not isinstance(node, ast.Call):
            return
        name = self.qualified(node.func)
        keywords = {k.arg for k in node.keywords}
        limit = _RE_POSITIONAL_LIMIT.get(name or "")
        if limit is not None and len(node.args) > limit:
            yield SHAPE_RULES["re.sub/re.subn/re.split positional count, maxsplit or flags"]
        if name == "array.array" and node.args and _constant(node.args[0]) == "u":
            yield SHAPE_RULES["array.array('u')"]
        if name == "shutil.rmtree" and "onerror" in keywords:
            yield SHAPE_RULES["shutil.rmtree(onerror=)"]
        if name == "concurrent.futures.ProcessPoolExecutor" and "mp_context" not in keywords:
            yield SHAPE_RULES["concurrent.futures.ProcessPoolExecutor without mp_context="]
        if name == "threading.RLock" and (node.args or node.keywords):
            yield SHAPE_RULES["threading.RLock with arguments"]
        action = next((k.value for k in node.keywords if k.arg == "action"), None)
        if (action is not None and self.qualified(action) == "argparse.BooleanOptionalAction"
                and keywords & {"type", "choices", "metavar"}):
            yield SHAPE_RULES["argparse.BooleanOptionalAction with type/choices/metavar"]
        if (isinstance(node.func, ast.Attribute) and node.func.attr in ("extract", "extractall")
                and "tarfile" in self.aliases.values() and "filter" not in keywords):
            yield SHAPE_RULES["TarFile.extract/extractall without filter="]
        if name in ("datetime.datetime.strptime", "time.strptime") and len(node.args) > 1:
            fmt = _constant(node.args[1])
            if isinstance(fmt, str) and _DAY_WITHOUT_YEAR.search(fmt) and not _YEAR.search(fmt):
                yield SHAPE_RULES["strptime day of month without a year"]

    def _classes(self, node: ast.AST) -> Iterator[Rule]:
        if not isinstance(node, ast.ClassDef):
            return
        methods = {s.name for s in node.body if isinstance(s, ast.FunctionDef)}
        if "__trunc__" in methods and not methods & {"__int__", "__index__"}:
            yield SHAPE_RULES["__trunc__ without __int__ or __index__"]
        for statement in node.body:
            value = statement.value if isinstance(statement, ast.Assign | ast.AnnAssign) else None
            if isinstance(value, ast.Call) and self.qualified(value.func) == "functools.partial":
                yield SHAPE_RULES["functools.partial as a class attribute"]

    def _finally(self, node: ast.AST) -> Iterator[Rule]:
        if isinstance(node, ast.Try | ast.TryStar) and any(
                _leaves_finally(s, in_loop=False) for s in node.finalbody):
            yield SHAPE_RULES["return/break/continue leaving a finally block"]

    _checks: tuple[Callable[[_Scan, ast.AST], Iterator[Rule]], ...] = (
        _imports, _names, _methods, _calls, _classes, _finally)


def _import_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> the dotted module or object an import statement binds it to."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:  # `import a.b` binds `a`
                    root = alias.name.split(".")[0]
                    aliases[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _constant(node: ast.AST) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def _leaves_finally(node: ast.AST, in_loop: bool) -> bool:
    """Whether `node` (inside a finally block) returns, or breaks/continues out of it."""
    if isinstance(node, ast.Return):
        return True
    if isinstance(node, ast.Break | ast.Continue):
        return not in_loop
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
        return False  # a return in there leaves that function, not the finally block
    if isinstance(node, ast.For | ast.AsyncFor | ast.While):
        return (any(_leaves_finally(s, True) for s in node.body)
                or any(_leaves_finally(s, in_loop) for s in node.orelse))
    return any(_leaves_finally(child, in_loop) for child in ast.iter_child_nodes(node))


ALL_RULES = (*MODULE_RULES.values(), *NAME_RULES.values(),
             *METHOD_RULES.values(), *SHAPE_RULES.values())
