"""Placement that keeps builds warm (bot/run/placement.py): the pure choice, and the
build dirs a worker's cache holds."""

from __future__ import annotations

from pathlib import Path

from bot.run.placement import WorkerState, choose, held_build_dirs

DIR = "fake:x86_64:defconfig-base-1234abcd"
SHARED = "lorebot.jobs"
NOW = 1000.0


def _w(name: str, busy_for: float = 0.0, holds: tuple[str, ...] = (DIR,)) -> WorkerState:
    return WorkerState(
        name, f"q.{name}", busy_since=NOW - busy_for if busy_for else 0.0,
        holds=dict.fromkeys(holds, 10.0),
    )  # fmt: skip


def test_a_job_goes_to_the_idle_worker_holding_its_build_dir() -> None:
    ws = [_w("a", holds=()), _w("b")]
    assert choose(DIR, ws, NOW, 60, {}, SHARED) == ("q.b", "b")


def test_no_worker_holds_it_the_shared_queue_takes_it() -> None:
    assert choose(DIR, [_w("a", holds=())], NOW, 60, {}, SHARED) == (SHARED, "")
    assert choose(DIR, [], NOW, 60, {}, SHARED) == (SHARED, "")


def test_the_warm_worker_busy_past_the_threshold_leaves_it_to_the_shared_queue() -> None:
    assert choose(DIR, [_w("a", busy_for=61)], NOW, 60, {}, SHARED) == (SHARED, "")
    assert choose(DIR, [_w("a", busy_for=59)], NOW, 60, {}, SHARED) == ("q.a", "a")
    # work given to it in the same batch counts as busy
    assert choose(DIR, [_w("a", busy_for=30)], NOW, 60, {"a": 40.0}, SHARED) == (SHARED, "")


def test_of_two_warm_workers_the_less_loaded_one() -> None:
    ws = [_w("a", busy_for=20), _w("b", busy_for=5)]
    assert choose(DIR, ws, NOW, 60, {}, SHARED) == ("q.b", "b")
    assert choose(DIR, ws, NOW, 60, {"b": 30.0}, SHARED) == ("q.a", "a")


def test_the_build_dirs_a_cache_holds(tmp_path: Path) -> None:
    odir = tmp_path / "build" / "fake-0" / "x86_64" / "defconfig-base-1234abcd"
    odir.mkdir(parents=True)
    (odir / ".config").write_text("CONFIG_FOO=y\n")
    (odir.parent / "defconfig-base-1234abcd.trusted").mkdir()
    (odir.parent / "defconfig").mkdir()  # no .config: not a build dir yet
    assert held_build_dirs(tmp_path) == [DIR]
