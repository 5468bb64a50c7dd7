"""One variant being built (a lane): its make, its verified config, what it reported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from checks.build.kbuild import ObjectChain
from checks.build.make import Make
from checks.build.toolchains import Arch
from checks.build.variants import Variant, arch_objects, buildable, label, symbols_diff


@dataclass
class Lane:
    """One variant being built: its make, verified config and what it reports."""

    make: Make
    variant: Variant
    defconfig: dict[str, str]
    compiler: str
    relevant: tuple[str, ...]  # symbols worth showing in `symbols`
    why: str = ""  # why the planner chose it
    baseline: set[tuple[str, str, str, str]] = field(default_factory=set)
    built: dict[str, None] = field(default_factory=dict)  # objects compiled, in order
    generators: frozenset[str] | None = None  # inputs of generated headers (replay)
    toolchain: str = ""  # "LLVM=1" for the second toolchain's lane
    # symbols the series adds that this variant asks for, not yet in its .config
    pending: dict[str, str] = field(default_factory=dict)

    @property
    def flip(self) -> str | None:
        f = self.variant.spec.flip
        return f"{f.symbol}={f.value}" if f else None

    @property
    def odir(self) -> Path:
        return self.make.odir(self.variant.spec)

    @property
    def arch(self) -> Arch:
        return self.make.arch

    @property
    def config_label(self) -> str:
        text = label(
            self.variant.spec.target,
            self.defconfig,
            self.variant.config,
            self.variant.spec.wanted,
        )
        # a second toolchain's lane is told apart from the gcc lane of the same config
        return f"{text} {self.toolchain}" if self.toolchain else text

    def symbols(self) -> dict[str, str]:
        names = [*self.variant.spec.wanted, *self.variant.helpers, *self.relevant]
        return symbols_diff(self.defconfig, self.variant.config, names)

    def objects(self, chains: Sequence[ObjectChain], worktree: Path) -> list[str]:
        """The chains' objects this variant can build (symbol chain on, source present)."""
        return [
            o.object
            for o in arch_objects(chains, self.arch)
            if buildable(o, self.variant.config) and (worktree / o.source).exists()
        ]
