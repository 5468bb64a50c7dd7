"""Start-up checks: the faults an operator fixes before lorebot can run, as one line each.

Every check raises StartupError with a message that names the setting or path
and says what to do; `lorebot` prints it and exits 2, with no traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from pathlib import Path

from config.settings import Settings
from state.db import Database, DatabaseOpenError

PROBE_BYTES = 64 * 1024  # a write this big fails on a full disk, not only on a quota of 0


class StartupError(Exception):
    """lorebot cannot start; the message names the key or path and what to do."""


def _advice(key: str, code: int | None) -> str:
    env = "LOREBOT_" + key.upper().replace(".", "__")
    if code == errno.ENOSPC or code == errno.EDQUOT:
        return f"free space there, or point {key} ({env}) at another disk"
    return f"make it a writable directory, or point {key} ({env}) at one"


def check_writable(key: str, path: Path) -> None:
    """Create `path` if needed and write (and remove) a probe file in it."""
    probe = path / f".lorebot-probe-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as f:  # buffered: a short write is retried, then ENOSPC
            f.write(b"\0" * PROBE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        what = e.strerror or type(e).__name__
        raise StartupError(f"{key}: {path}: {what}; {_advice(key, e.errno)}") from e
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)


def check_paths(settings: Settings) -> None:
    """The state and cache directories exist (or can be made) and take writes."""
    check_writable("paths.state", settings.paths.state)
    check_writable("paths.cache", settings.paths.cache)


def open_database(settings: Settings) -> Database:
    """The database, migrated; StartupError naming `database` when it cannot be opened."""
    try:
        return Database(settings.database_url)
    except DatabaseOpenError as e:
        key = "database" if settings.database else "paths.state"
        raise StartupError(
            f"{key}: {e}; check that the database is reachable and writable "
            f"(set {key} or LOREBOT_{key.upper().replace('.', '__')})"
        ) from e


def check_listen(settings: Settings) -> None:
    """The status page's address can be listened on (resolvable, local, port free)."""
    web = settings.web
    where = f"{web.listen}:{web.port}"
    try:
        infos = socket.getaddrinfo(web.listen, web.port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise StartupError(
            f"web.listen: cannot resolve {web.listen!r} ({e}); give an address of this machine"
        ) from e
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as e:
        raise StartupError(
            f"web.listen/web.port: cannot listen on {where} ({e.strerror or e}); "
            "free the port, pick another web.port, or start with --no-web"
        ) from e
    finally:
        sock.close()
