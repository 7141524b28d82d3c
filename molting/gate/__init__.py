"""The persona acceptance gate (a pytest plugin: molting.gate.plugin), and its command line."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

BLESSED = "blessed_baseline.json"  # the candidate's stored per-sample scores (--update-baseline)
DEFAULT_ADAPTER = "output/phase5-curated"  # the seed's output path


def gate_argv(
    persona: str | Path,
    adapter: str | Path,
    baselines: Iterable[str] = (),
    report_dir: str | Path | None = None,
) -> list[str]:
    """`pytest --pyargs molting.gate …` as a user runs it, on this interpreter (for a subprocess):
    `baselines` are `--baseline` values, "base" or "NAME=ADAPTER_DIR"."""
    argv = [sys.executable, "-m", "pytest", "--pyargs", "molting.gate", "-q", "-p"]
    argv += ["no:cacheprovider", "--persona", str(persona), "--adapter", str(adapter)]
    for baseline in baselines:
        argv += ["--baseline", baseline]
    return argv + (["--report-dir", str(report_dir)] if report_dir is not None else [])
