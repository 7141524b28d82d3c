"""Open a report page in headless Chromium as a user would (Playwright driving the system's
Chromium: Debian's `chromium` package; Playwright's own browser download is not needed), and
take its screenshot. The browser test uses it, and so does the committed screenshot:

    python tests/browser.py reports/report.html reports/report.png

Flags: no sandbox (tests run as root in CI), and no background networking, so the browser makes
no connection of its own on a closed network.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1440, "height": 1000}


def missing() -> str | None:
    """Why no browser test can run here, or None when one can."""
    if importlib.util.find_spec("playwright") is None:
        return "the Playwright Python package is not installed (pip install -e '.[dev]')"
    if executable() is None:
        return (
            "no Chromium found (install Debian's: apt-get install chromium, "
            "or set MOLTING_CHROMIUM to a "
            "Chromium or Chrome binary)"
        )
    return None


def executable() -> str | None:
    env = os.environ.get("MOLTING_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


@contextlib.contextmanager
def open_page(path: str | Path) -> Iterator[Any]:
    """A Playwright page showing the file at `path` (a file:// URL, as a user opens it from
    disk)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable(), args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(Path(path).resolve().as_uri())
            yield page
        finally:
            browser.close()


def screenshot(page: Any, out: str | Path, rows: int = 3) -> Path:
    """The page from its top to the end of the matrix's first `rows` visible rows: the verdict,
    the lowest-scoring reply, the charts with their targets, the criteria and full replies."""
    bottom = page.evaluate(
        """(n) => {
             const rows = [...document.querySelectorAll('#matrix tbody tr.row')]
               .filter(r => !r.hidden).slice(0, n);
             const last = rows[rows.length - 1];
             return last ? last.getBoundingClientRect().bottom + window.scrollY + 12
                         : document.body.scrollHeight;
           }""",
        rows,
    )
    out = Path(out)
    page.screenshot(
        path=str(out),
        full_page=True,
        clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": bottom},
    )
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python tests/browser.py REPORT_HTML OUT_PNG", file=sys.stderr)
        return 2
    why = missing()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 1
    with open_page(argv[0]) as page:
        print(f"wrote {screenshot(page, argv[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
