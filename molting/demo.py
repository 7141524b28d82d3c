"""`make demo`: the seed's Phase 3 vs Phase 5 experiment, end to end, offline.

1. curate the raw fixture → curated set + reports/CURATION_REPORT.md
2. train two adapters with the same budget: Phase 3 on the raw set, Phase 5 on the curated set
   (configs/cpu.yaml on CPU; the seed's 4-bit configs/phase3.yaml + phase5.yaml on CUDA)
3. run the gate: `pytest evals/` with Phase 5 as candidate, `base` and Phase 3 as baselines
4. print where the reports are, the verdict table, and the total time

A run whose config and dataset are unchanged is reused, so a second `make demo` only re-runs
the gate (whose generations are cached too). Exits with the gate's status: a candidate that
misses the criteria is reported as such, never as a success.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from molting.config import load_config, to_dict, with_overrides
from molting.curate import curate_file
from molting.models import sha256_file

RAW = Path("fixtures/claudio/dataset_sharegpt.json")
CURATED = Path("data/dataset_sharegpt_curated.json")
REPORTS = Path("reports")
PHASES = (("phase3", RAW, Path("output/phase3"), "configs/phase3.yaml"),
          ("phase5", CURATED, Path("output/phase5-curated"), "configs/phase5.yaml"))
CPU_PROFILE = "configs/cpu.yaml"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _reusable(out: Path, cfg_dict: dict, dataset: Path) -> bool:
    run = out / "run.json"
    if not run.is_file() or not (out / "adapter_model.safetensors").is_file():
        return False
    done = json.loads(run.read_text(encoding="utf-8"))
    return done.get("config") == cfg_dict and done.get("dataset", {}).get("sha256") == sha256_file(dataset)


def train_phase(name: str, dataset: Path, out: Path, config_path: str) -> None:
    from molting.train import train

    cfg = with_overrides(load_config(config_path), dataset=str(dataset), output_dir=str(out))
    if _reusable(out, to_dict(cfg), dataset):
        print(f"      {name}: unchanged config and data, reusing {out}")
        return
    t0 = time.perf_counter()
    result = train(cfg, out, overwrite=True)
    print(f"      {name}: trained in {time.perf_counter() - t0:.0f} s → {getattr(result, 'output_dir', out)}")


def run_gate() -> int:
    cmd = [sys.executable, "-m", "pytest", "evals/", "-q", "-p", "no:cacheprovider", "--adapter", str(PHASES[1][2]),
           "--baseline", "base", "--baseline", f"phase3={PHASES[0][2]}", "--report-dir", str(REPORTS)]
    print("      " + " ".join(cmd[2:]))
    return subprocess.call(cmd)


def verdict_table() -> str:
    text = (REPORTS / "comparison.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(text) if line.startswith("## Success criteria"))
    end = next(i for i in range(start + 1, len(text)) if text[i].startswith("## "))
    return "\n".join([text[2], "", *text[start + 2:end]]).strip()


def main() -> int:
    t0 = time.perf_counter()
    cuda = _cuda()
    print(f"[1/3] curate {RAW}")
    s = curate_file(RAW, CURATED, report=REPORTS / "CURATION_REPORT.md").stats
    print(f"      {s['total']} → {s['kept']} kept ({s['change_pct']:+.1f}%), report: {REPORTS / 'CURATION_REPORT.md'}")
    print(f"[2/3] train Phase 3 (raw) and Phase 5 (curated) — {'CUDA, the seed 4-bit configs' if cuda else 'CPU, ' + CPU_PROFILE}")
    if not cuda:
        print("      !!! no CUDA GPU: LoRA on full-precision weights with the CPU profile (recorded in run.json)")
    for name, dataset, out, gpu_config in PHASES:
        train_phase(name, dataset, out, gpu_config if cuda else CPU_PROFILE)
    print("[3/3] gate: pytest evals/ (candidate phase5, baselines base + phase3)")
    rc = run_gate()
    print(f"\nreports: {REPORTS / 'comparison.md'}, {REPORTS / 'results.json'}, {REPORTS / 'comparison.png'}, "
          f"{REPORTS / 'CURATION_REPORT.md'}")
    if (REPORTS / "comparison.md").is_file():
        print(verdict_table())
    print(f"\ndemo finished in {(time.perf_counter() - t0) / 60:.1f} min (gate exit status {rc})")
    return rc


if __name__ == "__main__":
    sys.exit(main())
