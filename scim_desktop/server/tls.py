"""Local TLS: a self-signed certificate made on first use, or the user's own.

The generated certificate is kept beside the database (``<db stem>.tls/cert.pem`` and
``key.pem``, the key readable by the owner only). It names localhost, 127.0.0.1, ::1 and the
configured host in its subjectAltName (RFC 6125 §6: clients match host names and addresses
against SANs, not the CN), and is made again when it expires or misses one of those names.
Its SHA-256 fingerprint is what a person compares before trusting it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scim_desktop.config import TlsConfig, make_private_dir, write_private_file

#: Apple platforms refuse TLS server certificates valid for more than 825 days.
VALIDITY_DAYS = 825
#: Make a new certificate when the current one has less than this left.
RENEW_BEFORE = dt.timedelta(days=14)

log = logging.getLogger("scim_desktop.server.http")


class TlsError(RuntimeError):
    """TLS cannot be set up; the message is one line a person can act on."""


def certificate_hosts(host: str) -> list[str]:
    """The names the generated certificate covers: loopback always, and the listening host
    (unless it is a wildcard address nobody connects to)."""
    names = ["localhost", "127.0.0.1", "::1"]
    if host and host not in ("0.0.0.0", "::", "*") and host not in names:
        names.append(host)
    return names


def _san_entries(hosts: Iterable[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for host in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host.strip("[]"))))
        except ValueError:
            entries.append(x509.DNSName(host))
    return entries


def generate_self_signed(
    cert_path: Path, key_path: Path, hosts: Iterable[str], *, now: dt.datetime | None = None
) -> None:
    """Write a new self-signed certificate and key (ECDSA P-256) for ``hosts``."""
    now = now or dt.datetime.now(dt.UTC)
    hosts = list(hosts)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "SCIM Desktop (self-signed)"),
            x509.NameAttribute(
                NameOID.ORGANIZATION_NAME, f"SCIM Desktop on {socket.gethostname()}"
            ),
        ]
    )
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=VALIDITY_DAYS))
        .add_extension(x509.SubjectAlternativeName(_san_entries(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    folder = cert_path.parent
    if folder == key_path.parent:
        make_private_dir(folder)  # the key's folder: 0700 from the moment it exists
    else:
        folder.mkdir(parents=True, exist_ok=True)
    write_private_file(key_path, key_pem)
    write_private_file(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(cert_path, 0o644)  # the certificate is public; only the key is secret


def _load_cert(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TlsError(f"Cannot read the TLS certificate {path}: no such file") from None
    except OSError as exc:
        raise TlsError(f"Cannot read the TLS certificate {path}: {exc.strerror or exc}") from None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise TlsError(f"{path} is not a PEM certificate (-----BEGIN CERTIFICATE-----)") from None


def needs_new_certificate(cert_path: Path, hosts: Iterable[str], now: dt.datetime) -> bool:
    """Whether the generated certificate is missing, unreadable, (nearly) expired, or does not
    name every host."""
    try:
        cert = _load_cert(cert_path)
    except TlsError:
        return True
    if cert.not_valid_after_utc - RENEW_BEFORE <= now or cert.not_valid_before_utc > now:
        return True
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return True
    present = {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    }
    wanted = set()
    for host in hosts:
        try:
            wanted.add(str(ipaddress.ip_address(host.strip("[]"))))
        except ValueError:
            wanted.add(host)
    return not wanted <= present


def fingerprint_sha256(cert_path: Path) -> str:
    """The certificate's SHA-256 fingerprint as colon-separated hex pairs (AB:CD:...), the
    form browsers and ``openssl x509 -fingerprint -sha256`` show."""
    digest = _load_cert(cert_path).fingerprint(hashes.SHA256())
    return ":".join(f"{b:02X}" for b in digest)


def prepare_tls(config: TlsConfig, host: str) -> tuple[ssl.SSLContext, str, bool]:
    """An SSL context for the server, the certificate fingerprint, and whether a certificate
    was generated now. Raises :class:`TlsError` with a one-line message."""
    generated = False
    if config.self_signed:
        hosts = certificate_hosts(host)
        if needs_new_certificate(config.cert_path, hosts, dt.datetime.now(dt.UTC)):
            try:
                generate_self_signed(config.cert_path, config.key_path, hosts)
            except OSError as exc:
                raise TlsError(
                    f"Cannot write the TLS certificate in {config.cert_path.parent}: "
                    f"{exc.strerror or exc}"
                ) from None
            generated = True
    else:
        if not config.key_path.is_file():
            raise TlsError(f"Cannot read the TLS key {config.key_path}: no such file")
    fingerprint = fingerprint_sha256(config.cert_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(config.cert_path), str(config.key_path))
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        raise TlsError(
            f"Cannot use the TLS certificate {config.cert_path} with the key {config.key_path} "
            f"({reason}): they must be PEM files, and the key must belong to the certificate"
        ) from None
    except OSError as exc:
        raise TlsError(
            f"Cannot read the TLS key {config.key_path}: {exc.strerror or exc}"
        ) from None
    return context, fingerprint, generated


class _HandshakeErrors(logging.Filter):
    """Tornado logs a failed TLS handshake as ``SSL Error on 12 ('127.0.0.1', 5555): [SSL:
    HTTP_REQUEST] http request (_ssl.c:1000)`` (tornado.general, WARNING), and offers no hook
    to say it otherwise. This filter replaces those records with one plain line each: plain
    http sent to the https port is the usual case (a client configured with http://)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.msg != "SSL Error on %s %s: %s" or not isinstance(args, tuple) or len(args) != 3:
            return True
        peer, error = args[1], args[2]
        client = peer[0] if isinstance(peer, tuple) and peer else str(peer)
        reason = getattr(error, "reason", None)
        if reason == "HTTP_REQUEST":
            log.warning("plain http request to the https port from %s", client)
        else:
            log.warning("TLS handshake with %s failed: %s", client, reason or error)
        return False


_FILTER = _HandshakeErrors()


def quiet_tls_errors() -> None:
    """Log failed TLS handshakes as one clear line (idempotent)."""
    logger = logging.getLogger("tornado.general")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
