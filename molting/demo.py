"""`make demo`: the seed's Phase 3 vs Phase 5 experiment, end to end, offline, on a persona
bundle given on the command line (the Makefile passes the shipped example):

    python -m molting.demo --persona path/to/bundle     # the Makefile passes its PERSONA

0. calibrate the persona's metric if its anchors are missing or stale
1. curate the persona's raw dataset (the bundle's raw_dataset.json when `persona init` kept one,
   else its dataset) → curated set + reports/CURATION_REPORT.md
2. train two adapters with the same budget: Phase 3 on the raw set, Phase 5 on the curated set
   (configs/cpu.yaml on CPU; the seed's 4-bit configs/phase3.yaml + phase5.yaml on CUDA). When
   curation removes nothing, the two would be one model trained twice: Phase 5 alone is trained,
   and the demo says so instead of comparing a model with itself
3. run the gate as a user would: `pytest --pyargs molting.gate --persona DIR` with Phase 5 as
   candidate, `base` (and Phase 3) as baselines
4. print where the reports are, the verdict table, and the total time; write reports/DEMO.md

A run whose config and dataset are unchanged is reused, so a second `make demo` only re-runs
the gate (whose generations are cached too). Exits with the gate's status: a candidate that
misses the criteria is reported as such, never as a success. Writes only under reports/,
data/ and output/: never the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from tabulate import tabulate

from molting.curate.run import curate_file
from molting.errors import ConfigError, ModelError
from molting.gate import gate_argv
from molting.gate.criteria import load_criteria
from molting.io import read_json, sha256_file, write_text_atomic
from molting.metrics.calibration import calibrate
from molting.metrics.scorer import load_anchors
from molting.persona import load_persona, slug
from molting.persona_init import INIT_FILE
from molting.train.config import load_config, to_dict, with_overrides

REPORTS = Path("reports")
OUTPUTS = {
    "phase3": (Path("output/phase3"), "configs/phase3.yaml"),
    "phase5": (Path("output/phase5-curated"), "configs/phase5.yaml"),
}
CPU_PROFILE = "configs/cpu.yaml"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _reusable(out: Path, cfg_dict: dict, dataset: Path) -> bool:
    run = out / "run.json"
    if not run.is_file() or not (out / "adapter_model.safetensors").is_file():
        return False
    done = json.loads(run.read_text(encoding="utf-8"))
    return done.get("config") == cfg_dict and done.get("dataset", {}).get("sha256") == sha256_file(
        dataset
    )


def train_phase(name: str, dataset: Path, out: Path, config_path: str) -> dict:
    """Train (or reuse) one phase; return its line for DEMO.md."""
    from molting.train.trainer import train  # lazy: imports torch

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
    return {
        "phase": name,
        "dataset": str(dataset),
        "config": config,
        "adapter": str(out),
        "steps": m.get("steps"),
        "tokens": m.get("tokens_seen"),
        "wall_seconds": m.get("wall_seconds"),
        "reused": reused,
        "quantization": (m.get("quantization") or {}).get("used"),
        "device": m.get("device"),
    }


def run_gate(persona: Path, baselines: list[str]) -> int:
    cmd = gate_argv(
        persona,
        OUTPUTS["phase5"][0],
        [b if b == "base" else f"{b}={OUTPUTS[b][0]}" for b in baselines],
        REPORTS,
    )
    print("      pytest " + " ".join(cmd[3:]))
    return subprocess.call(cmd)


def raw_dataset(persona) -> Path:
    """What Phase 3 trains on and Phase 5 curates: the raw set `persona init` kept (checked
    against the sha256 it recorded in init.json), else the bundle's dataset."""
    raw = persona.raw_dataset
    if raw is None:
        return persona.dataset
    init = persona.root / INIT_FILE
    want = ((read_json(init, "init file") if init.is_file() else {}).get("raw_dataset") or {}).get(
        "sha256"
    )
    if want and want != sha256_file(raw):
        raise ConfigError(
            f"{raw}: changed since `molting persona init` wrote it (sha256 differs from {init}); "
            "re-run persona init, or delete it to curate the bundle's dataset instead."
        )
    return raw


def plan_phases(raw: Path, curated: Path, stats: dict) -> tuple[list[tuple[str, Path]], str | None]:
    """(phase, dataset) to train, and why Phase 3 is left out when it is: a curation that removed
    nothing leaves two identical training sets, and a model compared with itself shows Δ 0."""
    if stats["removed"] == 0:
        return [("phase5", curated)], same_data_note(raw, stats)
    return [("phase3", raw), ("phase5", curated)], None


def same_data_note(raw: Path, stats: dict) -> str:
    return (
        f"curation removed nothing from {raw} ({stats['total']} → {stats['kept']}): Phase 3 (raw) "
        "and Phase 5 (curated) would be one model trained twice on the same data, which is no "
        "comparison. Only Phase 5 is trained and gated against the base model. A bundle built by "
        "`molting persona init` keeps its raw set (raw_dataset.json) for Phase 3; for a hand-built "
        "bundle, set files.raw_dataset in persona.yaml."
    )


def ensure_calibrated(persona_dir: Path) -> None:
    """Calibrate the persona's metric when its anchors are missing or no longer fit the bundle."""
    persona = load_persona(persona_dir)
    try:
        load_anchors(persona)
        print(f"      {persona.anchors_path}: anchors fit the bundle")
    except ModelError as err:
        print(f"      {err}; calibrating now")
        calibrate(persona, load_criteria(persona.criteria_path).personality_min)


