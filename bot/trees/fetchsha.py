"""A `base-commit:` the mirror does not have, fetched by its sha from the configured trees.

git lets a client fetch a commit by id (protocol v2 always; kernel.org does):
a series posted against today's mm-unstable names a commit our last sync has
not seen yet, and one fetch of that commit is much cheaper than waiting for
the next sync or testing on a stale base. The commit is kept under
`refs/bases/<sha>` so that gc never drops it while it may be tested.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from bot.core.git import low_speed
from bot.trees.repo import Repo
from config.settings import NetworkSettings, TreeSettings

log = logging.getLogger("lorebot.trees")

_SHA_RE = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")


def bases_ref(sha: str) -> str:
    return f"refs/bases/{sha}"


@dataclass(frozen=True)
class ShaFetch:
    """One try of fetching a commit by sha from one tree."""

    tree: str
    url: str
    ok: bool
    reason: str


def fetch_commit(
    repo: Repo, sha: str, trees: list[TreeSettings], network: NetworkSettings
) -> tuple[str | None, list[ShaFetch]]:
    """Fetch commit `sha` from the first of `trees` that has it; (the tree's name, tries).

    Only a full sha can be asked for by id; a short one is in no tree as far as we can tell.
    """
    tries: list[ShaFetch] = []
    if not _SHA_RE.match(sha):
        return None, [ShaFetch("", "", False, "not a full sha: cannot be fetched by id")]
    for tree in trees:
        if not tree.url:
            continue
        r = repo.g.run(
            *low_speed(network.low_speed_limit, network.low_speed_time),
            "fetch",
            "--no-tags",
            "--no-write-fetch-head",
            "-q",
            tree.url,
            f"+{sha}:{bases_ref(sha)}",
            timeout=network.fetch_timeout,
            name=f"fetch-sha-{tree.name}",
        )
        if r.ok and repo.resolve(sha):
            log.info("fetched base %s from %s", sha[:12], tree.name)
            tries.append(ShaFetch(tree.name, tree.url, True, "fetched by sha"))
            return tree.name, tries
        words = (r.output.strip().splitlines() or ["not found"])[-1][:300]
        tries.append(ShaFetch(tree.name, tree.url, False, words))
    return None, tries
