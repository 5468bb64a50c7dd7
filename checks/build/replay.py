"""Rebuild a patch's objects by replaying Kbuild's own saved commands (pure planning).

A make call in a warm kernel O= dir costs seconds before it compiles anything:
it reads every Makefile, checks the config, descends into objtool and runs the
prepare steps, once per variant and patch. After the baseline, Kbuild has
written for every object it compiled the exact command it used and the files
it read (`mm/.filemap.o.cmd`: `savedcmd_…` and `deps_…`). When a patch changes
only C sources and headers that no generated file depends on, building its
step is exactly: run the saved command of each object that the patch's files
reach, then `fixdep`, as Kbuild's `cmd_and_fixdep` does. Anything else (a
Makefile, a Kconfig, a script, a header that asm-offsets reads, an object with
no saved command) goes through make as before.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

# trees whose files feed host tools or generated files rather than objects
_TOOL_DIRS = ("scripts/", "tools/", "usr/", "Documentation/")
_SOURCE_SUFFIXES = (".c", ".h")


@dataclass(frozen=True)
class SavedCommand:
    """What Kbuild recorded for one object: the command (as make stores it) and the
    files it read (absolute or relative to the O= dir, as in the .cmd file)."""

    object: str
    make_text: str  # `savedcmd_<obj> := <make_text>`
    deps: frozenset[str]

    @property
    def shell(self) -> str:
        """The command as the shell runs it: make's escapes undone."""
        return unescape(self.make_text)


def unescape(make_text: str) -> str:
    """A command as a .cmd file stores it → as the shell runs it (make's `$(pound)` and
    `$$` undone)."""
    return make_text.replace("$(pound)", "#").replace("$$", "$")


def cmd_file(obj: str) -> str:
    """`mm/filemap.o` → `mm/.filemap.o.cmd` (relative to the O= dir)."""
    d, b = posixpath.split(obj)
    return posixpath.join(d, f".{b}.cmd")


def parse_cmd(obj: str, text: str, odir: str) -> SavedCommand | None:
    """A .cmd file of an object → its saved command and dependencies; None when it has
    no saved command for that object (an older Kbuild, a truncated file).

    Dependencies are made absolute: Kbuild writes them relative to the O= dir
    (`odir`, its real path) where it can (`../../src/include/linux/mm.h`)."""
    make_text: str | None = None
    deps: set[str] = set()
    in_deps = False
    for line in text.splitlines():
        if line.startswith(f"savedcmd_{obj} := "):
            make_text = line.split(" := ", 1)[1]
            continue
        if line.startswith((f"source_{obj} := ",)):
            deps.add(line.split(" := ", 1)[1].strip())
            continue
        if line.startswith(f"deps_{obj} := "):
            in_deps = True
            continue
        if in_deps:
            item = line.strip().removesuffix("\\").strip()
            if item and not item.startswith("$(wildcard"):
                deps.add(item)
            if not line.rstrip().endswith("\\"):
                in_deps = False
    if make_text is None:
        return None
    return SavedCommand(
        obj, make_text.strip(), frozenset(posixpath.normpath(posixpath.join(odir, d)) for d in deps)
    )


def generator_deps(cmd_texts: Mapping[str, str], odir: str) -> frozenset[str]:
    """Files read to make generated headers (`asm-offsets.s`, `bounds.s`, …): the deps of
    every `.*.s.cmd` given, by name (relative to `odir`) → text."""
    out: set[str] = set()
    for name, text in cmd_texts.items():
        target = posixpath.basename(name)[1 : -len(".cmd")]
        obj = posixpath.join(posixpath.dirname(name), target)
        saved = parse_cmd(obj.removeprefix("./"), text, odir)
        if saved:
            out |= saved.deps
    return frozenset(out)


def replayable_change(changed: Iterable[str], generators: Collection[str], worktree: str) -> bool:
    """Whether a patch's changed files (tree paths) can be built by replaying saved
    commands: C sources and headers only, none a generated file's input."""
    for path in changed:
        if not path.endswith(_SOURCE_SUFFIXES) or path.startswith(_TOOL_DIRS):
            return False
        if posixpath.join(worktree, path) in generators:
            return False
    return True


def affected(
    saved: Iterable[SavedCommand], changed: Iterable[str], worktree: str
) -> list[SavedCommand]:
    """The objects whose recorded inputs include a changed file."""
    absolute = {posixpath.join(worktree, p) for p in changed}
    return [s for s in saved if s.deps & absolute]


def _rebuild(c: SavedCommand) -> list[str]:
    """Shell lines that rebuild one object as Kbuild's `cmd_and_fixdep` does: the command,
    then fixdep turns the compiler's .d file into the new .cmd; a failure sets rc=1."""
    d, b = posixpath.split(c.object)
    depfile = posixpath.join(d, f".{b}.d")
    dot = cmd_file(c.object)
    return [
        f"rm -f {shlex.quote(c.object)}",
        f"( set -e; {c.shell} )",
        "if [ $? -eq 0 ]; then",
        f"  scripts/basic/fixdep {shlex.quote(depfile)} {shlex.quote(c.object)} "
        f"{shlex.quote(c.make_text)} > {shlex.quote(dot + '.tmp')} "
        f"&& mv -f {shlex.quote(dot + '.tmp')} {shlex.quote(dot)}",
        "else",
        "  rc=1",
        "fi",
        f"rm -f {shlex.quote(depfile)}",
    ]


def script(odir: str, commands: Sequence[SavedCommand], jobs: int = 1) -> str:
    """A shell script run in the O= dir that rebuilds the objects, `jobs` at a time (each
    group's output kept apart and printed in order, so messages never interleave); it
    exits 1 when any failed."""
    lines = [
        f"cd {shlex.quote(odir)} || exit 1",
        # the environment Kbuild's top Makefile gives its commands (ccache hashes LC_ALL:
        # with it set, no compile would hit what make's compiles stored)
        "unset LC_ALL",
        "export LC_COLLATE=C LC_NUMERIC=C",
        "rc=0",
    ]
    groups = [list(commands[g :: max(1, jobs)]) for g in range(max(1, jobs))]
    groups = [g for g in groups if g]
    if len(groups) == 1:
        for c in groups[0]:
            lines += _rebuild(c)
        lines.append("exit $rc")
        return "\n".join(lines) + "\n"
    out = '"${TMPDIR:-/tmp}/lorebot-replay.$$"'
    for n, group in enumerate(groups):
        body = [line for c in group for line in _rebuild(c)]
        lines += [
            "(",
            "rc=0",
            *body,
            "exit $rc",
            f") > {out}.{n} 2>&1 &",
            f"pid{n}=$!",
        ]
    for n in range(len(groups)):
        lines += [
            f"wait $pid{n} || rc=1",
        ]
    for n in range(len(groups)):
        lines += [f"cat {out}.{n}", f"rm -f {out}.{n}"]
    lines.append("exit $rc")
    return "\n".join(lines) + "\n"
