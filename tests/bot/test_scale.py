"""Scale-out on a real redis-server and real `lorebot worker` processes (Celery), each
with a cache of its own: a series on four arches spreads over the workers and gets the
findings and mails of a single-process run."""

from __future__ import annotations

import mailbox
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.cli.main import main
from bot.core.states import SeriesState
from bot.demo.series import write_series
from bot.run import queue
from bot.run.delivery import Mailer
from bot.run.dispatch import configure, redis_client, send
from bot.run.placement import recent_jobs
from bot.web import create_app, scale
from checks.build.jobs import SeriesJob, VariantRequest, split
from checks.build.toolchains import load_arches
from config.settings import Settings, load_settings
from state.db import Database
from state.models import ReplyRow, SeriesRow, utcnow
from tests.support.fakeseries import PATCHES as SERIES
from tests.support.kernel import git
from tests.support.pi import PublicInboxServer, small_tree_config
from tests.support.postgres import PostgresServer
from tests.support.postgres import bindir as pg_bindir
from tests.support.redis import REDIS, RedisServer
from tests.support.runs import run_next, series_row
from tests.support.scale import (
    MISSING,
    Worker,
    dispatch_table,
    four_arch_tree,
    lorebot,
    series_mbox,
    slow_builds,
    start_all,
    write_settings,
)
from tests.support.waiting import wait_for

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
            start_all(workers)
            coordinator = write_settings(tmp_path / "c.toml", tmp_path / "c", upstream, table)
            remote = lorebot(coordinator, "check", str(mbox))
            first = recent_jobs(redis_client(load_settings(coordinator)))
            # again: each job goes to the queue of the worker that holds its build dir
            again = lorebot(coordinator, "check", str(mbox))
            second = recent_jobs(redis_client(load_settings(coordinator)))[: len(first)]
            page, metrics, status = _page(coordinator)
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
    assert _seen(again) == _seen(local)
    built_by = {j["build_dir"]: j["worker"] for j in first}
    assert len(built_by) == len(remote["variants"]) and len(set(built_by.values())) == 2
    assert {j["build_dir"]: j["worker"] for j in second} == built_by
    assert all(j["queue"] == f"lorebot.worker.{j['worker']}" for j in second), second
    # the page, /metrics and /api/status show the workers, what they hold, the jobs
    assert "Build workers" in page and all(d in page for d in built_by)
    assert "lorebot_build_workers 2" in metrics
    assert 'lorebot_build_job_seconds_count{arch="powerpc"}' in metrics
    assert "lorebot_build_jobs_queued" in metrics
    assert sorted(w["name"] for w in status["scale"]["workers"]) == ["w1", "w2"]


def _page(cfg: Path) -> tuple[str, str, dict[str, Any]]:
    """The coordinator's status page, /metrics and /api/status."""
    settings = load_settings(cfg)
    db = Database(settings.database_url)
    try:
        client = TestClient(create_app(settings, db))
        return client.get("/").text, client.get("/metrics").text, client.get("/api/status").json()
    finally:
        db.dispose()


def test_a_worker_killed_in_the_middle_of_a_job_leaves_it_to_the_other(tmp_path: Path) -> None:
    """kill -9 of the worker that took a job: Redis hands the job to the other worker after
    the visibility timeout; the series gets its findings and one reply per patch."""
    upstream = four_arch_tree(tmp_path / "upstream")
    slow_builds(upstream, 1)
    mbox = series_mbox(upstream, tmp_path / "series.mbox")
    with RedisServer(tmp_path / "redis") as redis:
        table = dispatch_table(redis.url, visibility_timeout=3)
        one = ["x86_64"]  # two variants: two jobs, one of them on the worker killed
        workers = [
            Worker(
                n,
                write_settings(tmp_path / f"{n}.toml", tmp_path / n, upstream, table, one),
                tmp_path,
            )
            for n in ("w1", "w2")
        ]
        try:
            start_all(workers)
            coordinator = write_settings(tmp_path / "c.toml", tmp_path / "c", upstream, table, one)
            with ThreadPoolExecutor(1) as pool:
                run = pool.submit(lorebot, coordinator, "check", str(mbox))
                victim = wait_for(
                    lambda: next((w for w in workers if "] received" in w.text()), None),
                    60,
                    "a worker to take a job",
                )
                assert victim is not None and victim.proc is not None
                victim.proc.send_signal(signal.SIGKILL)
                victim.proc.wait(10)
                remote = run.result(timeout=240)
        finally:
            for w in workers:
                w.stop()
    other = next(w for w in workers if w is not victim)
    assert "succeeded" not in victim.text().split("] received")[-1]
    assert other.text().count("succeeded") >= 1
    assert remote["held"] is None
    assert [(f["patch"], f["file"]) for f in remote["findings"]] == [
        (2, "mm/bar.c"),
        (3, "mm/core.c"),
    ]
    targets = [r["in_reply_to"] for r in remote["replies"]]
    assert len(set(targets)) == len(targets)  # one reply per target
    assert sorted(r["patch"] or 0 for r in remote["replies"]) == [0, 2, 3]  # and a summary


