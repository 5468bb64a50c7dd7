"""Arches an object needs because of its Kconfig chain (pure, over the `Tree` protocol).

A driver outside arch/ can still be powerpc-only: `SENSORS_IBMPOWERNV`
depends on `PPC_POWERNV`, which only arch/powerpc/ defines. Such an object is
compiled by no x86 config whatever the solver does, so the series needs a
variant on an arch that has the symbol.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from checks.build.impact import Tree
from checks.build.kbuild import ObjectChain
from checks.build.variants import config_block

# the symbol each arch's top Kconfig defines, by arch/<dir>
ARCH_SYMBOLS = {
    "X86": "x86",
    "PPC": "powerpc",
    "PPC64": "powerpc",
    "ARM64": "arm64",
    "ARM": "arm",
    "RISCV": "riscv",
    "S390": "s390",
    "MIPS": "mips",
    "SPARC": "sparc",
    "M68K": "m68k",
    "ALPHA": "alpha",
    "PARISC": "parisc",
    "SUPERH": "sh",
}


def _defined_in(tree: Tree, symbol: str) -> list[str]:
    pattern = rf"^[[:space:]]*(menu)?config[[:space:]]+{symbol}[[:space:]]*$"
    return sorted({p for p, _, _ in tree.grep([pattern], ["*Kconfig*"])})


def symbol_arches(tree: Tree, symbol: str, depth: int = 2) -> set[str]:
    """The arch dirs a symbol can exist for: empty when any arch may have it."""
    if symbol in ARCH_SYMBOLS:
        return {ARCH_SYMBOLS[symbol]}
    files = _defined_in(tree, symbol)
    dirs = {m[1] for f in files if (m := re.match(r"arch/([^/]+)/", f))}
    if files and len(dirs) == len(files):  # defined only under arch/<a>/
        return dirs
    if depth <= 0:
        return set()
    for f in files:
        block = config_block(tree.read(f) or "", symbol)
        for dep in block[1] if block else []:
            needed = symbol_arches(tree, dep, depth - 1)
            if needed:
                return needed
    return set()


def needed_srcarches(tree: Tree, objects: Iterable[ObjectChain]) -> set[str]:
    """arch/<a> dirs the objects outside arch/ need for their Kconfig chains."""
    out: set[str] = set()
    for o in objects:
        if o.object.startswith("arch/"):
            continue
        for s in o.symbols:
            out |= symbol_arches(tree, s)
    return out
