"""What the runtime check costs here: each host suite and one KUnit run, cold and warm,
and the check's share of a whole series check.

Usage: .venv/bin/python bench/runtime.py [--suites vma,memblock,...] [--no-host]
       [--no-kunit] [--kunit-platform um|qemu] [--kunit-keep] [--no-share]
       [--arches x86_64] [--json FILE]

1. Host suites (config/runtime.toml): for each, build and run in the sandbox from an
   empty build dir (cold), then again with nothing changed (warm: make has nothing
   to do; the program runs again).
2. KUnit: lib/cmdline_kunit.c on UML (or, --kunit-platform qemu, x86_64 under QEMU,
   with KVM where a guest boots under it, emulated elsewhere) through kunit.py, from
   an empty build dir and an empty compiler cache (cold), then again (warm), then
   with a patch that breaks one of its tests (patched: the failing tests found).
   --kunit-keep: the build dir as an earlier run left it, no cold run.
3. Share: every default check (build, semantic, kernel-doc, checkpatch, runtime) on
   a two-patch series to mm/vma.c, as the pipeline runs them, one after the other;
   the runtime check's seconds over the sum. Run it twice: the second is the warm
   number the service sees for a new series on a known base.

The tree is the test cache's (LOREBOT_TEST_CACHE), slot "bench-runtime"; the 6.12 base
needs the vma_close() stub in tools/testing/vma, added as the tests add it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.runner import Runner
from checks.base import sandbox_for
from checks.registry import load_check
from checks.runtime.host import HostBench
from checks.runtime.kunitrun import KunitBench
from checks.runtime.kvmprobe import kvm_in_sandbox
from checks.runtime.table import kunit_suite, load_table
from config.settings import load_settings
from tests.support import kernel
from tests.support.kernel import WrittenPatch, replace_in

STUB = (
    "extern const struct vm_operations_struct vma_dummy_vm_ops;\n",
    "extern const struct vm_operations_struct vma_dummy_vm_ops;\n\n"
    "static inline void vma_close(struct vm_area_struct *vma)\n{\n"
    "\tif (vma->vm_ops && vma->vm_ops->close) {\n\t\tvma->vm_ops->close(vma);\n"
    "\t\tvma->vm_ops = &vma_dummy_vm_ops;\n\t}\n}\n",
)


def host(wt: Path, cache: Path, names: list[str]) -> list[dict[str, object]]:
    settings = load_settings(None, lists=[], trees=[])
    runner = Runner()
    box = sandbox_for(settings.sandbox, runner)
    bench = HostBench(runner, box, wt, cache / "runtime" / "bench")
    out = []
    for suite in load_table().host:
        if names and suite.name not in names:
            continue
        shutil.rmtree(bench.work(suite), ignore_errors=True)
        row: dict[str, object] = {"suite": suite.name}
        for mode in ("cold", "warm"):
            t0 = time.monotonic()
            failed = bench.build(suite, trusted=False)
            t1 = time.monotonic()
            run = failed or bench.run(suite)
            t2 = time.monotonic()
            row[f"{mode}_build"] = round(t1 - t0, 1)
            row[f"{mode}_run"] = round(t2 - t1, 1)
            row["state"] = run.state.value
            row["counts"] = run.counts
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


# lib/cmdline.c: a range counted as one option; cmdline_kunit's range test fails
CMDLINE_RANGE = ("if (**str == '-')\n\t\treturn 3;", "if (**str == '-')\n\t\treturn 1;")


def kunit(wt: Path, cache: Path, platform: str, keep: bool = False) -> dict[str, object]:
    settings = load_settings(None, lists=[], trees=[])
    runner = Runner()
    box = sandbox_for(settings.sandbox, runner)
    source = (wt / "lib/cmdline_kunit.c").read_text()
    suite = kunit_suite("lib/cmdline_kunit.c", source, (wt / "lib/Makefile").read_text())
    assert suite is not None
    root = cache / "runtime" / "bench"
    ccache = root / "ccache-bench"
    shutil.rmtree(ccache, ignore_errors=True)
    kvm = platform == "qemu" and kvm_in_sandbox(runner, box) == ""
    bench = KunitBench(runner, box, wt, root, ccache, platform=platform, kvm=kvm)
    if not keep:
        shutil.rmtree(bench.odir(suite), ignore_errors=True)
    where = platform + ("+kvm" if kvm else " (tcg)" if platform == "qemu" else "")
    row: dict[str, object] = {"suite": f"kunit cmdline ({where})"}
    for mode in ("warm",) if keep else ("cold", "warm"):
        t0 = time.monotonic()
        run = bench.run(suite, trusted=False)
        row[f"{mode}_seconds"] = round(time.monotonic() - t0, 1)
        row["state"] = run.state.value
        row["counts"] = run.counts
    # a patch that breaks the suite: what it touched is rebuilt, the boot shows the failure
    replace_in("lib/cmdline.c", *CMDLINE_RANGE)(wt)
    t0 = time.monotonic()
    run = bench.run(suite, trusted=False)
    row["patched_seconds"] = round(time.monotonic() - t0, 1)
    row["patched_state"] = run.state.value
    row["patched_failing"] = sorted(run.failing)
    kernel.git(wt, "checkout", "-q", "--", "lib/cmdline.c")
    print(json.dumps(row), flush=True)
    return row


def share(wt: Path, cache: Path, arches: list[str]) -> dict[str, object]:
    merge = "if (vmg->next->vm_pgoff == vmg->pgoff + pglen)"
    with tempfile.TemporaryDirectory(prefix="lorebot-runtime-") as tmp_dir:
        tmp = Path(tmp_dir)
        settings = load_settings(
            None,
            paths={"state": str(tmp / "state"), "cache": str(cache)},
            lists=[],
            trees=[],
            build={"arches": arches},
        )
        replace_in("tools/testing/vma/vma_internal.h", *STUB)(wt)
        kernel.git(wt, "add", "-A")
        kernel.git(wt, "-c", "user.name=B", "-c", "user.email=b@x", "commit", "-qm", "stub")
        ctx = kernel.series_context(
            wt,
            [
                WrittenPatch("mm/vma: comment", [replace_in("mm/vma.c", merge, merge + " /**/")]),
                WrittenPatch(
                    "mm/vma: off by one", [replace_in("mm/vma.c", merge, merge[:-1] + " + 1)")]
                ),
            ],
            settings,
            tmp,
            cache_dir=cache,
        )
        seconds: dict[str, float] = {}
        try:
            for name in settings.checks.enabled:
                t0 = time.monotonic()
                load_check(name).run(ctx)
                seconds[name] = round(time.monotonic() - t0, 1)
        finally:
            kernel.git(wt, "reset", "-q", "--hard", kernel.REF)
    total = sum(seconds.values())
    row = {"checks": seconds, "total": round(total, 1), "runtime_share": seconds["runtime"] / total}
    print(json.dumps(row), flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suites", default="", help="comma-separated host suites (default: all)")
    ap.add_argument("--no-kunit", action="store_true")
    ap.add_argument("--kunit-platform", choices=["um", "qemu"], default="um")
    ap.add_argument("--kunit-keep", action="store_true", help="KUnit: warm runs only")
    ap.add_argument("--no-share", action="store_true")
    ap.add_argument("--no-host", action="store_true")
    ap.add_argument("--arches", default="x86_64", help="the build check's arches in --share")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    cache = kernel.test_cache() / "build"
    kernel.kernel_git_dir()
    names = [n for n in args.suites.split(",") if n]
    result: dict[str, object] = {}
    if not (args.no_host and args.no_kunit):
        wt = kernel.kernel_slot("bench-runtime")
        replace_in("tools/testing/vma/vma_internal.h", *STUB)(wt)
        result["host"] = [] if args.no_host else host(wt, cache, names)
        if not args.no_kunit:
            result["kunit"] = kunit(wt, cache, args.kunit_platform, args.kunit_keep)
        kernel.git(wt, "reset", "-q", "--hard", kernel.REF)
    if not args.no_share:
        arches = args.arches.split(",")
        # a slot of its own: a host run may hold "bench-runtime" meanwhile
        share_wt = kernel.kernel_slot("bench-runtime-share")
        result["share"] = [share(share_wt, cache, arches) for _ in range(2)]
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