def test_redis_stopped_during_a_series_holds_it_and_it_resumes(
    tmp_path: Path, pi_server: PublicInboxServer
) -> None:
    """The broker goes away while a job runs: the series is held with that reason (a fault
    of ours, nothing mailed); Redis back, the retry checks it and mails it once."""
    upstream = four_arch_tree(tmp_path / "upstream")
    slow_builds(upstream, 1)
    redis = RedisServer(tmp_path / "redis")
    one = ["x86_64"]
    table = dispatch_table(redis.url, visibility_timeout=3, broker_wait_seconds=2)
    cfg = _posted(tmp_path, pi_server, upstream, table)
    assert main(["--config", str(cfg), "poll", "--once"]) == 0
    settings = load_settings(cfg)
    db = Database(settings.database_url)
    worker_cfg = write_settings(tmp_path / "w1.toml", tmp_path / "w1", upstream, table, one)
    worker = Worker("w1", worker_cfg, tmp_path)
    redis.start()
    try:
        worker.start()
        with ThreadPoolExecutor(1) as pool:
            run = pool.submit(run_next, settings, db)
            wait_for(lambda: "] received" in worker.text(), 60, "the worker to take a job")
            redis.stop()
            sid = run.result(timeout=120)
        row = series_row(db, sid)
        assert row.state == SeriesState.HELD and "broker redis://" in row.reason, row.reason
        with db.session() as s:
            assert s.scalars(select(ReplyRow)).all() == []
        redis.start()
        assert queue.retry_held(db, utcnow() + timedelta(hours=1)) == [sid]
        assert run_next(settings, db) == sid
    finally:
        worker.stop()
        redis.stop()
    row = series_row(db, sid)
    assert row.state == SeriesState.DONE, row.reason
    Mailer(settings, db).deliver_pending()
    mails = list(mailbox.Maildir(settings.paths.state / "outbox"))
    assert len(mails) == 1 and "foo_missing" in mails[0].get_payload()
    db.dispose()


@pytest.mark.skipif(pg_bindir() is None, reason="needs PostgreSQL (apt-get install postgresql)")
def test_the_service_on_postgresql_with_a_worker(
    tmp_path: Path, pi_server: PublicInboxServer
) -> None:
    """The state in a real PostgreSQL (migrated on open), builds on a worker: `serve --once`
    polls, checks and mails the series once; the page reads the same database."""
    upstream = four_arch_tree(tmp_path / "upstream")
    with PostgresServer() as pg, RedisServer(tmp_path / "redis") as redis:
        table = dispatch_table(redis.url, database=pg.url)
        cfg = _posted(tmp_path, pi_server, upstream, table)
        worker_cfg = write_settings(tmp_path / "w1.toml", tmp_path / "w1", upstream, table)
        worker = Worker("w1", worker_cfg, tmp_path)
        try:
            worker.start()
            assert main(["--config", str(cfg), "serve", "--once"]) == 0
        finally:
            worker.stop()
        settings = load_settings(cfg)
        assert settings.database_url.startswith("postgresql+psycopg://")
        db = Database(settings.database_url)
        try:
            with db.session() as s:
                states = [r.state for r in s.scalars(select(SeriesRow)).all()]
            assert states == [SeriesState.DONE]
            status = TestClient(create_app(settings, db)).get("/api/status").json()
            assert status["total"].get("done") == 1, status
        finally:
            db.dispose()
    assert "succeeded" in worker.text()
    mails = list(mailbox.Maildir(settings.paths.state / "outbox"))
    assert len(mails) == 1 and "foo_missing" in mails[0].get_payload()


