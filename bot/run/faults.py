"""Faults of the service an operator must fix, kept in the database for every process to show.

A fault is raised by whoever meets it (any process on the database) and
cleared by the first success of the same kind; the status page and /metrics
read them. Faults that make the database itself unusable cannot be stored
there: those live in the process (bot.service's health).
"""

from __future__ import annotations

import logging
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from state.db import Database
from state.models import FaultRow, utcnow

log = logging.getLogger("lorebot.faults")


class Fault(StrEnum):
    """The kinds of lasting faults, one row each while they last."""

    MAIL = "mail"  # the mail relay refuses our sender, login or every recipient


def raise_fault(db: Database, fault: Fault, message: str) -> None:
    """Record (or refresh) `fault` with what went wrong and what to do."""
    with db.session() as s:
        row = s.get(FaultRow, str(fault))
        if row is None:
            s.add(FaultRow(name=str(fault), message=message, since=utcnow(), updated_at=utcnow()))
            log.error("fault %s: %s", fault, message)
        else:
            row.message, row.updated_at = message, utcnow()


def clear_fault(db: Database, fault: Fault) -> None:
    """Forget `fault`: the thing it was about works again."""
    with db.session() as s:
        result = s.execute(delete(FaultRow).where(FaultRow.name == str(fault)))
        if getattr(result, "rowcount", 0):
            log.info("fault %s cleared", fault)


def active(s: Session) -> list[FaultRow]:
    """The faults recorded now, oldest first."""
    return list(s.scalars(select(FaultRow).order_by(FaultRow.since)))
