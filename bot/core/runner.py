"""The one place where lorebot runs external commands.

Every command is logged with argv, cwd, duration, exit code and output, to the
Python log and, when given, to a per-run log directory.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO

log = logging.getLogger("lorebot.runner")


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    cwd: str
    returncode: int
    stdout_bytes: bytes  # exactly what the command wrote (mail is bytes, not text)
    stderr: str
    seconds: float
    timed_out: bool = False

    @cached_property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class CommandError(Exception):
    """A command that had to succeed failed; the message carries its words."""

    def __init__(self, result: CommandResult, what: str = ""):
        self.result = result
        tail = (result.stderr or result.stdout).strip()[-2000:]
        head = what or " ".join(result.argv[:4])
        state = "timed out" if result.timed_out else f"exit {result.returncode}"
        super().__init__(f"{head}: {state}: {tail}")


class Runner:
    """Runs commands with a timeout and logs them; one per run (log_dir) or shared."""

    def __init__(self, log_dir: Path | None = None, env: Mapping[str, str] | None = None):
        self.log_dir = log_dir
        self.env = dict(env or {})
        self._counter = itertools.count(1)  # log files numbered per run, in order
        if log_dir:
            log_dir.mkdir(parents=True, exist_ok=True)

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = 600,
        input: str | bytes | None = None,
        check: bool = False,
        name: str = "",
        inherit_env: bool = True,
        max_stdout: int | None = None,
    ) -> CommandResult:
        """Run `argv` to its end or its timeout (the process group is then killed).

        `inherit_env=False` gives it only `env` (the sandbox's wrappers).
        `max_stdout`: keep at most this many bytes of stdout; the command is
        killed once it wrote that much (reading the head of something big
        without holding all of it). It then counts as successful.
        """
        args = tuple(str(a) for a in argv)
        full_env = {**os.environ, **self.env, **(env or {})} if inherit_env else dict(env or {})
        start = time.monotonic()
        timed_out = False
        data = input.encode() if isinstance(input, str) else input
        try:
            # a session of its own: on a timeout the whole group goes (make's compilers
            # too), not only the direct child
            proc = subprocess.Popen(
                args,
                cwd=cwd,
                env=full_env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError as e:
            rc, out, err = 127, b"", f"command not found: {e.filename}".encode()
        else:
            try:
                if max_stdout is None:
                    out, err = proc.communicate(data, timeout=timeout)
                    rc = proc.returncode
                else:
                    out, err, head_rc = _head(proc, data, max_stdout, timeout)
                    rc = -9 if head_rc is None else head_rc
                    if head_rc is None:  # its timer killed it
                        timed_out = True
                        err += f"\n[lorebot: timed out after {timeout} s]".encode()
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group(proc.pid)
                try:
                    out, err = proc.communicate(timeout=10)
                except subprocess.TimeoutExpired:  # a descendant left the group, kept a pipe
                    proc.kill()
                    proc.wait()
                    out, err = b"", b""
                rc = -9
                err += f"\n[lorebot: timed out after {timeout} s]".encode()
            except BaseException:
                kill_group(proc.pid)
                proc.wait()
                raise
        return self._finish(args, cwd, rc, out, err, start, timed_out, name, check)

    def feed(
        self,
        argv: Sequence[str | os.PathLike[str]],
        write: Callable[[IO[bytes]], None],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = 3600,
        check: bool = False,
        name: str = "",
    ) -> CommandResult:
        """Run `argv` with its stdin streamed by `write` (too big to hold: a tarball's
        fast-import stream); the outputs are drained meanwhile, the timeout kills the group.
        """
        args = tuple(str(a) for a in argv)
        start = time.monotonic()
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env={**os.environ, **self.env, **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        outputs: dict[str, bytes] = {}

        def drain(key: str, stream: IO[bytes]) -> None:
            outputs[key] = stream.read()

        readers = [
            threading.Thread(target=drain, args=(k, st), daemon=True)
            for k, st in (("out", proc.stdout), ("err", proc.stderr))
            if st is not None
        ]
        for t in readers:
            t.start()
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            kill_group(proc.pid)

        timer = threading.Timer(timeout, expire) if timeout else None
        if timer:
            timer.start()
        try:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError), proc.stdin:
                write(proc.stdin)
            rc = proc.wait()
        except BaseException:
            kill_group(proc.pid)
            proc.wait()
            raise
        finally:
            if timer:
                timer.cancel()
            for t in readers:
                t.join(timeout=10)
        out, err = outputs.get("out", b""), outputs.get("err", b"")
        return self._finish(args, cwd, rc, out, err, start, expired.is_set(), name, check)

    def _finish(
        self,
        args: tuple[str, ...],
        cwd: str | os.PathLike[str] | None,
        rc: int,
        out: bytes,
        err: bytes,
        start: float,
        timed_out: bool,
        name: str,
        check: bool,
    ) -> CommandResult:
        """The result of a command that ended: logged, and raised when it had to succeed."""
        result = CommandResult(
            argv=args,
            cwd=str(cwd or os.getcwd()),
            returncode=rc,
            stdout_bytes=out,
            stderr=err.decode("utf-8", "replace"),
            seconds=time.monotonic() - start,
            timed_out=timed_out,
        )
        self._log(result, name)
        if check and not result.ok:
            raise CommandError(result, name)
        return result

    def spawn(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        name: str = "",
    ) -> subprocess.Popen[bytes]:
        """Start a daemon (public-inbox-httpd of the demo) in a session of its own; the
        caller stops it with `stop`, which takes its whole group."""
        args = [str(a) for a in argv]
        log.debug("spawn %s", " ".join(args))
        if self.log_dir:
            n = next(self._counter)
            (self.log_dir / f"{n:04d}-{name or Path(args[0]).name}-spawn.log").write_text(
                f"$ {' '.join(args)}\n"
            )
        return subprocess.Popen(
            args,
            env={**os.environ, **self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    @staticmethod
    def stop(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
        """SIGTERM a spawned daemon, SIGKILL its group after `grace` seconds."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                kill_group(proc.pid)
                proc.wait()

    def _log(self, r: CommandResult, name: str) -> None:
        log.debug("%s (cwd %s) -> %s in %.2fs", " ".join(r.argv), r.cwd, r.returncode, r.seconds)
        if not self.log_dir:
            return
        n = next(self._counter)
        label = name or Path(r.argv[0]).name
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:40]
        path = self.log_dir / f"{n:04d}-{safe}.log"
        with path.open("w") as f:
            f.write(f"$ {' '.join(r.argv)}\n# cwd: {r.cwd}\n")
            f.write(f"# exit: {r.returncode}  time: {r.seconds:.2f}s")
            f.write("  (timed out)\n" if r.timed_out else "\n")
            f.write("# stdout:\n" + r.stdout[-200_000:] + "\n# stderr:\n" + r.stderr[-200_000:])


