"""Liveness of claim holders: pid on this host (zombies and reused pids are dead), heartbeat
elsewhere, and this process's own claims only while a thread holds them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta

from bot.run import claims
from state.models import utcnow
from tests.support.waiting import wait_for

HOST = socket.gethostname()
STALE = timedelta(seconds=120)


def alive(
    claimed_by: str, claimed_at: datetime | None = None, heartbeat_at: datetime | None = None
) -> bool:
    return claims.claim_alive(claimed_by, claimed_at, heartbeat_at, utcnow(), STALE)


def test_other_host_lives_by_its_heartbeat() -> None:
    now = utcnow()
    assert alive("elsewhere/1/w0", now - timedelta(hours=5), now - timedelta(seconds=5))
    assert not alive("elsewhere/1/w0", now - timedelta(hours=5), now - timedelta(minutes=5))
    assert alive("elsewhere/1/w0", now - timedelta(seconds=5))  # just claimed, no beat yet
    assert not alive("elsewhere/1/w0")


def test_this_host_lives_by_its_pid() -> None:
    parent = f"{HOST}/{os.getppid()}/w0"
    assert alive(parent)  # long-lived, whatever its heartbeat says
    assert alive(parent, utcnow(), utcnow() - timedelta(days=1))
    # a claim made before that process started was made by another one with its pid
    assert not alive(parent, datetime(2000, 1, 1))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert not alive(f"{HOST}/{gone.pid}/w0", utcnow())
    assert not alive("", utcnow()) and not alive(f"{HOST}/notapid/w0", utcnow())


def test_a_zombie_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    claimed = utcnow()

    def zombie() -> bool:
        state = claims.process_state(child.pid)
        return state is not None and state[0] == "Z"

    # exited, not yet waited for: a zombie, which `kill -0` still finds
    wait_for(zombie)
    try:
        assert not alive(f"{HOST}/{child.pid}/w0", claimed)
    finally:
        child.wait()


def test_own_claims_live_while_held() -> None:
    me = claims.holder_name("w7")
    assert not alive(me, utcnow())  # left by an earlier process that had our pid
    with claims.held(me):
        assert alive(me, utcnow())
        with claims.held(me):
            pass
        assert alive(me, utcnow())
    assert not alive(me, utcnow())
