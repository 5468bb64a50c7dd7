"""A two-patch series on tests/fakelinux, the second breaking the build (an undeclared
function), and a lorebot config that checks it: for tests of what users do with a
result (talk back by mail, check before posting, read it in b4 review)."""

from __future__ import annotations

from pathlib import Path

from bot.demo.series import DemoPatch, Edit
from tests.support.pi import PublicInboxServer

PATCHES = [
    DemoPatch(
        "mm/core: reword a comment",
        "Say where the spare variable comes from.",
        (Edit("mm/core.c", "part of the base", "kept in the base"),),
    ),
    DemoPatch(
        "mm/core: count the first foo in core_setup()",
        "The first foo is in use from the start.",
        (
            Edit(
                "mm/core.c", "\treturn foo_count();\n}", "\treturn foo_missing(0) + foo_count();\n}"
            ),
        ),
    ),
]


def write_config(tmp_path: Path, pi: PublicInboxServer, upstream: Path, extra: str = "") -> Path:
    """lorebot.toml: the inbox's list, the fake tree, the build check on x86_64."""
    cfg = tmp_path / "lorebot.toml"
    cfg.write_text(
        f'[paths]\nstate = "{tmp_path / "state"}"\ncache = "{tmp_path / "cache"}"\n\n'
        f'[[lists]]\nname = "{pi.name}"\nurl = "{pi.url}"\naddress = "{pi.address}"\n'
        'trees = ["fake"]\n\n'
        f'[[trees]]\nname = "fake"\nurl = "{upstream}"\nbranches = ["master"]\n\n'
        '[checks]\nenabled = ["build"]\n\n[build]\narches = ["x86_64"]\n\n' + extra
    )
    return cfg
