"""Which variants to build, within a budget of work (pure).

The diff-derived flips are the reason lorebot exists: breadth must never
displace them. Candidates come in this order, and a budget of estimated work
(objects × compile time) decides how far down the list the check goes:

1. the base variant of the cheapest arch (the host's, normally): always;
2. each flip once, on the cheapest arch where its symbol exists and the base
   does not already have the flipped value, by the flip's priority (a
   declaration or a line the series adds or removes first, header users last),
   then one variant for the users of a changed header that the host's base
   does not build, their chains together;
3. the base of another arch that has something of its own to compile (an
   object no cheaper arch builds, or a file under its `arch/` dir);
4. the bases of the remaining arches (breadth);
5. the flips again on the other arches where they mean something.

What does not fit is dropped, each with the reason, so that the page and the
JSON say exactly what was not built.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from checks.build.impact import Flip
from checks.build.kbuild import ObjectChain
from checks.build.toolchains import Arch
from checks.build.variants import VariantSpec, arch_objects, buildable, flip_needed


class Why(IntEnum):
    """Why a variant is a candidate; the value is its rank (lower is built first)."""

    HOST_BASE = 0
    FLIP = 1
    ARCH_SPECIFIC = 2
    BREADTH = 3
    FLIP_ELSEWHERE = 4


@dataclass(frozen=True)
class Cost:
    """What one unit of build work is expected to take."""

    object_seconds: float  # one object compiled once
    config_seconds: float  # making and verifying one variant's .config
    jobs: int  # compiles make runs at once

    def of(self, objects: Sequence[str], steps: Sequence[Sequence[str]]) -> float:
        """Seconds for a variant: its config, the baseline of its objects, then each
        patch step's objects that the variant builds."""
        mine = set(objects)
        compiles = len(mine) + sum(len(mine.intersection(s)) for s in steps)
        return self.config_seconds + compiles * self.object_seconds / max(1, self.jobs)


@dataclass(frozen=True)
class Candidate:
    """A variant worth building, why, and what it is expected to compile and cost."""

    spec: VariantSpec
    why: Why
    reason: str
    objects: tuple[str, ...]
    seconds: float

    @property
    def flip_label(self) -> str | None:
        f = self.spec.flip
        return f"{f.symbol}={f.value}" if f else None


@dataclass(frozen=True)
class Dropped:
    candidate: Candidate
    reason: str


@dataclass(frozen=True)
class Plan:
    chosen: tuple[Candidate, ...]
    dropped: tuple[Dropped, ...]
    seconds: float  # estimated work of the chosen variants


def host_arch_name() -> str:
    """lorebot's name for the machine's own arch (x86_64, arm64, ...)."""
    machine = platform.machine()
    return {"aarch64": "arm64", "ppc64le": "powerpc", "amd64": "x86_64"}.get(machine, machine)


def by_cost(arches: Sequence[Arch], host: str) -> list[Arch]:
    """Arches cheapest first: the host's, then other native compilers, then cross ones;
    the configured order within each group."""
    return sorted(arches, key=lambda a: (a.name != host, bool(a.cross_compile)))


def _with_flip(config: Mapping[str, str], flip: Flip) -> dict[str, str]:
    return {**config, flip.symbol: flip.value}


def _flip_home(
    flip: Flip, arches: Sequence[Arch], bases: Mapping[str, Mapping[str, str]]
) -> tuple[Arch | None, list[Arch]]:
    """The cheapest arch where the flip means something, and the other such arches.

    None with no others when every arch that knows the symbol already has the
    flipped value in its base (the base variants cover it); the cheapest arch
    when no arch knows the symbol (Kconfig may still take it with helpers).
    """
    known = [a for a in arches if flip.symbol in bases[a.name]]
    needed = [a for a in known if flip_needed(bases[a.name], flip)]
    if needed:
        return needed[0], needed[1:]
    if known:
        return None, []
    return arches[0], []


