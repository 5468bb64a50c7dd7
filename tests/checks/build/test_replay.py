"""Replaying Kbuild's saved commands (reading .cmd files, deciding, the script) and the key of
a commit's Kconfig inputs: the pure parts of the build check's speed (fast)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from checks.build.make import kconfig_inputs
from checks.build.replay import (
    SavedCommand,
    affected,
    cmd_file,
    generator_deps,
    parse_cmd,
    replayable_change,
    script,
)

WT = "/src/linux"
ODIR = "/cache/build/x86_64/defconfig"
CMD = """savedcmd_mm/filemap.o := ccache gcc -Wp,-MMD,mm/.filemap.o.d -DKBUILD_MODFILE='"mm/filemap"' -DX=$$(pound) -c -o mm/filemap.o /src/linux/mm/filemap.c

source_mm/filemap.o := /src/linux/mm/filemap.c

deps_mm/filemap.o := \\
    $(wildcard include/config/MIGRATION) \\
  /src/linux/include/linux/fs.h \\
  ../../../../src/linux/mm/internal.h \\
  include/generated/autoconf.h \\

mm/filemap.o: $(deps_mm/filemap.o)

$(deps_mm/filemap.o):
"""  # noqa: E501


def test_a_cmd_file_gives_the_command_and_absolute_inputs() -> None:
    saved = parse_cmd("mm/filemap.o", CMD, ODIR)
    assert saved is not None
    assert saved.deps == {
        "/src/linux/mm/filemap.c",
        "/src/linux/include/linux/fs.h",
        "/src/linux/mm/internal.h",  # relative to the O= dir in the file
        f"{ODIR}/include/generated/autoconf.h",
    }
    assert saved.shell.startswith("ccache gcc -Wp,-MMD,mm/.filemap.o.d")
    assert "-DX=$#" in saved.shell  # make's escapes undone
    assert parse_cmd("mm/other.o", CMD, ODIR) is None
    assert cmd_file("mm/filemap.o") == "mm/.filemap.o.cmd"


def test_only_sources_and_headers_no_generator_reads_are_replayed() -> None:
    offsets = (
        "savedcmd_arch/x86/kernel/asm-offsets.s := gcc -S\n\n"
        "source_arch/x86/kernel/asm-offsets.s := /src/linux/arch/x86/kernel/asm-offsets.c\n\n"
        "deps_arch/x86/kernel/asm-offsets.s := \\\n  /src/linux/include/linux/fs.h \\\n\n"
    )
    generators = generator_deps({"arch/x86/kernel/.asm-offsets.s.cmd": offsets}, ODIR)
    assert "/src/linux/include/linux/fs.h" in generators
    assert replayable_change(["mm/filemap.c", "mm/swap.h"], generators, WT)
    assert not replayable_change(["include/linux/fs.h"], generators, WT)  # asm-offsets reads it
    assert not replayable_change(["mm/Makefile"], generators, WT)
    assert not replayable_change(["mm/Kconfig"], generators, WT)
    assert not replayable_change(["scripts/mod/file2alias.c"], generators, WT)


def test_the_objects_a_change_reaches() -> None:
    saved = parse_cmd("mm/filemap.o", CMD, ODIR)
    assert saved is not None
    other = SavedCommand("mm/swap.o", "true", frozenset({"/src/linux/mm/swap.c"}))
    assert affected([saved, other], ["mm/internal.h"], WT) == [saved]
    assert affected([saved, other], ["mm/swap.c"], WT) == [other]
    assert affected([saved, other], ["lib/sort.c"], WT) == []


def test_the_script_rebuilds_runs_fixdep_and_keeps_outputs_apart(tmp_path: Path) -> None:
    fixdep = tmp_path / "scripts/basic/fixdep"
    fixdep.parent.mkdir(parents=True)
    fixdep.write_text('#!/bin/sh\necho "savedcmd_$2 := $3"\n')
    fixdep.chmod(0o755)
    commands = [
        SavedCommand(
            f"o{i}.o",
            f"echo one {i}; sleep 0.0{i}; echo two {i} >&2; touch o{i}.o .o{i}.o.d"
            + ("; false" if i == 1 else ""),
            frozenset(),
        )
        for i in range(3)
    ]
    for jobs in (1, 2):
        r = subprocess.run(
            ["sh", "-c", script(str(tmp_path), commands, jobs)], capture_output=True, text=True
        )
        assert r.returncode == 1  # o1 failed
        text = r.stdout + r.stderr
        for i in range(3):  # each object's lines together, in its order
            assert f"one {i}\ntwo {i}\n" in text or jobs == 1
        assert (tmp_path / ".o0.o.cmd").read_text().startswith("savedcmd_o0.o := echo one 0")
        assert not (tmp_path / ".o1.o.cmd").exists()  # a failed compile keeps no new .cmd
        assert not list(tmp_path.glob(".*.d"))


def test_the_kconfig_inputs_key_changes_only_with_what_config_targets_read() -> None:
    def listing(**blobs: str) -> str:
        files = {
            "Makefile": "a1",
            "mm/Kconfig": "b1",
            "arch/x86/configs/x86_64_defconfig": "c1",
            "arch/x86/Makefile": "d1",
            "scripts/Kconfig.include": "e1",
            "mm/filemap.c": "f1",
            "include/linux/mm.h": "g1",
            "arch/x86/kernel/setup.c": "h1",
        }
        files.update({k.replace("__", "/").replace("_dot_", "."): v for k, v in blobs.items()})
        return "".join(f"100644 blob {oid}\t{path}\n" for path, oid in files.items())

    key = kconfig_inputs(listing())
    # a series' code elsewhere: the same key
    assert kconfig_inputs(listing(mm__filemap_dot_c="f2", include__linux__mm_dot_h="g2")) == key
    assert kconfig_inputs(listing(arch__x86__kernel__setup_dot_c="h2")) == key
    for changed in (
        {"mm__Kconfig": "b2"},
        {"arch__x86__configs__x86_64_defconfig": "c2"},
        {"arch__x86__Makefile": "d2"},
        {"scripts__Kconfig_dot_include": "e2"},
        {"Makefile": "a2"},
    ):
        assert kconfig_inputs(listing(**changed)) != key, changed
