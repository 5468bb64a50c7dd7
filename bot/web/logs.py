"""Run log files for the web page: only files inside the run's log_dir under paths.logs."""

from __future__ import annotations

from pathlib import Path

MAX_LISTED = 500


class LogPathError(Exception):
    """The asked-for path is not a log file of that run (outside it, or missing)."""


def run_log_root(logs_root: Path, log_dir: str) -> Path | None:
    """The run's log directory, resolved, if it lies inside `logs_root`; else None."""
    if not log_dir:
        return None
    root = logs_root.resolve()
    d = Path(log_dir)
    d = (d if d.is_absolute() else root / d).resolve()
    return d if d.is_relative_to(root) and d.is_dir() else None


def resolve_log_file(logs_root: Path, log_dir: str, rel: str) -> Path:
    """The file `rel` inside the run's log dir; LogPathError for anything else.

    Both the run's directory and the file are resolved (symlinks followed)
    and must stay inside the configured logs directory.
    """
    if "\x00" in rel or rel.startswith(("/", "\\")):
        raise LogPathError("bad path")
    run_root = run_log_root(logs_root, log_dir)
    if run_root is None:
        raise LogPathError("this run has no logs")
    target = (run_root / rel).resolve()
    if not target.is_relative_to(run_root) or not target.is_relative_to(logs_root.resolve()):
        raise LogPathError("outside the run's logs")
    if not target.is_file():
        raise LogPathError("no such log file")
    return target


def list_log_files(logs_root: Path, log_dir: str) -> list[str]:
    """Relative paths of the run's log files (sorted, at most MAX_LISTED)."""
    run_root = run_log_root(logs_root, log_dir)
    if run_root is None:
        return []
    out = []
    for p in sorted(run_root.rglob("*")):
        if p.is_file() and p.resolve().is_relative_to(run_root):
            out.append(p.relative_to(run_root).as_posix())
            if len(out) >= MAX_LISTED:
                break
    return out
