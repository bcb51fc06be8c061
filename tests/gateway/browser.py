"""The gateway's web page in headless Chromium (Debian's package, driven by Playwright; no browser download)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Page, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextmanager
def gateway_page(base: str) -> Iterator[Page]:
    """The page at ``base``, autoplay allowed; an error the page raised fails the block when it ends.

    No skip: bin/test installs Debian's chromium; without it this fails and says so.
    """
    assert shutil.which("chromium"), "Debian's chromium is missing (bin/test installs it: apt-get install chromium)"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"]
        )
        try:
            tab = browser.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.goto(base + "/")
            yield tab
            assert not errors, errors
        finally:
            browser.close()
