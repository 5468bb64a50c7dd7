"""Thin shell: one KUnit suite through the tree's own kunit.py, in the sandbox, kept warm.

`kunit.py run` configures a kernel from a minimal .kunitconfig (CONFIG_KUNIT
and the suite's symbol), builds it in an O= dir of the cache and boots it:
User Mode Linux by default (no VM), x86_64 under QEMU with KVM where asked.
kunit.py and the kernel are the series' code: they run in the sandbox, the
tree read-only, the build dir writable, the compiler cache read-only but at a
trusted step. The build dir is kept across runs like the build check's, with a
trusted copy restored before each trusted step.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from bot.core.runner import Runner
from bot.core.sandbox import Sandbox
from checks.runtime.outcome import SuiteRun, not_built, parse_ktap, scrub
from checks.runtime.table import KunitSuite

KUNIT_PY = "tools/testing/kunit/kunit.py"


KVM = Path("/dev/kvm")
# a sandboxed command opens /dev/kvm read-write, or says why not
_OPEN_KVM = ["python3", "-c", f"import os; os.close(os.open('{KVM}', os.O_RDWR))"]


def kvm_groups(sandbox: Sandbox) -> list[int]:
    """The group a sandboxed run keeps to open /dev/kvm: the device's group when it may
    read and write it (root:kvm 0660, as udev makes it) and lorebot drops from root;
    none otherwise (no group of root's, no other device)."""
    try:
        st = KVM.stat()
    except OSError:
        return []
    rw = stat.S_IRGRP | stat.S_IWGRP
    if not sandbox.as_root or st.st_gid == 0 or st.st_mode & rw != rw:
        return []
    return [st.st_gid]


def kvm_in_sandbox(runner: Runner, sandbox: Sandbox) -> str:
    """Why a sandboxed KUnit run cannot use KVM ("" when it can): tried once per process
    by opening /dev/kvm in the sandbox as the run would."""
    key = (sandbox.uid, sandbox.as_root, sandbox.enabled)
    with _KVM_LOCK:
        if key not in _KVM:
            if not KVM.exists():
                _KVM[key] = f"{KVM} does not exist"
            else:
                r = sandbox.run(
                    runner,
                    _OPEN_KVM,
                    cwd=Path("/"),
                    devices=[KVM],
                    groups=kvm_groups(sandbox),
                    timeout=60,
                    name="kvm-probe",
                )
                said = (r.stderr or r.stdout).strip().splitlines()
                _KVM[key] = "" if r.ok else (said[-1] if said else f"exit {r.returncode}")
        return _KVM[key]


_KVM: dict[tuple[int, bool, bool], str] = {}
_KVM_LOCK = threading.Lock()


def platform_args(platform: str, kvm: bool = True) -> list[str]:
    """kunit.py's arguments for where the kernel boots: "um" or "qemu" (x86_64, with KVM
    unless `kvm` is false: then QEMU emulates the CPU, TCG, slower)."""
    if platform == "qemu":
        return ["--arch=x86_64", *(["--qemu_args=-enable-kvm"] if kvm else [])]
    return ["--arch=um"]


def reproduce(suite: KunitSuite, platform: str) -> tuple[str, ...]:
    """What a person runs from the top of their tree to see the result again."""
    cfg = f"{suite.name}.kunitconfig"
    text = suite.kunitconfig.replace("\n", "\\n")
    return (
        f"printf '{text}' > {cfg}",
        " ".join(["./" + KUNIT_PY, "run", f"--kunitconfig={cfg}", *platform_args(platform)]),
    )


@dataclass
class KunitBench:
    """Where one worktree's KUnit kernels are built: one O= dir per suite and platform."""

    runner: Runner
    sandbox: Sandbox
    worktree: Path
    root: Path  # <cache>/runtime/<tree>-<slot>
    ccache_dir: Path
    platform: str = "um"
    kvm: bool = True  # qemu: boot with KVM (/dev/kvm bound into the sandbox)
    jobs: int = 2
    boot_seconds: int = 300
    step_seconds: float = 3600

    def odir(self, suite: KunitSuite) -> Path:
        return self.root / "kunit" / f"{self.platform}-{suite.symbol.lower()}"

    def _trusted_copy(self, odir: Path) -> Path:
        return odir.with_name(odir.name + ".trusted")

    def _rsync(self, src: Path, dest: Path, name: str) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        self.runner.run(
            ["rsync", "-a", "--delete", f"{src}/", f"{dest}/"], timeout=900, check=True, name=name
        )

    def run(self, suite: KunitSuite, trusted: bool) -> SuiteRun:
        """Configure, build and boot; the KTAP it printed, or why there is none."""
        odir = self.odir(suite)
        if trusted:
            copy = self._trusted_copy(odir)
            if copy.is_dir():
                self._rsync(copy, odir, "restore-trusted")
            elif odir.exists():
                shutil.rmtree(odir)
        odir.mkdir(parents=True, exist_ok=True)
        config = self.root / "kunitconfigs" / f"{suite.symbol.lower()}.kunitconfig"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(suite.kunitconfig)
        self.ccache_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "CCACHE_DIR": str(self.ccache_dir),
            "CCACHE_BASEDIR": str(self.worktree),
            "KBUILD_BUILD_USER": "lorebot",
            "KBUILD_BUILD_HOST": "lorebot",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if trusted:
            self.sandbox.own(self.ccache_dir)
        else:
            env |= {"CCACHE_READONLY": "1", "CCACHE_TEMPDIR": "/tmp", "CCACHE_NOSTATS": "1"}
        argv = [
            "python3",
            str(self.worktree / KUNIT_PY),
            "run",
            f"--build_dir={odir}",
            f"--kunitconfig={config}",
            *platform_args(self.platform, self.kvm),
            f"--jobs={self.jobs}",
            f"--timeout={self.boot_seconds}",
            "--raw_output=kunit",
            "--make_options=CC=ccache gcc",
        ]
        kvm = self.platform == "qemu" and self.kvm
        r = self.sandbox.run(
            self.runner,
            argv,
            cwd=self.worktree,
            ro=[self.worktree, config, *([] if trusted else [self.ccache_dir])],
            rw=[odir, *([self.ccache_dir] if trusted else [])],
            env=env,
            timeout=self.step_seconds,
            name=f"kunit-{suite.name}",
            devices=[KVM] if kvm else [],
            groups=kvm_groups(self.sandbox) if kvm else [],
        )
        if trusted:
            self._rsync(odir, self._trusted_copy(odir), "keep-trusted")
        # this machine's paths, and the tree as the build dir reaches it (kbuild prints
        # sources relative to O=: ../../../slots/x/lib/foo.c)
        paths = [str(odir), str(self.worktree), str(self.root)]
        paths.append(os.path.relpath(self.worktree, odir))
        out = scrub(r.output, paths)
        tail = "\n".join(out.splitlines()[-40:])
        run = parse_ktap(scrub(r.stdout, paths)) if r.ok else None
        if run is not None:
            return dataclasses.replace(run, tail=tail, seconds=round(r.seconds, 2))
        # no KTAP: kunit.py could not configure or build (or the boot printed none)
        return not_built(out, errored=r.timed_out or r.ok, seconds=r.seconds)
