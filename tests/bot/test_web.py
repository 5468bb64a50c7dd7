"""The status pages and JSON API over rows inserted here; 4xx for bad requests."""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from bot.web import create_app
from config.settings import Settings
from state.db import Database
from state.models import SeriesRow
from tests.support.web import MSGID, TOKEN, live_server, populate, with_token


@pytest.fixture
def rows(db: Database, settings: Settings) -> dict[str, Any]:
    return populate(db, settings)


@pytest.fixture
def client(settings: Settings, db: Database, rows: dict[str, Any]) -> TestClient:
    return TestClient(create_app(with_token(settings), db))


def test_healthz_and_overview(client: TestClient) -> None:
    assert client.get("/healthz").text == "ok"
    r = client.get("/")
    assert r.status_code == 200
    html = r.text
    assert "linux-mm" in html and "netdev" in html
    assert "HTTPError: 503" in html  # the last poll error of netdev
    assert "otherhost/42/w1" in html and "build" in html  # the running worker and its step
    assert "1m 15s" in html or "1m 16s" in html  # its elapsed time
    assert f'href="/series/{quote(MSGID, safe="@")}"' in html
    assert "allow_unsandboxed = false" in html and "WITHOUT a sandbox" not in html


def test_the_page_shouts_when_builds_may_run_unsandboxed(
    settings: Settings, db: Database, rows: dict[str, Any]
) -> None:
    loose = settings.model_copy(
        update={"sandbox": settings.sandbox.model_copy(update={"allow_unsandboxed": True})}
    )
    html = TestClient(create_app(loose, db)).get("/").text
    assert "allow_unsandboxed = true" in html and "WITHOUT a sandbox" in html


def test_api_status(client: TestClient) -> None:
    data = client.get("/api/status").json()
    assert data["queue_length"] == 1
    polls = {p["list"]: p for p in data["polls"]}
    assert polls["linux-mm"]["error"] == "" and polls["linux-mm"]["lag_seconds"] < 60
    assert polls["netdev"]["error"].startswith("HTTPError")
    assert polls["netdev"]["lag_seconds"] >= 7000  # last good poll 2 hours ago
    assert polls["netdev"]["errors_24h"] == 1
    assert [w["step"] for w in data["workers"]] == ["build"]
    assert data["today"]["done"] == 1 and data["today"]["queued"] == 1


def test_api_series_list_and_filters(client: TestClient) -> None:
    all_rows = client.get("/api/series").json()
    assert [r["msgid"] for r in all_rows] == [
        "dave-1@example.com",
        "carol-1@example.com",
        "bob-1@example.com",
        MSGID,
    ]
    assert all_rows[-1] == {
        "msgid": MSGID,
        "subject": "[PATCH v2 0/2] mm: fix the foo counter",
        "version": 2,
        "state": "done",
        "findings": 2,
    }
    assert [r["msgid"] for r in client.get("/api/series?state=failed").json()] == [
        "bob-1@example.com"
    ]
    assert {r["msgid"] for r in client.get("/api/series?list=netdev").json()} == {
        "bob-1@example.com",
        "carol-1@example.com",
    }
    assert [r["msgid"] for r in client.get("/api/series?author=jane@").json()] == [MSGID]
    assert client.get("/api/series?state=nonsense").json() == []


def test_series_list_page_filters(client: TestClient) -> None:
    html = client.get("/series", params={"state": "failed"}).text
    assert "net: x" in html and "mm: fix the foo counter" not in html
    html = client.get("/series", params={"author": "Jane"}).text
    assert "mm: fix the foo counter" in html and "net: x" not in html


