"""Build jobs through Celery with a Redis broker: what the coordinator sends and collects,
and the task a `lorebot worker` runs.

The broker is told to hand a job out again when the worker that took it dies
(late acks, a rejected message on a lost worker, Redis' visibility timeout), so a
job may run twice: results are keyed by the job's id and the first one counts. A
broker that cannot be reached raises BrokerUnavailable, which the pipeline records as
a fault of ours: the series is held with that reason and checked again later.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from celery.result import AsyncResult

from bot.run.jobhost import run_spec
from bot.run.placement import (
    PREFIX,
    SHARED_QUEUE,
    WorkerState,
    announce,
    choose,
    held_build_dirs,
    record_job,
    worker_queue,
    workers,
)
from checks.build.jobs import JobResult, JobSpec
from config.settings import Settings

log = logging.getLogger("lorebot.dispatch")

TASK = "lorebot.build"

app = Celery("lorebot")
_worker: dict[str, Any] = {}  # settings, state and Redis client of the worker this is


class BrokerUnavailable(Exception):
    """The broker (or the result backend) cannot be reached: the series waits for it."""


def configure(settings: Settings) -> Celery:
    """Point the app at the settings' broker, with the delivery guarantees jobs need."""
    d = settings.dispatch
    restore = max(1, min(10, d.visibility_timeout // 2))
    urls = (d.broker_url, d.result_backend or d.broker_url)
    if _worker.get("urls", urls) != urls:
        # another broker than before (a process that is told twice): drop the connections
        # and the result backend Celery keeps for the old one
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app._backend_cache = None
        app._local = threading.local()
        app.__dict__.get("amqp", app)._producer_pool = None
    _worker["urls"] = urls
    app.conf.update(
        broker_url=d.broker_url,
        result_backend=d.result_backend or d.broker_url,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=SHARED_QUEUE,
        # a job is acknowledged when it is done, not when it is taken: a worker killed in
        # the middle leaves it to another (rejected on a lost child, restored by Redis
        # after the visibility timeout when the whole worker is gone)
        task_acks_late=True,
        task_track_started=True,  # a job on a warm worker's queue not started: sent again
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": d.visibility_timeout,
            "unacked_restore_interval": restore,
            "unacked_restore_throttle": 1,
        },
        result_backend_transport_options={"visibility_timeout": d.visibility_timeout},
        # a broker that is down fails the send within broker_wait_seconds
        broker_connection_timeout=d.broker_wait_seconds,
        broker_connection_retry_on_startup=True,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": d.broker_wait_seconds / 4,
            "interval_max": d.broker_wait_seconds / 2,
        },
        redis_socket_connect_timeout=d.broker_wait_seconds,
        redis_socket_timeout=max(d.broker_wait_seconds, 30),
        result_expires=24 * 3600,
        task_time_limit=d.job_timeout_seconds,
        worker_hijack_root_logger=False,
    )
    return app


