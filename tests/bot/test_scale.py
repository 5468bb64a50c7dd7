"""Scale-out on a real redis-server and real `lorebot worker` processes (Celery), each
with a cache of its own: a series on four arches spreads over the workers and gets the
findings and mails of a single-process run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.redis import REDIS, RedisServer
from tests.support.scale import (
    MISSING,
    Worker,
    dispatch_table,
    four_arch_tree,
    lorebot,
    series_mbox,
    write_settings,
)

pytestmark = [
    pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)}"),
    pytest.mark.skipif(REDIS is None, reason="needs redis-server"),
]


def _seen(out: dict[str, Any]) -> dict[str, Any]:
    """What authors and the page get: findings, mails, notes, the plan (no timings)."""
    return {
        "findings": out["findings"],
        "replies": out["replies"],
        "notes": sorted(str(n) for n in out["notes"]),
        "variants": out["variants"],
        "coverage": out["coverage"],
        "held": out["held"],
    }


def test_a_series_on_four_arches_spreads_over_two_workers(tmp_path: Path) -> None:
    upstream = four_arch_tree(tmp_path / "upstream")
    mbox = series_mbox(upstream, tmp_path / "series.mbox")
    single = write_settings(tmp_path / "local.toml", tmp_path / "local", upstream)
    local = lorebot(single, "check", str(mbox))
    with RedisServer(tmp_path / "redis") as redis:
        table = dispatch_table(redis.url)
        workers = [
            Worker(
                n, write_settings(tmp_path / f"{n}.toml", tmp_path / n, upstream, table), tmp_path
            )
            for n in ("w1", "w2")
        ]
        try:
            for w in workers:
                w.start()
            coordinator = write_settings(tmp_path / "c.toml", tmp_path / "c", upstream, table)
            remote = lorebot(coordinator, "check", str(mbox))
        finally:
            for w in workers:
                w.stop()
    assert [(f["patch"], f["file"], f["arch"]) for f in remote["findings"]] == [
        (2, "mm/bar.c", "x86_64"),
        (3, "mm/core.c", "x86_64"),
    ]
    assert {v["arch"] for v in remote["variants"]} == {"x86_64", "i386", "arm64", "powerpc"}
    assert _seen(remote) == _seen(local)
    # both workers built, each in its own cache; the coordinator compiled nothing
    for w in workers:
        assert "succeeded" in w.text(), w.text()[-2000:]
        assert list((tmp_path / w.name / "cache" / "build").iterdir())
    assert not list((tmp_path / "c" / "state").rglob("*-build.log"))
