"""JSON API beside the pages, the Prometheus metrics and the health check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import select

from bot.run import queue
from bot.web import feedback, freshness, queries, scale
from bot.web import metrics as prometheus
from bot.web.context import RerunRefused, WebContext, rerun_token, token_ok
from bot.web.params import Author, Limit, ListName, MsgId, Offset, State

API_SERIES_KEYS = ("msgid", "subject", "version", "state", "findings")


def rerun(ctx: WebContext, msgid: str, token: str | None) -> tuple[int, str]:
    """Requeue a series if the token is right: (HTTP status, message)."""
    if not ctx.settings.web.token:
        return 403, "re-run is disabled: no web token is configured"
    if not token_ok(ctx.settings.web.token, token):
        return 403, "bad or missing token"
    with ctx.db.session() as s:
        row = queries.find_series(s, msgid)
        sid = row.id if row else None
    if sid is None:
        return 404, "unknown series"
    if not queue.requeue(ctx.db, sid):
        return 409, "the series is running now; try again when it is done"
    return 202, "queued"


def make_router(ctx: WebContext) -> APIRouter:
    """Routes under /api, plus /metrics and /healthz."""
    r = APIRouter()

    @r.get(
        "/healthz",
        response_class=PlainTextResponse,
        responses={503: {"description": "unhealthy: one line per fault"}},
    )
    def healthz() -> PlainTextResponse:
        problems = ctx.health.problems() if ctx.health is not None else []
        if not problems:
            try:  # a page that cannot read the database is no status page either
                with ctx.db.session() as s:
                    s.execute(select(1))
            except Exception as e:
                problems = [f"database unreadable: {type(e).__name__}: {e}".splitlines()[0]]
        if problems:
            return PlainTextResponse("unhealthy: " + "; ".join(problems) + "\n", 503)
        return PlainTextResponse("ok")

    @r.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        with ctx.db.session() as s:
            text = prometheus.metrics(s)
        text += "".join(f"{line}\n" for line in scale.metrics_lines(scale.overview(ctx.settings)))
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @r.get("/api/status")
    def status() -> dict[str, Any]:
        with ctx.db.session() as s:
            out = {**queries.overview(s, ctx.service_state), **freshness.overview(s, ctx.settings)}
        return {**out, "scale": scale.overview(ctx.settings)}

    @r.get("/api/series")
    def series_list(
        state: State = "",
        list_name: ListName = "",
        author: Author = "",
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[dict[str, Any]]:
        with ctx.db.session() as s:
            rows = queries.list_series(s, state, list_name, author, limit, offset)
        return [{k: row[k] for k in API_SERIES_KEYS} for row in rows]

    @r.post("/api/series/{msgid:path}/rerun")
    async def series_rerun(msgid: MsgId, request: Request) -> JSONResponse:
        try:
            token = await rerun_token(request, ctx.settings.web.token)
        except RerunRefused as e:
            code, message = e.code, e.message
        else:
            code, message = await run_in_threadpool(rerun, ctx, msgid, token)
        return JSONResponse(
            {"msgid": queries.clean_msgid(msgid), "result": message}, status_code=code
        )

    @r.get("/api/series/{msgid:path}")
    def series_detail(msgid: MsgId, list_name: ListName = "") -> dict[str, Any]:
        with ctx.db.session() as s:
            row = queries.find_series(s, msgid, list_name)
            if row is None:
                raise HTTPException(404, "unknown series")
            detail = feedback.annotate(s, row, queries.series_detail(s, row))
        detail.pop("matrix", None)
        return detail

    return r
