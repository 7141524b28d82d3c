"""Gate generation: batched vs one prompt at a time, and the cached re-run of the whole gate.

1. Loads the offline default base with the demo's candidate adapter (output/phase5-curated,
   made by `make demo`) and generates greedy replies to the same eval prompts twice, cache off:
   in batches of the gate's batch size, then one prompt at a time. Reports new tokens/s.
2. Runs the gate as the demo does (`pytest --pyargs molting.gate --persona fixtures/claudio`),
   twice, with a fresh generation cache and a fresh scorer store: the first run generates
   everything and fits the metric; the second regenerates nothing, loads no model and reuses the
   stored metric — its wall time is the cached re-run time.

Writes the "Gate generation" section of reports/BENCHMARKS.md.

    python bench/bench_generate.py                 # ~10 minutes on 2 CPU cores after `make demo`
    python bench/bench_generate.py --prompts 8 --max-new-tokens 32 --batch-size 8
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchreport import machine, update_section  # noqa: E402

from molting.gate import gate_argv  # noqa: E402

CANDIDATE = ROOT / "output" / "phase5-curated"
PHASE3 = ROOT / "output" / "phase3"
TARGET_SPEEDUP = 3.0  # the gate issue's bar: batched ≥ 3× unbatched
TARGET_CACHED_S = 10.0  # … and a cached re-run of the whole gate in under 10 s


PERSONA = ROOT / "fixtures" / "claudio"


def throughput(prompts: int, max_new_tokens: int, batch_size: int) -> list[dict]:
    from molting.gate.generate import GenerationConfig, LoadedModels
    from molting.gate.specs import parse_model
    from molting.persona import load_persona

    rows = load_persona(PERSONA).eval_prompts()
    rows = [r for r in rows if r.lang == "en"][: prompts // 2] + [
        r for r in rows if r.lang == "pt"
    ][: prompts // 2]
    models = LoadedModels(
        "smollm2-135m", {"candidate": parse_model("candidate", str(CANDIDATE))}, quantization="none"
    )
    out = []
    for label, bs in (("batched", batch_size), ("one at a time", 1)):
        cfg = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=bs)
        started = time.perf_counter()
        gens = models.generate("candidate", rows, cfg)
        seconds = time.perf_counter() - started
        tokens = sum(n for _, n in gens)
        out.append(
            {
                "mode": label,
                "batch": bs,
                "prompts": len(rows),
                "tokens": tokens,
                "seconds": seconds,
                "tokens_per_s": tokens / seconds,
            }
        )
        print(
            f"{label}: {tokens} tokens in {seconds:.1f} s = {tokens / seconds:.1f} tokens/s",
            flush=True,
        )
    return out


def gate_run(report_dir: Path, cache_dir: Path) -> float:
    cmd = gate_argv(PERSONA, CANDIDATE, ["base", f"phase3={PHASE3}"], report_dir)
    import os

    models = Path(os.environ.get("MOLTING_CACHE", Path.home() / ".cache" / "molting")) / "models"
    cache_dir.mkdir(parents=True, exist_ok=True)
    if not (cache_dir / "models").exists() and models.is_dir():
        (cache_dir / "models").symlink_to(
            models
        )  # the converted base model, not a cache of results
    env = {**os.environ, "MOLTING_CACHE": str(cache_dir)}
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if not (report_dir / "results.json").is_file():
        sys.exit(f"the gate wrote no results.json in {report_dir}")
    return seconds


def cached_rerun() -> tuple[float, float, dict]:
    import json

    with tempfile.TemporaryDirectory() as tmp:
        reports, cache = Path(tmp) / "reports", Path(tmp) / "cache"
        first = gate_run(reports, cache)
        second = gate_run(reports, cache)
        facts = json.loads((reports / "results.json").read_text(encoding="utf-8"))["facts"]
    print(
        f"gate: first run {first:.1f} s, cached re-run {second:.1f} s "
        f"({facts.get('cache_hits')} hits, {facts.get('cache_misses')} misses)",
        flush=True,
    )
    return first, second, facts


def section(rows: list[dict], max_new_tokens: int, first: float, second: float, facts: dict) -> str:
    batched, single = rows
    speedup = batched["tokens_per_s"] / single["tokens_per_s"]
    lines = [
        f"`python bench/bench_generate.py` — {time.strftime('%Y-%m-%d')}, {machine()}. "
        f"SmolLM2-135M fp32 with the "
        f"demo's Phase 5 adapter attached (PEFT, unmerged), greedy, "
        f"up to {max_new_tokens} new tokens, "
        f"{batched['prompts']} eval prompts (half EN, half PT-BR), generation cache off.",
        "",
        "| mode | batch | new tokens | seconds | new tokens/s |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {r['mode']} | {r['batch']} | {r['tokens']} | {r['seconds']:.1f} "
            f"| {r['tokens_per_s']:.1f} |"
            for r in rows
        ],
        "",
        f"**Batched: {speedup:.2f}×** one prompt at a time (target ≥ {TARGET_SPEEDUP:.0f}×: "
        f"{'meets' if speedup >= TARGET_SPEEDUP else 'MISSES'}).",
        "",
        f"Whole gate as `make demo` runs it "
        f"(`pytest --pyargs molting.gate --persona fixtures/claudio`, "
        f"candidate + base + phase3, fresh generation cache and scorer store, "
        f"{facts.get('cache_hits', 0) + facts.get('cache_misses', 0)} generations): "
        f"first run {first:.1f} s, "
        f"**cached re-run {second:.1f} s** ({facts.get('cache_hits')} cache hits, "
        f"{facts.get('cache_misses')} "
        f"misses; target < {TARGET_CACHED_S:.0f} s: "
        f"{'meets' if second < TARGET_CACHED_S else 'MISSES'}). "
        f"The cached re-run loaded {', '.join(facts.get('models_loaded', ['?']))}; "
        f"it reuses the stored metric "
        "(no refit) and the cached embeddings, and writes the reports.",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="default: the gate's (GenerationConfig.batch_size)",
    )
    a = p.parse_args()
    missing = [d for d in (CANDIDATE, PHASE3) if not (d / "adapter_config.json").is_file()]
    if missing:
        sys.exit(f"no adapter at {', '.join(map(str, missing))}: run `make demo` first.")
    from molting.gate.generate import GenerationConfig

    rows = throughput(a.prompts, a.max_new_tokens, a.batch_size or GenerationConfig.batch_size)
    first, second, facts = cached_rerun()
    path = update_section("Gate generation", section(rows, a.max_new_tokens, first, second, facts))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
