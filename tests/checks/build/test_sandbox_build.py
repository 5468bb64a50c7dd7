"""Hostile series on tests/fakelinux: what their build may do is contained by the sandbox.

Real bubblewrap, make and gcc; each test writes a series whose Makefile or
source tries something a build must not do, runs the build check, and looks at
the host afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from bot.core.results import CheckResult
from bot.core.runner import Runner
from checks.base import sandbox_for
from checks.build import BuildCheck
from config.settings import BuildSettings, SandboxSettings, Settings
from tests.support import kernel
from tests.support.fakelinux import fake_tree
from tests.support.kernel import WrittenPatch, replace_in
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("gcc", "ccache", "bwrap")),
    reason="needs gcc, ccache and bubblewrap (apt-get install gcc ccache bubblewrap)",
)

OBJ_DIR_LINE = "else # in the object directory\n"


def in_makefile(text: str) -> WrittenPatch:
    """A patch that adds `text` to the top Makefile, where make reads it in the O= dir."""
    return WrittenPatch(
        "build: a few more rules", [replace_in("Makefile", OBJ_DIR_LINE, OBJ_DIR_LINE + text)]
    )


def touch_core() -> WrittenPatch:
    return WrittenPatch(
        "mm/core: reword a comment",
        [replace_in("mm/core.c", "part of the base", "kept in the base")],
    )


def build(
    patches: list[WrittenPatch],
    settings: Settings,
    tmp_path: Path,
    cache: Path | None = None,
    **sandbox: object,
) -> CheckResult:
    """The build check on `patches` over a fresh fakelinux, with these sandbox settings."""
    wt = fake_tree(tmp_path / "linux")
    settings = settings.model_copy(
        update={
            "build": BuildSettings(arches=["x86_64"], step_seconds=30),
            "sandbox": SandboxSettings(**sandbox),  # type: ignore[arg-type]
        }
    )
    ctx = kernel.series_context(
        wt, patches, settings, tmp_path, cache_dir=cache or tmp_path / "cache"
    )
    return BuildCheck().run(ctx)


def build_dirs(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "build"


def test_a_makefile_of_the_series_reaches_nothing_of_the_host(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOREBOT_SMTP_PASSWORD", "hunter2-not-for-builds")
    host = tmp_path / "host"
    host.mkdir(mode=0o777)
    host.chmod(0o777)  # writable by anyone: only the sandbox keeps the build out
    marker = host / "marker"
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    connect = f"import socket; socket.create_connection(('127.0.0.1', {port}), 2)"
    hostile = in_makefile(
        f"$(shell touch {marker}; touch {host}/outside)\n"
        "$(shell env > $(CURDIR)/seen-env; id -u > $(CURDIR)/seen-uid)\n"
        f'$(shell python3 -c "{connect}" && touch $(CURDIR)/seen-net)\n'
        "$(shell touch $(abs_srctree)/written-in-tree 2>/dev/null)\n"
    )
    result = build([touch_core(), hostile], settings, tmp_path)

    assert not marker.exists() and not (host / "outside").exists()
    with pytest.raises(TimeoutError):
        listener.accept()  # nothing connected from the build
    listener.close()
    assert not (tmp_path / "linux" / "written-in-tree").exists()
    envs = list(build_dirs(tmp_path).rglob("seen-env"))
    assert envs, "the hostile Makefile ran (in the sandbox)"
    seen = envs[0].read_text()
    assert "LOREBOT" not in seen and "hunter2" not in seen
    assert not any(build_dirs(tmp_path).rglob("seen-net"))
    uid = int(next(build_dirs(tmp_path).rglob("seen-uid")).read_text())
    assert uid != 0
    # the run completed: the series was built at both patches
    assert result.variants and "mm/core.o" in result.variants[0].objects


def test_fork_bomb_and_a_hung_build_are_stopped_and_leave_nothing_running(
    settings: Settings, tmp_path: Path
) -> None:
    tag = f"lorebot-bomb-{os.getpid()}"
    bomb = in_makefile(f"$(shell sh -c 'b() {{ b | b & }}; echo {tag}; b; sleep 600')\n")
    result = build([touch_core(), bomb], settings, tmp_path, processes=64)
    failed = [n for n in result.notes if n.kind == "build-failed"]
    assert failed and "after patch 2" in failed[0].message, result.notes
    wait_for(lambda: not _processes_with(tag), 10, "the bomb's processes to be gone")
    # the next series builds as before
    again = build([touch_core()], settings, tmp_path / "next")
    assert again.variants and not [n for n in again.notes if n.kind == "build-failed"]


def test_a_build_cannot_fill_the_disk(settings: Settings, tmp_path: Path) -> None:
    fill = in_makefile(
        "$(shell dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>/dev/null; "
        "dd if=/dev/zero of=$(CURDIR)/fill bs=1M count=64 2>/dev/null)\n"
    )
    result = build([touch_core(), fill], settings, tmp_path, file_bytes=8 << 20, tmp_bytes=4 << 20)
    filled = list(build_dirs(tmp_path).rglob("fill"))
    assert filled and all(p.stat().st_size <= 8 << 20 for p in filled)
    assert result.variants  # the run went on and was recorded


def test_a_header_of_the_host_is_never_quoted(settings: Settings, tmp_path: Path) -> None:
    """`#include "/etc/passwd"`: the error is reported without a byte of the file."""
    patches = [
        touch_core(),
        WrittenPatch(
            "mm/core: include a host file",
            [replace_in("mm/core.c", "#include <linux/foo.h>\n", '#include "/etc/passwd"\n')],
        ),
    ]
    result = build(patches, settings, tmp_path)
    assert result.findings, "the broken include is a finding of patch 2"
    host = Path("/etc/passwd").read_text().splitlines()[0]
    for f in result.findings:
        dumped = f.model_dump_json()
        assert host.split(":")[0] + ":x:" not in dumped
        assert "/etc/passwd" not in f.file


def test_without_bubblewrap_the_build_is_refused_unless_allowed(tmp_path: Path) -> None:
    from bot.core.sandbox import SandboxUnavailable

    missing = SandboxSettings(bwrap=str(tmp_path / "no-bwrap"))
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        sandbox_for(missing, Runner())
    allowed = sandbox_for(missing.model_copy(update={"allow_unsandboxed": True}), Runner())
    assert not allowed.enabled


def _processes_with(tag: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if tag.encode() in cmdline:
            found.append(int(pid))
    return found


def test_what_a_series_leaves_in_its_build_dir_or_ccache_never_reaches_the_next_run(
    settings: Settings, tmp_path: Path
) -> None:
    """The next run's trusted base step starts from the trusted copy of the O= dir (a host
    tool or .cmd file planted there would run with the ccache writable), and a series'
    steps see the ccache read-only."""
    plant = in_makefile(
        "$(shell echo planted > $(CURDIR)/planted; touch $(CCACHE_DIR)/poison 2>/dev/null)\n"
    )
    cache = tmp_path / "cache"
    build([touch_core(), plant], settings, tmp_path / "first", cache=cache)
    planted = list((cache / "build").rglob("planted"))
    assert planted and all(".trusted" not in str(p) for p in planted)
    assert not list(cache.rglob("poison"))
    clean = build([touch_core()], settings, tmp_path / "second", cache=cache)
    assert clean.variants and not list((cache / "build").rglob("planted"))
