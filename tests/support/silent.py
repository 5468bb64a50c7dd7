"""A TCP server on loopback that accepts connections and never says a word.

What a stalled SMTP relay or a hung HTTP server looks like from the client:
the connect succeeds, then nothing comes. Connections are held open until
the server stops.

    with SilentServer() as server:
        ... connect to server.host:server.port ...
        assert server.accepted >= 1
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class SilentServer:
    host = "127.0.0.1"

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, 0))
        self._sock.listen(16)
        self.port: int = self._sock.getsockname()[1]
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent", daemon=True)

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self._held)

    def _accept(self) -> None:
        self._sock.settimeout(0.1)  # to notice stop()
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._held.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
        with self._lock:
            for conn in self._held:
                conn.close()
