"""A build job on this host: the base fetched into this host's tree mirror, the series'
patches applied in a slot of its own, the variant built (checks.build.jobs.run_job).

Whatever goes wrong here that is not a compiler's verdict (the base cannot be
fetched, a patch does not apply again, the sandbox, a crash) is a fault of ours:
the result carries it, and the coordinator holds the series instead of blaming it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from bot.core.git import Git
from bot.core.runner import Runner
from bot.trees.fetchsha import fetch_commit
from bot.trees.repo import Repo, acquire_slot, tree_ref
from checks.base import sandbox_for
from checks.build.jobs import JobFault, JobResult, JobSpec, run_job
from config.settings import Settings, TreeSettings

log = logging.getLogger("lorebot.jobhost")


def worker_name(settings: Settings) -> str:
    """This worker's name: the setting, else host name and process id."""
    return settings.dispatch.worker_name or f"{socket.gethostname()}-{os.getpid()}"


def ensure_base(repo: Repo, settings: Settings, spec: JobSpec) -> str:
    """The job's tree base in this host's mirror: its branches fetched, else by sha."""
    s = spec.series
    if repo.resolve(s.tree_base):
        return s.tree_base
    tree = TreeSettings(name=s.tree, url=s.tree_url)
    repo.git(
        "fetch",
        "--no-tags",
        "-q",
        s.tree_url,
        f"+refs/heads/*:{tree_ref(s.tree, '*')}",
        check=False,
        timeout=settings.network.fetch_timeout,
        name=f"fetch-{s.tree}",
    )
    if repo.resolve(s.tree_base):
        return s.tree_base
    fetch_commit(repo, s.tree_base, [tree], settings.network)
    if repo.resolve(s.tree_base):
        return s.tree_base
    raise JobFault(f"base {s.tree_base[:12]} not found in {s.tree_url}")


def _apply(git: Git, mails: tuple[str, ...], what: str) -> None:
    for i, mail in enumerate(mails, 1):
        r = git.run("am", "--no-gpg-sign", input=mail, timeout=600, name=f"am-{what}-{i}")
        if not r.ok:
            git.run("am", "--abort", name="am-abort")
            raise JobFault(f"{what} {i} does not apply on this worker: {r.output[-300:]}")


def run_spec(settings: Settings, spec: JobSpec, log_dir: Path) -> JobResult:
    """Run one job here; never raises: a fault of ours is the result's `fault`."""
    name = worker_name(settings)
    start = time.monotonic()
    runner = Runner(log_dir)
    try:
        repo = Repo.open(settings, runner)
        tree_base = ensure_base(repo, settings, spec)
        with acquire_slot(repo, settings.paths.cache, settings.apply.slots) as slot:
            slot.reset(tree_base)
            git = Git(runner, worktree=slot.path)
            _apply(git, spec.series.prefix, "parent patch")
            base = git.out("rev-parse", "HEAD")
            _apply(git, spec.series.patches, "patch")
            commits = [base, *git.out("rev-list", "--reverse", f"{base}..HEAD").split()]
            if len(commits) != len(spec.series.patches) + 1:
                raise JobFault("the patches did not make one commit each on this worker")
            sandbox = sandbox_for(settings.sandbox, runner)
            result = run_job(spec, slot.path, commits, runner, sandbox, settings.paths.cache)
    except Exception as e:  # ours, whatever it is: never the patch's
        log.exception("job %s failed on %s", spec.job_id, name)
        return JobResult(
            job_id=spec.job_id,
            worker=name,
            seconds=time.monotonic() - start,
            fault=f"worker {name}: {type(e).__name__}: {e}"[:2000],
        )
    return result.model_copy(update={"worker": name, "seconds": time.monotonic() - start})


def run_here(settings: Settings, log_dir: Path) -> Callable[[list[JobSpec]], list[JobResult]]:
    """A `run_jobs` for CheckContext that runs the jobs one by one in this process, on
    `settings`' cache: the job path without a broker (tests, and a reference run)."""

    def run(specs: list[JobSpec]) -> list[JobResult]:
        return [run_spec(settings, s, log_dir / f"job-{s.job_id}") for s in specs]

    return run
