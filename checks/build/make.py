"""Thin shell around make: configs and object builds in persistent O= dirs, with ccache.

Everything runs through `ctx.runner`, and everything that reads the tree (make,
scripts/config) in the sandbox: the tree read-only, the O= dir writable. One O=
dir per (tree, worktree, arch, variant) under `<cache>/build/`, reused across
runs so builds stay warm; one make at a time in it (a lock beside it).

The compiler cache is shared and written only by trusted steps (the base, a
commit of a configured tree); a step that runs code from a series reads it
read-only (CCACHE_READONLY, a read-only mount), so a hostile build cannot plant
results that another run would take for its own.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import posixpath
import shutil
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bot.core.runner import CommandResult, Runner
from bot.core.sandbox import Sandbox
from checks.build import replay
from checks.build.impact import Tree
from checks.build.replay import SavedCommand
from checks.build.toolchains import Arch
from checks.build.variants import (
    Variant,
    VariantSpec,
    config_block,
    enclosing_config,
    helpers_for,
    read_config,
    refusals,
    satisfied,
)

_STAMP = ".lorebot-variant.json"  # beside the O= dir, where no build writes
# Set in every variant: with CONFIG_WERROR a new warning is printed as an error
# ("[-Werror=…]"); lorebot reports warnings as warnings.
FIXED = {"WERROR": "n", "PPC_DISABLE_WERROR": "y"}
# A Kconfig solver: (make, variant's O= dir, base .config, requests) -> (symbols to set
# on top of the base, symbols it could not set as needed); see checks/build/solve.py
SolveFn = Callable[["Make", Path, Path, Mapping[str, str]], tuple[dict[str, str], tuple[str, ...]]]


@dataclass
class Make:
    """make for one arch in one worktree; `root` holds this arch's O= dirs."""

    runner: Runner
    worktree: Path
    arch: Arch
    root: Path
    ccache_dir: Path
    llvm: bool = False
    timeout: float = 1800
    log: list[str] = field(default_factory=list)  # commands, for `reproduce`
    sandbox: Sandbox = field(default_factory=Sandbox)
    # the tree holds only trusted code (a configured tree's commit): its compiles may
    # be added to the shared compiler cache; otherwise the cache is read-only
    trusted: bool = True
    # what makes a .config at a base, whatever the commit (`kconfig_inputs`); "" = the
    # commit alone says
    kconfig_key: str = ""
    _restored: set[Path] = field(default_factory=set)  # O= dirs put back this run
    _locks: dict[Path, IO[str]] = field(default_factory=dict)  # O= dirs held this run

    def env(self, trusted: bool) -> dict[str, str]:
        env = {
            "CCACHE_DIR": str(self.ccache_dir),
            "CCACHE_BASEDIR": str(self.worktree),
            "KBUILD_BUILD_USER": "lorebot",
            "KBUILD_BUILD_HOST": "lorebot",
            "LC_ALL": "C",
        }
        if not trusted:
            env |= {"CCACHE_READONLY": "1", "CCACHE_TEMPDIR": "/tmp", "CCACHE_NOSTATS": "1"}
        return env

    def sandboxed(
        self, argv: list[str], odir: Path, *, name: str, timeout: float | None = None
    ) -> CommandResult:
        """Run a command that reads the tree: in the sandbox, `odir` its only writable dir.

        A trusted step (the configured tree's code) runs in the O= dir as the last
        trusted step left it, and may add to the shared ccache; what it leaves is
        kept aside (`<odir>.trusted`, never mounted in a sandbox) for the next one. A
        series' step runs in whatever the O= dir holds, the ccache read-only.
        """
        self.hold(odir)
        trusted = self.trusted and self._restored_for_trust(odir)
        self.ccache_dir.mkdir(parents=True, exist_ok=True)
        if trusted:
            self.sandbox.own(self.ccache_dir)
        r = self.sandbox.run(
            self.runner,
            argv,
            cwd=self.worktree,
            ro=[self.worktree, *([] if trusted else [self.ccache_dir])],
            rw=[odir, *([self.ccache_dir] if trusted else [])],
            env=self.env(trusted),
            timeout=timeout or self.timeout,
            name=name,
        )
        if trusted:
            self._sync(odir, _trusted_copy(odir), "keep-trusted")
        return r

    def hold(self, odir: Path, wait: float = 3600) -> None:
        """Take `odir` for this run (an exclusive lock beside it, released by `close` or by
        this process's death): no two runs, of one service or two, build in one O= dir."""
        if odir in self._locks:
            return
        odir.parent.mkdir(parents=True, exist_ok=True)
        f = odir.with_name(odir.name + ".lock").open("a")
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    f.close()
                    raise TimeoutError(f"build dir {odir.name} busy for {wait:.0f} s") from None
                time.sleep(0.2)
        os.utime(f.fileno())  # when a run last used this build dir (the cache's LRU order)
        self._locks[odir] = f

    def close(self) -> None:
        """Give back the build dirs this run held."""
        for f in self._locks.values():
            f.close()
        self._locks.clear()

    def prepare(self, odir: Path) -> None:
        """Before lorebot itself writes into `odir` (a .config, removing forced objects):
        in a trusted step, the trusted copy first, so that it does not undo those writes."""
        self.hold(odir)
        if self.trusted:
            self._restored_for_trust(odir)
        odir.mkdir(parents=True, exist_ok=True)

    def _restored_for_trust(self, odir: Path) -> bool:
        """Put the O= dir back to its trusted copy, once per run: a series' build may have
        changed anything in it (host tools it runs, .cmd files make reads)."""
        if odir in self._restored:
            return True
        copy = _trusted_copy(odir)
        if copy.is_dir():
            self._sync(copy, odir, "restore-trusted")
        elif odir.exists():
            shutil.rmtree(odir)  # no trusted copy (an older cache): start clean
        odir.mkdir(parents=True, exist_ok=True)
        self._restored.add(odir)
        return True

    def _sync(self, src: Path, dest: Path, name: str) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        self.runner.run(
            ["rsync", "-a", "--delete", f"{src}/", f"{dest}/"], timeout=600, check=True, name=name
        )

    def command(self, odir: Path, *args: str, ccache: bool = True) -> list[str]:
        return [
            "make",
            "-C",
            str(self.worktree),
            f"O={odir}",
            *self.arch.make_vars(self.llvm, ccache),
            *args,
        ]

    def shown(self, odir: Path, *args: str) -> str:
        """The command a person would run (from the tree's top directory)."""
        return " ".join(["make", f"O={odir}", self.arch.shown_vars(self.llvm), *args])

    def run(self, odir: Path, *args: str, name: str, timeout: float | None = None) -> CommandResult:
        odir.mkdir(parents=True, exist_ok=True)
        return self.sandboxed(self.command(odir, *args), odir, name=name, timeout=timeout)

    def compiler_version(self) -> str:
        r = self.runner.run(
            [self.arch.compiler(self.llvm), "--version"], timeout=30, name="cc-version"
        )
        return r.stdout.splitlines()[0] if r.ok and r.stdout else self.arch.compiler(self.llvm)

    def defconfig(self, target: str, base: str) -> dict[str, str] | None:
        """The plain target config (made once per base), or None when make fails."""
        odir = self.root / target
        self.prepare(odir)
        saved = _saved(odir)
        if self._same_inputs(saved, base) and "config" in saved:
            _restore(odir, saved["config"])
            self.sandbox.give(odir / ".config")
            return read_config(saved["config"])
        r = self.run(odir, target, name=f"{self.arch.name}-{target}")
        if not r.ok:
            self.log.append(f"{self.arch.name}: make {target} failed: {r.stderr.strip()[-500:]}")
            return None
        text = (odir / ".config").read_text()
        _stamp(odir).write_text(json.dumps({**self._inputs(base), "config": text}))
        return read_config(text)

    def _inputs(self, base: str) -> dict[str, object]:
        """What a stamp says its .config was made from."""
        return {"base": base, "kconfig": self.kconfig_key, "trusted": self.trusted}

    def _same_inputs(self, saved: Mapping[str, Any], base: str) -> bool:
        """Whether a stamp's .config was made from what `base` holds: the same commit, or
        the same Kconfig inputs (`kconfig_key`) at a trusted commit. A series' own
        commit (a follow-up's base) reuses its tree's configs but never lends its own:
        its code ran while they were made."""
        if saved.get("base") == base:
            return True
        return (
            bool(self.kconfig_key)
            and saved.get("kconfig") == self.kconfig_key
            and (saved.get("trusted") is True)
        )

    def odir(self, spec: VariantSpec) -> Path:
        return self.root / spec.key

    def apply(self, spec: VariantSpec, settings: Mapping[str, str]) -> dict[str, str]:
        """Copy the target config, set symbols with scripts/config, make olddefconfig."""
        odir = self.odir(spec)
        self.prepare(odir)
        (odir / ".config").write_text((self.root / spec.target / ".config").read_text())
        self.sandbox.give(odir / ".config")
        return self.amend(odir, {**FIXED, **settings})

    def amend(self, odir: Path, settings: Mapping[str, str]) -> dict[str, str]:
        """Set symbols in the .config `odir` holds (scripts/config), make olddefconfig."""
        self.prepare(odir)
        args = config_args(settings)
        if args:
            self.sandboxed(
                [str(self.worktree / "scripts/config"), "--file", str(odir / ".config"), *args],
                odir,
                timeout=60,
                name="scripts-config",
            )
        self.run(odir, "olddefconfig", name=f"{self.arch.name}-olddefconfig")
        return read_config((odir / ".config").read_text())

    def variant(
        self, spec: VariantSpec, base: str, kconfig: Tree, solver: SolveFn | None = None
    ) -> Variant:
        """Make the variant's .config, verify it, and retry with helper symbols if refused.

        The verified .config is kept beside the O= dir, out of the builds' reach: a
        series' build may rewrite the .config inside it (a patched Kconfig), and the
        next run starts again from the verified one.
        """
        odir = self.odir(spec)
        self.prepare(odir)
        requests = spec.requests
        saved = _saved(odir)
        if (
            self._same_inputs(saved, base)
            and saved.get("requests") == requests
            and saved.get("fixed") == FIXED
            and saved.get("solver", False) == (solver is not None)
            and "config" in saved
        ):
            _restore(odir, saved["config"])
            self.sandbox.give(odir / ".config")
            cfg = read_config(saved["config"])
            refused = tuple(refusals(cfg, requests))
            return Variant(spec, cfg, saved["helpers"], refused, tuple(saved.get("blocked", ())))
        helpers: dict[str, str] = {}
        blocked: tuple[str, ...] = ()
        cfg = self.apply(spec, requests)
        if solver is not None and refusals(cfg, requests):
            changes, blocked = solver(self, odir, self.root / spec.target / ".config", requests)
            helpers = {s: v for s, v in changes.items() if s not in requests and s not in FIXED}
            if helpers:
                cfg = self.apply(spec, {**helpers, **requests})
        # the solver's answer stands when it worked; else the old search by hand
        for _ in range(3 if refusals(cfg, requests) else 0):
            wanted = {**helpers, **requests}
            missing = [(s, v) for s, v in wanted.items() if not satisfied(cfg, s, v)]
            extra: dict[str, str] = {}
            for s, v in missing:
                sel, deps, prompt = kconfig_facts(kconfig, s)
                for h, hv in helpers_for(s, v, cfg, sel, deps, prompt).items():
                    if h not in wanted and h not in extra:
                        extra[h] = hv
            if not extra:
                break
            helpers.update(extra)
            cfg = self.apply(spec, {**helpers, **requests})
        _stamp(odir).write_text(
            json.dumps(
                {
                    **self._inputs(base),
                    "requests": requests,
                    "helpers": helpers,
                    "fixed": FIXED,
                    "config": (odir / ".config").read_text(),
                    "blocked": list(blocked),
                    "solver": solver is not None,
                }
            )
        )
        return Variant(spec, cfg, helpers, tuple(refusals(cfg, requests)), blocked)

    def saved_commands(self, odir: Path, objects: Iterable[str]) -> dict[str, SavedCommand]:
        """What Kbuild recorded in `odir` for each object that has a saved command."""
        out = {}
        for obj in objects:
            f = odir / replay.cmd_file(obj)
            text = f.read_text(errors="replace") if f.is_file() else ""
            saved = replay.parse_cmd(obj, text, str(odir.resolve())) if text else None
            if saved is not None:
                out[obj] = saved
        return out

    def generator_inputs(self, odir: Path) -> frozenset[str]:
        """Files that generated headers of `odir` were made from (asm-offsets and the like)."""
        texts = {
            str(p.relative_to(odir)): p.read_text(errors="replace")
            for p in odir.rglob(".*.s.cmd")
            if p.is_file()
        }
        return replay.generator_deps(texts, str(odir.resolve()))

    def replay(self, odir: Path, commands: Sequence[SavedCommand], jobs: int) -> CommandResult:
        """Rebuild objects by running their saved commands (and fixdep) in the sandbox,
        `jobs` at a time."""
        self.prepare(odir)
        return self.sandboxed(
            ["sh", "-c", replay.script(str(odir), commands, jobs)],
            odir,
            name=f"{self.arch.name}-replay",
        )

    def build(
        self, odir: Path, objects: Sequence[str], forced: Collection[str], *, w1: bool, jobs: int
    ) -> CommandResult:
        """Compile the objects in one make call (-k: an error stops only its object).

        The `forced` ones are removed first so that their diagnostics are
        printed again (ccache replays them cheaply); make rebuilds the others
        only when their sources or headers changed.
        """
        self.prepare(odir)
        for o in (o for o in objects if o in forced):
            with_suffix = odir / o
            if with_suffix.exists():
                os.unlink(with_suffix)
        args = ["-k", f"-j{jobs}", *(["W=1"] if w1 else []), *objects]
        return self.run(odir, *args, name=f"{self.arch.name}-build")


