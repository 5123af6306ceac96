"""The email channel: one multipart/alternative message per alert or digest, over SMTP.

The ``Message-ID`` is the outbox row's message id, fixed when the alert was queued, so a
retry after a lost answer is recognisable as the same message. 4xx replies, timeouts and
connection or TLS failures are retried; 5xx is final. ``security: starttls`` insists on
STARTTLS: a server that does not offer it is an error, never a plain-text fall-back.
Certificates are always verified (``ca_file`` adds a private CA).
"""

from __future__ import annotations

import asyncio
import ssl
from datetime import datetime
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from alerts.templates import Rendered
from crawler.config import EmailChannel
from crawler.core.errors import DeliveryError

MESSAGE_ID_DOMAIN = "newswatch"


def message_id_header(message_id: str) -> str:
    return f"<{message_id}@{MESSAGE_ID_DOMAIN}>"


def build(channel: EmailChannel, message_id: str, rendered: Rendered,
          now: datetime) -> EmailMessage:
    message = EmailMessage()
    if rendered.subject.isascii():
        message["Subject"] = rendered.subject
    else:
        message.set_raw("Subject", encoded_subject(rendered.subject))
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.to)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id_header(message_id)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def encoded_subject(subject: str) -> str:
    """A non-ASCII subject as RFC 2047 encoded words, each holding its own spaces.

    The email package's own folding can put the space between two words outside both
    encoded words, where RFC 2047 readers drop it ("سازمان ملل" arrives as "سازمانملل");
    the older ``Header`` encoder keeps every space inside a word. The result is set raw,
    so it is not folded again."""
    return Header(subject, "utf-8", header_name="Subject").encode()


def tls_context(channel: EmailChannel) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if channel.smtp.ca_file:
        context.load_verify_locations(cafile=channel.smtp.ca_file)
    return context


async def send(name: str, channel: EmailChannel, message: EmailMessage) -> int:
    """Hand one message to the SMTP server; returns its reply code, or raises
    DeliveryError saying whether it may be retried."""
    smtp = channel.smtp
    where = f"{smtp.host}:{smtp.effective_port}"
    try:
        async with asyncio.timeout(channel.timeout):
            _, reply = await aiosmtplib.send(
                message, hostname=smtp.host, port=smtp.effective_port,
                username=smtp.username or None, password=smtp.password or None,
                use_tls=smtp.security == "tls", start_tls=smtp.security == "starttls",
                tls_context=tls_context(channel) if smtp.security != "none" else None,
                timeout=channel.timeout)
    except TimeoutError as exc:
        raise DeliveryError(name, f"no answer from SMTP server {where} within "
                                  f"{channel.timeout:g}s") from exc
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        raise DeliveryError(name, f"SMTP server {where} refused every recipient: {detail}",
                            status=codes[0] if codes else None,
                            retryable=any(400 <= c < 500 for c in codes)) from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise DeliveryError(name, f"SMTP {exc.code} from {where}: {exc.message}",
                            status=exc.code, retryable=not 500 <= exc.code < 600) from exc
    except aiosmtplib.SMTPException as exc:
        what = str(exc) or type(exc).__name__
        if "STARTTLS" in what.upper():
            what += " (security: starttls never falls back to plain text)"
        raise DeliveryError(name, f"SMTP server {where}: {what}") from exc
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryError(name, f"cannot reach SMTP server {where}: {exc}") from exc
    return int(reply.split()[0]) if reply[:3].isdigit() else 250
