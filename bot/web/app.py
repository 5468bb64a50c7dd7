"""The status web app: server-rendered pages (no JavaScript needed) and the JSON API.

Pages: `/` overview, `/series` list, `/series/{msgid}` one series,
`/logs/{run_id}/{path}` a run's log file. JSON, metrics and health live in
bot.web.api. Message-IDs travel URL-encoded and are matched as `{msgid:path}`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.web import api, feedback, freshness, logs, queries, scale
from bot.web.context import RerunRefused, WebContext, rerun_token
from bot.web.params import Author, Limit, ListName, LogPath, MsgId, Offset, RunId, State
from config.settings import Settings
from state.db import Database
from state.models import RunRow

TEMPLATES = Path(__file__).with_name("templates")


def msgid_url(msgid: str) -> str:
    """A Message-ID as one safe path piece (`/`, `+`, `=`, `%`, `#`, `?` escaped)."""
    return quote(msgid, safe="@")


def when(value: str | None) -> str:
    """An ISO time from the queries as `YYYY-MM-DD HH:MM UTC`."""
    if not value:
        return "—"
    return value.replace("T", " ")[:16] + " UTC"


def duration(seconds: float | int | None) -> str:
    """Seconds as `2h 03m`, `4m 05s` or `7.5s`."""
    if seconds is None:
        return "—"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f}s" if s < 10 else f"{s:.0f}s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m}m {sec:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m" if h < 48 else f"{h // 24}d {h % 24}h"


def make_templates(settings: Settings) -> Jinja2Templates:
    """The Jinja2 environment with the filters the pages use."""
    templates = Jinja2Templates(directory=str(TEMPLATES))
    env = templates.env
    env.filters["urlq"] = msgid_url
    env.filters["when"] = when
    env.filters["duration"] = duration
    env.filters["short"] = lambda sha: (sha or "")[:12]
    lists = {lst.name: lst.url for lst in settings.lists}

    def lore_url(list_name: str, msgid: str) -> str:
        base = lists.get(list_name, "https://lore.kernel.org/all/")
        return f"{base.rstrip('/')}/{quote(msgid, safe='@')}/"

    env.globals["lore_url"] = lore_url
    env.globals["states"] = queries.STATES
    env.globals["poll_interval"] = settings.intake.poll_interval
    env.globals["token_enabled"] = bool(settings.web.token)
    return templates


def create_app(
    settings: Settings, db: Database, service_state: Any = None, health: Any = None
) -> FastAPI:
    """The web app over `db`; `service_state` (a WorkerBoard) adds idle workers of this process,
    `health` (a bot.health.Health) the service's faults to /healthz."""
    ctx = WebContext(settings, db, service_state, health)
    templates = make_templates(settings)
    app = FastAPI(
        title="lorebot", docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json"
    )
    app.include_router(api.make_router(ctx))

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def wants_html(request: Request) -> bool:
        path = request.url.path
        return not (path.startswith("/api/") or path in ("/metrics", "/healthz"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if wants_html(request):
            return page(
                request,
                "error.html",
                exc.status_code,
                title=str(exc.status_code),
                message=exc.detail,
            )
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        if wants_html(request):
            return page(request, "error.html", 400, title="400", message="bad request")
        return JSONResponse({"detail": "bad request"}, status_code=400)

    @app.get("/")
    def overview(request: Request) -> Response:
        with db.session() as s:
            data = {**queries.overview(s, service_state), **freshness.overview(s, settings)}
            recent = queries.list_series(s, limit=15)
        return page(
            request,
            "overview.html",
            title="lorebot",
            o=data,
            recent=recent,
            now=datetime.fromisoformat(data["now"][:-1]),
            sandbox=settings.sandbox,
            scale=scale.overview(settings),
        )

    @app.get("/series")
    def series_list(
        request: Request,
        state: State = "",
        list_name: ListName = "",
        author: Author = "",
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        with db.session() as s:
            rows = queries.list_series(s, state, list_name, author, limit, offset)
        return page(
            request,
            "series_list.html",
            title="series",
            rows=rows,
            state=state,
            list_name=list_name,
            author=author,
            limit=limit,
            offset=offset,
        )

    @app.post("/series/{msgid:path}/rerun")
    async def series_rerun(request: Request, msgid: MsgId) -> Response:
        try:
            token = await rerun_token(request, settings.web.token)
        except RerunRefused as e:
            code, message = e.code, e.message
        else:
            code, message = await run_in_threadpool(api.rerun, ctx, msgid, token)
        if code == 202:
            return RedirectResponse(
                f"/series/{msgid_url(queries.clean_msgid(msgid))}?rerun=1", status_code=303
            )
        return page(request, "error.html", code, title=str(code), message=message)

    @app.get("/series/{msgid:path}")
    def series_page(request: Request, msgid: MsgId, list_name: ListName = "") -> Response:
        with db.session() as s:
            row = queries.find_series(s, msgid, list_name)
            if row is None:
                raise HTTPException(404, f"no series with Message-ID {msgid}")
            d = feedback.annotate(s, row, queries.series_detail(s, row))
        for run in d["runs"]:
            run["logs"] = logs.list_log_files(settings.paths.logs, run["log_dir"])
        return page(
            request,
            "series.html",
            title=d["subject"],
            d=d,
            rerun=request.query_params.get("rerun") == "1",
        )

    @app.get("/logs/{run_id}/{path:path}")
    def log_file(run_id: RunId, path: LogPath) -> Response:
        with db.session() as s:
            run = s.get(RunRow, run_id)
            log_dir = run.log_dir if run else None
        if log_dir is None:
            raise HTTPException(404, "unknown run")
        try:
            target = logs.resolve_log_file(settings.paths.logs, log_dir, path)
        except logs.LogPathError as e:
            raise HTTPException(404, str(e)) from e
        # always text/plain: a log is never rendered as HTML in the browser
        return FileResponse(
            target,
            media_type="text/plain; charset=utf-8",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    return app
