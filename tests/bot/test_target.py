"""What the command line names: lore URLs and Message-IDs."""

from __future__ import annotations

import pytest

from bot.intake.target import TargetError, resolve
from config.settings import load_settings


def test_resolve_lore_urls_and_msgids() -> None:
    settings = load_settings(
        None, lists=[{"name": "linux-mm", "url": "https://lore.kernel.org/linux-mm"}], trees=[]
    )
    lst, mid = resolve(settings, "https://lore.kernel.org/linux-mm/20230501.1-1-a%40b.org/T/#u")
    assert (lst.name, mid) == ("linux-mm", "20230501.1-1-a@b.org")
    # a scheme (and host) in any case is still a URL, and still the configured list
    lst, mid = resolve(settings, "HTTPS://Lore.Kernel.org/linux-mm/20230501.1-1-a%40b.org/")
    assert (lst.name, mid) == ("linux-mm", "20230501.1-1-a@b.org")
    lst, mid = resolve(settings, " Http://lore.kernel.org/linux-mm/x@y ")
    assert mid == "x@y" and lst.url == "http://lore.kernel.org/linux-mm"
    lst, mid = resolve(settings, "https://lore.kernel.org/r/x@y")
    assert (lst.url, mid) == ("https://lore.kernel.org/all", "x@y")
    lst, mid = resolve(settings, "<x@y>")
    assert (lst.name, mid) == ("linux-mm", "x@y")
    with pytest.raises(TargetError):
        resolve(settings, "not-a-msgid")
    with pytest.raises(TargetError):
        resolve(settings, "x@y", "no-such-list")
