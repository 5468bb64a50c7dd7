"""Run the Kconfig solver (`ksolver.py`) in the build sandbox for one variant (thin shell).

The solver reads the tree's Kconfig, whose macros run the compiler, so it runs
like make: in the sandbox, the tree read-only, its O= dir writable. The
parsed model is cached per base, arch and compiler (`kmodel.py`); the cache is
written only by a trusted step (the base of a configured tree).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import kconfiglib

from checks.build.make import Make, SolveFn

log = logging.getLogger("lorebot.checks.build")
_HERE = Path(__file__).resolve().parent
SOLVER = _HERE / "ksolver.py"
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"


@dataclass(frozen=True)
class Solution:
    """Symbols to set on top of the base config; requests it could not meet and why."""

    changes: dict[str, str]
    unsolved: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()  # the symbols the search could not give what it needed
    seconds: float = 0.0
    model: str = ""  # "parsed" or "cached"
    error: str = ""  # the solver did not run (a note, not a failure: make still decides)


def kconfig_env(make: Make) -> dict[str, str]:
    """The variables the kernel's Kconfig reads (scripts/Kconfig.include and the arch's)."""
    arch = make.arch
    cross = "" if make.llvm else arch.cross_compile
    return {
        "ARCH": arch.karch,
        "SRCARCH": arch.srcarch,
        "CC": arch.compiler(make.llvm),
        "LD": "ld.lld" if make.llvm else f"{cross}ld",
        "HOSTCC": "clang" if make.llvm else "gcc",
        "HOSTCXX": "clang++" if make.llvm else "g++",
        "KERNELVERSION": "6",
        "RUSTC": "rustc",
        "BINDGEN": "bindgen",
        "PAHOLE": "pahole",
        "LLVM": "1" if make.llvm else "",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }


def model_file(cache_dir: Path, base: str, make: Make) -> Path:
    env = kconfig_env(make)
    digest = hashlib.sha1(json.dumps(env, sort_keys=True).encode()).hexdigest()[:10]
    return cache_dir / f"{base[:16]}-{make.arch.name}-{digest}.pickle"


def solve(
    make: Make,
    odir: Path,
    base_config: Path,
    requests: Mapping[str, str],
    *,
    base: str,
    cache_dir: Path | None,
    timeout: float = 300,
) -> Solution:
    """Changes to `base_config` that make `requests` hold, found in the sandbox."""
    make.prepare(odir)
    inside = odir / ".lorebot-ksolve.json"
    config_copy = odir / ".lorebot-ksolve.config"
    config_copy.write_text(base_config.read_text())
    cache = ""
    rw = [odir]
    if cache_dir is not None and make.trusted:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache = str(model_file(cache_dir, base, make))
        rw.append(cache_dir)
    job = {
        "srctree": str(make.worktree),
        "env": kconfig_env(make),
        "cache": cache,
        "jobs": [{"config": str(config_copy), "requests": dict(requests)}],
    }
    inside.write_text(json.dumps(job))
    lib = Path(kconfiglib.__file__).resolve().parent
    r = make.sandbox.run(
        make.runner,
        [PYTHON, "-S", str(SOLVER), str(inside)],
        cwd=odir,
        ro=[make.worktree, _HERE, lib],
        rw=rw,
        env={"KCONFIGLIB_DIR": str(lib), "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=timeout,
        name=f"{make.arch.name}-ksolve",
    )
    inside.unlink(missing_ok=True)
    config_copy.unlink(missing_ok=True)
    try:
        answer = json.loads(r.stdout)
        res = answer["results"][0]
    except (ValueError, KeyError, IndexError):
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        log.info("kconfig solver failed for %s: %s", make.arch.name, tail)
        return Solution({}, error="; ".join(tail) or f"exit {r.returncode}")
    return Solution(
        changes={str(k): str(v) for k, v in res["set"].items()},
        unsolved=tuple(res["unsolved"]),
        blocked=tuple(res["blocked"]),
        seconds=float(answer["load_seconds"]) + float(res["seconds"]),
        model=str(answer["model"]),
    )


def solver_for(base: str, cache_dir: Path | None, record: list[Solution]) -> SolveFn:
    """A `Make.variant` solver at `base`; each solution is appended to `record`."""

    def run(
        make: Make, odir: Path, base_config: Path, requests: Mapping[str, str]
    ) -> tuple[dict[str, str], tuple[str, ...]]:
        sol = solve(make, odir, base_config, requests, base=base, cache_dir=cache_dir)
        record.append(sol)
        return sol.changes, (*sol.unsolved, *sol.blocked) if sol.unsolved else ()

    return run
