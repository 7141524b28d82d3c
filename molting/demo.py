"""`make demo`: the seed's Phase 3 vs Phase 5 experiment, end to end, offline, on a persona
bundle given on the command line (the Makefile passes the shipped example):

    python -m molting.demo --persona path/to/bundle     # the Makefile passes its PERSONA

0. calibrate the persona's metric if its anchors are missing or stale
1. curate the persona's raw dataset → curated set + reports/CURATION_REPORT.md
2. train two adapters with the same budget: Phase 3 on the raw set, Phase 5 on the curated set
   (configs/cpu.yaml on CPU; the seed's 4-bit configs/phase3.yaml + phase5.yaml on CUDA)
3. run the gate as a user would: `pytest --pyargs molting.gate --persona DIR` with Phase 5 as
   candidate, `base` and Phase 3 as baselines
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

from molting.curate.run import curate_file
from molting.io import sha256_file
from molting.train.config import load_config, to_dict, with_overrides

REPORTS = Path("reports")
OUTPUTS = {"phase3": (Path("output/phase3"), "configs/phase3.yaml"),
           "phase5": (Path("output/phase5-curated"), "configs/phase5.yaml")}
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


def train_phase(name: str, dataset: Path, out: Path, config_path: str) -> dict:
    """Train (or reuse) one phase; return its line for DEMO.md."""
    from molting.train.trainer import train

    cfg = with_overrides(load_config(config_path), dataset=str(dataset), output_dir=str(out))
    if _reusable(out, to_dict(cfg), dataset):
        print(f"      {name}: unchanged config and data, reusing {out}")
        manifest = json.loads((out / "run.json").read_text(encoding="utf-8"))
        return _phase_row(name, dataset, out, config_path, manifest, reused=True)
    t0 = time.perf_counter()
    manifest = train(cfg, out, overwrite=True).manifest
    print(f"      {name}: trained in {time.perf_counter() - t0:.0f} s → {out}")
    return _phase_row(name, dataset, out, config_path, manifest, reused=False)


def _phase_row(name: str, dataset: Path, out: Path, config: str, m: dict, reused: bool) -> dict:
    return {"phase": name, "dataset": str(dataset), "config": config, "adapter": str(out), "steps": m.get("steps"),
            "tokens": m.get("tokens_seen"), "wall_seconds": m.get("wall_seconds"), "reused": reused,
            "quantization": (m.get("quantization") or {}).get("used"), "device": m.get("device")}


def run_gate(persona: Path) -> int:
    cmd = [sys.executable, "-m", "pytest", "--pyargs", "molting.gate", "-q", "-p", "no:cacheprovider",
           "--persona", str(persona), "--adapter", str(OUTPUTS["phase5"][0]), "--baseline", "base",
           "--baseline", f"phase3={OUTPUTS['phase3'][0]}", "--report-dir", str(REPORTS)]
    print("      pytest " + " ".join(cmd[3:]))
    return subprocess.call(cmd)


def ensure_calibrated(persona_dir: Path) -> None:
    """Calibrate the persona's metric when its anchors are missing or no longer fit the bundle."""
    from molting.errors import ModelError
    from molting.gate.criteria import load_criteria
    from molting.metrics.calibration import calibrate
    from molting.metrics.scorer import load_anchors
    from molting.persona import load_persona

    persona = load_persona(persona_dir)
    try:
        load_anchors(persona)
        print(f"      {persona.anchors_path}: anchors fit the bundle")
    except ModelError as err:
        print(f"      {err}; calibrating now")
        calibrate(persona, load_criteria(persona.criteria_path).personality_min)


def write_demo_report(started: str, minutes: float, phases: list[dict], rc: int, cuda: bool) -> Path:
    """reports/DEMO.md: when, where and how long the demo ran, each phase, and the gate's verdict table."""
    import os
    import platform

    from tabulate import tabulate

    from molting.io import write_text_atomic

    rows = [[p["phase"], f"`{p['dataset']}`", f"`{p['config']}`", p["steps"], p["tokens"],
             f"{p['wall_seconds']:.0f} s" if isinstance(p["wall_seconds"], (int, float)) else "–",
             p["quantization"], p["device"], "reused" if p["reused"] else "trained"] for p in phases]
    text = "\n".join([
        "# make demo", "",
        f"Run {started} on {platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"{'CUDA' if cuda else 'no GPU'}, Python {platform.python_version()}: **{minutes:.1f} min** wall time "
        f"(not counting `.venv` set-up), gate exit status {rc}." + _reuse_note(phases), "",
        tabulate(rows, headers=["Phase", "Dataset", "Config", "Steps", "Tokens", "Load + train", "Quantization",
                                "Device", ""], tablefmt="github"), "",
        "## Gate verdict (from reports/comparison.md)", "", verdict_table(), "",
        "_Generated by `make demo` (molting/demo.py); do not edit by hand._", "",
    ])
    return write_text_atomic(REPORTS / "DEMO.md", text)


