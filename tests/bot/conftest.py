"""Fixtures the service's tests share: the database, and real servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from state.db import Database
from tests.support.pi import PublicInboxServer, running_server
from tests.support.smtpd import SmtpServer
from tests.support.web import NO_CHROMIUM, have_chromium, headless_chromium


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    """The database `settings` points to (SQLite under tmp_path/state), migrated."""
    database = Database(settings.database_url)
    yield database
    database.dispose()


@pytest.fixture
def pi_server(tmp_path: Path) -> Iterator[PublicInboxServer]:
    """A running, empty public-inbox (skipped when public-inbox is missing)."""
    yield from running_server(tmp_path)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server that keeps what it receives; stopped after the test."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless chromium driven by Selenium (skipped when chromium is missing)."""
    if not have_chromium():
        pytest.skip(NO_CHROMIUM)
    with headless_chromium(tmp_path / "chromium-profile") as driver:
        yield driver
