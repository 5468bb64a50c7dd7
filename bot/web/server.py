"""The status page's HTTP server (uvicorn) on a thread of the service."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.run.health import Health, WorkerBoard
from config.settings import Settings
from state.db import Database

log = logging.getLogger("lorebot.web")


class WebServer:
    """uvicorn serving bot.web's app; `start()` waits until it listens (or failed to)."""

    def __init__(
        self, settings: Settings, db: Database, board: WorkerBoard, health: Health
    ) -> None:
        self.settings = settings
        self.db = db
        self.board = board
        self.health = health
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> bool:
        """Start serving; whether it listens (False: logged loudly, the bot goes on)."""
        import uvicorn

        from bot.web import create_app

        web = self.settings.web
        app = create_app(self.settings, self.db, service_state=self.board, health=self.health)
        config = uvicorn.Config(
            app, host=web.listen, port=web.port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if self._server.started:
            log.info("web on http://%s:%s", web.listen, web.port)
            return True
        # the bot's main job goes on; the page is missing, say so loudly
        log.error("the status page did not start on %s:%s (port in use?)", web.listen, web.port)
        return False

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)


def page_factory(settings: Settings, db: Database) -> Callable[[WorkerBoard, Health], WebServer]:
    """What `Service(web=...)` takes: the service's board and health in, a started page out."""

    def start(board: WorkerBoard, health: Health) -> WebServer:
        page = WebServer(settings, db, board, health)
        page.start()
        return page

    return start
