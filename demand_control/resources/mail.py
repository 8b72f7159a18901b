"""The mail resource customer notices go out through: SMTP when a host is configured, otherwise the embedded
default (the notice is printed to the console and kept in the `customer_notices` table; no network).

`send` separates the two ways a send can fail, because a notice must never reach a customer twice: a
refusal the server stated (or a connection that never got as far as the message) is `NotDelivered` — safe
to try again; a connection lost while the server may already have accepted the message is
`DeliveryUnknown` — retrying could send it twice, so the caller leaves that to a human.
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

import dagster as dg
from pydantic import Field

SMTP_HOST_ENV = "DEMAND_CONTROL_SMTP_HOST"
SMTP_PORT_ENV = "DEMAND_CONTROL_SMTP_PORT"
SMTP_USER_ENV = "DEMAND_CONTROL_SMTP_USER"
SMTP_PASSWORD_ENV = "DEMAND_CONTROL_SMTP_PASSWORD"
SMTP_STARTTLS_ENV = "DEMAND_CONTROL_SMTP_STARTTLS"
MAIL_FROM_ENV = "DEMAND_CONTROL_MAIL_FROM"
DEFAULT_FROM = "Customer Service <orders@demand-control.invalid>"
MESSAGE_ID_DOMAIN = "demand-control"


class NotDelivered(Exception):
    """The server refused the message, or it never got the message: nothing was delivered. `permanent`
    (a 5xx answer) means retrying will not help."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class DeliveryUnknown(Exception):
    """The connection failed while the message was being handed over: the server may have accepted it."""


@dataclass(frozen=True)
class Mail:
    notice_id: str
    to: str
    subject: str
    body: str


def build_message(mail: Mail, sender: str) -> EmailMessage:
    """Plain-text message; the Message-ID is derived from the notice id, so even a resend a human forces is
    recognisable as the same notice by the recipient's mail system."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = f"<{mail.notice_id}@{MESSAGE_ID_DOMAIN}>"
    msg.set_content(mail.body)
    return msg


class Mailer(dg.ConfigurableResource):
    """SMTP settings for customer notices; an empty host means console-only (the embedded default)."""

    host: str = Field(default="", description="SMTP server; empty: print notices to the console and keep them in the table only.")
    port: int = Field(default=25, description="SMTP port (587 for STARTTLS submission, 25 for a local relay).")
    user: str = Field(default="", description="SMTP login; empty: no authentication.")
    password: str = Field(default="", description="SMTP password (set through DEMAND_CONTROL_SMTP_PASSWORD).")
    sender: str = Field(default=DEFAULT_FROM, description="From address of customer notices.")
    starttls: bool = Field(default=False, description="Upgrade the connection with STARTTLS before logging in.")
    timeout_seconds: float = Field(default=30.0, description="Socket timeout of each SMTP conversation.")

    @property
    def configured(self) -> bool:
        return bool(self.host.strip())

    @property
    def channel(self) -> str:
        return f"smtp://{self.host}:{self.port}" if self.configured else "console"

    def send(self, mail: Mail) -> None:
        """Hand one message to the SMTP server. Raises NotDelivered or DeliveryUnknown (see the module)."""
        if not self.configured:
            raise NotDelivered("no SMTP host configured", permanent=True)
        message = build_message(mail, self.sender)
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
        except (OSError, smtplib.SMTPException) as exc:
            raise NotDelivered(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        try:
            try:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if self.user:
                    smtp.login(self.user, self.password)
            except smtplib.SMTPResponseException as exc:
                raise NotDelivered(f"SMTP {exc.smtp_code} before sending: {exc.smtp_error!r}", permanent=exc.smtp_code >= 500) from exc
            except (OSError, smtplib.SMTPException) as exc:
                raise NotDelivered(f"SMTP session failed before sending: {exc}") from exc
            try:
                refused = smtp.send_message(message)
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                raise NotDelivered(f"recipient refused: {exc.recipients}", permanent=all(c >= 500 for c in codes)) from exc
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                # The server answered with a refusal: it did not take the message.
                raise NotDelivered(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=exc.smtp_code >= 500) from exc
            except (OSError, socket.timeout, smtplib.SMTPException) as exc:
                # Lost while the message was on the wire or its final answer was on the way back.
                raise DeliveryUnknown(f"connection lost during the hand-over to {self.host}:{self.port}: {exc!r}") from exc
            if refused:
                raise NotDelivered(f"recipient refused: {refused}", permanent=True)
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


def mailer_from_env(deferred: bool = True) -> Mailer:
    """The Mailer as DEMAND_CONTROL_SMTP_* and DEMAND_CONTROL_MAIL_FROM configure it, resolved at run start."""

    def _env(name: str, default: str) -> dg.EnvVar | str:
        if not os.environ.get(name):
            return default
        return dg.EnvVar(name) if deferred else os.environ[name]

    port = os.environ.get(SMTP_PORT_ENV)
    # dg.EnvVar has no boolean form: the flag is read when the definitions load.
    starttls = (os.environ.get(SMTP_STARTTLS_ENV) or "").strip().lower() in ("1", "true", "yes", "on")
    return Mailer(
        host=_env(SMTP_HOST_ENV, ""),
        port=(dg.EnvVar.int(SMTP_PORT_ENV) if deferred else int(port)) if port else (587 if starttls else 25),
        user=_env(SMTP_USER_ENV, ""),
        password=_env(SMTP_PASSWORD_ENV, ""),
        sender=_env(MAIL_FROM_ENV, DEFAULT_FROM),
        starttls=starttls,
    )
