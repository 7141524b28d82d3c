"""report.html: one self-contained page per gate run (inline CSS, JS and SVG; nothing fetched),
rendered by Jinja2 with autoescaping from the same view as comparison.md (molting.gate.view).

The page shows the verdict, the lowest-scoring candidate reply and why, the criteria as charts on
fixed scales (target line, 95% whiskers), the criteria table, and a prompt × model matrix with
every full reply, each cell coloured by its score and expandable to the score's parts; filters by
language, category, gate and "candidate worse than baseline", sorting by Δ. Every text from a
model or a user is escaped: a reply holding `<script>` or Markdown is shown as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from molting.gate.records import EvalResults
from molting.gate.view import LANG_NAMES, ReportView, Series, build_view, colours

# SVG panel geometry (px): the plot area sits inside these margins
PANEL_W, PANEL_H = 222, 170
LEFT, RIGHT, TOP, BOTTOM = 34, 8, 22, 36


@dataclass(frozen=True)
class SvgBar:
    model: str
    colour: str
    x: float
    y: float
    w: float
    h: float
    label: str
    whisker: tuple[float, float] | None  # (y of the high end, y of the low end)


@dataclass(frozen=True)
class SvgPanel:
    title: str
    ticks: list[tuple[float, str]]  # (y, label)
    target_y: float
    target_label: str
    bars: list[SvgBar]


def _y(value: float, scale: float) -> float:
    inner = PANEL_H - TOP - BOTTOM
    return TOP + inner * (1 - max(0.0, min(value, scale)) / scale)


def svg_panel(s: Series, colour: dict[str, str]) -> SvgPanel:
    """A chart panel's geometry: a fixed axis from 0 to the scale, bars, whiskers and the target."""
    inner_w = PANEL_W - LEFT - RIGHT
    slot = inner_w / max(1, len(s.bars))
    bars = []
    for i, b in enumerate(s.bars):
        v = b.value or 0.0
        top = _y(v, s.scale)
        label = "–" if b.value is None else (f"{b.value:.1f}%" if s.unit else f"{b.value:.2f}")
        whisker = (
            (_y(b.high, s.scale), _y(b.low, s.scale))
            if b.low is not None and b.high is not None
            else None
        )
        bars.append(
            SvgBar(
                b.model,
                colour[b.model],
                LEFT + i * slot + slot * 0.18,
                top,
                slot * 0.64,
                _y(0, s.scale) - top,
                label,
                whisker,
            )
        )
    ticks = [(_y(s.scale * k / 4, s.scale), f"{s.scale * k / 4:g}") for k in range(5)]
    return SvgPanel(
        s.title, ticks, _y(s.target, s.scale), f"target {s.better} {s.target:g}{s.unit}", bars
    )


def cell_colour(score: float) -> str:
    """0 → red, 10 → green, light enough to read the reply on it."""
    hue = 120 * max(0.0, min(score, 10.0)) / 10
    return f"hsl({hue:.0f}, 70%, 88%)"


@lru_cache(maxsize=1)
def _environment() -> Any:
    env = Environment(
        loader=PackageLoader("molting.gate", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cell_colour"] = cell_colour
    return env


def render_html(results: EvalResults, view: ReportView | None = None) -> str:
    v = view or build_view(results)
    colour = colours(v.models, v.candidates)
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            v=v,
            colour=colour,
            panels=[svg_panel(s, colour) for s in v.series],
            lang_names=LANG_NAMES,
            W=PANEL_W,
            H=PANEL_H,
            LEFT=LEFT,
            RIGHT=RIGHT,
            pairs=[(c, b) for c in v.candidates for b in v.baselines],
            row_gates=lambda r: sorted({g for c in v.candidates for g in r.cells[c].gates}),
        )
    )