@app.task(name=TASK, bind=True)
def build(self: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """A build job, on a worker: the JobSpec as JSON in, the JobResult as JSON out."""
    settings = _worker["settings"]
    job = JobSpec.model_validate(spec)
    here: _Here = _worker["state"]
    here.busy_since = time.time()
    _announce()
    try:
        result = run_spec(settings, job, settings.paths.logs / "jobs" / job.job_id)
    finally:
        here.busy_since = 0.0
    if not result.fault:
        here.holds[job.build_dir] = round(result.seconds, 2)
    _announce()
    info = getattr(self.request, "delivery_info", None) or {}
    entry = {
        "job_id": job.job_id,
        "build_dir": job.build_dir,
        "arch": job.variant.arch["name"],
        "worker": here.name,
        "queue": info.get("routing_key", ""),
        "seconds": round(result.seconds, 2),
        "fault": result.fault,
        "at": time.time(),
    }
    _quietly(lambda c: record_job(c, entry))
    return result.model_dump(mode="json")


@dataclass
class _Here:
    """This worker's announcement, as the heartbeat writes it."""

    name: str
    queue: str
    busy_since: float = 0.0
    holds: dict[str, float] = field(default_factory=dict)


def _quietly(fn: Callable[[Any], object]) -> None:
    """Placement facts are best effort: a broker that is away does not fail a job."""
    try:
        fn(_worker["client"])
    except Exception as e:
        log.info("placement update skipped: %s", e)


def _announce() -> None:
    here: _Here = _worker["state"]
    ttl = 3 * _worker["settings"].dispatch.heartbeat_seconds
    state = WorkerState(here.name, here.queue, here.busy_since, dict(here.holds))
    _quietly(lambda c: announce(c, state, ttl))


def _heartbeat(stop: threading.Event) -> None:
    every = _worker["settings"].dispatch.heartbeat_seconds
    while not stop.wait(every):
        _announce()


def redis_client(settings: Settings) -> Any:
    """A Redis client of the broker (placement facts live there)."""
    import redis

    d = settings.dispatch
    return redis.Redis.from_url(
        d.broker_url, socket_connect_timeout=d.broker_wait_seconds, socket_timeout=30
    )


def serve_worker(settings: Settings, name: str) -> None:
    """Run this process as a Celery worker (one job at a time) until it is stopped: it
    reads the shared queue and its own, and announces the build dirs it holds."""
    _worker["settings"] = settings
    configure(settings)
    here = _Here(name, worker_queue(name))
    here.holds.update(dict.fromkeys(held_build_dirs(settings.paths.cache), 0.0))
    _worker["state"] = here
    _worker["client"] = redis_client(settings)
    _announce()
    stop = threading.Event()
    threading.Thread(target=_heartbeat, args=(stop,), daemon=True, name="heartbeat").start()
    try:
        app.worker_main(
            [
                "worker",
                "--pool=solo",
                "--concurrency=1",
                "--without-gossip",
                "--without-mingle",
                f"--hostname={name}",
                f"--queues={SHARED_QUEUE},{here.queue}",
                "--loglevel=INFO",
            ]
        )
    finally:
        stop.set()
        _quietly(lambda c: c.delete(PREFIX + name))


def _errors() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (OperationalError, RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


def send(spec: JobSpec, queue: str = SHARED_QUEUE) -> AsyncResult:
    """Put one job on a queue; its task id says which job it is."""
    return app.send_task(
        TASK,
        args=[spec.model_dump(mode="json")],
        queue=queue,
        task_id=f"{spec.job_id}-{uuid.uuid4().hex[:8]}",
    )


@dataclass
class _Sent:
    """One job in flight: its tasks (a second one on the shared queue when the warm
    worker did not start it in time), where the first went, and when."""

    spec: JobSpec
    tasks: list[AsyncResult]
    queue: str
    at: float


def collect(
    settings: Settings,
    specs: list[JobSpec],
    place: Callable[[JobSpec], str] = lambda spec: SHARED_QUEUE,
    on_result: Callable[[JobSpec, JobResult], None] = lambda spec, result: None,
) -> list[JobResult]:
    """Send every job (to the queue `place` names) and wait for one result each, in the
    order of `specs`; raises BrokerUnavailable when the broker cannot be reached.

    A job sent to a warm worker's queue that has not started after the warm threshold
    (the worker is busier than announced, or gone before its heartbeat expired) is sent
    to the shared queue too: whichever answers first counts."""
    configure(settings)
    d = settings.dispatch
    errors = _errors()
    try:
        pending = {}
        for s in specs:
            queue = place(s)
            pending[s.job_id] = _Sent(s, [send(s, queue)], queue, time.monotonic())
    except errors as e:
        raise BrokerUnavailable(f"broker {d.broker_url} unreachable: {e}") from e
    results: dict[str, JobResult] = {}
    deadline = time.monotonic() + d.job_timeout_seconds + d.visibility_timeout
    fallback = d.warm_threshold_seconds + 2  # slack for an idle worker to take it
    down_since: float | None = None
    while pending:
        if time.monotonic() > deadline:
            raise BrokerUnavailable(f"{len(pending)} job(s) had no result in time")
        try:
            for job_id, sent in list(pending.items()):
                done = next((t for t in sent.tasks if t.ready()), None)
                if done is None:
                    late = time.monotonic() - sent.at > fallback
                    if (
                        sent.queue != SHARED_QUEUE
                        and len(sent.tasks) == 1
                        and late
                        and sent.tasks[0].state == "PENDING"  # not taken by its worker
                    ):
                        log.info("job %s not started on %s: shared too", job_id, sent.queue)
                        sent.tasks.append(send(sent.spec, SHARED_QUEUE))
                    continue
                data = done.get(timeout=d.broker_wait_seconds, propagate=False)
                for t in sent.tasks:
                    t.forget()
                del pending[job_id]
                if not isinstance(data, dict):  # the task itself failed: ours
                    data = {"job_id": job_id, "fault": f"job failed on a worker: {data!r}"}
                result = JobResult.model_validate(data)
                results[job_id] = result
                on_result(sent.spec, result)
            down_since = None
        except errors as e:
            down_since = down_since or time.monotonic()
            if time.monotonic() - down_since > d.broker_wait_seconds:
                raise BrokerUnavailable(f"broker {d.broker_url} unreachable: {e}") from e
        time.sleep(0.1)
    return [results[s.job_id] for s in specs]


def placer(settings: Settings) -> Callable[[JobSpec], str]:
    """Where each job of one batch goes (`placement.choose`), the workers read once."""
    d = settings.dispatch
    try:
        alive = workers(redis_client(settings))
    except _errors() as e:
        raise BrokerUnavailable(f"broker {d.broker_url} unreachable: {e}") from e
    planned: dict[str, float] = {}

    def place(spec: JobSpec) -> str:
        queue, name = choose(
            spec.build_dir, alive, time.time(), d.warm_threshold_seconds, planned, SHARED_QUEUE
        )
        if name:
            w = next(w for w in alive if w.name == name)
            # a dir announced at the worker's start has no time yet: count it as a while
            planned[name] = planned.get(name, 0.0) + (w.holds.get(spec.build_dir) or 30.0)
        log.info("job %s (%s) -> %s", spec.job_id, spec.build_dir, queue)
        return queue

    return place


def remote_jobs(settings: Settings) -> Callable[[list[Any]], list[Any]] | None:
    """The CheckContext's `run_jobs` when a broker is configured, else None (in-process)."""
    if not settings.dispatch.broker_url:
        return None

    def run(specs: list[Any]) -> list[Any]:
        return collect(settings, specs, placer(settings))

    return run
