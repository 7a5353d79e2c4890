"""Admin password: strength rules, and hashing with the stdlib's scrypt.

scrypt is memory-hard, so a stolen config file cannot be brute-forced cheaply on a GPU; the cost
(16 MiB, about 0.1 s on a Pi Zero 2 W per check) is paid once per login, and the web server runs
it in an executor so the loop keeps serving calls. Comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_MAX_N = 2**20  # a hash naming a larger cost is refused rather than allowed to eat the RAM
_DKLEN = 32
MIN_LENGTH = 12
MAX_LENGTH = 256

# Shown next to the password fields, so the user knows the rules before being refused by them.
RULES = (
    f"At least {MIN_LENGTH} characters (a few unrelated words make a good one).",
    f"At most {MAX_LENGTH} characters.",
    "Not a well-known password, and not mostly one repeated character.",
)
_GUESSABLE = frozenset({
    "tipring", "admin", "administrator", "password", "passw0rd", "letmein", "changeme",
    "qwerty", "qwertyuiop", "123456789012", "iloveyou", "welcome", "default", "root", "voip",
    "grandstream", "cisco", "obihai", "linksys", "asterisk", "freepbx",
})


def password_problems(password: str) -> list[str]:
    """Why `password` is refused as the admin password; [] when it is acceptable."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters, got {len(password)}")
    if len(password) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters, got {len(password)}")
    core = password.lower().strip("0123456789!@#$%^&*()-_=+.,;: ")
    if core in _GUESSABLE or password.lower() in _GUESSABLE:
        problems.append("is a well-known password: choose something else")
    elif password and len(set(password)) < 5:
        problems.append("must use at least 5 different characters")
    return problems


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """A self-describing hash: `scrypt$N$r$p$salt$key`, so the cost can be raised later."""
    salt = os.urandom(16)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored`; False (not an exception) for a malformed hash."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        n_i, r_i, p_i = int(n), int(r), int(p)
        salt_b, key_b = base64.b64decode(salt, validate=True), base64.b64decode(key, validate=True)
    except ValueError:
        return False
    if scheme != "scrypt" or not (2 <= n_i <= _MAX_N and 1 <= r_i <= 32 and 1 <= p_i <= 4):
        return False
    candidate = _scrypt(password, salt_b, n_i, r_i, p_i, len(key_b))
    return hmac.compare_digest(candidate, key_b)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int = _DKLEN) -> bytes:
    return hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * 1024 * 1024, dklen=dklen)