@pytest.mark.parametrize("path", [quote(MSGID, safe="@"), MSGID, quote(f"<{MSGID}>", safe="")])
def test_series_page(client: TestClient, rows: dict[str, Any], path: str) -> None:
    r = client.get(f"/series/{path}")
    assert r.status_code == 200, r.text
    html = r.text
    assert "unused variable &#39;ret&#39;" in html
    assert "<pre>  11 |\tint ret;\n&gt; 12 |\tint &lt;unused&gt; = 0;</pre>" in html  # escaped
    assert "lorebot.1.reply@localhost" in html and "sent" in html
    assert "mm mm-unstable at" in html and "bbbbbbbbbbbb" in html  # tree/branch and base
    assert f"/logs/{rows['run_id']}/build/x86_64.log" in html
    assert "[PATCH v2 2/2] mm: use foo counter" in html
    assert "make W=1 mm/foo.o" in html


def test_series_page_shows_the_build_plan_and_notes(client: TestClient) -> None:
    """Variants built and dropped (with the reason), and notes apart from findings."""
    html = client.get(f"/series/{quote(MSGID, safe='@')}").text
    assert "1 built, 1 dropped" in html
    assert 'class="variant-built"' in html and "defconfig MIGRATION=n" in html
    assert 'class="variant-dropped"' in html and "over the &lt;budget&gt;" in html
    assert "never mailed" in html and "arm64 defconfig (base) not built" in html
    run = client.get(f"/api/series/{quote(MSGID, safe='@')}").json()["runs"][0]
    assert run["variants"][0]["flip"] == "MIGRATION=n"
    assert run["variants_dropped"][0]["reason"] == "over the <budget>"
    assert run["notes"][0]["kind"] == "variant-dropped"


def test_series_page_shows_patch_coverage(client: TestClient) -> None:
    html = client.get(f"/series/{quote(MSGID, safe='@')}").text
    assert "Patch coverage: <strong>3 of 4</strong>" in html and "(75.0%)" in html
    assert "mm/foo.c</span> lines 12: symbol unsatisfiable" in html
    run = client.get(f"/api/series/{quote(MSGID, safe='@')}").json()["runs"][0]
    assert run["coverage"]["uncovered"][0]["reason"] == "symbol unsatisfiable"


def test_api_series_detail(client: TestClient) -> None:
    d = client.get(f"/api/series/{quote(MSGID, safe='@')}").json()
    assert d["state"] == "done" and d["version"] == 2
    assert [p["index"] for p in d["patches"]] == [1, 2]
    assert d["runs"][0]["base_sha"] == "b" * 40
    assert d["runs"][0]["checks"]["build"]["status"] == "ok"
    assert [f["check"] for f in d["findings"]] == ["build", "checkpatch"]
    assert d["findings"][0]["excerpt"].startswith("  11 |")
    assert d["replies"][0]["msgid"] == "lorebot.1.reply@localhost"


