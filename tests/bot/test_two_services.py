"""Two `lorebot serve` processes on one database and one slow SMTP relay: each reply once."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from email import message_from_bytes
from pathlib import Path

from sqlalchemy import select

from state.db import Database
from state.models import ReplyRow
from tests.support.smtpd import SmtpServer
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
N_REPLIES = 8


def write_config(tmp_path: Path, smtp: SmtpServer) -> Path:
    cfg = tmp_path / "lorebot.toml"
    cfg.write_text(f"""
lists = []
trees = []

[paths]
state = "{tmp_path / "state"}"
cache = "{tmp_path / "cache"}"

[intake]
poll_interval = 3600

[mail]
mode = "smtp"
smtp_host = "{smtp.host}"
smtp_port = {smtp.port}
sender = "lorebot <lorebot@example.org>"
deliver_interval = 1
rate_per_hour = 1000
rate_per_author_per_hour = 1000

[service]
heartbeat_seconds = 1
stale_claim_seconds = 30
""")
    return cfg


def queue_replies(db: Database) -> list[str]:
    msgids = [f"lorebot-two-{i}@example.org" for i in range(N_REPLIES)]
    with db.session() as s:
        for i, msgid in enumerate(msgids):
            raw = (
                f"From: lorebot <lorebot@example.org>\r\nTo: dev{i}@example.org\r\n"
                f"Subject: Re: [PATCH] x\r\nMessage-ID: <{msgid}>\r\n"
                "Date: Sat, 28 Nov 2026 06:00:00 +0000\r\n\r\nhello\r\n"
            )
            s.add(
                ReplyRow(
                    msgid=msgid,
                    to_addrs=[f"dev{i}@example.org"],
                    author_email=f"dev{i}@example.org",
                    subject="Re: [PATCH] x",
                    raw=raw,
                    digest=f"d{i}",
                    state="pending",
                )
            )
    return msgids


def test_two_services_send_each_reply_exactly_once(tmp_path: Path) -> None:
    with SmtpServer(data_delay=0.2) as smtp:
        cfg = write_config(tmp_path, smtp)
        db = Database(f"sqlite:///{tmp_path / 'state' / 'lorebot.db'}")
        msgids = queue_replies(db)
        logs = [tmp_path / f"serve{i}.log" for i in range(2)]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "--config", str(cfg), "serve", "--no-web"],
                cwd=REPO,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            )
            for log in logs
        ]
        try:

            def states() -> Counter[str]:
                with db.session() as s:
                    return Counter(s.scalars(select(ReplyRow.state)))

            # a service that exits early fails at once, not at the timeout
            wait_for(
                lambda: states() == {"sent": N_REPLIES} or any(p.poll() is not None for p in procs),
                120,
                "every reply sent",
                interval=0.1,
                context=lambda: (
                    f"replies {dict(states())}; logs:\n"
                    + "\n".join(log.read_text()[-3000:] for log in logs)
                ),
            )
            assert states() == {"sent": N_REPLIES}, "\n".join(
                log.read_text()[-3000:] for log in logs
            )
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            codes = [p.wait(60) for p in procs]
        assert codes == [0, 0]
        got = Counter(message_from_bytes(r.content)["Message-ID"] for r in smtp.received)
        assert got == Counter(f"<{m}>" for m in msgids)  # every one, none twice
        db.dispose()
        # and by their own account: one "sent" line per reply across both services
        assert sum(log.read_text().count("> sent") for log in logs) == N_REPLIES
