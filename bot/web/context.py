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


class RerunRefused(Exception):
    """A write refused before its body was read: (HTTP status, message)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not value.strip().isdigit() or len(value.strip()) > 18:
        raise RerunRefused(400, "bad Content-Length")
    return int(value)


async def bounded_body(request: Request, limit: int = MAX_FORM_BYTES) -> bytes:
    """The request body, read in chunks and refused (413) as soon as it passes `limit`."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RerunRefused(413, f"request body over {limit} bytes")
    return bytes(body)


async def rerun_token(request: Request, configured: str) -> str | None:
    """The token of a write, checked in the order that costs the server least.

    No token configured, then a declared Content-Length over the bound, are
    refused before a byte of the body is read; an Authorization header is
    taken without reading the body; only a form body is read, in chunks, up
    to MAX_FORM_BYTES. Raises RerunRefused.
    """
    if not configured:
        raise RerunRefused(403, "re-run is disabled: no web token is configured")
    length = _declared_length(request)
    if length is not None and length > MAX_FORM_BYTES:
        raise RerunRefused(413, f"request body of {length} bytes, over {MAX_FORM_BYTES}")
    token = bearer(request)
    if token is not None:
        return token
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return None
    body = await bounded_body(request)
    values = parse_qs(body.decode("utf-8", "replace")).get("token")
    return values[0] if values else None
