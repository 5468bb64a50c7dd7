"""The arch/toolchain table (config/arches.toml) and the make variables it implies."""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from config.tables import ARCHES_TOML


@dataclass(frozen=True)
class Arch:
    """One row of config/arches.toml."""

    name: str
    karch: str
    srcarch: str
    cross_compile: str
    defconfig: str
    package: str
    llvm: bool = True

    def compiler(self, llvm: bool = False) -> str:
        """The compiler binary make will run."""
        return "clang" if llvm else f"{self.cross_compile}gcc"

    def available(self, llvm: bool = False) -> bool:
        return shutil.which(self.compiler(llvm)) is not None

    def make_vars(self, llvm: bool = False, ccache: bool = True) -> list[str]:
        """ARCH=, CROSS_COMPILE=, CC=, HOSTCC= (and LLVM=1) for a make command line."""
        out = [f"ARCH={self.karch}"]
        if llvm:
            out.append("LLVM=1")
            if ccache:
                out += ["CC=ccache clang", "HOSTCC=ccache clang"]
            return out
        if self.cross_compile:
            out.append(f"CROSS_COMPILE={self.cross_compile}")
        if ccache:
            out += [f"CC=ccache {self.cross_compile}gcc", "HOSTCC=ccache gcc"]
        return out

    def shown_vars(self, llvm: bool = False) -> str:
        """The make variables as a person would type them (no ccache)."""
        return " ".join(self.make_vars(llvm, ccache=False))


def parse_arches(text: str) -> dict[str, Arch]:
    """Arches by name from the TOML text."""
    data = tomllib.loads(text)
    return {row["name"]: Arch(**row) for row in data.get("arch", [])}


@cache
def load_arches(path: Path = ARCHES_TOML) -> dict[str, Arch]:
    """The table shipped in config/arches.toml."""
    return parse_arches(path.read_text())
