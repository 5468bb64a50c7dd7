"""The Kconfig model of one base and arch, parsed by kconfiglib and cached on disk.

Parsing the kernel's Kconfig takes ~7 s (its `$(shell,…)` macros run the
compiler); a pickled model loads in ~1.5 s. One file per (base, arch,
compiler), written and read only inside the build sandbox, at the base (the
configured tree's code, never a series'). Used by `ksolver.py` in the sandbox:
standard library and kconfiglib only.
"""

from __future__ import annotations

import io
import os
import pickle
import re
from typing import Any

import kconfiglib

_MODULES = re.compile(r"(?m)^(\s+)modules\s*$")


class _Kconfig(kconfiglib.Kconfig):
    """kconfiglib 14 predates the `modules` keyword (Linux 6.2+): read it as `option modules`."""

    def _open(self, filename: str, mode: str) -> Any:
        f = super()._open(filename, mode)
        if "r" not in mode:
            return f
        with f:
            text = f.read()
        return io.StringIO(_MODULES.sub(r"\1option modules", text))


def load(srctree: str, env: dict[str, str], cache: str) -> tuple[Any, str]:
    """The model, from `cache` when it holds one, else parsed (and then saved there).

    Needs a deep recursion limit and stack (the caller's thread). Returns the
    model and how it was had ("cached" or "parsed").
    """
    os.environ.update(env, srctree=srctree)
    if cache and os.path.exists(cache):
        try:
            with open(cache, "rb") as f:
                return pickle.load(f), "cached"
        except Exception:
            os.unlink(cache)
    kconf = _Kconfig(os.path.join(srctree, "Kconfig"), warn=False)
    if cache:
        kconf._readline = None  # the last file read: not picklable, not needed
        kconf._file = None
        tmp = f"{cache}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(kconf, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cache)
    return kconf, "parsed"