def candidates(
    arches: Sequence[Arch],
    bases: Mapping[str, Mapping[str, str]],
    specs: Mapping[str, VariantSpec],
    flips: Sequence[Flip],
    objects: Sequence[ObjectChain],
    steps: Sequence[Sequence[str]],
    srcarches: Sequence[str],
    cost: Cost,
    users: Sequence[ObjectChain] = (),
) -> list[Candidate]:
    """Every variant worth building, in the order they are to be built.

    `arches` are cheapest first and each has its verified base config in
    `bases` and its base spec in `specs`; `steps` are the objects each patch
    rebuilds (for the cost). `users` are the objects that use what a changed header
    changes: those the host's base does not build get one variant together, after
    the flips (a variant of its own each would pay a config and a `prepare` each).
    """
    if not arches:
        return []

    def buildable_in(arch: Arch, config: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(o.object for o in arch_objects(objects, arch) if buildable(o, config))

    def candidate_of(arch: Arch, spec: VariantSpec, why: Why, reason: str) -> Candidate:
        config = {**bases[arch.name], **spec.wanted}
        objs = buildable_in(arch, config)
        named = [o for o in objs if o in {u.object for u in users}][:3]
        what = f"{reason} ({', '.join(named)})" if named else reason
        return Candidate(spec, why, what, objs, cost.of(objs, steps))

    def candidate(arch: Arch, flip: Flip | None, why: Why, reason: str) -> Candidate:
        config = bases[arch.name] if flip is None else _with_flip(bases[arch.name], flip)
        objs = buildable_in(arch, config)
        base = specs[arch.name]
        spec = (
            base
            if flip is None
            else VariantSpec(base.arch, base.target, base.enable, flip, base.added)
        )
        return Candidate(spec, why, reason, objs, cost.of(objs, steps))

    host = arches[0]
    out = [candidate(host, None, Why.HOST_BASE, f"base config of {host.name}")]
    elsewhere: list[tuple[Flip, Arch]] = []
    for flip in sorted(flips, key=lambda f: (f.priority, f.symbol, f.value)):
        home, others = _flip_home(flip, arches, bases)
        if home is not None:
            out.append(candidate(home, flip, Why.FLIP, flip.reason))
            elsewhere += [(flip, a) for a in others]
    if together := _users_candidate(host, bases[host.name], specs[host.name], users):
        out.append(candidate_of(host, together, Why.FLIP, "users of a changed header"))
    covered = set(buildable_in(host, bases[host.name]))
    later: list[Arch] = []
    for arch in arches[1:]:
        own = [o for o in buildable_in(arch, bases[arch.name]) if o not in covered]
        if own or arch.srcarch in srcarches:
            what = (
                f"compiles {', '.join(own[:3])}"
                if own
                else f"the series changes arch/{arch.srcarch}/"
            )
            out.append(candidate(arch, None, Why.ARCH_SPECIFIC, what))
            covered.update(own)
        else:
            later.append(arch)
    out += [candidate(a, None, Why.BREADTH, f"base config of {a.name} (breadth)") for a in later]
    out += [
        candidate(a, f, Why.FLIP_ELSEWHERE, f"{f.reason} (also on {a.name})") for f, a in elsewhere
    ]
    return out


def _users_candidate(
    host: Arch, base: Mapping[str, str], spec: VariantSpec, users: Sequence[ObjectChain]
) -> VariantSpec | None:
    """The host's base spec with the chains of the header users its base does not build."""
    need = [o for o in arch_objects(users, host) if o.symbols and not buildable(o, base)]
    if not need:
        return None
    enable = tuple(dict.fromkeys([*spec.enable, *(s for o in need for s in o.symbols)]))
    return VariantSpec(spec.arch, spec.target, enable, None, spec.added)


def choose(cands: Sequence[Candidate], budget_seconds: float, max_variants: int) -> Plan:
    """The candidates to build, in order, until the budget of work or the variant cap is
    reached; the host's base is always built. A later, cheaper candidate still fits
    when an earlier one did not."""
    chosen: list[Candidate] = []
    dropped: list[Dropped] = []
    used = 0.0
    for c in cands:
        if c.why is not Why.HOST_BASE:
            if len(chosen) >= max_variants:
                dropped.append(Dropped(c, f"over build.max_variants ({max_variants})"))
                continue
            if used + c.seconds > budget_seconds:
                left = max(0.0, budget_seconds - used)
                dropped.append(
                    Dropped(
                        c,
                        f"estimated {c.seconds:.0f} s of work, {left:.0f} s "
                        f"left of build.budget_seconds ({budget_seconds:.0f})",
                    )
                )
                continue
        chosen.append(c)
        used += c.seconds
    return Plan(tuple(chosen), tuple(dropped), used)
