"""Preprocess a built object exactly as it was compiled (thin shell for `coverage.py`).

Kbuild saves each object's compile command in `<dir>/.<name>.o.cmd`. Re-run
with `-E -C -dD` instead of `-c` (comments and `#define`s kept, so that every
line of an active branch leaves a trace) it shows which lines of the source
and of every header the compiler read in that config. It runs in the sandbox
like every make step, from the O= dir as Kbuild runs it. Without a saved
command (a build that never finished), `make <obj>.i` is the fallback: the
same flags, without comments and defines.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from checks.build import replay
from checks.build.make import Make

_SAVED = re.compile(r"^(?:saved)?cmd_\S+\s*:=\s*(.*)$")
_DROP = ("-MMD", "-MD", "-MP", "-c")
_DROP_WITH_VALUE = ("-MF", "-MT", "-MQ", "-o")


def cmd_file(odir: Path, obj: str) -> Path:
    return odir / replay.cmd_file(obj)


def saved_command(text: str) -> list[str] | None:
    """The compile command of a `.o.cmd` file, without what follows it (objtool, …)."""
    for line in text.splitlines():
        if m := _SAVED.match(line):
            try:
                argv = shlex.split(replay.unescape(m[1]))
            except ValueError:
                return None
            if ";" in argv:
                argv = argv[: argv.index(";")]
            return argv or None
    return None


def preprocess_argv(argv: list[str], out: str) -> list[str]:
    """A compile command turned into `-E -C -dD -o out` (no dependency files, no ccache)."""
    args = list(argv)
    if args and Path(args[0]).name == "ccache":
        args = args[1:]
    result: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in _DROP_WITH_VALUE:
            skip = True
            continue
        if a in _DROP or a.startswith(("-Wp,-MMD", "-Wp,-MD", "-MF")):
            continue
        result.append(a)
    return [*result, "-E", "-C", "-dD", "-o", out]


def preprocessed(make: Make, odir: Path, obj: str, timeout: float = 300) -> str | None:
    """`obj`'s source as the compiler saw it in this O= dir, or None when it cannot be had."""
    cmd = cmd_file(odir, obj)
    out = odir / (obj + ".lorebot.i")
    argv = saved_command(cmd.read_text(errors="replace")) if cmd.exists() else None
    if argv:
        make.hold(odir)
        make.sandbox.run(
            make.runner,
            preprocess_argv(argv, str(out)),
            cwd=odir,
            ro=[make.worktree],
            rw=[odir],
            env=make.env(False),
            timeout=timeout,
            name=f"{make.arch.name}-preprocess",
        )
    else:
        target = obj[: -len(".o")] + ".i"
        make.run(odir, target, name=f"{make.arch.name}-preprocess", timeout=timeout)
        out = odir / target
    try:
        return out.read_text(errors="replace") if out.exists() else None
    finally:
        out.unlink(missing_ok=True)