def write_demo_report(
    started: str, minutes: float, phases: list[dict], rc: int, cuda: bool, note: str | None = None
) -> Path:
    """reports/DEMO.md: when, where and how long the demo ran, each phase, and the gate's verdict
    table."""
    rows = [
        [
            p["phase"],
            f"`{p['dataset']}`",
            f"`{p['config']}`",
            p["steps"],
            p["tokens"],
            f"{p['wall_seconds']:.0f} s" if isinstance(p["wall_seconds"], (int, float)) else "–",
            p["quantization"],
            p["device"],
            "reused" if p["reused"] else "trained",
        ]
        for p in phases
    ]
    text = "\n".join(
        [
            "# make demo",
            "",
            f"Run {started} on {platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
            f"{'CUDA' if cuda else 'no GPU'}, Python {platform.python_version()}: **{minutes:.1f} "
            "min** wall time "
            f"(not counting `.venv` set-up), gate exit status {rc}." + _reuse_note(phases),
            "",
            tabulate(
                rows,
                headers=[
                    "Phase",
                    "Dataset",
                    "Config",
                    "Steps",
                    "Tokens",
                    "Load + train",
                    "Quantization",
                    "Device",
                    "",
                ],
                tablefmt="github",
            ),
            "",
            *([f"**No raw-vs-curated comparison**: {note}", ""] if note else []),
            "## Gate verdict (from reports/comparison.md)",
            "",
            verdict_table(),
            "",
            "Every reply in full, each score's parts and filters: `reports/report.html` (open it "
            "in a browser); the lowest-scoring candidate reply and why it scored so are named at "
            "its top and in comparison.md.",
            "",
            "_Generated by `make demo` (molting/demo.py); do not edit by hand._",
            "",
        ]
    )
    return write_text_atomic(REPORTS / "DEMO.md", text)


def _reuse_note(phases: list[dict]) -> str:
    """Say so when adapters were reused: the wall time then leaves their training out."""
    reused = [p for p in phases if p["reused"]]
    if not reused:
        return ""
    took = " + ".join(
        f"{p['wall_seconds']:.0f} s" for p in reused if isinstance(p["wall_seconds"], (int, float))
    )
    return (
        f" {len(reused)} of {len(phases)} adapters were reused from an earlier run with the same "
        "config and data"
        + (f" (training them took {took})" if took else "")
        + "; a fresh run trains them."
    )


def verdict_table() -> str:
    """The verdict line, the warning beside it when there is one (the voice not told apart from
    other voices), and the criteria table."""
    text = (REPORTS / "comparison.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(text) if line.startswith("## Success criteria"))
    end = next(i for i in range(start + 1, len(text)) if text[i].startswith("## "))
    warning = [line for line in text[3:start] if line.startswith("**Voice not told apart")]
    return "\n".join([text[2], "", *(warning and [warning[0], ""]), *text[start + 2 : end]]).strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m molting.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--persona", required=True, type=Path, help="persona bundle directory")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cuda = _cuda()
    persona = load_persona(args.persona)
    print(f"[0/3] persona {persona.name} ({args.persona})")
    ensure_calibrated(args.persona)
    raw = raw_dataset(persona)
    curated = Path("data") / f"{slug(persona.name)}_curated{raw.suffix}"
    print(f"[1/3] curate {raw}")
    s = curate_file(raw, curated, report=REPORTS / "CURATION_REPORT.md").stats
    print(
        f"      {s['total']} → {s['kept']} kept ({s['change_pct']:+.1f}%), report: "
        f"{REPORTS / 'CURATION_REPORT.md'}"
    )
    plan, note = plan_phases(raw, curated, s)
    what = "Phase 5 (curated)" if note else "Phase 3 (raw) and Phase 5 (curated)"
    print(
        f"[2/3] train {what} — {'CUDA, the seed 4-bit configs' if cuda else 'CPU, ' + CPU_PROFILE}"
    )
    if note:
        print(f"      !!! {note}")
    if not cuda:
        print(
            "      !!! no CUDA GPU: LoRA on full-precision weights with the CPU profile (recorded "
            "in run.json)"
        )
    phases = [
        train_phase(name, dataset, OUTPUTS[name][0], OUTPUTS[name][1] if cuda else CPU_PROFILE)
        for name, dataset in plan
    ]
    baselines = ["base"] + [name for name, _ in plan if name != "phase5"]
    print(f"[3/3] gate: candidate phase5, baselines {' + '.join(baselines)}")
    rc = run_gate(args.persona, baselines)
    print(
        f"\nreports: {REPORTS / 'report.html'} (open in a browser), {REPORTS / 'comparison.md'}, "
        f"{REPORTS / 'results.json'}, {REPORTS / 'comparison.png'}, "
        f"{REPORTS / 'CURATION_REPORT.md'}"
    )
    minutes = (time.perf_counter() - t0) / 60
    if (REPORTS / "comparison.md").is_file():
        print(verdict_table())
        print(f"wrote {write_demo_report(started, minutes, phases, rc, cuda, note)}")
    print(f"\ndemo finished in {minutes:.1f} min (gate exit status {rc})")
    return rc


if __name__ == "__main__":
    sys.exit(main())