def _reuse_note(phases: list[dict]) -> str:
    """Say so when adapters were reused: the wall time then leaves their training out."""
    reused = [p for p in phases if p["reused"]]
    if not reused:
        return ""
    took = " + ".join(f"{p['wall_seconds']:.0f} s" for p in reused if isinstance(p["wall_seconds"], (int, float)))
    return (f" {len(reused)} of {len(phases)} adapters were reused from an earlier run with the same config and data"
            + (f" (training them took {took})" if took else "") + "; a fresh run trains them.")


README = Path("README.md")
README_BEGIN, README_END = "<!-- demo:begin -->", "<!-- demo:end -->"


def update_readme(demo_md: Path, readme: Path = README) -> bool:
    """Copy DEMO.md (less its title) between the README's demo markers, so the README shows the
    latest run's numbers without hand-editing. Returns False when the README has no markers."""
    from molting.io import write_text_atomic

    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    if README_BEGIN not in text or README_END not in text:
        return False
    body = demo_md.read_text(encoding="utf-8").split("\n", 2)[2].strip().replace("\n## ", "\n### ")
    head, rest = text.split(README_BEGIN, 1)
    tail = rest.split(README_END, 1)[1]
    write_text_atomic(readme, f"{head}{README_BEGIN}\n{body}\n{README_END}{tail}")
    return True


def verdict_table() -> str:
    text = (REPORTS / "comparison.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(text) if line.startswith("## Success criteria"))
    end = next(i for i in range(start + 1, len(text)) if text[i].startswith("## "))
    return "\n".join([text[2], "", *text[start + 2:end]]).strip()


def main(argv: list[str] | None = None) -> int:
    import argparse

    from molting.persona import load_persona, slug

    parser = argparse.ArgumentParser(prog="python -m molting.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--persona", required=True, type=Path, help="persona bundle directory")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cuda = _cuda()
    persona = load_persona(args.persona)
    print(f"[0/3] persona {persona.name} ({args.persona})")
    ensure_calibrated(args.persona)
    raw, curated = persona.dataset, Path("data") / f"{slug(persona.name)}_curated{persona.dataset.suffix}"
    print(f"[1/3] curate {raw}")
    s = curate_file(raw, curated, report=REPORTS / "CURATION_REPORT.md").stats
    print(f"      {s['total']} → {s['kept']} kept ({s['change_pct']:+.1f}%), report: {REPORTS / 'CURATION_REPORT.md'}")
    print(f"[2/3] train Phase 3 (raw) and Phase 5 (curated) — {'CUDA, the seed 4-bit configs' if cuda else 'CPU, ' + CPU_PROFILE}")
    if not cuda:
        print("      !!! no CUDA GPU: LoRA on full-precision weights with the CPU profile (recorded in run.json)")
    phases = [train_phase(name, dataset, OUTPUTS[name][0], OUTPUTS[name][1] if cuda else CPU_PROFILE)
              for name, dataset in (("phase3", raw), ("phase5", curated))]
    print("[3/3] gate: candidate phase5, baselines base + phase3")
    rc = run_gate(args.persona)
    print(f"\nreports: {REPORTS / 'comparison.md'}, {REPORTS / 'results.json'}, {REPORTS / 'comparison.png'}, "
          f"{REPORTS / 'CURATION_REPORT.md'}")
    minutes = (time.perf_counter() - t0) / 60
    if (REPORTS / "comparison.md").is_file():
        print(verdict_table())
        demo_md = write_demo_report(started, minutes, phases, rc, cuda)
        print(f"wrote {demo_md}" + (f" and its copy in {README}" if update_readme(demo_md) else ""))
    print(f"\ndemo finished in {minutes:.1f} min (gate exit status {rc})")
    return rc


if __name__ == "__main__":
    sys.exit(main())
