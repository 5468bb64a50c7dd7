"""A small real git repository for tests, and series made from it with `git format-patch`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bot.core.models import PatchMail, Series
from bot.core.runner import Runner
from bot.demo.series import GIT_IDENTITY
from bot.trees.repo import Repo
from config.settings import Settings, load_settings

ENV_ARGS = GIT_IDENTITY


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *ENV_ARGS, *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


class SmallRepo:
    """A work repository with a few C files; patches are committed then format-patched."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "-q")
        (path / "mm").mkdir()
        (path / "mm" / "alpha.c").write_text(
            "".join(f"int alpha_{i}(void)\n{{\n\treturn {i};\n}}\n\n" for i in range(30))
        )
        (path / "mm" / "beta.c").write_text("int beta(void)\n{\n\treturn 0;\n}\n")
        (path / "README").write_text("small tree\n")
        git(path, "add", "-A")
        git(path, "commit", "-qm", "initial")
        self.base = self.head()

    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD").strip()

    def commit(self, subject: str, files: dict[str, str]) -> str:
        for name, text in files.items():
            f = self.path / name
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-qm", f"{subject}\n\nSigned-off-by: Dev Eloper <dev@example.org>")
        return self.head()

    def edit(self, name: str, old: str, new: str) -> str:
        text = (self.path / name).read_text()
        assert old in text, (name, old)
        return text.replace(old, new, 1)

    def mails(self, since: str, extra: tuple[str, ...] = ()) -> list[bytes]:
        out = git(self.path, "format-patch", "--stdout", "--base", since, *extra, f"{since}..HEAD")
        chunks = out.split("\nFrom ")
        mails = [chunks[0]] + ["From " + c for c in chunks[1:]]
        return [m.encode() for m in mails]


def series_from_mails(
    mails: list[bytes], base_commit: str | None = None, tags: tuple[str, ...] = ()
) -> Series:
    """A Series as the intake would assemble it, from format-patch output."""
    import email

    patches = []
    for i, raw in enumerate(mails, start=1):
        msg = email.message_from_bytes(raw)
        subject = " ".join(str(msg["Subject"]).split())
        patches.append(
            PatchMail(
                index=i,
                msgid=f"p{i}@example.org",
                subject=subject,
                title=subject,
                author=str(msg["From"]),
                author_email="dev@example.org",
                mbox=raw,
            )
        )
    return Series(
        msgid="p1@example.org",
        subject=patches[0].subject,
        total=len(patches),
        patches=tuple(patches),
        base_commit=base_commit,
        subject_tags=tags,
    )


def small_tree_settings(
    tmp_path: Path, upstream: Path, branches: list[str], tags: dict[str, str] | None = None
) -> Settings:
    """One list ("test") whose tree "small" is `upstream`, state and cache under tmp_path."""
    return load_settings(
        None,
        paths={"state": str(tmp_path / "state"), "cache": str(tmp_path / "cache")},
        lists=[{"name": "test", "url": "http://127.0.0.1:1/test", "trees": ["small"]}],
        trees=[{"name": "small", "url": str(upstream), "branches": branches}],
        base={"subject_tags": tags or {}},
    )


def synced(settings: Settings) -> Repo:
    """The bare repo with tree "small" fetched."""
    repo = Repo.open(settings, Runner(settings.paths.logs))
    repo.sync(settings.tree("small"))
    return repo