def _trusted_copy(odir: Path) -> Path:
    return odir.with_name(odir.name + ".trusted")


def _stamp(odir: Path) -> Path:
    return odir.with_name(odir.name + _STAMP)


def _saved(odir: Path) -> dict[str, Any]:
    stamp = _stamp(odir)
    try:
        data = json.loads(stamp.read_text()) if stamp.exists() else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _restore(odir: Path, config: str) -> None:
    """Put the verified .config back when a build changed it (mtime kept when equal)."""
    path = odir / ".config"
    if not path.exists() or path.read_text(errors="replace") != config:
        odir.mkdir(parents=True, exist_ok=True)
        path.write_text(config)


def config_args(settings: Mapping[str, str]) -> list[str]:
    """scripts/config arguments for {symbol: value}."""
    args: list[str] = []
    for s, v in settings.items():
        if v == "n":
            args += ["--disable", s]
        elif v == "m":
            args += ["--module", s]
        else:
            args += ["--enable", s]
    # scripts/config upper-cases symbols unless told: SENSORS_SHT3x would become ...3X
    return ["--keep-case", *args] if any(s != s.upper() for s in settings) else args


def kconfig_facts(tree: Tree, symbol: str) -> tuple[list[str], list[str], bool]:
    """(selectors, depends-on symbols, has a prompt) of a Kconfig symbol, from the tree."""
    sel_hits = tree.grep(
        [rf"^[[:space:]]*select[[:space:]]+{symbol}([[:space:]]|$)"], ["*Kconfig*"]
    )
    selectors = []
    for path, line, _ in sel_hits:
        name = enclosing_config(tree.read(path) or "", line)
        if name and name not in selectors:
            selectors.append(name)
    deps: list[str] = []
    prompt = False
    for path, _, _ in tree.grep(
        [rf"^[[:space:]]*(menu)?config[[:space:]]+{symbol}[[:space:]]*$"], ["*Kconfig*"]
    ):
        block = config_block(tree.read(path) or "", symbol)
        if block:
            prompt = prompt or block[0]
            deps += [d for d in block[1] if d not in deps]
    return sorted(selectors), deps, prompt


def kconfig_inputs(listing: str) -> str:
    """A key of what `make <defconfig>` and `olddefconfig` read at a commit, from its
    `git ls-tree -r` listing (pure): every Kconfig file, the defconfigs, scripts/ (the
    Kconfig tools and the compiler probes Kconfig.include runs) and the Makefiles that
    drive config targets (top and arch). Two commits with the same key make the same
    .config from the same request with the same compiler."""
    h = hashlib.sha1()
    for line in listing.splitlines():
        meta, _, path = line.partition("\t")
        name = posixpath.basename(path)
        if (
            name.startswith("Kconfig")
            or path.startswith("scripts/")
            or path == "Makefile"
            or (path.startswith("arch/") and (name == "Makefile" or "/configs/" in path))
        ):
            h.update(f"{meta.split()[-1]} {path}\n".encode())
    return h.hexdigest()