@pytest.mark.parametrize(
    "url",
    [
        "/series/nope@example.org",
        "/api/series/nope@example.org",
        "/series/",
        "/logs/999/x.log",
        "/logs/notanumber/x.log",
    ],
)
def test_unknown_is_4xx(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert 400 <= r.status_code < 500, (url, r.status_code)


def test_rerun_needs_the_token(client: TestClient, db: Database, rows: dict[str, Any]) -> None:
    url = f"/api/series/{quote(MSGID, safe='@')}/rerun"
    assert client.post(url).status_code == 403
    assert client.post(url, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.post(url, data={"token": "wrong"}).status_code == 403
    with db.session() as s:
        assert s.get(SeriesRow, rows["done_id"]).state == "done"  # type: ignore[union-attr]
    r = client.post(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 202
    with db.session() as s:
        assert s.get(SeriesRow, rows["done_id"]).state == "queued"  # type: ignore[union-attr]
    assert (
        client.post(
            "/api/series/nope@x/rerun", headers={"Authorization": f"Bearer {TOKEN}"}
        ).status_code
        == 404
    )
    busy = client.post(
        "/api/series/dave-1@example.com/rerun", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert busy.status_code == 409


def test_rerun_form(client: TestClient, db: Database, rows: dict[str, Any]) -> None:
    url = "/series/bob-1@example.com/rerun"
    assert client.post(url, data={"token": "nope"}).status_code == 403
    r = client.post(url, data={"token": TOKEN}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/series/bob-1@example.com")
    assert "Queued for a new run" in client.get(r.headers["location"]).text


def test_rerun_forbidden_without_configured_token(
    settings: Settings, db: Database, rows: dict[str, Any]
) -> None:
    c = TestClient(create_app(settings, db))
    assert (
        c.post(
            "/api/series/bob-1@example.com/rerun", headers={"Authorization": "Bearer "}
        ).status_code
        == 403
    )
    assert c.post("/series/bob-1@example.com/rerun", data={"token": ""}).status_code == 403


def test_log_file(client: TestClient, rows: dict[str, Any]) -> None:
    r = client.get(f"/logs/{rows['run_id']}/build/x86_64.log")
    assert r.status_code == 200 and "mm/foo.c:12" in r.text
    assert r.headers["content-type"].startswith("text/plain")
    evil = client.get(f"/logs/{rows['run_id']}/evil.html")
    assert evil.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "rel",
    [
        "../../etc/passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        "..%2f..%2f..%2fsecret.txt",
        "%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt",
        "escape.log",
        "/etc/passwd",
        "build/../../1",
        "%00",
        ".",
    ],
)
def test_log_traversal_refused(client: TestClient, rows: dict[str, Any], rel: str) -> None:
    r = client.get(f"/logs/{rows['run_id']}/{rel}")
    assert r.status_code in (400, 404), (rel, r.status_code)
    assert "secret" not in r.text and "root:" not in r.text


def test_log_traversal_raw_http(settings: Settings, db: Database, rows: dict[str, Any]) -> None:
    """Un-normalised paths as a hostile client sends them, to a real server."""
    with live_server(create_app(settings, db)) as base:
        port = int(base.rsplit(":", 1)[1])
        for path in (
            f"/logs/{rows['run_id']}/../../etc/passwd",
            f"/logs/{rows['run_id']}/%2e%2e/%2e%2e/%2e%2e/secret.txt",
            f"/logs/{rows['run_id']}/..%2F..%2F..%2Fsecret.txt",
        ):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read().decode()
            conn.close()
            assert 400 <= resp.status < 500, (path, resp.status)
            assert "top secret" not in body and "root:" not in body


def test_metrics(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert 'lorebot_series{state="done"} 1' in text
    assert 'lorebot_series{state="queued"} 1' in text
    assert "lorebot_findings_total 2" in text
    assert 'lorebot_replies{state="sent"} 1' in text
    assert 'lorebot_last_poll_timestamp_seconds{list="linux-mm"}' in text
    assert 'lorebot_last_poll_timestamp_seconds{list="netdev"}' in text
    assert "lorebot_poll_errors_total 1" in text
    assert "lorebot_queue_length 1" in text


def test_empty_database(settings: Settings, db: Database) -> None:
    c = TestClient(create_app(settings, db))
    assert c.get("/").status_code == 200
    assert c.get("/series").status_code == 200
    assert c.get("/api/series").json() == []
    assert "lorebot_queue_length 0" in c.get("/metrics").text


def test_series_page_shows_each_test_suites_counts(client: TestClient) -> None:
    """The runtime check's suites: pass/fail/skip at the base and after the series."""
    html = client.get(f"/series/{quote(MSGID, safe='@')}").text
    assert "Tests run: 2 suites" in html
    assert '<td class="mono">vma</td><td>host</td>' in html
    assert "<td>15 / 0 / 0</td>" in html and "<td>13 / 2 / 0</td>" in html
    assert '<span class="muted">not run</span>' in html  # maple_tree at the base
    run = client.get(f"/api/series/{quote(MSGID, safe='@')}").json()["runs"][0]
    assert run["suites"][0]["after"] == [13, 2, 0]
