"""A real SMTP server on 127.0.0.1 (aiosmtpd) for the email tests, and a test CA.

``Mailbox`` records every message it accepted; ``script`` lists DATA replies to give
first (``"451 …"``, ``"550 …"``). ``tls="starttls"`` offers STARTTLS with a certificate
for 127.0.0.1 signed by a CA the test generates; ``tls="tls"`` speaks TLS from the first
byte. ``Staller`` accepts connections and never says a word.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers import free_port, wait_until


@dataclass(frozen=True)
class LocalCA:
    """A CA certificate and a server certificate for 127.0.0.1 that it signed, on disk."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_ca(folder: Path, name: str = "newswatch test CA") -> LocalCA:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    files = LocalCA(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return files


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool


def _encrypted(server: Any) -> bool:
    """Whether the SMTP session runs over TLS (STARTTLS or implicit)."""
    transport = getattr(server, "transport", None)
    return transport is not None and transport.get_extra_info("ssl_object") is not None


@dataclass
class Mailbox:
    """The aiosmtpd handler: scripted DATA replies, then 250; keeps what it accepted."""

    script: list[str] = field(default_factory=list)
    messages: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            reply = self.script.pop(0) if self.script else None
            if reply is not None:
                self.refused.append(reply)
                return reply
            message = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          message, _encrypted(server)))
        return "250 OK queued"

    def reset(self) -> None:
        """Forget what was accepted and scripted, for the next test on a session's server."""
        with self.lock:
            self.script.clear()
            self.messages.clear()
            self.refused.clear()

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.messages)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        wait_until(lambda: len(self.received()) >= count, timeout)
        return self.received()


class SmtpServer:
    """aiosmtpd on 127.0.0.1 with no TLS, STARTTLS or implicit TLS."""

    def __init__(self, tls: Literal["none", "starttls", "tls"] = "none",
                 ca: LocalCA | None = None) -> None:
        self.mailbox = Mailbox()
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if tls == "starttls":
            assert ca is not None
            kwargs = {"tls_context": ca.server_context(), "require_starttls": True}
        elif tls == "tls":
            assert ca is not None
            kwargs = {"ssl_context": ca.server_context()}
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port,
                                     **kwargs)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


class Staller:
    """A port that accepts connections (the kernel's backlog does) and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()
