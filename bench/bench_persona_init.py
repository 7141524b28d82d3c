"""`molting persona init` on a raw dataset alone: how long it takes, and whether its metric agrees
with the hand-built bundle's.

1. Builds a bundle from fixtures/claudio/dataset_sharegpt.json (484 raw conversations) and the
   card alone — no hand-written prompts or negatives — with the offline default base model
   (its greedy replies are the generic negatives), timing the whole command.
2. Scores the replies of the demo's three models (reports/results.json, written by `make demo`:
   base, phase3, phase5) with both scorers — the hand-built example bundle's and the init-built
   one's — and reports Spearman's rank correlation per language, and the init bundle's held-out
   AUC vs generic replies.

Writes the "Persona init" section of reports/BENCHMARKS.md.

    python bench/bench_persona_init.py            # ~4 minutes on 2 CPU cores (after `make demo`)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from benchreport import machine, update_section

RAW = ROOT / "fixtures" / "claudio" / "dataset_sharegpt.json"
CARD = ROOT / "fixtures" / "claudio" / "persona.yaml"
RESULTS = ROOT / "reports" / "results.json"
TARGET_SECONDS = 300  # ≤ 5 min for ~500 conversations on a 2-core CPU
TARGET_SPEARMAN = 0.8
TARGET_AUC = 0.95


def main() -> None:
    from scipy.stats import spearmanr

    from molting.gate.criteria import load_criteria
    from molting.gate.records import load_results
    from molting.metrics import Scorer
    from molting.persona import load_persona
    from molting.persona_init import InitOptions, init_bundle

    if not RESULTS.is_file():
        sys.exit(f"{RESULTS} not found: run `make demo` first (its replies are what the two scorers compare)")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = init_bundle(Path(tmp) / "bundle", InitOptions(dataset=RAW, card=CARD))
        seconds = time.perf_counter() - started
        built = Scorer.load(load_persona(result.bundle))
        hand = Scorer.load(load_persona(ROOT / "fixtures" / "claudio"))
        run = load_results(RESULTS, load_criteria())
        rows = []
        for lang in ("en", "pt"):
            idx = [i for i, p in enumerate(run.prompts) if p.lang == lang]
            prompts = [run.prompts[i] for i in idx] * len(run.models)
            replies = [run.replies(m)[i] for m in run.models for i in idx]
            a = [s.personality for s in hand.score(prompts, replies)]
            b = [s.personality for s in built.score(prompts, replies)]
            rho = spearmanr(a, b).statistic
            rows.append((lang, len(replies), rho))
            print(f"{lang}: Spearman {rho:.3f} over {len(replies)} replies", flush=True)
    auc = result.validity["auc_vs_generic"]
    lines = [
        f"`python bench/bench_persona_init.py` — {time.strftime('%Y-%m-%d')}, {machine()}. "
        f"`molting persona init` on the raw Cláudio dataset ({result.counts['curated'] + result.counts['rejected']} "
        f"conversations) and the card alone, base model `smollm2-135m` on CPU (generic negatives = its greedy replies).",
        "",
        f"- Wall time: **{seconds:.0f} s** (target ≤ {TARGET_SECONDS} s: {'meets' if seconds <= TARGET_SECONDS else 'MISSES'}); "
        f"curated {result.counts['curated']}, train {result.counts['train']}, calibration {result.counts['calibration']}, "
        f"eval {result.counts['eval']}.",
        "- Held-out AUC vs generic replies: " + ", ".join(f"{lg} {v:.3f}" for lg, v in auc.items())
        + f" (target ≥ {TARGET_AUC}: {'meets' if all(v >= TARGET_AUC for v in auc.values()) else 'MISSES'}).",
        "- Agreement with the hand-built bundle's scorer on the demo's replies (base, phase3, phase5; "
        "personality, Spearman per language): " + ", ".join(f"{lg} **{rho:.3f}** ({n} replies)" for lg, n, rho in rows)
        + f" (target ≥ {TARGET_SPEARMAN}: {'meets' if all(r >= TARGET_SPEARMAN for _, _, r in rows) else 'MISSES'}).",
    ]
    update_section("Persona init", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
