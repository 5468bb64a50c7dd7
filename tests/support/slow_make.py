"""`python -m tests.support.slow_make TREE ODIR`: one sandboxed `make defconfig` in ODIR, as
lorebot runs it, on a tree whose Makefile takes long; for tests that kill lorebot mid-build
(the test's Makefile writes what it needs into ODIR, e.g. start/end times in runs.log).
"""

from __future__ import annotations

import sys
from pathlib import Path

from bot.core.runner import Runner
from checks.base import sandbox_for
from checks.build.make import Make
from checks.build.toolchains import load_arches
from config.settings import SandboxSettings


def main(tree: str, odir: str) -> int:
    runner = Runner()
    make = Make(
        runner,
        Path(tree),
        load_arches()["x86_64"],
        Path(odir).parent,
        Path(odir).parent / "ccache",
        sandbox=sandbox_for(SandboxSettings(), runner),
    )
    r = make.run(Path(odir), "defconfig", name="slow", timeout=120)
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
