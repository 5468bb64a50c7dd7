"""`lorebot b4-check` driven by b4's own check runner (b4/review/checks.py), with lorebot
as the per-patch and the series command in a scratch git config: fail on the patch with
a build error, pass on the clean one, the page URL; from the database and from a server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.demo.series import write_series
from bot.report.b4check import b4_results
from bot.web.app import create_app
from config.settings import load_settings
from state.db import Database
from tests.support.fakelinux import fake_tree
from tests.support.fakeseries import PATCHES, write_config
from tests.support.kernel import git
from tests.support.pi import PublicInboxServer
from tests.support.web import live_server

REPO = Path(__file__).resolve().parents[2]
LOREBOT = str(Path(sys.executable).parent / "lorebot")
# b4's own runner, as `b4 review` calls it: commands from git config, mails on stdin
B4_RUNNER = """
import argparse, email, json, sys
import b4
from b4.review import checks
b4.setup_config(argparse.Namespace(config=None))
perpatch, series = checks.load_check_cmds()
msgs = [email.message_from_bytes(open(p, "rb").read(), policy=b4.emlpolicy) for p in sys.argv[2:]]
mids = [m["message-id"].strip("<> ") for m in msgs]
out = {
    "perpatch": checks.run_perpatch_checks(list(zip(mids[1:], msgs[1:])), perpatch, sys.argv[1]),
    "series": checks.run_series_checks((mids[0], msgs[0]), series, sys.argv[1]),
}
print(json.dumps(out))
"""


def _b4(tmp_path: Path, topdir: Path, check_cmd: str, mails: list[Path]) -> dict[str, Any]:
    home = tmp_path / "b4home"
    home.mkdir(exist_ok=True)
    (home / "gitconfig").write_text(
        "[b4]\n"
        f"\treview-perpatch-check-cmd = {check_cmd}\n"
        f"\treview-series-check-cmd = {check_cmd} --series\n"
    )
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_DATA_HOME": str(home / "data"),
    }
    r = subprocess.run(
        [sys.executable, "-c", B4_RUNNER, str(topdir), *map(str, mails)],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr.decode()
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def _assert_verdicts(out: dict[str, Any], msgids: list[str], page: str) -> None:
    (clean,) = out["perpatch"][msgids[1]]
    (broken,) = out["perpatch"][msgids[2]]
    (series,) = out["series"]
    assert clean["tool"] == "lorebot" and clean["status"] == "pass", clean
    assert clean["summary"].startswith("no new problems in patch 1/2")
    assert broken["status"] == "fail" and broken["summary"] == "1 new build error"
    assert broken["url"] == f"{page}#patch-2"
    (entry,) = json.loads(broken["details"])
    assert entry["status"] == "fail" and "foo_missing" in entry["description"]
    assert series["status"] == "fail" and series["url"] == page


@pytest.mark.skipif(not all(shutil.which(t) for t in ("gcc", "make")), reason="needs gcc and make")
def test_b4_review_runs_lorebot_as_its_check(tmp_path: Path, pi_server: PublicInboxServer) -> None:
    upstream = fake_tree(tmp_path / "upstream")
    cfg = write_config(tmp_path, pi_server, upstream, '[web]\nbase_url = "http://lorebot.test"\n')
    git(upstream, "checkout", "-qb", "topic")
    mailed = write_series(upstream, PATCHES, list_address=pi_server.address)
    git(upstream, "checkout", "-q", "master")
    mails = []
    for i, raw in enumerate(mailed.mails):
        mails.append(tmp_path / f"{i}.eml")
        mails[-1].write_bytes(raw)
    check = f"{LOREBOT} --config {cfg} b4-check"

    # before lorebot saw it: no pass, a summary that says so
    before = _b4(tmp_path, upstream, check, mails)
    assert {r[0]["status"] for r in before["perpatch"].values()} == {"warn"}
    assert "not checked" in before["series"][0]["summary"]

    pi_server.post_many(mailed.mails)
    for args in (["tree", "sync"], ["check", mailed.msgids[0], "--json"]):
        r = subprocess.run([LOREBOT, "--config", str(cfg), *args], capture_output=True, timeout=600)
        assert r.returncode == 0, r.stderr.decode()
    page = f"http://lorebot.test/series/{mailed.msgids[0]}"
    _assert_verdicts(_b4(tmp_path, upstream, check, mails), mailed.msgids, page)

    # the same from a running lorebot's JSON API
    settings = load_settings(cfg)
    db = Database(settings.database_url)
    with live_server(create_app(settings, db)) as url:
        remote = _b4(tmp_path, upstream, f"{check} --url {url}", mails)
    db.dispose()
    _assert_verdicts(remote, mailed.msgids, f"{url}/series/{mailed.msgids[0]}")


def test_held_and_queued_series_never_pass() -> None:
    base = {
        "msgid": "c@x",
        "has_cover": True,
        "total": 1,
        "patches": [{"index": 1, "msgid": "p@x"}],
    }
    held = b4_results(
        {**base, "state": "held", "reason": "tree not synced", "runs": []}, "p@x", "u"
    )
    assert held[0]["status"] == "warn" and "held" in held[0]["summary"]
    queued = b4_results({**base, "state": "queued", "reason": "", "runs": []}, "c@x", "u")
    assert queued[0]["status"] == "warn" and "not checked yet (queued)" in queued[0]["summary"]
    marked = {
        **base,
        "state": "done",
        "runs": [
            {
                "state": "done",
                "apply_ok": True,
                "checks": {"build": {}},
                "findings": [
                    {
                        "check": "build",
                        "kind": "error",
                        "severity": "error",
                        "patch": 1,
                        "file": "mm/a.c",
                        "message": "boom",
                        "invalid": {"by": "Dev <d@x>", "reason": "not a bug"},
                    }
                ],
            }
        ],
    }
    (r,) = b4_results(marked, "p@x", "u")
    assert r["status"] == "pass" and "1 marked invalid" in r["summary"]
