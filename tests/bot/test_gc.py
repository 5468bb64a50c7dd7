"""Disk stays bounded: `lorebot gc` trims the cache past its quota least recently used first,
never a slot or build dir a run holds; logs and outbox mails past the retention go."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.cli.main import main
from bot.core.runner import Runner
from bot.trees.diskplan import CacheEntry, plan_eviction
from bot.trees.repo import Repo, acquire_slot
from bot.web import create_app
from checks.build.make import Make
from checks.build.toolchains import load_arches
from config.settings import load_settings
from state.db import Database
from tests.support.gitrepo import SmallRepo
from tests.support.gitserver import bare_git

MiB = 2**20


def test_plan_is_lru_and_never_touches_what_is_in_use() -> None:
    def e(name: str, used: float, in_use: bool = False, kind: str = "build") -> CacheEntry:
        return CacheEntry(Path(name), kind, 10, used, in_use)

    entries = [e("new", 3), e("old", 1), e("busy", 0, True), e("mid", 2), e("slot", 1, kind="slot")]
    assert [x.path.name for x in plan_eviction(entries, 50, 30)] == ["old", "slot"]
    assert [x.path.name for x in plan_eviction(entries, 50, 50)] == []
    # everything idle, and still over: the busy one stays
    assert "busy" not in [x.path.name for x in plan_eviction(entries, 50, 0)]


def _build_dir(cache: Path, name: str, size: int, age: float) -> Path:
    d = cache / "build" / "small-0" / name
    d.mkdir(parents=True)
    (d / "vmlinux.o").write_bytes(os.urandom(size))
    lock = d.with_name(name + ".lock")
    lock.touch()
    t = time.time() - age
    for p in (d, lock):
        os.utime(p, (t, t))
    return d


def _config(tmp_path: Path, upstream: Path, extra: str = "") -> Path:
    cfg = tmp_path / "l.toml"
    cfg.write_text(
        f'[paths]\nstate = "{tmp_path / "state"}"\ncache = "{tmp_path / "cache"}"\n\n'
        f'[[trees]]\nname = "small"\nurl = "{upstream}"\n\n' + extra
    )
    return cfg


def test_gc_trims_oldest_first_and_keeps_the_slot_in_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    up = SmallRepo(tmp_path / "up")
    cfg = _config(tmp_path, up.path, "[apply]\nslots = 2\n")
    cache = tmp_path / "cache"
    assert main(["--config", str(cfg), "tree", "sync"]) == 0
    capsys.readouterr()
    repo = Repo(cache / "git" / "kernel.git", Runner())
    # two real worktree slots; slot 1 is idle and old, slot 0 is held by a "run"
    with acquire_slot(repo, cache, 2) as a, acquire_slot(repo, cache, 2) as b:
        a.reset(up.head())
        b.reset(up.head())
    old = time.time() - 7200
    os.utime(cache / "slots" / "1.lock", (old, old))
    os.utime(cache / "slots" / "1", (old, old))
    dirs = {
        name: _build_dir(cache, name, MiB, age)
        for name, age in (("x86_64", 600), ("arm64", 3600), ("i386", 60), ("powerpc", 1800))
    }
    # a log and an outbox mail past the retention, one within it
    logs = tmp_path / "state" / "logs"
    (logs / "7").mkdir(parents=True)
    (logs / "8").mkdir()
    outbox = tmp_path / "state" / "outbox" / "cur"
    outbox.mkdir(parents=True)
    (outbox / "old.eml").write_text("x")
    ancient = time.time() - 40 * 86400
    for p in (logs / "7", outbox / "old.eml"):
        os.utime(p, (ancient, ancient))
    # a base fetched by sha long ago, and a recent one
    gd = cache / "git" / "kernel.git"
    tree = bare_git(gd, "rev-parse", f"{up.head()}^{{tree}}").strip()
    stale = bare_git(
        gd, "commit-tree", tree, "-m", "old base", env={"GIT_COMMITTER_DATE": "@1500000000 +0000"}
    ).strip()
    for sha in (stale, up.head()):
        bare_git(gd, "update-ref", f"refs/bases/{sha}", sha)
    with acquire_slot(repo, cache, 2) as busy:
        assert busy.path.name == "0"
        busy.reset(up.head())
        # dry run: says what would go, removes nothing
        assert main(["--config", str(cfg), "gc", "--dry-run", "--json", "--quota", "1"]) == 0
        dry = json.loads(capsys.readouterr().out)
        assert dry["dry_run"] and all(d.exists() for d in dirs.values())
        assert (logs / "7").exists() and dry["logs_removed"] == 1
        assert (
            dry["bases_removed"] == 1
            and bare_git(gd, "for-each-ref", "refs/bases/").count("\n") == 2
        )
        before = dry["total_bytes_before"]
        # a quota that two build dirs' worth of eviction satisfies
        quota = before - int(1.5 * MiB)
        assert main(["--config", str(cfg), "gc", "--json", "--quota", str(quota)]) == 0
        out = json.loads(capsys.readouterr().out)
        gone = [e["path"] for e in out["evicted"]]
        # oldest first: the idle slot (2 h), then arm64 (1 h) … until under the quota
        assert gone[:2] == ["slots/1", "build/small-0/arm64"], gone
        assert out["total_bytes_after"] <= quota
        assert not (cache / "slots" / "1").exists() and not dirs["arm64"].exists()
        assert dirs["i386"].exists() and dirs["x86_64"].exists()
        # everything idle goes with a tiny quota; never the slot in use
        assert main(["--config", str(cfg), "gc", "--json", "--quota", "1"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert "slots/0" not in [e["path"] for e in out["evicted"]]
        assert (busy.path / "README").exists() and busy.head() == up.head()
        assert not any(d.exists() for d in dirs.values())
    assert not (logs / "7").exists() and (logs / "8").exists()
    assert not (outbox / "old.eml").exists()
    assert bare_git(gd, "for-each-ref", "--format=%(refname)", "refs/bases/").split() == [
        f"refs/bases/{up.head()}"
    ]
    # the sizes it measured are on the page and in /metrics
    settings = load_settings(cfg)
    client = TestClient(create_app(settings, Database(settings.database_url)))
    usage = {c["kind"]: c for c in client.get("/api/status").json()["cache"]}
    assert usage["slots"]["entries"] == 1 and usage["slots"]["bytes"] > 0
    assert usage["build"]["entries"] == 0 and usage["git"]["bytes"] > 0
    assert 'lorebot_cache_bytes{kind="slots"}' in client.get("/metrics").text
    assert "MiB" in client.get("/").text
    # the removed slot is made again on its next use
    with acquire_slot(repo, cache, 2) as a, acquire_slot(repo, cache, 2) as b:
        b.reset(up.head())
        assert b.path.name == "1" and (b.path / "README").exists()
        assert a.path.name == "0"


def test_gc_never_removes_an_arch_whose_build_dir_a_run_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A build holds the lock beside its variant's O= dir, inside the arch's dir that gc
    evicts whole: that arch stays, however old, until the run lets go."""
    cfg = _config(tmp_path, SmallRepo(tmp_path / "up").path)
    cache = tmp_path / "cache"
    arch = _build_dir(cache, "x86_64", MiB, 7200)
    odir = arch / "defconfig-base-0123"
    (odir / "mm").mkdir(parents=True)
    (odir / "mm" / "filemap.o").write_bytes(os.urandom(MiB))
    make = Make(Runner(), tmp_path, load_arches()["x86_64"], arch, cache / "ccache")
    make.hold(odir)
    try:
        assert main(["--config", str(cfg), "gc", "--json", "--quota", "1"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["evicted"] == [] and out["total_bytes_after"] > 2 * MiB
        assert (odir / "mm" / "filemap.o").exists()
    finally:
        make.close()
    assert main(["--config", str(cfg), "gc", "--json", "--quota", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [e["path"] for e in out["evicted"]] == ["build/small-0/x86_64"]
    assert not arch.exists()
