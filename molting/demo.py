"""`make demo`: the seed's experiment end to end on the offline default.

Stages that exist run for real; stages not built yet are named as such, never faked.
"""

from __future__ import annotations

import sys
import time

from molting.curate import curate_file

RAW = "fixtures/claudio/dataset_sharegpt.json"
CURATED = "data/dataset_sharegpt_curated.json"
REPORT = "reports/CURATION_REPORT.md"


def main() -> int:
    t0 = time.perf_counter()
    print(f"[1/1] curate {RAW}")
    result = curate_file(RAW, CURATED, report=REPORT)
    s = result.stats
    print(f"      {s['total']} → {s['kept']} kept ({s['change_pct']:+.1f}%), report: {result.report}")
    print("note: training and the evaluation gate are not part of the demo yet (see the open issues).")
    print(f"demo finished in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
