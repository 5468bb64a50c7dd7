"""Pure checks on patch text before it touches a worktree, and `git am` failure parsing."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass

from bot.core.diff import find_hunk

_DIFF_GIT = re.compile(r"^diff --git a/(.+?) b/(.+)$", re.M)
_FILE_HDR = re.compile(r"^(?:---|\+\+\+) (?:[ab]/)?(\S+)", re.M)
_RENAME = re.compile(r"^(?:rename|copy) (?:from|to) (.+)$", re.M)
# git reads a mode with strtoul(..., 8) and takes any whitespace after it, and an
# `index a..b MODE` line carries the mode of an unchanged-mode file (a retargeted link)
_MODE = re.compile(
    r"^(?:(?:new file mode|new mode|old mode|deleted file mode)[ \t]+|"
    r"index [0-9a-fA-F]+\.\.[0-9a-fA-F]+[ \t]+)([0-7]+)\s*$",
    re.M,
)
_S_IFMT, _S_IFLNK, _S_IFGITLINK = 0o170000, 0o120000, 0o160000


def patch_paths(diff: str) -> list[str]:
    """Every path a diff names (diff --git, ---/+++, rename/copy lines)."""
    paths: list[str] = []
    for a, b in _DIFF_GIT.findall(diff):
        paths += [a, b]
    paths += [p for p in _FILE_HDR.findall(diff) if p != "/dev/null"]
    paths += _RENAME.findall(diff)
    return paths


def unsafe_reason(diff: str, max_bytes: int) -> str:
    """Why this patch must not be applied, or "" when it is fine."""
    size = len(diff.encode("utf-8", "replace"))
    if size > max_bytes:
        return f"patch is {size // 1024} KiB, over the {max_bytes // 1024} KiB limit"
    if "GIT binary patch" in diff or re.search(r"^Binary files .* differ$", diff, re.M):
        return "binary diffs are not applied"
    for mode in _MODE.findall(diff):
        kind = int(mode, 8) & _S_IFMT
        if kind == _S_IFLNK:
            return "patch creates or changes a symlink"
        if kind == _S_IFGITLINK:
            return "patch changes a submodule"
    for path in patch_paths(diff):
        p = path.strip('"')
        parts = p.split("/")
        if p.startswith("/") or ".." in parts:
            return f"path outside the tree: {p}"
        if any(part.lower() in (".git", ".git~") for part in parts) or p.lower().startswith(
            ".git/"
        ):
            return f"path inside .git: {p}"
    return ""


@dataclass(frozen=True)
class AmFailure:
    file: str
    line: int | None
    hunk: str
    words: str  # git's own words, trimmed


_FAILED_AT = re.compile(r"error: patch failed: (.+?):(\d+)")
_NOT_APPLY = re.compile(
    r"error: (.+?): (?:patch does not apply|does not exist in index|"
    r"already exists in (?:index|working directory))"
)
_CONFLICT = re.compile(r"CONFLICT \([^)]*\): (?:Merge conflict in )?(\S+)")
_LACKING = re.compile(r"sha1 information is lacking or useless \((.+?)\)")


def parse_am_failure(output: str, diff: str) -> AmFailure:
    """The file and hunk `git am -3` failed on, from its output and the patch."""
    file, line = "", None
    m = _FAILED_AT.search(output)
    if m:
        file, line = m.group(1), int(m.group(2))
    else:
        for rx in (_CONFLICT, _NOT_APPLY, _LACKING):
            m2 = rx.search(output)
            if m2:
                file = m2.group(1)
                break
    words = "\n".join(
        ln
        for ln in output.splitlines()
        if ln.strip()
        and not ln.startswith(
            (
                "hint:",
                "When you have resolved",
                "If you prefer",
                "To restore the original",
                "Use 'git am --show-current-patch",
            )
        )
    ).strip()
    return AmFailure(file=file, line=line, hunk=find_hunk(diff, file, line), words=words[-3000:])


def diff_of_mail(mail: bytes) -> str:
    """The diff part of a patch mail (from the first `diff --git`), transfer-decoded."""
    msg = email.message_from_bytes(mail)
    parts = [p for p in msg.walk() if not p.is_multipart()] if msg.is_multipart() else [msg]
    texts = []
    for part in parts:
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            texts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    text = "\n".join(texts)
    idx = text.find("diff --git ")
    while idx > 0 and text[idx - 1] != "\n":
        idx = text.find("diff --git ", idx + 1)
    return text[idx:] if idx >= 0 else ""
