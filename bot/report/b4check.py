"""lorebot's result for one mail in the shape `b4 review` reads from a check command (pure).

b4 0.16 (b4/review/checks.py) runs `b4.review-perpatch-check-cmd` with each patch
mail on stdin, and `b4.review-series-check-cmd` with the cover letter (or the
first patch), and reads a JSON list of {"tool", "status": pass|warn|fail,
"summary", "url", "details"}; `details` holding a JSON list of {"status",
"description", "url"} is shown one line per entry. A series not checked yet,
held, or unknown is a "warn" that says so: never a pass it has not earned.
"""

from __future__ import annotations

import json
from typing import Any

TOOL = "lorebot"
_RANK = {"pass": 0, "warn": 1, "fail": 2}


def result(status: str, summary: str, url: str = "", details: str = "") -> dict[str, str]:
    return {"tool": TOOL, "status": status, "summary": summary, "url": url, "details": details}


def unknown(msgid: str, where: str) -> list[dict[str, str]]:
    """lorebot has no series with this message."""
    return [result("warn", f"not checked: {where} has no series with <{msgid}>")]


def _where(f: dict[str, Any]) -> str:
    place = f.get("file") or ""
    if place and f.get("line"):
        place += f":{f['line']}"
    return place


def _entry(f: dict[str, Any], url: str) -> dict[str, str]:
    config = " ".join(x for x in (f.get("arch") or "", f.get("config") or "") if x)
    text = f"{f.get('check')} {f.get('kind')}"
    if _where(f):
        text += f" in {_where(f)}"
    text += f": {f.get('message', '')}"
    if config:
        text += f" ({config})"
    status = "fail" if f.get("severity") == "error" else "warn"
    mark = f.get("invalid")
    if mark:
        status = "pass"
        text = f"(marked invalid by {mark.get('by')}: {mark.get('reason')}) {text}"
    return {"status": status, "description": text, "url": url}


def _count(findings: list[dict[str, Any]]) -> str:
    kinds: dict[str, int] = {}
    for f in findings:
        key = f"{f.get('check')} {f.get('kind')}"
        kinds[key] = kinds.get(key, 0) + 1
    if len(findings) == 1:
        return f"1 new {next(iter(kinds))}"
    detail = ", ".join(f"{k} {key}" for key, k in kinds.items())
    return f"{len(findings)} new problems ({detail})"


def b4_results(
    detail: dict[str, Any], msgid: str, page_url: str, whole_series: bool = False
) -> list[dict[str, str]]:
    """The one lorebot result for `msgid` (a patch, else the whole series) from the
    series' JSON (`/api/series/<msgid>`, with the readers' `invalid` marks)."""
    index = next((p["index"] for p in detail.get("patches", []) if p["msgid"] == msgid), None)
    if whole_series or (msgid == detail.get("msgid") and detail.get("has_cover")):
        index = None
    total = detail.get("total") or len(detail.get("patches", []))
    url = page_url + (f"#patch-{index}" if index is not None else "")
    label = f"patch {index}/{total}" if index is not None else "the series"
    state, reason = detail.get("state", ""), detail.get("reason", "")
    done = next((r for r in detail.get("runs", []) if r.get("state") == "done"), None)
    if state == "held":
        return [result("warn", f"not checked yet: held for a fault of lorebot's ({reason})", url)]
    if done is None:
        why = f"{state}: {reason}" if reason else state
        return [result("warn", f"not checked yet ({why})", url)]
    pending = " (a new check is pending)" if state in ("queued", "running") else ""
    if done.get("apply_ok") is False:
        failed = done.get("failed_patch")
        where = f" at patch {failed}/{total}" if failed else ""
        on = " ".join(x for x in (done.get("tree"), done.get("branch")) if x)
        return [result("warn", f"not checked: the series does not apply{where} on {on}", url)]
    findings = [
        f
        for f in done.get("findings", [])
        if index is None or f.get("patch") == index or (f.get("patch") is None and index == 1)
    ]
    live = [f for f in findings if not f.get("invalid")]
    entries = [_entry(f, url) for f in findings]
    status = max((e["status"] for e in entries), key=lambda s: _RANK[s], default="pass")
    checks = ", ".join(done.get("checks", {})) or "none"
    summary = _count(live) if live else f"no new problems in {label} (checked: {checks})"
    if len(live) < len(findings):
        summary += f"; {len(findings) - len(live)} marked invalid"
    return [result(status, summary + pending, url, json.dumps(entries) if entries else "")]
