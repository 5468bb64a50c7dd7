"""Thin shell: one KUnit suite through the tree's own kunit.py, in the sandbox, kept warm.

`kunit.py run` configures a kernel from a minimal .kunitconfig (CONFIG_KUNIT
and the suite's symbol), builds it in an O= dir of the cache and boots it:
User Mode Linux by default (no VM), x86_64 under QEMU where asked (with KVM where
a guest boots under it: checks/runtime/kvmprobe.py).
kunit.py and the kernel are the series' code: they run in the sandbox, the
tree read-only, the build dir writable, the compiler cache read-only but at a
trusted step. The build dir is kept across runs like the build check's, with a
trusted copy restored before each trusted step.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from bot.core.runner import Runner
from bot.core.sandbox import Sandbox
from checks.runtime.kvmprobe import KVM, kvm_groups
from checks.runtime.outcome import SuiteRun, not_built, parse_ktap, scrub
from checks.runtime.table import KunitSuite

KUNIT_PY = "tools/testing/kunit/kunit.py"


def choose_platform(setting: str, kvm_unusable: str) -> tuple[str, bool]:
    """Where KUnit boots ("um" or "qemu") and whether with KVM, from
    `runtime.kunit_platform` and why KVM is unusable here ("" when a guest boots under
    it): "auto" is qemu with KVM where it is usable, else um; "qemu" is qemu either way
    (emulated, TCG, without KVM)."""
    if setting == "um":
        return "um", False
    if setting == "auto" and kvm_unusable:
        return "um", False
    return "qemu", not kvm_unusable


def platform_args(platform: str, kvm: bool = True) -> list[str]:
    """kunit.py's arguments for where the kernel boots: "um" or "qemu" (x86_64, with KVM
    unless `kvm` is false: then QEMU emulates the CPU, TCG, slower)."""
    if platform == "qemu":
        return ["--arch=x86_64", *(["--qemu_args=-enable-kvm"] if kvm else [])]
    return ["--arch=um"]


def reproduce(suite: KunitSuite, platform: str, kvm: bool = True) -> tuple[str, ...]:
    """What a person runs from the top of their tree to see the result again (as it ran
    here: under QEMU with KVM or not)."""
    cfg = f"{suite.name}.kunitconfig"
    text = suite.kunitconfig.replace("\n", "\\n")
    return (
        f"printf '{text}' > {cfg}",
        " ".join(["./" + KUNIT_PY, "run", f"--kunitconfig={cfg}", *platform_args(platform, kvm)]),
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
