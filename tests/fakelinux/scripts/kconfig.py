"""olddefconfig for fakelinux: resolve a .config against a tiny Kconfig, write autoconf.h.

Usage: kconfig.py KCONFIG DOTCONFIG AUTOCONF_H

Enough of Kconfig for the build check's tests: `source`, `config`/`menuconfig`,
`bool`/`tristate` with or without a prompt, `default V [if EXPR]`,
`depends on EXPR`, `select SYM [if EXPR]`, and `help` text. A prompted symbol
keeps the value the .config gives it while its dependencies hold; others take
their default; a selected symbol is on. Symbols Kconfig does not know are
dropped, as the real olddefconfig does.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Symbol:
    name: str
    prompt: bool = False
    depends: list[str] = field(default_factory=list)
    defaults: list[tuple[str, str]] = field(default_factory=list)  # (value, condition)
    selects: list[tuple[str, str]] = field(default_factory=list)  # (symbol, condition)


def parse(path: Path, top: Path, symbols: dict[str, Symbol]) -> None:
    sym: Symbol | None = None
    in_help = False
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.strip().startswith("help") else "help"
        if in_help:
            if raw.strip() and not raw.startswith(("\t ", "\t\t", "  ")):
                in_help = False
            else:
                continue
        if not line:
            continue
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word == "source":
            parse(top / rest.strip('"'), top, symbols)
        elif word in ("config", "menuconfig"):
            sym = symbols.setdefault(rest, Symbol(rest))
        elif sym is None:
            continue
        elif word in ("bool", "tristate"):
            sym.prompt = sym.prompt or rest.startswith('"')
        elif word == "prompt":
            sym.prompt = True
        elif word == "default":
            value, _, cond = rest.partition(" if ")
            sym.defaults.append((value.strip(), cond.strip() or "y"))
        elif line.startswith("depends on"):
            sym.depends.append(line[len("depends on") :].strip())
        elif word == "select":
            target, _, cond = rest.partition(" if ")
            sym.selects.append((target.strip(), cond.strip() or "y"))
        elif word == "help":
            in_help = True


def holds(expr: str, values: dict[str, str]) -> bool:
    """A Kconfig expression (symbols, y/n/m, !, &&, ||, parentheses) as a boolean."""
    py = expr.replace("&&", " and ").replace("||", " or ")
    py = re.sub(r"!(?!=)", " not ", py)
    py = re.sub(
        r"\b([A-Za-z_]\w*)\b",
        lambda m: (
            m[1]
            if m[1] in ("and", "or", "not")
            else repr(values.get(m[1], m[1] if m[1] in "ymn" else "n") != "n")
        ),
        py,
    )
    return bool(eval(py, {"__builtins__": {}}))  # the tree's own Kconfig, not user input


def read_config(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        if m := re.match(r"^CONFIG_(\w+)=(.*)$", line):
            out[m[1]] = m[2]
        elif m := re.match(r"^# CONFIG_(\w+) is not set$", line):
            out[m[1]] = "n"
    return out


def resolve(symbols: dict[str, Symbol], given: dict[str, str]) -> dict[str, tuple[str, bool]]:
    """{symbol: (value, visible)} at a fixpoint of defaults, dependencies and selects."""
    values: dict[str, str] = {}
    for _ in range(20):
        new: dict[str, str] = {}
        env = values
        for s in symbols.values():
            if not all(holds(d, {**env, **new}) for d in s.depends):
                new[s.name] = "n"
            elif s.prompt and s.name in given:
                new[s.name] = "y" if given[s.name] in ("y", "m") else "n"
            else:
                new[s.name] = next((v for v, c in s.defaults if holds(c, {**env, **new})), "n")
        for s in symbols.values():
            if new[s.name] != "n":
                for target, cond in s.selects:
                    if target in new and holds(cond, new):
                        new[target] = "y"
        if new == values:
            break
        values = new
    return {n: (v, all(holds(d, values) for d in symbols[n].depends)) for n, v in values.items()}


def main(kconfig: str, dotconfig: str, autoconf: str) -> int:
    top = Path(kconfig).parent
    symbols: dict[str, Symbol] = {}
    parse(Path(kconfig), top, symbols)
    resolved = resolve(symbols, read_config(Path(dotconfig)))
    lines, defines = [], []
    for name, (v, visible) in resolved.items():
        if v != "n":
            lines.append(f"CONFIG_{name}={v}")
            defines.append(f"#define CONFIG_{name} 1")
        elif visible:
            lines.append(f"# CONFIG_{name} is not set")
    Path(dotconfig).write_text("\n".join(lines) + "\n")
    header = Path(autoconf)
    text = "\n".join(["/* generated from .config by scripts/kconfig.py */", *defines]) + "\n"
    # rewritten only when it changes: every object depends on it
    if not header.exists() or header.read_text() != text:
        header.parent.mkdir(parents=True, exist_ok=True)
        header.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
