"""Thin shell around make: configs and object builds in persistent O= dirs, with ccache.

Everything runs through `ctx.runner`. One O= dir per (tree, worktree, arch,
variant) under `<cache>/build/`, reused across runs so builds stay warm.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.runner import CommandResult, Runner
from checks.build.impact import Tree
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

_STAMP = "lorebot-variant.json"
# Set in every variant: with CONFIG_WERROR a new warning is printed as an error
# ("[-Werror=…]"); lorebot reports warnings as warnings.
FIXED = {"WERROR": "n", "PPC_DISABLE_WERROR": "y"}


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

    @property
    def env(self) -> dict[str, str]:
        return {
            "CCACHE_DIR": str(self.ccache_dir),
            "CCACHE_BASEDIR": str(self.worktree),
            "KBUILD_BUILD_USER": "lorebot",
            "KBUILD_BUILD_HOST": "lorebot",
            "LC_ALL": "C",
        }

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
        return self.runner.run(
            self.command(odir, *args),
            cwd=self.worktree,
            env=self.env,
            timeout=timeout or self.timeout,
            name=name,
        )

    def compiler_version(self) -> str:
        r = self.runner.run(
            [self.arch.compiler(self.llvm), "--version"], timeout=30, name="cc-version"
        )
        return r.stdout.splitlines()[0] if r.ok and r.stdout else self.arch.compiler(self.llvm)

    def defconfig(self, target: str, base: str) -> dict[str, str] | None:
        """The plain target config (made once per base), or None when make fails."""
        odir = self.root / target
        stamp = odir / _STAMP
        if (
            stamp.exists()
            and (odir / ".config").exists()
            and json.loads(stamp.read_text()).get("base") == base
        ):
            return read_config((odir / ".config").read_text())
        r = self.run(odir, target, name=f"{self.arch.name}-{target}")
        if not r.ok:
            self.log.append(f"{self.arch.name}: make {target} failed: {r.stderr.strip()[-500:]}")
            return None
        stamp.write_text(json.dumps({"base": base}))
        return read_config((odir / ".config").read_text())

    def odir(self, spec: VariantSpec) -> Path:
        return self.root / spec.key

    def apply(self, spec: VariantSpec, settings: Mapping[str, str]) -> dict[str, str]:
        """Copy the target config, set symbols with scripts/config, make olddefconfig."""
        odir = self.odir(spec)
        odir.mkdir(parents=True, exist_ok=True)
        (odir / ".config").write_text((self.root / spec.target / ".config").read_text())
        args = config_args({**FIXED, **settings})
        if args:
            self.runner.run(
                [str(self.worktree / "scripts/config"), "--file", str(odir / ".config"), *args],
                cwd=self.worktree,
                timeout=60,
                name="scripts-config",
            )
        self.run(odir, "olddefconfig", name=f"{self.arch.name}-olddefconfig")
        return read_config((odir / ".config").read_text())

    def variant(self, spec: VariantSpec, base: str, kconfig: Tree) -> Variant:
        """Make the variant's .config, verify it, and retry with helper symbols if refused."""
        odir = self.odir(spec)
        stamp = odir / _STAMP
        requests = spec.requests
        if stamp.exists() and (odir / ".config").exists():
            saved = json.loads(stamp.read_text())
            if (
                saved.get("base") == base
                and saved.get("requests") == requests
                and saved.get("fixed") == FIXED
            ):
                cfg = read_config((odir / ".config").read_text())
                return Variant(spec, cfg, saved["helpers"], tuple(refusals(cfg, requests)))
        helpers: dict[str, str] = {}
        cfg = self.apply(spec, requests)
        for _ in range(3):
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
        stamp.write_text(
            json.dumps({"base": base, "requests": requests, "helpers": helpers, "fixed": FIXED})
        )
        return Variant(spec, cfg, helpers, tuple(refusals(cfg, requests)))

    def build(
        self, odir: Path, objects: Sequence[str], forced: Collection[str], *, w1: bool, jobs: int
    ) -> CommandResult:
        """Compile the objects in one make call (-k: an error stops only its object).

        The `forced` ones are removed first so that their diagnostics are
        printed again (ccache replays them cheaply); make rebuilds the others
        only when their sources or headers changed.
        """
        for o in (o for o in objects if o in forced):
            with_suffix = odir / o
            if with_suffix.exists():
                os.unlink(with_suffix)
        args = ["-k", f"-j{jobs}", *(["W=1"] if w1 else []), *objects]
        return self.run(odir, *args, name=f"{self.arch.name}-build")


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
    return args


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
