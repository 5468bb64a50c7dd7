"""The checks lorebot knows, by name; the runner finds them here."""

from __future__ import annotations

import importlib

from checks.base import Check

# name -> "module:Class"; imported lazily so one broken check cannot stop the others
CHECKS: dict[str, str] = {
    "checkpatch": "checks.checkpatch:CheckpatchCheck",
    "kernel-doc": "checks.kerneldoc:KernelDocCheck",
    "semantic": "checks.semantic:SemanticCheck",
    "build": "checks.build:BuildCheck",
    "runtime": "checks.runtime:RuntimeCheck",
}


def load_check(name: str) -> Check:
    """An instance of the check called `name`; KeyError if there is none."""
    module, _, cls = CHECKS[name].partition(":")
    check: Check = getattr(importlib.import_module(module), cls)()
    return check
