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

from benchreport import machine, update_section  # noqa: E402

RAW = ROOT / "fixtures" / "claudio" / "dataset_sharegpt.json"
CARD = ROOT / "fixtures" / "claudio" / "persona.yaml"
RESULTS = ROOT / "reports" / "results.json"
TARGET_SECONDS = 300  # ≤ 5 min for ~500 conversations on a 2-core CPU
TARGET_SPEARMAN = 0.8
TARGET_AUC = 0.95


def agreement(hand, built, prompts, replies) -> tuple[int, float, str]:
    """(n, Spearman rho of the two scorers' personality scores, the common value when both are
    constant)."""
    from scipy.stats import spearmanr

    a = [s.personality for s in hand.score(prompts, replies)]
    b = [s.personality for s in built.score(prompts, replies)]
    if (
        len(set(a)) == 1 or len(set(b)) == 1
    ):  # a rank correlation is undefined: say how often they agree
        agree = sum(abs(x - y) < 0.5 for x, y in zip(a, b))
        return (
            len(replies),
            float("nan"),
            (
                f"the hand-built scorer gives every reply {a[0]:g}"
                if len(set(a)) == 1
                else f"the init-built scorer gives every reply {b[0]:g}"
            )
            + f"; the two agree within 0.5 on {agree} of {len(a)}",
        )
    rho = float(spearmanr(a, b).statistic)
    print(f"Spearman {rho:.3f} over {len(replies)} replies", flush=True)
    return len(replies), rho, ""


def main() -> None:
    from molting.gate.criteria import load_criteria
    from molting.gate.records import load_results
    from molting.metrics import Scorer
    from molting.persona import load_persona
    from molting.persona_init import InitOptions, init_bundle

    if not RESULTS.is_file():
        sys.exit(
            f"{RESULTS} not found: run `make demo` first "
            "(its replies are what the two scorers compare)"
        )
    import os

    with tempfile.TemporaryDirectory() as tmp:
        # a cold start: no cached generations, embeddings or fitted scorers (the converted base
        # model is reused: converting the GGUF is once per machine, not per persona)
        cache = Path(tmp) / "cache"
        cache.mkdir()
        models = (
            Path(os.environ.get("MOLTING_CACHE", Path.home() / ".cache" / "molting")) / "models"
        )
        if models.is_dir():
            (cache / "models").symlink_to(models)
        os.environ["MOLTING_CACHE"] = str(cache)
        os.environ.pop("MOLTING_GENERATIONS", None)
        started = time.perf_counter()
        result = init_bundle(Path(tmp) / "bundle", InitOptions(dataset=RAW, card=CARD))
        seconds = time.perf_counter() - started
        built = Scorer.load(load_persona(result.bundle))
        hand_persona = load_persona(ROOT / "fixtures" / "claudio")
        hand = Scorer.load(hand_persona)
        run = load_results(RESULTS, load_criteria())
        rows = []
        for lang in ("en", "pt"):
            idx = [i for i, p in enumerate(run.prompts) if p.lang == lang]
            prompts = [run.prompts[i] for i in idx] * len(run.models)
            replies = [run.replies(m)[i] for m in run.models for i in idx]
            rows.append((lang, *agreement(hand, built, prompts, replies)))
        # the same comparison on varied replies: references, generic, agent, validation sets
        wider = []
        from molting.metrics.calibration import load_validation

        val, _ = load_validation(hand_persona)
        for lang in ("en", "pt"):
            ps = [p for p in hand_persona.eval_prompts() if p.lang == lang]
            items = [(p, p.reference) for p in ps] + [
                (p, p.negatives["generic"]) for p in ps if p.negatives.get("generic")
            ]
            items += [(p, p.negatives["agent_like"]) for p in ps if p.negatives.get("agent_like")]
            items += [(r["prompt"], r["reply"]) for r in val if r["prompt"].lang == lang]
            wider.append(
                (lang, *agreement(hand, built, [p for p, _ in items], [r for _, r in items]))
            )
    auc = result.validity["auc_vs_generic"]

    def fmt(n, rho, same):
        return f"**{rho:.3f}** ({n} replies)" if rho == rho else f"undefined ({n} replies: {same})"

    lines = [
        f"`python bench/bench_persona_init.py` — {time.strftime('%Y-%m-%d')}, {machine()}. "
        f"`molting persona init` on the raw Cláudio dataset "
        f"({result.counts['curated'] + result.counts['rejected']} "
        f"conversations) and the card alone, base model `smollm2-135m` on CPU "
        f"(generic negatives = its greedy replies).",
        "",
        f"- Wall time: **{seconds:.0f} s** (target ≤ {TARGET_SECONDS} s: "
        f"{'meets' if seconds <= TARGET_SECONDS else 'MISSES'}); "
        f"curated {result.counts['curated']}, train {result.counts['train']}, "
        f"calibration {result.counts['calibration']}, "
        f"eval {result.counts['eval']}.",
        "- Held-out AUC vs generic replies: "
        + ", ".join(f"{lg} {v:.3f}" for lg, v in auc.items())
        + f" (target ≥ {TARGET_AUC}: "
        f"{'meets' if all(v >= TARGET_AUC for v in auc.values()) else 'MISSES'}).",
        "- Agreement with the hand-built bundle's scorer on the demo's replies "
        "(base, phase3, phase5; "
        "personality, Spearman per language): "
        + ", ".join(f"{lg} {fmt(n, rho, same)}" for lg, n, rho, same in rows)
        + f" (target ≥ {TARGET_SPEARMAN}).",
        "- The same on varied replies to the hand-built bundle's eval prompts "
        "(references, generic and agent negatives, "
        "the new-author validation replies): "
        + ", ".join(f"{lg} {fmt(n, rho, same)}" for lg, n, rho, same in wider)
        + ".",
    ]
    update_section("Persona init", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
