"""What an earlier run found for the same first patches, kept to be reused by a re-roll.

A v2 whose first k patches are v1's (same `git patch-id --stable`, same base)
builds the same trees at steps 1..k: v1's baseline and its findings for those
patches are v2's. A record is kept per (base, variants, objects, W=1) after
each run, holding the steps it completed; a run with the same key starts after
the longest common prefix of patch-ids. With other variants or other objects
(a v2 that touches more files) nothing is reused: the baseline would not cover
them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.git import Git
from bot.core.results import Finding

DiagKey = tuple[str, str, str, str]
KEEP = 64  # records kept per cache (the oldest go)


def record_key(base: str, lanes: Sequence[str], objects: Sequence[str], w1: bool) -> str:
    """What must be equal for a run's baseline and findings to be another's (pure)."""
    text = json.dumps([base, sorted(lanes), sorted(objects), w1])
    return hashlib.sha1(text.encode()).hexdigest()


def common_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    """How many leading patch-ids two series share (pure); an unknown id ("") ends it."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if not x or x != y:
            break
        n += 1
    return n


@dataclass
class StepRecord:
    """A run's completed steps: the patch-ids built, each lane's baseline, the findings."""

    patch_ids: list[str]
    baselines: dict[str, list[DiagKey]]
    findings: list[tuple[DiagKey, Finding]] = field(default_factory=list)

    def findings_up_to(self, k: int) -> dict[DiagKey, Finding]:
        return {key: f for key, f in self.findings if f.patch is not None and f.patch <= k}

    def json(self) -> str:
        return json.dumps(
            {
                "patch_ids": self.patch_ids,
                "baselines": self.baselines,
                "findings": [[list(k), f.model_dump(mode="json")] for k, f in self.findings],
            }
        )

    @classmethod
    def parse(cls, text: str) -> StepRecord | None:
        try:
            data = json.loads(text)
            return cls(
                [str(p) for p in data["patch_ids"]],
                {
                    lane: [(str(a), str(b), str(c), str(d)) for a, b, c, d in keys]
                    for lane, keys in data["baselines"].items()
                },
                [
                    ((str(k[0]), str(k[1]), str(k[2]), str(k[3])), Finding.model_validate(f))
                    for k, f in data["findings"]
                ],
            )
        except (ValueError, KeyError, TypeError):
            return None


class StepRecords:
    """The records under one directory of the cache, one file per key."""

    def __init__(self, root: Path):
        self.root = root

    def load(self, key: str) -> StepRecord | None:
        path = self.root / f"{key}.json"
        try:
            return StepRecord.parse(path.read_text())
        except OSError:
            return None

    def save(self, key: str, record: StepRecord) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(record.json())
        tmp.replace(self.root / f"{key}.json")
        records = sorted(self.root.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in records[:-KEEP]:
            old.unlink(missing_ok=True)


def patch_ids(git: Git, base: str, commits: Sequence[tuple[int, str]]) -> list[str]:
    """`git patch-id --stable` of each commit, in order ("" where git gave none)."""
    log = git.run(
        "log",
        "--reverse",
        "-p",
        "--no-color",
        "--format=commit %H",
        f"{base}..{commits[-1][1]}",
        timeout=300,
        name="git-log-patches",
    )
    if not log.ok:
        return []
    r = git.run("patch-id", "--stable", input=log.stdout, name="git-patch-id")
    by_commit = {c: p for p, _, c in (ln.partition(" ") for ln in r.stdout.splitlines())}
    return [by_commit.get(sha, "") for _, sha in commits]
