"""Curation throughput and memory on 100,000 synthetic conversations (not a test).

Builds a JSONL file by cycling the Cláudio fixture with unique suffixes (so duplicate detection
does real work), then curates it in a fresh subprocess per size and records conversations/s and
peak RSS. Flat memory = the peak barely moves from 10k to 100k. Writes the "Curation" section of
reports/BENCHMARKS.md.

    python bench/bench_curate.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchreport import machine, update_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "fixtures/claudio/dataset_sharegpt.json"
TARGET = 10_000  # conversations/s, the target on this machine

CHILD = r"""
import json, resource, sys, time
from molting.curate.filter import curate_file
t = time.perf_counter()
r = curate_file(sys.argv[1], sys.argv[2], report=sys.argv[3])
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "total": r.stats["total"], "kept": r.stats["kept"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_input(path: Path, n: int) -> None:
    base = json.loads(RAW.read_text(encoding="utf-8"))
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            rec = json.loads(json.dumps(base[i % len(base)]))
            rec["id"] = f"syn-{i:06d}"
            rec["conversations"][0]["value"] += f" (#{i // len(base)})"
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def run(n: int, tmp: Path) -> dict:
    src = tmp / f"syn{n}.jsonl"
    make_input(src, n)
    out = subprocess.run([sys.executable, "-c", CHILD, str(src), str(tmp / f"out{n}.jsonl"), str(tmp / f"R{n}.md")],
                         check=True, capture_output=True, text=True)
    res = json.loads(out.stdout)
    res["n"], res["mb"] = n, src.stat().st_size / 1e6
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        results = [run(n, Path(d)) for n in args.sizes]
    rows = [[f"{r['n']:,}", f"{r['mb']:.0f} MB", f"{r['seconds']:.1f} s", f"{r['n'] / r['seconds']:,.0f}",
             f"{r['peak_rss_mb']:.0f} MB", f"{r['kept']:,}"] for r in results]
    table = tabulate(rows, headers=["Conversations", "Input", "Time", "Conversations/s", "Peak RSS", "Kept"], tablefmt="github")
    best = results[-1]["n"] / results[-1]["seconds"]
    body = (f"`python bench/bench_curate.py` — {date.today().isoformat()}, {machine()}. Synthetic JSONL built by "
            f"cycling the fixture (unique suffixes), curated in a fresh process each.\n\n{table}\n\n"
            f"Target ≥ {TARGET:,} conversations/s: **{'met' if best >= TARGET else 'not met'}** ({best:,.0f}/s at "
            f"{results[-1]['n']:,}). Memory: peak RSS {results[0]['peak_rss_mb']:.0f} MB at {results[0]['n']:,} vs "
            f"{results[-1]['peak_rss_mb']:.0f} MB at {results[-1]['n']:,} (streaming; only a 16-byte digest per kept example grows).")
    update_section("Curation", body)
    print(table)
    print(body.splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
