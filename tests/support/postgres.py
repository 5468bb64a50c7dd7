"""A real PostgreSQL server (initdb in a temp dir, pg_ctl on a free loopback port), for
tests of the shared state; its binaries found by `pg_config --bindir` or under
/usr/lib/postgresql/<version>/bin. As root it runs as the `postgres` user (initdb
refuses root), in a directory of its own that user can reach."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.lifecycle import Managed
from tests.support.redis import free_port


def bindir() -> Path | None:
    """Where initdb and pg_ctl are, or None."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        r = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        d = Path(r.stdout.strip())
        if r.returncode == 0 and (d / "initdb").exists():
            return d
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=os.path.getmtime)
    return Path(found[-1]).parent if found else None


class PostgresServer(Managed):
    """`initdb` + `pg_ctl start` on 127.0.0.1:`port`; `url` is a psycopg SQLAlchemy URL of
    the database `lorebot`."""

    def __init__(self) -> None:
        self.bin = bindir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="lorebot-pg-"))
        self.data = self.root / "data"
        self.user: str | None = "postgres" if os.getuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://lorebot@127.0.0.1:{self.port}/lorebot"

    def _run(self, *argv: str) -> None:
        cmd = [*(["runuser", "-u", self.user, "--"] if self.user else []), *argv]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{' '.join(argv)}: {r.stdout}{r.stderr}"

    def start(self) -> None:
        assert self.bin is not None, "PostgreSQL missing: apt-get install postgresql"
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        b = self.bin
        self._run(str(b / "initdb"), "-D", str(self.data), "-U", "lorebot", "--auth=trust",
                  "-E", "UTF8", "--no-sync")  # fmt: skip
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        self._run(str(b / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                  "-o", opts, "-w", "start")  # fmt: skip
        self._run(str(b / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "lorebot",
                  "lorebot")  # fmt: skip

    def stop(self) -> None:
        if self.bin and (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
