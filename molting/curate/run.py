"""Curate a dataset file: the one entry point (`curate_file`), which checks every output before
reading a byte, runs the filter in this process or on worker processes (`molting.curate.parallel`,
same bytes either way), and writes the curated set, the rejected file, the report and the stats
all together or not at all."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from molting.curate import parallel
from molting.curate.filter import CurationStats, curate, rejected_record
from molting.curate.report import render_report
from molting.data import SHAREGPT, AtomicWriter, detect_container, iter_conversations, to_record
from molting.errors import DatasetError
from molting.io import OutputSet, sha256_file


@dataclass(frozen=True)
class CurationResult:
    output: Path
    rejected: Path
    report: Path
    stats_path: Path
    stats: dict[str, Any]


def default_report(output: Path) -> Path:
    """The report beside the curated set: data/curated.json → data/curated.report.md (stats:
    .report.json)."""
    return output.with_name(output.stem + ".report.md")


def curate_file(
    input_path: str | Path,
    output: str | Path,
    report: str | Path | None = None,
    rejected: str | Path | None = None,
    stats: str | Path | None = None,
    jobs: int | None = None,
) -> CurationResult:
    """Curate a dataset file; write curated set, rejected JSONL, report and stats — all or nothing.

    Every output is checked before reading a byte: none may be the input or another output (the
    default report goes beside OUTPUT, the default stats path is the report's with .json), a
    directory, or under a file. `jobs`: worker
    processes for a large JSON Lines input (default: the cores this process may use); the
    output is the same byte for byte whatever it is (see `molting.curate.parallel`)."""
    input_path, output = Path(input_path), Path(output)
    rejected = Path(rejected) if rejected else output.with_name(output.stem + ".rejected.jsonl")
    report = Path(report) if report else default_report(output)
    stats_path = Path(stats) if stats else report.with_suffix(".json")
    outs = OutputSet(inputs=[input_path])
    outs.claim_all(
        {
            "curated set (-o)": output,
            "rejected file (--rejected)": rejected,
            "report (--report)": report,
            "stats (--stats)": stats_path,
        }
    )
    container = detect_container(input_path) if input_path.is_file() else "json"
    jobs = parallel.default_jobs() if jobs is None else jobs
    with outs:
        counters = None
        if parallel.worth_it(input_path, container, jobs):
            try:
                with (
                    AtomicWriter(output, container, input_path) as kept_w,
                    AtomicWriter(rejected, "jsonl", input_path) as rej_w,
                ):
                    counters = parallel.curate_parallel(input_path, kept_w, rej_w, jobs)
                    if counters.total == 0:
                        raise parallel.Fallback()
                    outs.add_file(output, kept_w.finish(), "curated set")
                    outs.add_file(rejected, rej_w.finish(), "rejected file")
            except parallel.Fallback as fallback:
                counters = None  # a problem in the data: one process reports it exactly
                if fallback.why:
                    print(
                        f"molting curate: {fallback.why}; curating in one process instead (same "
                        "output).",
                        file=sys.stderr,
                    )
        if counters is None:
            counters = _curate_serial(input_path, output, rejected, container, outs)
        summary = counters.as_dict() | {
            "input": str(input_path),
            "input_sha256": sha256_file(input_path),
        }
        outs.add(report, render_report(summary, output=output, rejected=rejected), "report")
        outs.add(
            stats_path,
            json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
            "stats",
        )
    return CurationResult(output, rejected, report, stats_path, summary)


def _curate_serial(
    input_path: Path, output: Path, rejected: Path, container: str, outs: OutputSet
) -> CurationStats:
    """Curate in this process; the curated and rejected files are staged in `outs`."""
    problems: list[str] = []
    counters = CurationStats()
    schema = SHAREGPT
    with (
        AtomicWriter(output, container, input_path) as kept_w,
        AtomicWriter(rejected, "jsonl", input_path) as rej_w,
    ):
        for d in curate(iter_conversations(input_path, problems)):
            if problems:
                continue  # keep validating to report every problem; write nothing
            schema = "messages" if "messages" in d.conversation.raw else SHAREGPT
            counters.add(d)
            if d.kept:
                kept_w.write(to_record(d.conversation, schema))
            else:
                rej_w.write(rejected_record(d, schema))
        if problems:
            raise DatasetError(problems)
        if counters.total == 0:
            raise DatasetError([f"{input_path}: no conversations found; the dataset is empty."])
        outs.add_file(output, kept_w.finish(), "curated set")
        outs.add_file(rejected, rej_w.finish(), "rejected file")
        return counters
