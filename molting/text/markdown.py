"""Markdown helpers shared by the reports."""

from __future__ import annotations


def cell(text: str, limit: int = 90) -> str:
    """Make free text safe for a Markdown table cell: tabulate escapes neither `|` nor newlines."""
    flat = " ".join(str(text).split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return flat.replace("|", "\\|")