def _head(
    proc: subprocess.Popen[bytes], data: bytes | None, limit: int, timeout: float | None
) -> tuple[bytes, bytes, int | None]:
    """Read up to `limit` bytes of stdout, then end the command; (stdout, stderr, rc),
    rc None when the timeout killed it."""
    stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
    assert stdin is not None and stdout is not None and stderr is not None
    err_chunks: list[bytes] = []
    # stderr drained aside, so a chatty command cannot block on a full pipe
    drain = threading.Thread(target=lambda: err_chunks.append(stderr.read()), daemon=True)
    drain.start()
    if data:
        with contextlib.suppress(BrokenPipeError):
            stdin.write(data)
    stdin.close()
    deadline = None if timeout is None else time.monotonic() + timeout
    timer = None
    if deadline is not None:
        timer = threading.Timer(timeout or 0, kill_group, args=(proc.pid,))
        timer.daemon = True
        timer.start()
    out = bytearray()
    try:
        while len(out) < limit:
            chunk = stdout.read1(min(65536, limit - len(out)))  # type: ignore[attr-defined]
            if not chunk:
                break
            out += chunk
        cut = len(out) >= limit
        if cut:
            kill_group(proc.pid)
        rc = proc.wait()
    finally:
        if timer is not None:
            timer.cancel()
    drain.join(10)
    if deadline is not None and time.monotonic() > deadline and not cut:
        return bytes(out), b"".join(err_chunks), None
    return bytes(out), b"".join(err_chunks), 0 if cut else rc


def kill_group(pgid: int) -> None:
    """SIGKILL a process group (a command and everything it started); gone is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
