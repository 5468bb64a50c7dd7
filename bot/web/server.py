"""The status page as a server thread beside the service (uvicorn on the settings' address)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import uvicorn

from bot.web.app import create_app
from bot.web.queries import WorkerSource
from config.settings import Settings
from state.db import Database

log = logging.getLogger("lorebot.web")


class PageServer:
    """uvicorn in a daemon thread; `stop()` asks it to exit and waits."""

    def __init__(self, settings: Settings, db: Database, workers: WorkerSource):
        app = create_app(settings, db, service_state=workers)
        config = uvicorn.Config(app, host=settings.web.listen, port=settings.web.port,
                                log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="web", daemon=True)
        self.where = f"{settings.web.listen}:{settings.web.port}"

    def start(self, timeout: float = 10.0) -> bool:
        """Start serving; whether it came up within `timeout` seconds."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.server.started:
            log.info("web on http://%s", self.where)
        else:
            # the bot's main job goes on; the page is missing, say so loudly
            log.error("the status page did not start on %s (port in use?)", self.where)
        return bool(self.server.started)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def page_factory(settings: Settings, db: Database) -> Callable[[WorkerSource], PageServer]:
    """What `Service(web=...)` takes: the board of workers in, a started page out."""

    def start(workers: WorkerSource) -> PageServer:
        page = PageServer(settings, db, workers)
        page.start()
        return page

    return start
