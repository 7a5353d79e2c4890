"""HTTPS for the web page: a certificate and key stored beside the config.

There is no built-in certificate: a key shipped in every image would be public. On first start
the device makes its own self-signed one (`make_self_signed`: a fresh P-256 key that never
leaves it, names = its mDNS name and addresses); a browser will warn about it, and the owner
checks the SHA-256 fingerprint shown on the Security page and the serial console. The admin may
instead upload a certificate chain and its key (from their own CA), which are checked by loading
them into a TLS context before either file is written; the key is stored 0600 and never shown
again. With `web.https` set and both files present, the server speaks
TLS 1.2+ only; if they are missing it keeps serving HTTP and says so, rather than lock the
owner out of the device.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import ssl
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tipring.config.atomic import write_atomically

log = logging.getLogger("tipring.web")

MAX_PEM_BYTES = 64 * 1024


@dataclass(frozen=True)
class CertificateFiles:
    cert: Path
    key: Path

    @classmethod
    def beside(cls, config_path: Path) -> CertificateFiles:
        return cls(config_path.with_name("web-cert.pem"), config_path.with_name("web-key.pem"))

    @property
    def present(self) -> bool:
        return self.cert.is_file() and self.key.is_file()


class CertificateError(ValueError):
    """The upload was refused; the message says why (never quoting the key)."""


def _context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the first certificate, as browsers show it, for the user to compare."""
    text = cert_pem.decode("ascii", "replace")
    start = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find("-----END CERTIFICATE-----", start)
    if start < 0 or end < 0:
        raise CertificateError("no PEM certificate (-----BEGIN CERTIFICATE-----) found")
    der = ssl.PEM_cert_to_DER_cert(text[start:end + len("-----END CERTIFICATE-----")])
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def check_pair(cert_pem: bytes, key_pem: bytes) -> str:
    """Load the pair into a TLS context (the same check the server makes); returns the
    certificate's fingerprint, or raises CertificateError. Blocking: run in an executor."""
    if not cert_pem or not key_pem:
        raise CertificateError("both the certificate and the private key are needed")
    if len(cert_pem) > MAX_PEM_BYTES or len(key_pem) > MAX_PEM_BYTES:
        raise CertificateError(f"a PEM file is larger than {MAX_PEM_BYTES} bytes")
    print_ = fingerprint(cert_pem)
    with tempfile.TemporaryDirectory() as scratch:
        cert, key = Path(scratch, "cert.pem"), Path(scratch, "key.pem")
        cert.write_bytes(cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(key_pem)
        try:
            _context().load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            reason = exc.reason or "not a certificate and matching private key"
            raise CertificateError(f"refused by TLS: {reason.replace('_', ' ').lower()}") \
                from None
    return print_


def install(files: CertificateFiles, cert_pem: bytes, key_pem: bytes) -> str:
    """Check, then write both files (0600, atomically); returns the fingerprint."""
    print_ = check_pair(cert_pem, key_pem)
    write_atomically(files.key, key_pem)
    write_atomically(files.cert, cert_pem)
    return print_


def make_self_signed(files: CertificateFiles, names: Sequence[str], *,
                     openssl: str = "openssl") -> str | None:
    """Make the device's own certificate (first start, when none is stored) with the `openssl`
    program; returns its fingerprint, or None when that cannot be done (no openssl: HTTPS then
    needs an uploaded certificate). `names`: DNS names and IP addresses it is for."""
    # A link-local address (fe80::1%eth0) is no use in a URL bar and openssl refuses the scope.
    names = [n for n in names if "%" not in n and not (_is_address(n) and
                                                       ipaddress.ip_address(n).is_link_local)]
    if not names:
        raise ValueError("a certificate needs at least one name")
    alt = ",".join(f"IP:{name}" if _is_address(name) else f"DNS:{name}" for name in names)
    try:
        # On a new device the data folder may not be there yet (nothing saved so far).
        files.cert.parent.mkdir(parents=True, exist_ok=True)
        folder_context = tempfile.TemporaryDirectory(dir=files.cert.parent, prefix=".web-tls-")
    except OSError as exc:
        log.warning("no self-signed certificate made: HTTPS needs one uploaded",
                    extra={"reason": str(exc)})
        return None
    with folder_context as folder:
        cert, key = Path(folder, "cert.pem"), Path(folder, "key.pem")
        try:
            subprocess.run(
                [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650", "-sha256",
                 "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={alt}",
                 "-keyout", str(key), "-out", str(cert)],
                check=True, capture_output=True, timeout=30)
            return install(files, cert.read_bytes(), key.read_bytes())
        except (OSError, subprocess.SubprocessError, CertificateError) as exc:
            log.warning("no self-signed certificate made: HTTPS needs one uploaded",
                        extra={"reason": str(exc)})
            return None


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def server_context(files: CertificateFiles) -> ssl.SSLContext | None:
    """The TLS context for the web server, or None if the files are missing or unusable."""
    if not files.present:
        return None
    context = _context()
    try:
        context.load_cert_chain(files.cert, files.key)
    except (ssl.SSLError, OSError):
        return None
    return context


def current_fingerprint(files: CertificateFiles) -> str | None:
    try:
        return fingerprint(files.cert.read_bytes()) if files.present else None
    except (OSError, CertificateError, ValueError):
        return None
