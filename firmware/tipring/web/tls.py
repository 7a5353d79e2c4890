"""HTTPS for the web page: the admin's own certificate and key, stored beside the config.

There is no built-in certificate: a key shipped in every image would be public, and a
self-signed one made on the device still needs the user to check a fingerprint. So the admin
uploads a certificate chain and its key (from their own CA, or one they made), which are
checked by loading them into a TLS context before either file is written; the key is stored
0600 and never shown again. With `web.https` set and both files present, the server speaks
TLS 1.2+ only; if they are missing it keeps serving HTTP and says so, rather than lock the
owner out of the device.
"""

from __future__ import annotations

import hashlib
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tipring.config.atomic import write_atomically

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
