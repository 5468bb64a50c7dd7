"""Database: engine, sessions and schema migrations (Alembic), applied on open."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


class DatabaseOpenError(Exception):
    """The database cannot be opened or migrated (unreachable, read-only, disk full)."""


class Database:
    """One database: migrated to the newest schema when opened."""

    def __init__(self, url: str, migrate: bool = True, busy_timeout: float = 30.0):
        """`busy_timeout`: seconds a SQLite writer waits for another's lock before failing."""
        self.url = url
        if url.startswith("sqlite:///"):
            where = Path(url.removeprefix("sqlite:///")).parent
            try:
                where.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise DatabaseOpenError(f"cannot make {where}: {e.strerror or e}") from e
        self.engine: Engine = create_engine(url, future=True)
        if url.startswith("sqlite"):
            millis = max(0, int(busy_timeout * 1000))
            event.listen(
                self.engine, "connect", lambda conn, record: _sqlite_pragmas(conn, record, millis)
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            try:
                self.migrate()
            except OperationalError as e:
                self.engine.dispose()
                safe = make_url(url).render_as_string(hide_password=True)
                reason = str(e.orig or e).splitlines()[0]
                raise DatabaseOpenError(f"cannot open {safe}: {reason}") from e

    def migrate(self) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        s = self._sessions()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, busy_millis: int) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the web page read while a worker writes; busy_timeout makes
    # concurrent writers (several processes) wait instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={busy_millis}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
