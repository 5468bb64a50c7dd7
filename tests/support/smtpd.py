"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives.

    with SmtpServer() as server:
        ... send to server.host:server.port ...
        assert server.received[0].rcpt_tos == [...]

Tests get a started one from the `smtp_server` fixture (tests/bot/conftest.py).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from bot.demo.inbox import free_port


@dataclass(frozen=True)
class Received:
    """One message as the server got it: envelope sender, recipients, raw bytes."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    mail_options: list[str]


class _Handler:
    def __init__(self, refuse: set[str], answers: dict[str, list[str]], data_delay: float) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.refuse = {a.lower() for a in refuse}
        self.answers = {verb: list(replies) for verb, replies in answers.items()}
        self.data_delay = data_delay
        self.commands: list[str] = []

    def _scripted(self, verb: str) -> str | None:
        """The next scripted answer to `verb`, if any is left (each is used once)."""
        with self.lock:
            self.commands.append(verb)
            replies = self.answers.get(verb)
            return replies.pop(0) if replies else None

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        scripted = self._scripted("MAIL")
        if scripted:
            return scripted
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        scripted = self._scripted("RCPT")
        if scripted:
            return scripted
        if address.lower() in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        scripted = self._scripted("DATA")
        if scripted:
            return scripted
        if self.data_delay:
            await asyncio.sleep(self.data_delay)  # a slow relay, as seen by the client
        content = envelope.original_content or b""
        with self.lock:
            self.received.append(
                Received(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=list(envelope.rcpt_tos),
                    content=content,
                    mail_options=list(envelope.mail_options),
                )
            )
        return "250 OK"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 and a free port; started by `start()` or `with`.

    `refuse` lists recipient addresses the server answers 550; `answers` maps
    MAIL, RCPT or DATA to answers given, one each, to the first such commands
    (e.g. {"RCPT": ["451 4.3.0 try later"]}); `data_delay` makes each DATA
    take that long; other keyword arguments go to aiosmtpd's SMTP class (e.g.
    authenticator, auth_required).
    """

    host = "127.0.0.1"

    def __init__(
        self,
        refuse: set[str] | frozenset[str] = frozenset(),
        answers: dict[str, list[str]] | None = None,
        data_delay: float = 0.0,
        **smtp_kwargs: Any,
    ) -> None:
        self._handler = _Handler(set(refuse), answers or {}, data_delay)
        self._smtp_kwargs = smtp_kwargs
        self._controller: Controller | None = None
        self.port = 0

    @property
    def received(self) -> list[Received]:
        with self._handler.lock:
            return list(self._handler.received)

    @property
    def commands(self) -> list[str]:
        """The MAIL, RCPT and DATA commands seen so far, in order."""
        with self._handler.lock:
            return list(self._handler.commands)

    def start(self) -> SmtpServer:
        last: Exception | None = None
        for _ in range(5):  # another process may take the port between probe and bind
            self.port = free_port()
            controller = Controller(
                self._handler, hostname=self.host, port=self.port, **self._smtp_kwargs
            )
            try:
                controller.start()
            except (OSError, RuntimeError) as e:
                last = e
                continue
            self._controller = controller
            return self
        raise RuntimeError(f"cannot start the SMTP test server: {last}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
