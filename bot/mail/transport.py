"""Mail transports: SMTP, or the outbox Maildir; what a refusal means for the reply.

SMTP answers are sorted by what the delivery should do next:

- 4xx anywhere, a timeout or a dropped connection: temporary
  (`MailTemporary`): the reply stays pending and is retried with backoff;
- 5xx on one recipient: that recipient is left out, the others get the mail
  (returned as the refused recipients);
- 5xx on AUTH, STARTTLS or MAIL, or on every recipient: the relay refuses *us*,
  not this mail (`MailConfigFault`): every reply stays pending and the fault
  is shown until an operator fixes the settings;
- 5xx after DATA: this message is refused for good (`MailRefused`).

The transaction is driven command by command (not `sendmail`) because
`sendmail` cannot tell a 451 on RCPT from a 550, nor MAIL from RCPT.
"""

from __future__ import annotations

import contextlib
import mailbox
import os
import smtplib
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from config.settings import Settings


class MailError(Exception):
    """The transport did not take a message."""


class MailTemporary(MailError):
    """Try again later: the reply stays pending and backs off.

    `whole_pass` is set when the server itself is unreachable, so the other
    replies of the same pass would only wait for the same timeout.
    """

    def __init__(self, message: str, *, whole_pass: bool = False) -> None:
        super().__init__(message)
        self.whole_pass = whole_pass


class MailConfigFault(MailError):
    """The relay refuses this sender or these credentials: the settings need fixing."""


class MailRefused(MailError):
    """The server refused this message for good (5xx after DATA): it is dropped."""


class Transport(Protocol):
    """Where mail goes: returns the recipients refused for good (empty when all took it)."""

    def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> dict[str, str]: ...


class MaildirTransport:
    """The outbox: one file per message in a Maildir, for a person or a script to send."""

    def __init__(self, path: os.PathLike[str] | str):
        self.path = Path(path)

    def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> dict[str, str]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            box = mailbox.Maildir(self.path, create=True)
            box.add(raw.replace(b"\r\n", b"\n"))
        except OSError as e:  # a full or read-only disk: it may be fixed, keep the reply
            raise MailTemporary(f"outbox {self.path}: {e}", whole_pass=True) from e
        return {}


def _answer(code: int, text: bytes | str) -> str:
    msg = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {msg}".strip()


def _rset(smtp: smtplib.SMTP) -> None:
    """End a refused transaction; a server that hung up meanwhile changes nothing."""
    with contextlib.suppress(OSError, smtplib.SMTPException):
        smtp.rset()


class SmtpTransport:
    """SMTP with no security, STARTTLS or implicit TLS; login from the environment."""

    def __init__(self, settings: Settings):
        self.mail = settings.mail
        self.where = f"SMTP {self.mail.smtp_host}:{self.mail.smtp_port}"

    def _connect(self) -> smtplib.SMTP:
        m = self.mail
        # the timeout bounds the connect, the greeting and every later command
        if m.smtp_security == "ssl":
            return smtplib.SMTP_SSL(
                m.smtp_host,
                m.smtp_port,
                timeout=m.smtp_timeout,
                context=ssl.create_default_context(),
            )
        return smtplib.SMTP(m.smtp_host, m.smtp_port, timeout=m.smtp_timeout)

    def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> dict[str, str]:
        try:
            smtp = self._connect()
        except smtplib.SMTPConnectError as e:  # the greeting was not 220
            raise self._by_code(
                e.smtp_code, f"greeting: {_answer(e.smtp_code, e.smtp_error)}", whole_pass=True
            ) from e
        except (OSError, smtplib.SMTPException) as e:
            raise MailTemporary(f"{self.where}: cannot connect: {e}", whole_pass=True) from e
        try:
            with smtp:
                self._hello(smtp)
                return self._transaction(smtp, sender, recipients, raw)
        except MailError:
            raise
        except smtplib.SMTPResponseException as e:
            raise self._by_code(
                e.smtp_code, _answer(e.smtp_code, e.smtp_error), whole_pass=True
            ) from e
        except (OSError, smtplib.SMTPException) as e:  # timeouts, disconnects
            raise MailTemporary(f"{self.where}: {type(e).__name__}: {e}", whole_pass=True) from e

    def _by_code(self, code: int, what: str, *, whole_pass: bool = False) -> MailError:
        if 500 <= code < 600:
            return MailConfigFault(f"{self.where}: {what}")
        return MailTemporary(f"{self.where}: {what}", whole_pass=whole_pass)

    def _hello(self, smtp: smtplib.SMTP) -> None:
        smtp.ehlo_or_helo_if_needed()
        if self.mail.smtp_security == "starttls":
            try:
                smtp.starttls(context=ssl.create_default_context())
            except (smtplib.SMTPNotSupportedError, ssl.SSLError) as e:
                raise MailConfigFault(f"{self.where}: STARTTLS: {e}") from e
            smtp.ehlo()
        user = os.environ.get("LOREBOT_SMTP_USER", "")
        if user:
            try:
                smtp.login(user, os.environ.get("LOREBOT_SMTP_PASSWORD", ""))
            except smtplib.SMTPNotSupportedError as e:
                raise MailConfigFault(f"{self.where}: AUTH: {e}") from e
            except smtplib.SMTPResponseException as e:
                raise self._by_code(
                    e.smtp_code, f"AUTH: {_answer(e.smtp_code, e.smtp_error)}"
                ) from e
            except smtplib.SMTPException as e:  # no mechanism both sides know
                raise MailConfigFault(f"{self.where}: AUTH: {e}") from e

    def _transaction(
        self, smtp: smtplib.SMTP, sender: str, recipients: Sequence[str], raw: bytes
    ) -> dict[str, str]:
        options = ["BODY=8BITMIME"] if not raw.isascii() and smtp.has_extn("8bitmime") else []
        code, text = smtp.mail(sender, options)
        if code != 250:
            _rset(smtp)
            raise self._by_code(code, f"MAIL FROM:<{sender}>: {_answer(code, text)}")
        refused: dict[str, str] = {}
        later: dict[str, str] = {}
        for rcpt in recipients:
            code, text = smtp.rcpt(rcpt)
            if code in (250, 251):
                continue
            (refused if 500 <= code < 600 else later)[rcpt] = _answer(code, text)
        if later:
            # all or nobody: a partial send now would leave the rest to a second copy later
            _rset(smtp)
            raise MailTemporary(
                f"{self.where}: RCPT " + ", ".join(f"{a}: {r}" for a, r in later.items())
            )
        if len(refused) == len(recipients):
            _rset(smtp)
            raise MailConfigFault(
                f"{self.where}: every recipient refused: "
                + ", ".join(f"{a}: {r}" for a, r in refused.items())
            )
        code, text = smtp.data(raw)
        if code != 250:
            what = f"{self.where}: DATA: {_answer(code, text)}"
            raise MailRefused(what) if 500 <= code < 600 else MailTemporary(what)
        return refused


def make_transport(settings: Settings) -> Transport:
    """The transport the settings ask for (mail.mode)."""
    if settings.mail.mode == "smtp":
        return SmtpTransport(settings)
    return MaildirTransport(settings.paths.outbox)
