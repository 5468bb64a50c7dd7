"""The variant planner (pure): flips before breadth, a budget in work, every drop said."""

from __future__ import annotations

from checks.build.impact import Flip
from checks.build.kbuild import ObjectChain
from checks.build.planning import Cost, Why, by_cost, candidates, choose
from checks.build.toolchains import load_arches
from checks.build.variants import VariantSpec

ARCHES = load_arches()
FOUR = [ARCHES[n] for n in ("x86_64", "i386", "arm64", "powerpc")]
MM = ObjectChain("mm/filemap.c", "mm/filemap.o", (), True)
BALLOON = ObjectChain(
    "mm/balloon_compaction.c", "mm/balloon_compaction.o", ("BALLOON_COMPACTION",), True
)
CMM = ObjectChain(
    "arch/powerpc/platforms/pseries/cmm.c", "arch/powerpc/platforms/pseries/cmm.o", ("CMM",), True
)
COST = Cost(object_seconds=3.0, config_seconds=8.0, jobs=2)
MIGRATION_N = Flip(
    "MIGRATION", "n", 0, "folio_migrate_copy() is declared only when CONFIG_MIGRATION is set"
)
NUMA_N = Flip("NUMA", "n", 1, "mm/filemap.c:120 is built only then")
HEADER_USER = Flip("ZSWAP", "y", 2, "mm/zswap.c:40 is built only then")


def _bases(**extra: dict[str, str]) -> dict[str, dict[str, str]]:
    common = {"MIGRATION": "y", "NUMA": "y", "ZSWAP": "n", "BALLOON_COMPACTION": "y"}
    out = {a.name: dict(common) for a in FOUR}
    for arch, values in extra.items():
        out[arch].update(values)
    return out


def _specs(arches: list[str] | None = None) -> dict[str, VariantSpec]:
    return {
        a.name: VariantSpec(a.name, a.defconfig, ())
        for a in FOUR
        if arches is None or a.name in arches
    }


def _plan(
    flips: list[Flip],
    objects: list[ObjectChain] | None = None,
    bases: dict[str, dict[str, str]] | None = None,
    srcarches: tuple[str, ...] = (),
    steps: list[list[str]] | None = None,
) -> list[tuple[str, str | None, Why]]:
    cands = candidates(
        FOUR,
        bases or _bases(),
        _specs(),
        flips,
        objects or [MM],
        steps or [["mm/filemap.o"]],
        srcarches,
        COST,
    )
    return [(c.spec.arch, c.flip_label, c.why) for c in cands]


def test_cheapest_arch_first() -> None:
    arches = [ARCHES[n] for n in ("arm64", "powerpc", "i386", "x86_64")]
    assert [a.name for a in by_cost(arches, "x86_64")] == ["x86_64", "i386", "arm64", "powerpc"]
    assert by_cost(arches, "arm64")[0].name == "arm64"


def test_every_flip_before_breadth() -> None:
    """The issue's case: four arches, and MIGRATION=n must come before any other arch."""
    order = _plan([HEADER_USER, MIGRATION_N, NUMA_N])
    assert order[:4] == [
        ("x86_64", None, Why.HOST_BASE),
        ("x86_64", "MIGRATION=n", Why.FLIP),
        ("x86_64", "NUMA=n", Why.FLIP),
        ("x86_64", "ZSWAP=y", Why.FLIP),
    ]
    assert order[4:7] == [
        ("i386", None, Why.BREADTH),
        ("arm64", None, Why.BREADTH),
        ("powerpc", None, Why.BREADTH),
    ]
    assert all(why is Why.FLIP_ELSEWHERE for _, _, why in order[7:])
    # the old default (six variants) now keeps every flip
    chosen = choose(
        candidates(
            FOUR,
            _bases(),
            _specs(),
            [HEADER_USER, MIGRATION_N, NUMA_N],
            [MM],
            [["mm/filemap.o"]],
            (),
            COST,
        ),
        1800,
        6,
    ).chosen
    assert ("x86_64", "MIGRATION=n") in [(c.spec.arch, c.flip_label) for c in chosen]


