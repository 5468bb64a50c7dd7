"""The Kconfig solver (checks/build/ksolver.py) on a small real Kconfig, read by kconfiglib."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from checks.build import ksolver

KCONFIG = """\
mainmenu "test"

config ARCH_HAS_ZONE
	def_bool y

config QUUX
	bool "Quux"

config ZONE
	bool "Zones"
	depends on QUUX && ARCH_HAS_ZONE

config DEEP
	bool
	default y if FOO && ZONE

config FOO
	bool "Foo"
	default y

config BALLOON
	bool

config VIRT_BALLOON
	bool "Virtio balloon"
	default y
	select BALLOON

config EITHER
	bool "Either"
	depends on (OTHER_ARCH || QUUX)

config OTHER_ARCH
	bool
	depends on NOWHERE

config NEEDS_NOWHERE
	bool "Needs nowhere"
	depends on OTHER_ARCH
"""


def _solve(tmp_path: Path, requests: dict[str, str]) -> dict[str, Any]:
    (tmp_path / "Kconfig").write_text(KCONFIG)
    (tmp_path / ".config").write_text("CONFIG_FOO=y\nCONFIG_VIRT_BALLOON=y\n")
    job = {
        "srctree": str(tmp_path),
        "env": {},
        "cache": str(tmp_path / "model.pickle"),
        "jobs": [{"config": str(tmp_path / ".config"), "requests": requests}],
    }
    answer: dict[str, Any] = {}
    threading.stack_size(1 << 26)
    t = threading.Thread(target=lambda: answer.update(ksolver.run(job)))
    t.start()
    t.join()
    return dict(answer["results"][0])


def test_a_symbol_without_prompt_through_its_default_condition(tmp_path: Path) -> None:
    r = _solve(tmp_path, {"DEEP": "y"})
    assert r["set"] == {"QUUX": "y", "ZONE": "y"} and r["unsolved"] == []


def test_off_means_switching_off_what_selects_it(tmp_path: Path) -> None:
    r = _solve(tmp_path, {"BALLOON": "n"})
    assert r["set"] == {"VIRT_BALLOON": "n"} and r["unsolved"] == []


def test_or_tries_the_side_that_can_hold(tmp_path: Path) -> None:
    r = _solve(tmp_path, {"EITHER": "y"})
    assert r["set"] == {"QUUX": "y", "EITHER": "y"}


def test_unsatisfiable_names_the_blocking_symbols(tmp_path: Path) -> None:
    r = _solve(tmp_path, {"NEEDS_NOWHERE": "y"})
    assert r["unsolved"] == ["NEEDS_NOWHERE"] and r["set"] == {}
    assert "OTHER_ARCH" in r["blocked"] or "NOWHERE" in r["blocked"]


def test_runs_as_a_script_and_caches_the_model(tmp_path: Path) -> None:
    """As the sandbox runs it: a job file, kconfiglib found after the standard library."""
    import kconfiglib

    _solve(tmp_path, {"DEEP": "y"})  # writes a model cache the script cannot read: parsed again
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps(
            {
                "srctree": str(tmp_path),
                "env": {},
                "cache": str(tmp_path / "model.pickle"),
                "jobs": [{"config": str(tmp_path / ".config"), "requests": {"DEEP": "y"}}],
            }
        )
    )

    def run() -> dict[str, Any]:
        out = subprocess.run(
            [sys.executable, "-S", ksolver.__file__, str(job)],
            capture_output=True,
            text=True,
            check=True,
            env={"KCONFIGLIB_DIR": str(Path(kconfiglib.__file__).parent)},
        )
        return dict(json.loads(out.stdout))

    assert run()["model"] == "parsed"
    answer = run()
    assert answer["model"] == "cached"
    assert answer["results"][0]["set"] == {"QUUX": "y", "ZONE": "y"}
