"""The status pages in a real headless chromium, against a real uvicorn on loopback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.web import create_app
from config.settings import Settings
from state.db import Database
from tests.support.web import (
    MSGID,
    NO_CHROMIUM,
    have_chromium,
    live_server,
    populate,
    with_token,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not have_chromium(), reason=NO_CHROMIUM),
]


def screenshot(driver: Any, path: Path) -> Path:
    """The whole page as PNG: the window grown to the document's height first."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    # a headless window is capped at the screen size: emulate a tall viewport instead
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": 1280,
            "height": min(max(height, 600), 8000),
            "deviceScaleFactor": 1,
            "mobile": False,
        },
    )
    driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    extra = os.environ.get("LOREBOT_SCREENSHOTS")  # keep a copy for a human to look at
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)
    return path


def test_overview_to_series_page(browser: Any, settings: Settings, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    db = Database(settings.database_url)
    populate(db, settings)
    try:
        with live_server(create_app(with_token(settings), db)) as base:
            browser.get(base + "/")
            assert "Status" in browser.find_element(By.TAG_NAME, "h1").text
            body = browser.find_element(By.TAG_NAME, "body").text
            assert "linux-mm" in body and "otherhost/42/w1" in body
            assert screenshot(browser, tmp_path / "lorebot-overview.png").stat().st_size > 0

            link = browser.find_element(By.LINK_TEXT, "[PATCH v2 0/2] mm: fix the foo counter")
            link.click()
            assert "mm: fix the foo counter" in browser.find_element(By.TAG_NAME, "h1").text
            assert MSGID in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
            body = browser.find_element(By.TAG_NAME, "body").text
            assert "unused variable 'ret'" in body  # a finding
            excerpt = browser.find_element(By.CSS_SELECTOR, ".finding pre").text
            assert "int <unused> = 0;" in excerpt
            replies = browser.find_elements(By.CSS_SELECTOR, "tr.reply")
            assert replies and "lorebot.1.reply@localhost" in replies[0].text
            assert "sent" in replies[0].text
            assert screenshot(browser, tmp_path / "lorebot-series.png").stat().st_size > 0

            browser.find_element(By.PARTIAL_LINK_TEXT, "x86_64.log").click()
            assert "mm/foo.c:12: warning" in browser.find_element(By.TAG_NAME, "body").text
    finally:
        db.dispose()
