"""A throw-away certificate authority for TLS tests, made with the openssl command.

One CA, and server certificates it signs for the names and addresses a test dials (an IP
literal needs an IP subjectAltName: name checks never look at the CN). Keys are RSA 2048 and
live only in the test's directory.
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL = "openssl"


def _run(*args: str) -> None:
    done = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=60,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")


@dataclass(frozen=True)
class ServerCertificate:
    cert: Path
    key: Path


class TestCa:
    """`TestCa(folder)` makes the CA; `issue(name, *subject_alt_names)` a server certificate.

    `rfc5280=False` makes a CA as hand-rolled PBX scripts often do: basicConstraints not marked
    critical and no keyUsage. OpenSSL accepts it unless told to verify strictly, as Python 3.13
    and later do by default."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, folder: Path, name: str = "TipRing Test CA", *,
                 rfc5280: bool = True) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.cert = self.folder / "ca.pem"
        self.key = self.folder / "ca.key"
        extensions = (["-addext", "basicConstraints=critical,CA:TRUE",
                       "-addext", "keyUsage=critical,keyCertSign,cRLSign"] if rfc5280
                      else ["-addext", "basicConstraints=CA:TRUE"])
        _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", str(self.key), "-out", str(self.cert), *extensions)
        self._serial = 1

    def issue(self, name: str, *alt_names: str) -> ServerCertificate:
        """A certificate for `name` with subjectAltNames `alt_names` (IPs or DNS names;
        default: `name` itself)."""
        self._serial += 1
        stem = self.folder / f"server{self._serial}"
        key, csr, cert = stem.with_suffix(".key"), stem.with_suffix(".csr"), stem.with_suffix(".pem")
        entries = []
        for alt in alt_names or (name,):
            try:
                ipaddress.ip_address(alt)
                entries.append(f"IP:{alt}")
            except ValueError:
                entries.append(f"DNS:{alt}")
        extensions = stem.with_suffix(".ext")
        extensions.write_text(
            f"subjectAltName={','.join(entries)}\n"
            "basicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth,clientAuth\n")
        _run("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
             "-keyout", str(key), "-out", str(csr))
        _run("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
             "-set_serial", str(self._serial), "-days", "2", "-out", str(cert),
             "-extfile", str(extensions))
        return ServerCertificate(cert, key)
