"""Shared fixtures: settings in a temporary directory, the kernel tree."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from config.settings import Settings, load_settings
from tests.support import kernel


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with state and cache under tmp_path and no lists or trees."""
    return load_settings(
        None,
        paths={"state": str(tmp_path / "state"), "cache": str(tmp_path / "cache")},
        lists=[],
        trees=[],
    )


@pytest.fixture(scope="session", autouse=True)
def _no_reused_builds() -> None:
    """Kernel tests build what they check: no results kept by an earlier test run (a
    re-roll's reuse, checks/build/reuse.py) stand in for a build."""
    shutil.rmtree(kernel.test_cache() / "build" / "steps", ignore_errors=True)


@pytest.fixture(scope="session")
def kernel_git_dir() -> Path:
    if not kernel.TARBALL.exists():
        pytest.skip(f"{kernel.TARBALL} missing: apt-get install linux-source-6.12")
    return kernel.kernel_git_dir()
