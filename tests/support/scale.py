"""A series on tests/fakelinux that builds on four arches (x86_64, i386, arm64, powerpc
with Debian's cross compilers): the input of the scale-out tests, in seconds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.fakelinux import REWORD, UNUSED_SEEN, fake_tree
from tests.support.kernel import WrittenPatch, commit_series, git, replace_in
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]

ARCHES = ["x86_64", "i386", "arm64", "powerpc"]
PRESETS = {"powerpc": "defconfig"}  # fakelinux has no pseries_defconfig
COMPILERS = ("gcc", "aarch64-linux-gnu-gcc", "powerpc64le-linux-gnu-gcc", "ccache", "make")
MISSING = [c for c in COMPILERS if shutil.which(c) is None]

# a reworded comment, a W=1 warning at patch 2, an error only with FOO=n at patch 3
PATCHES = [
    REWORD,
    UNUSED_SEEN,
    WrittenPatch(
        "mm/core: start from the first foo",
        [
            replace_in(
                "mm/core.c", "\treturn foo_count();\n", "\treturn foo_get(0) + foo_count();\n"
            )
        ],
    ),
]


def four_arch_tree(dest: Path) -> Path:
    """fakelinux with a defconfig for arm64 and powerpc too, committed as the base."""
    fake_tree(dest)
    for arch in ("arm64", "powerpc"):
        d = dest / "arch" / arch / "configs"
        d.mkdir(parents=True)
        shutil.copy(dest / "arch/x86/configs/defconfig", d / "defconfig")
    git(dest, "add", "-A")
    git(
        dest, "-c", "user.name=Base", "-c", "user.email=base@example.org", "commit", "-qm", "arches"
    )
    return dest


def write_settings(
    path: Path, root: Path, upstream: Path, extra: str = "", arches: list[str] = ARCHES
) -> Path:
    """lorebot.toml with its own state and cache under `root`: the fake tree, the build
    check on the four arches, one compile at a time; `extra` appended (e.g. [dispatch])."""
    path.write_text(
        f'[paths]\nstate = "{root / "state"}"\ncache = "{root / "cache"}"\n\n'
        f'[[trees]]\nname = "fake"\nurl = "{upstream}"\nbranches = ["master"]\n\n'
        '[checks]\nenabled = ["build"]\n\n'
        f"[build]\narches = {json.dumps(arches)}\njobs = 1\n\n"
        "[build.presets]\n" + "".join(f'{a} = "{t}"\n' for a, t in PRESETS.items()) + "\n" + extra
    )
    return path


def dispatch_table(broker: str, **more: object) -> str:
    lines = [f'broker_url = "{broker}"', *(f"{k} = {json.dumps(v)}" for k, v in more.items())]
    return "[dispatch]\n" + "\n".join(lines) + "\n"


def series_mbox(upstream: Path, dest: Path) -> Path:
    """PATCHES committed on a branch of `upstream` and written out as one mbox."""
    base = git(upstream, "rev-parse", "HEAD").strip()
    git(upstream, "checkout", "-qb", "topic")
    commit_series(upstream, PATCHES)
    dest.write_text(git(upstream, "format-patch", "--stdout", "--cover-letter", f"{base}..HEAD"))
    git(upstream, "checkout", "-q", "master")
    return dest


def start_all(workers: list[Worker]) -> list[Worker]:
    """Start the workers at once; return when every one is ready."""
    for w in workers:
        w.spawn()
    return [w.ready() for w in workers]


class Worker:
    """A `lorebot worker` process with its own settings (cache), its log in `root`."""

    def __init__(self, name: str, cfg: Path, root: Path):
        self.name = name
        self.cfg = cfg
        self.log = root / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        self.spawn()
        return self.ready()

    def ready(self) -> Worker:
        wait_for(lambda: "ready." in self.text(), 60, f"worker {self.name}", context=self.text)
        return self

    def spawn(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli.main", "--config", str(self.cfg), "worker",
             "--name", self.name],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def lorebot(cfg: Path, *args: str, timeout: float = 300) -> dict[str, Any]:
    """`lorebot --config cfg ARGS --json`: its JSON (asserting it exited 0)."""
    r = subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "--config", str(cfg), *args, "--json"],
        cwd=REPO,
        capture_output=True,
        timeout=timeout,
    )
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def slow_builds(upstream: Path, seconds: float) -> None:
    """Every object build of `upstream` takes `seconds` longer (a commit on master): a
    job lasts long enough to kill its worker in the middle of it."""
    mk = upstream / "Makefile"
    text = mk.read_text()
    marker = "else # in the object directory\n"
    slow = f"ifneq ($(filter %.o,$(MAKECMDGOALS)),)\n$(shell sleep {seconds})\nendif\n"
    mk.write_text(text.replace(marker, marker + slow, 1))
    git(upstream, "-c", "user.name=Base", "-c", "user.email=base@example.org", "commit", "-qam",
        "slow builds")  # fmt: skip
