"""What the web routes share: settings, database, the service's workers, the write token."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs

from fastapi import Request

from bot.web.queries import WorkerSource
from config.settings import Settings
from state.db import Database

MAX_FORM_BYTES = 64 * 1024


class HealthSource(Protocol):
    """The service's own faults (bot.health.Health): empty when healthy."""

    def problems(self) -> list[str]: ...


@dataclass(frozen=True)
class WebContext:
    settings: Settings
    db: Database
    service_state: WorkerSource | None = None
    health: HealthSource | None = None


def token_ok(configured: str, given: str | None) -> bool:
    """Whether `given` is the configured token; never when none is configured."""
    if not configured or not given:
        return False
    return hmac.compare_digest(configured.encode(), given.encode())


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if any."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def form_token(request: Request) -> str | None:
    """The `token` field of a url-encoded form body (no multipart parser needed)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return None
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return None
    values = parse_qs(body.decode("utf-8", "replace")).get("token")
    return values[0] if values else None


async def request_token(request: Request) -> str | None:
    """The token from the Authorization header, else from the form."""
    return bearer(request) or await form_token(request)
