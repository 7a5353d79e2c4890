"""Value checks for config fields: each takes a decoded value and returns a reason or None.

Reasons are written to follow the field path ("accounts[1].expires: must be between 60 and
86400, got 5") and quote the offending value, so the user sees what was read. Checks never see
secrets.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Sequence
from typing import Any

from .errors import describe
from .sshkey import SshKeyError, parse_public_key

Check = Callable[[Any], "str | None"]

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_PORT = re.compile(r"[0-9]{1,5}")
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
# RFC 3261 "user": unreserved / escaped / user-unreserved.
_SIP_USER = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+")
_TIMEZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def between(low: float, high: float) -> Check:
    def check(value: float) -> str | None:
        if not low <= value <= high:
            return f"must be between {low} and {high}, got {describe(value)}"
        return None

    return check


def zero_or_between(low: int, high: int, zero_means: str) -> Check:
    def check(value: int) -> str | None:
        if value != 0 and not low <= value <= high:
            return f"must be 0 ({zero_means}) or between {low} and {high}, got {describe(value)}"
        return None

    return check


def one_of(choices: Collection[str]) -> Check:
    def check(value: str) -> str | None:
        if value in choices:
            return None
        listed = ", ".join(sorted(choices))
        if value.upper() in choices:
            return f"must be upper case ({describe(value.upper())}), got {describe(value)}"
        return f"must be one of {listed}, got {describe(value)}"

    return check


def count_between(low: int, high: int, noun: str) -> Check:
    def check(value: Sequence[object]) -> str | None:
        if len(value) < low:
            return f"must have at least {low} {noun}{'s' if low != 1 else ''}, got {len(value)}"
        if len(value) > high:
            return f"must have at most {high} {noun}{'s' if high != 1 else ''}, got {len(value)}"
        return None

    return check


def no_duplicates(value: Sequence[object]) -> str | None:
    seen: set[object] = set()
    for item in value:
        if item in seen:
            return f"{describe(item)} is listed more than once"
        seen.add(item)
    return None


def blank_or(check: Check) -> Check:
    """For optional strings: "" means 'not set' and is always accepted."""

    def optional(value: str) -> str | None:
        return None if value == "" else check(value)

    return optional


def printable(max_length: int) -> Check:
    """Free text that ends up in SIP headers or HTTP: no control characters (no CR/LF injection)."""

    def check(value: str) -> str | None:
        if _CONTROL.search(value):
            return f"must not contain control characters, got {describe(value)}"
        if len(value) > max_length:
            return f"must be at most {max_length} characters, got {len(value)}"
        return None

    return check


def hostname_label(value: str) -> str | None:
    if _LABEL.fullmatch(value):
        return None
    return ("must be 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen, "
            f"got {describe(value)}")


def account_id(value: str) -> str | None:
    if _ACCOUNT_ID.fullmatch(value):
        return None
    return ("must be 1 to 32 letters, digits, '-' or '_', starting with a letter or digit, "
            f"got {describe(value)}")


def sip_user(value: str) -> str | None:
    if _SIP_USER.fullmatch(value) and len(value) <= 128:
        return None
    return ("must be a SIP user part of at most 128 characters: letters, digits, "
            f"-_.!~*'()&=+$,;?/ or %XX escapes, got {describe(value)}")


def timezone_name(value: str) -> str | None:
    """IANA zone syntax only: the image may lack tzdata, and a check must not need the disk."""
    if len(value) <= 64 and _TIMEZONE.fullmatch(value) and ".." not in value:
        return None
    return ("must be an IANA time zone name such as \"UTC\" or \"Europe/Berlin\", "
            f"got {describe(value)}")


def ip_address(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f"must be an IPv4 or IPv6 address, got {describe(value)}"
    return None


def ip_interface(value: str) -> str | None:
    """An address with its prefix length (CIDR), as a static interface is configured."""
    example = "e.g. 192.168.1.20/24"
    if "/" not in value:
        return f"must be an address with a prefix length, {example}, got {describe(value)}"
    try:
        interface = ipaddress.ip_interface(value)
    except ValueError:
        return f"must be an IPv4 or IPv6 address with a prefix length, {example}, got {describe(value)}"
    network = interface.network
    if isinstance(network, ipaddress.IPv4Network) and network.prefixlen <= 30:
        if interface.ip == network.network_address:
            return f"{interface.ip} is the network address of {network}, not a host address"
        if interface.ip == network.broadcast_address:
            return f"{interface.ip} is the broadcast address of {network}, not a host address"
    return None


def _host_problem(host: str) -> str | None:
    """Why `host` is not an IPv4 address or DNS name (IPv6 is handled by the callers)."""
    labels = host.split(".")
    if labels[-1].isdigit():  # numeric top label: it is meant to be IPv4
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return "is not a valid IPv4 address"
        return None
    if len(host) > 253:
        return "is longer than 253 characters"
    if not all(_LABEL.fullmatch(label) for label in labels):
        return "is not a valid host name (letters, digits, hyphens and dots)"
    return None


def host(value: str) -> str | None:
    """A host name, IPv4 address or IPv6 address, without a port (e.g. an NTP server)."""
    if ":" in value:
        return ip_address(value.removeprefix("[").removesuffix("]"))
    problem = _host_problem(value)
    return f"{describe(value)} {problem}" if problem else None


def host_port(value: str) -> str | None:
    """host, host:port or [IPv6]:port, as in a SIP URI."""
    shown = describe(value)
    hostpart, port = value, None
    if value.startswith("["):
        close = value.find("]")
        if close < 0:
            return f"{shown} has '[' without ']'"
        hostpart, rest = value[1:close], value[close + 1:]
        try:
            ipaddress.IPv6Address(hostpart)
        except ValueError:
            return f"{shown}: {describe(hostpart)} in brackets is not an IPv6 address"
        if rest:
            if not rest.startswith(":"):
                return f"{shown} has text after ']' that is not ':port'"
            port = rest[1:]
    elif value.count(":") > 1:
        return f"{shown}: write IPv6 addresses in brackets, e.g. [2001:db8::1]:5060"
    elif ":" in value:
        hostpart, port = value.split(":")
        problem = _host_problem(hostpart)
        if problem:
            return f"{shown}: host {describe(hostpart)} {problem}"
    else:
        problem = _host_problem(value)
        if problem:
            return f"{shown} {problem}"
    if port is not None and not (_PORT.fullmatch(port) and 1 <= int(port) <= 65535):
        return f"{shown}: port must be a number between 1 and 65535, got {describe(port)}"
    return None


_FEATURE_CODE = re.compile(r"[*#][0-9*#]{1,4}")
_DIAL_STRING = re.compile(r"\+?[0-9*#]{1,32}")


def dial_plan(value: str) -> str | None:
    """A digit map the line can compile (Cisco `(...|...)` or Grandstream `{...}` syntax)."""
    from tipring.line.digitmap import DigitMap, DigitMapError  # pure, and only needed here

    try:
        DigitMap.compile(value, emergency=())
    except DigitMapError as error:
        return f"is not a valid dial plan: {error}"
    return None


def dial_target(value: str) -> str | None:
    """Where a call may be sent: a number (digits, '*', '#', optional leading '+') or a SIP URI
    (`sip:` / `sips:`), e.g. for call forwarding."""
    if _DIAL_STRING.fullmatch(value):
        return None
    lowered = value.lower()
    if lowered.startswith(("sip:", "sips:")) and len(value) <= 256 \
            and not _CONTROL.search(value) and " " not in value and len(value.split(":", 1)[1]):
        return None
    return (f"must be a number (digits, * and #) or a sip: URI, got {describe(value)}")


def feature_code(value: str) -> str | None:
    """A star code: '*' or '#' followed by 1 to 4 keys, e.g. *72."""
    if not _FEATURE_CODE.fullmatch(value):
        return (f"must be * or # followed by 1 to 4 digits, * or # (e.g. *72), "
                f"got {describe(value)}")
    return None


_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END \1-----")


def pem(kinds: Collection[str], what: str) -> Check:
    """PEM text holding one or more blocks of the given kinds (e.g. CERTIFICATE), nothing else
    but white space; the base64 inside must decode."""
    import binascii

    def check(value: str) -> str | None:
        blocks = list(_PEM_BLOCK.finditer(value))
        if not blocks or _PEM_BLOCK.sub("", value).strip():
            return f"must be {what} in PEM form (-----BEGIN ...-----)"
        for block in blocks:
            if block.group(1) not in kinds:
                return f"must be {what}, not a {block.group(1)} block"
            try:
                binascii.a2b_base64(block.group(2).encode())
            except binascii.Error:
                return f"has a {block.group(1)} block whose base64 does not decode"
        return None

    return check


def tone_string(value: str) -> str | None:
    """A call-progress tone in the Grandstream (`f1=350@-13,f2=440@-13,c=0/0;`) or Cisco
    ToneScript (`350@-19,440@-19;10(*/0/1+2)`) syntax."""
    from tipring.line.tonespec import ToneSpecError, parse_grandstream, parse_tonescript

    try:
        (parse_grandstream if value.lstrip()[:1] in ("f", "F") else parse_tonescript)(value)
    except ToneSpecError as error:
        return f"is not a tone: {error}"
    return None


_CADENCE = re.compile(r"\d{2,5}/\d{1,5}(,\d{2,5}/\d{1,5}){0,3}")


def ring_cadence(value: str) -> str | None:
    """Ringing as on/off milliseconds, up to four pairs: `2000/4000`, `400/200,400/2000`."""
    if not _CADENCE.fullmatch(value.replace(" ", "")):
        return (f"must be on/off pairs in milliseconds, e.g. 2000/4000 or 400/200,400/2000, "
                f"got {describe(value)}")
    return None


def ssh_public_key(value: str) -> str | None:
    """One OpenSSH public key line: ed25519, ECDSA (P-256/384/521) or RSA of 2048 bits and
    more, whose base64 decodes and holds the type it claims (see `sshkey`)."""
    try:
        parse_public_key(value)
    except SshKeyError as error:
        return str(error)
    return None


def distinct_ssh_keys(value: Sequence[str]) -> str | None:
    """The same key twice (perhaps with another comment) is a paste mistake worth a word."""
    seen: dict[bytes, int] = {}
    for index, line in enumerate(value):
        try:
            blob = parse_public_key(line).blob
        except SshKeyError:
            continue  # reported by the check on the item
        if blob in seen:
            return f"key {index + 1} is the same key as key {seen[blob] + 1}"
        seen[blob] = index
    return None
