"""The one runner: a timeout ends the whole process group; logs are numbered per run."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from bot.core.runner import Runner
from tests.support.waiting import wait_for


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting for its reaper."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    """make's compilers must not outlive a timed-out make: here a shell's background child."""
    pidfile = tmp_path / "child.pid"
    r = Runner().run(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], timeout=5)
    assert r.timed_out and not r.ok
    child = int(pidfile.read_text())
    # SIGKILL is sent; on a loaded machine the child takes a moment to be gone
    wait_for(lambda: not _alive(child), what=f"pid {child} to die")


def test_max_stdout_reads_the_head_and_ends_the_command(tmp_path: Path) -> None:
    """The head of something endless, without holding the rest: `yes` never ends."""
    r = Runner().run(["yes", "lorebot"], timeout=60, max_stdout=100_000)
    assert r.ok and len(r.stdout_bytes) == 100_000
    assert r.stdout_bytes.startswith(b"lorebot\nlorebot\n")
    short = Runner().run(["printf", "abc"], max_stdout=100_000)
    assert short.ok and short.stdout_bytes == b"abc"
    failed = Runner().run(["sh", "-c", "echo out; echo err >&2; exit 3"], max_stdout=10)
    assert failed.returncode == 3 and failed.stdout == "out\n" and "err" in failed.stderr
    slow = Runner().run(["sleep", "300"], timeout=1, max_stdout=10)
    assert slow.timed_out and not slow.ok


def test_log_numbering_is_per_run(tmp_path: Path) -> None:
    for name in ("a", "b"):
        runner = Runner(tmp_path / name)
        runner.run(["true"], name="first")
        runner.run(["true"], name="second")
    for name in ("a", "b"):
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == [
            "0001-first.log",
            "0002-second.log",
        ]


def test_a_streamed_command_that_hangs_is_killed_with_its_group(tmp_path: Path) -> None:
    def write(out: IO[bytes]) -> None:
        out.write(b"x\n")

    r = Runner().feed(["sh", "-c", "sleep 600 & cat >/dev/null; sleep 600"], write, timeout=1)
    assert r.timed_out and not r.ok
