"""report.html in a real browser (headless Chromium driven by Playwright, tests/browser.py), as a
user opens it from disk: every prompt and model in the matrix, filters hide rows, an expanded
cell shows its score's parts, nothing is fetched, no script error. Skips, saying why, where no
Chromium or no Playwright is installed (`make test` installs both on Debian)."""

from __future__ import annotations

import browser
import pytest
from test_report import synthetic_results

WHY = browser.missing()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"browser test skipped: {WHY}")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from molting.gate.report import write_reports

    d = tmp_path_factory.mktemp("page")
    results = synthetic_results(("curated", "augmented"))
    write_reports(results, d)
    requests, errors = [], []
    with browser.open_page(d / "report.html") as pg:
        pg.on("request", lambda r: requests.append(r.url))
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.reload()
        yield pg, results, requests, errors, d


def _visible_rows(pg) -> list[str]:
    return pg.eval_on_selector_all(
        "#matrix tbody tr.row", "rs => rs.filter(r => !r.hidden).map(r => r.id)"
    )


def test_the_matrix_lists_every_prompt_and_model(page):
    pg, results, requests, errors, _ = page
    assert _visible_rows(pg) == [f"p-{p.id}" for p in results.prompts]
    heads = pg.eval_on_selector_all(
        "#matrix thead th[data-model]", "hs => hs.map(h => h.dataset.model)"
    )
    assert heads == results.models
    reply = pg.inner_text(f"#p-{results.prompts[1].id} td.cell[data-model='curated'] .reply")
    assert reply.strip() == results.replies("curated")[1].strip()  # the full reply, as written
    hostile = pg.inner_text(f"#p-{results.prompts[0].id} td.cell[data-model='augmented'] .reply")
    assert "<script>alert('pwned')</script>" in hostile  # shown as text, never run
    assert not errors and all(u.startswith("file://") for u in requests)


def test_filters_hide_rows_and_sorting_by_delta_puts_regressions_first(page):
    pg, results, *_ = page
    pg.select_option("#f-lang", "pt")
    assert _visible_rows(pg) == [f"p-{p.id}" for p in results.prompts if p.lang == "pt"]
    pg.select_option("#f-lang", "")
    pg.select_option("#f-gate", "agent_talk")
    assert _visible_rows(pg) == ["p-ev-pt-0"]
    pg.select_option("#f-gate", "")
    pg.check("#f-worse")
    assert set(_visible_rows(pg)) == {
        "p-ev-en-0",
        "p-ev-pt-0",
    }  # 0.0 and 3.0 against the base's 5.0
    pg.uncheck("#f-worse")
    pg.select_option("#f-sort", "delta")
    assert _visible_rows(pg)[0] == "p-ev-en-0"
    assert "showing 6 of 6" in pg.inner_text("#shown")
    pg.select_option("#f-sort", "order")


def test_an_expanded_cell_shows_the_score_parts(page):
    pg, *_ = page
    cell = "#p-ev-en-0 td.cell[data-model='curated']"
    assert not pg.is_visible(f"{cell} details.parts tr.named")
    pg.click(f"{cell} details.parts summary")
    named = pg.inner_text(f"{cell} details.parts table")
    for part in (
        "style",
        "topicality",
        "nearest competing question",
        "language",
        "variety markers",
        "degenerate",
        "agent patterns",
        "impostor.voice",
    ):
        assert part in named, part
    pg.click(f"{cell} details.parts summary")


def test_the_lowest_scoring_reply_is_one_click_away(page):
    pg, *_ = page
    pg.click("#lowest-0 a.jump")
    assert pg.is_visible("#p-ev-en-0 td.cell[data-model='curated'] details.parts tr.named")
    assert "target" in pg.get_attribute("#p-ev-en-0", "class")


def test_a_screenshot_is_saved(page):
    pg, _, _, _, d = page
    shot = browser.screenshot(pg, d / "report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
