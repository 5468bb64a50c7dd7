"""An inbox that stalls: its manifest names an epoch, then git's requests are accepted and
never answered, as a hung or overloaded server does (or, with `trickle`, answered a
byte at a time, never to the end)."""

from __future__ import annotations

import gzip
import json
import select
import socket
import threading
from types import TracebackType

from bot.demo.inbox import free_port


class StallingInbox:
    """HTTP on loopback: `GET /<name>/manifest.js.gz` answers; every other request hangs.

    `open_connections` counts requests held now; a client that gives up (git
    killed by its timeout) closes its end, which the server notices.
    """

    def __init__(self, name: str = "stalled", trickle: bool = False) -> None:
        self.name = name
        self.trickle = trickle  # answer 200, then a byte every 0.1 s, never the end
        self.port = free_port()
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.open_connections = 0
        self.stalled_requests: list[str] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.name}"

    def __enter__(self) -> StallingInbox:
        self._thread.start()
        return self

    def __exit__(
        self,
        _t: type[BaseException] | None,
        _e: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(10)

    def _accept(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                more = conn.recv(65536)
                if not more:
                    return
                head += more
            path = head.split(b" ", 2)[1].decode()
            if path.endswith("/manifest.js.gz"):
                body = gzip.compress(
                    json.dumps({f"/{self.name}/git/0.git": {"fingerprint": "f0"}}).encode()
                )
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
                return
            with self._lock:
                self.open_connections += 1
                self.stalled_requests.append(path)
            try:
                if self.trickle:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                # say nothing (or a byte); return when the client hangs up or we stop
                while not self._stop.is_set():
                    ready, _, _ = select.select([conn], [], [], 0.1)
                    if ready and not conn.recv(65536):
                        return
                    if self.trickle:
                        conn.sendall(b"1\r\nx\r\n")
            except OSError:
                return
            finally:
                with self._lock:
                    self.open_connections -= 1