def test_queue_depth_per_arch_on_the_page(tmp_path: Path, settings: Settings) -> None:
    """Jobs waiting in the broker with no worker: counted per arch in /metrics."""
    series = SeriesJob(
        tree="fake", tree_url="/nowhere", tree_base="0" * 40, base="0" * 40, patches=(),
        chains=(), steps=(), w1=False, trusted=True, build={}, seconds=60,
    )  # fmt: skip
    table = load_arches()
    variants = [
        VariantRequest(arch=asdict(table[a]), llvm=False, target="defconfig", enable=())
        for a in ("x86_64", "arm64", "arm64")
    ]
    specs = split(series, [*variants[:2], variants[2].model_copy(update={"enable": ("FOO",)})])
    with RedisServer(tmp_path / "redis") as redis:
        d = settings.dispatch.model_copy(update={"broker_url": redis.url})
        settings = settings.model_copy(update={"dispatch": d})
        configure(settings)
        for s in specs:
            send(s)
        o = scale.overview(settings)
    assert o is not None and o["queued"] == {"arm64": 2, "x86_64": 1}
    assert 'lorebot_build_jobs_queued{arch="arm64"} 2' in scale.metrics_lines(o)


def _posted(tmp_path: Path, pi_server: PublicInboxServer, upstream: Path, table: str) -> Path:
    """The fake series posted to the inbox, its tree synced; the settings (x86_64 builds,
    the [dispatch] `table`)."""
    cfg = small_tree_config(
        tmp_path,
        pi_server,
        upstream,
        '[checks]\nenabled = ["build"]\n\n[build]\narches = ["x86_64"]\njobs = 1\n\n'
        "[base]\nfetch_by_sha = false\n\n" + table,
    )
    assert main(["--config", str(cfg), "tree", "sync"]) == 0
    git(upstream, "checkout", "-qb", "topic")
    pi_server.post_many(write_series(upstream, SERIES, list_address=pi_server.address).mails)
    git(upstream, "checkout", "-q", "master")
    return cfg


def test_jobs_placed_on_a_worker_that_died_go_to_the_shared_queue(tmp_path: Path) -> None:
    """w1 built the series and holds its build dirs; killed, it still looks alive until its
    heartbeat expires: the jobs placed on its queue do not start, and after the warm
    threshold they are sent to the shared queue, where w2 builds them."""
    upstream = four_arch_tree(tmp_path / "upstream")
    mbox = series_mbox(upstream, tmp_path / "series.mbox")
    one = ["x86_64"]
    with RedisServer(tmp_path / "redis") as redis:
        table = dispatch_table(redis.url, warm_threshold_seconds=1, heartbeat_seconds=20)
        w1, w2 = (
            Worker(
                n,
                write_settings(tmp_path / f"{n}.toml", tmp_path / n, upstream, table, one),
                tmp_path,
            )
            for n in ("w1", "w2")
        )
        coordinator = write_settings(tmp_path / "c.toml", tmp_path / "c", upstream, table, one)
        try:
            w1.start()
            first = lorebot(coordinator, "check", str(mbox))
            assert w1.proc is not None
            w1.proc.send_signal(signal.SIGKILL)
            w1.proc.wait(10)
            w2.start()
            again = lorebot(coordinator, "check", str(mbox))
            jobs = recent_jobs(redis_client(load_settings(coordinator)))
        finally:
            w1.stop()
            w2.stop()
    n = len(first["variants"])
    assert _seen(again) == _seen(first) and first["findings"]
    assert [j["worker"] for j in jobs[:n]] == ["w2"] * n, jobs
    assert {j["queue"] for j in jobs[:n]} == {"lorebot.jobs"}
    assert {j["worker"] for j in jobs[n:]} == {"w1"}
