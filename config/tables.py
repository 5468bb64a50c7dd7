"""Where the data tables of config/ are: found as package data, not by walking up paths."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def table_path(name: str) -> Path:
    """A data file shipped in the config package (arches.toml, default.toml)."""
    return Path(str(resources.files("config").joinpath(name)))


ARCHES_TOML = table_path("arches.toml")