def test_flip_goes_where_its_symbol_exists() -> None:
    """A symbol only powerpc knows is flipped on powerpc; one every base already has is
    covered by the bases and gets no variant."""
    pseries = Flip("PPC_PSERIES", "n", 1, "cmm.c:10 is built only then")
    bases = _bases(powerpc={"PPC_PSERIES": "y"})
    assert ("powerpc", "PPC_PSERIES=n", Why.FLIP) in _plan([pseries], bases=bases)
    already = Flip("ZSWAP", "n", 1, "x")
    assert [f for _, f, _ in _plan([already])] == [None, None, None, None]


def test_arch_specific_base_before_breadth() -> None:
    """powerpc compiles cmm.o, which no other arch does: its base comes before breadth."""
    bases = _bases(powerpc={"CMM": "y"})
    order = _plan([MIGRATION_N], objects=[MM, CMM], bases=bases, srcarches=("powerpc",))
    assert order[:3] == [
        ("x86_64", None, Why.HOST_BASE),
        ("x86_64", "MIGRATION=n", Why.FLIP),
        ("powerpc", None, Why.ARCH_SPECIFIC),
    ]
    assert order[3:5] == [("i386", None, Why.BREADTH), ("arm64", None, Why.BREADTH)]


def test_budget_keeps_flips_guarding_the_series() -> None:
    """With room for about two flips, the header-user flip and breadth are dropped, and
    every drop says why; the host's base is built whatever the budget."""
    objects = [MM, BALLOON]
    steps = [["mm/filemap.o"], ["mm/balloon_compaction.o"]]
    cands = candidates(
        FOUR, _bases(), _specs(), [HEADER_USER, NUMA_N, MIGRATION_N], objects, steps, (), COST
    )
    one = cands[0].seconds
    plan = choose(cands, budget_seconds=3 * one + 1, max_variants=12)
    assert [(c.spec.arch, c.flip_label) for c in plan.chosen] == [
        ("x86_64", None),
        ("x86_64", "MIGRATION=n"),
        ("x86_64", "NUMA=n"),
    ]
    dropped = {(d.candidate.spec.arch, d.candidate.flip_label): d.reason for d in plan.dropped}
    assert "budget_seconds" in dropped[("x86_64", "ZSWAP=y")]
    assert ("i386", None) in dropped and ("powerpc", "MIGRATION=n") in dropped
    tiny = choose(cands, budget_seconds=1, max_variants=12)
    assert [c.why for c in tiny.chosen] == [Why.HOST_BASE]
    capped = choose(cands, budget_seconds=10_000, max_variants=2)
    assert "max_variants" in capped.dropped[0].reason


def test_cost_counts_baseline_and_patch_steps() -> None:
    cost = Cost(object_seconds=2.0, config_seconds=5.0, jobs=1)
    # two objects at the baseline, then patch 1 rebuilds one and patch 2 both
    assert cost.of(["a.o", "b.o"], [["a.o"], ["a.o", "b.o", "c.o"]]) == 5.0 + 5 * 2.0


def test_header_users_the_base_lacks_share_one_variant() -> None:
    """Three users of a changed header: one the base builds, two behind symbols it lacks.
    The two get one variant with both chains, after the flips, before breadth."""
    zswap = ObjectChain("mm/zswap.c", "mm/zswap.o", ("ZSWAP",), True)
    zbud = ObjectChain("mm/zbud.c", "mm/zbud.o", ("ZBUD", "ZPOOL"), True)
    users = [MM, zswap, zbud]
    cands = candidates(
        FOUR,
        _bases(),
        _specs(),
        [MIGRATION_N],
        [MM, zswap, zbud],
        [["mm/filemap.o"]],
        (),
        COST,
        users,
    )
    order = [(c.spec.arch, c.flip_label, c.why) for c in cands]
    assert order[:3] == [
        ("x86_64", None, Why.HOST_BASE),
        ("x86_64", "MIGRATION=n", Why.FLIP),
        ("x86_64", None, Why.FLIP),
    ]
    together = cands[2]
    assert together.spec.requests == {"ZSWAP": "y", "ZBUD": "y", "ZPOOL": "y"}
    assert set(together.objects) == {"mm/filemap.o", "mm/zswap.o", "mm/zbud.o"}
    assert "mm/zswap.o" in together.reason and order[3][2] is Why.BREADTH
    # every user already in the base: no such variant
    plain = candidates(FOUR, _bases(), _specs(), [], [MM], [["mm/filemap.o"]], (), COST, [MM])
    assert [c.why for c in plain].count(Why.FLIP) == 0
