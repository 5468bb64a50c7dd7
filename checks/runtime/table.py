"""Which suites a series selects: the table of config/runtime.toml, read as data (pure)."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from config.tables import table_path

RUNTIME_TOML = table_path("runtime.toml")


@dataclass(frozen=True)
class HostSuite:
    """A userspace suite under tools/testing/: `make -C dir target`, then `program` in dir."""

    name: str
    dir: str
    target: str
    program: tuple[str, ...]
    paths: tuple[str, ...]
    seconds: float = 60.0

    def selected_by(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, p) for p in self.paths)

    @property
    def reproduce(self) -> str:
        """What a person runs from the top of their tree."""
        prog, args = self.program[0], self.program[1:]
        if prog.startswith("./"):  # a program of the suite: run from the top
            return " ".join(
                [f"make -C {self.dir} {self.target} &&", f"./{self.dir}/{prog[2:]}", *args]
            )
        return " ".join([f"make -C {self.dir} {self.target} && cd {self.dir} &&", *self.program])


@dataclass(frozen=True)
class KunitSuite:
    """A KUnit test file, the Kconfig symbol that builds it, and the suites it declares."""

    file: str  # lib/cmdline_kunit.c
    symbol: str  # CMDLINE_KUNIT_TEST
    names: tuple[str, ...] = ()  # the kunit_suite .name values ("cmdline")

    @property
    def name(self) -> str:
        return self.names[0] if len(self.names) == 1 else PurePosixPath(self.file).stem

    @property
    def kunitconfig(self) -> str:
        return f"CONFIG_KUNIT=y\nCONFIG_{self.symbol}=y\n"


@dataclass(frozen=True)
class Table:
    host: tuple[HostSuite, ...]
    kunit_tests: tuple[str, ...]  # "{dir}/{stem}_kunit.c", ...
    kunit_marker: str = "kunit_test_suite"


def load_table(path: Path | None = None) -> Table:
    """The suites table (config/runtime.toml unless another file is given)."""
    data = tomllib.loads((path or RUNTIME_TOML).read_text())
    host = tuple(
        HostSuite(
            name=h["name"],
            dir=h["dir"].rstrip("/"),
            target=h["target"],
            program=tuple(h["program"]),
            paths=tuple(h["paths"]),
            seconds=float(h.get("seconds", 60)),
        )
        for h in data.get("host", [])
    )
    kunit = data.get("kunit", {})
    return Table(
        host=host,
        kunit_tests=tuple(kunit.get("tests", ())),
        kunit_marker=kunit.get("marker", "kunit_test_suite"),
    )


def host_suites(table: Table, changed: Iterable[str]) -> list[HostSuite]:
    """The host suites the changed paths select, in the table's order."""
    paths = list(changed)
    return [s for s in table.host if any(s.selected_by(p) for p in paths)]


def kunit_files(
    table: Table, changed: Iterable[str], read: Callable[[str], str | None]
) -> list[str]:
    """KUnit test files the changed paths select: a changed test, or the test beside a
    changed file; `read(path)` gives a file of the tree after the series (None: absent)."""
    out: dict[str, None] = {}
    for path in changed:
        p = PurePosixPath(path)
        if p.suffix != ".c":
            continue
        candidates = [path] + [t.format(dir=str(p.parent), stem=p.stem) for t in table.kunit_tests]
        for c in candidates:
            if c in out:
                continue
            text = read(c)
            if text is not None and table.kunit_marker in text:
                out[c] = None
    return list(out)


_OBJ = re.compile(r"^\s*obj-\$\(CONFIG_(\w+)\)\s*[+:]?=\s*(.*)$")
_NAME = re.compile(r"\.name\s*=\s*\"([^\"]+)\"")


def kunit_symbol(makefile: str, stem: str) -> str:
    """The CONFIG_ symbol whose obj- line builds `stem`.o in this Makefile ("" if none)."""
    text = makefile.replace("\\\n", " ")
    for line in text.splitlines():
        m = _OBJ.match(line)
        if m and f"{stem}.o" in m[2].split():
            return m[1]
    return ""


def kunit_suite(path: str, source: str, makefile: str) -> KunitSuite | None:
    """The KunitSuite of a test file, from its source and its directory's Makefile."""
    stem = PurePosixPath(path).stem
    symbol = kunit_symbol(makefile, stem)
    if not symbol:
        return None
    # a kunit_suite's .name; test cases are KUNIT_CASE(), never `.name =` lines
    names = tuple(dict.fromkeys(_NAME.findall(source)))
    return KunitSuite(file=path, symbol=symbol, names=names)
