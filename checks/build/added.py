"""Kconfig symbols a series adds, and what they depend on (pure, over `impact.Tree`).

A new driver brings its own symbol (`config SENSORS_FOO` in a patched Kconfig);
the base cannot have it, so a variant configured at the base would never build
the driver. Such a symbol is asked for once a patch has added it (see
`VariantSpec.added`), and the symbols it depends on — which the base does have —
are asked for at the base, so that Kconfig takes it when it appears.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

from checks.build.impact import Tree
from checks.build.variants import config_block

_FILE = re.compile(r"^\+\+\+ b/(\S+)")
_ADDED_CONFIG = re.compile(r"^\+\s*(?:menu)?config\s+(\w+)\s*$")


def declared(diff: str) -> list[str]:
    """Symbols that `+config X` lines of the diff's Kconfig files declare, in order."""
    out: dict[str, None] = {}
    kconfig = False
    for line in diff.splitlines():
        if m := _FILE.match(line):
            kconfig = posixpath.basename(m[1]).startswith("Kconfig")
        elif kconfig and (m := _ADDED_CONFIG.match(line)):
            out[m[1]] = None
    return list(out)


def defining(tree: Tree, symbols: Iterable[str]) -> set[str]:
    """Those of `symbols` that some Kconfig file of `tree` declares (one grep)."""
    wanted = list(dict.fromkeys(symbols))
    if not wanted:
        return set()
    pattern = rf"^[[:space:]]*(menu)?config[[:space:]]+({'|'.join(wanted)})[[:space:]]*$"
    found: set[str] = set()
    for _, _, text in tree.grep([pattern], ["*Kconfig*"]):
        words = text.split()
        if len(words) >= 2:
            found.add(words[1])
    return found & set(wanted)


def new_symbols(diff: str, base: Tree) -> frozenset[str]:
    """Symbols the series declares that the base does not have."""
    names = declared(diff)
    return frozenset(names) - defining(base, names)


def dependencies(head: Tree, added: frozenset[str], wanted: Iterable[str]) -> list[str]:
    """The symbols (not added by the series) that the wanted added ones depend on, at
    the series' head; through added symbols they depend on in turn."""
    out: dict[str, None] = {}
    todo = [s for s in wanted if s in added]
    seen: set[str] = set()
    while todo:
        sym = todo.pop(0)
        if sym in seen:
            continue
        seen.add(sym)
        for path, _, _ in head.grep(
            [rf"^[[:space:]]*(menu)?config[[:space:]]+{sym}[[:space:]]*$"], ["*Kconfig*"]
        ):
            block = config_block(head.read(path) or "", sym)
            for dep in block[1] if block else []:
                if dep in added:
                    todo.append(dep)
                else:
                    out[dep] = None
    return list(out)
