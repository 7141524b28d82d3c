"""Brazilian vs European Portuguese: how well the variety factor (and the PT fluency score) tells
a persona's Brazilian replies from their European rewrites, file by file.

Per file: AUC (Mann–Whitney, ties half) of the variety factor of the Brazilian replies
(categories in_voice_one / in_voice_none) against the European ones (european_pt); how many
Brazilian replies the factor penalises at all (< 1) and how many it gates as European (< 0.75,
the scorer's european_pt gate); with --fluency, the same AUC for the fluency score (the scorer's
lexicon, class-bigram LM and committed anchors; no sentence encoder needed).

Development files (the markers were designed looking at them) and held-out files (validation
authors 2 and 3, never looked at while designing) are reported apart.

    PYTHONPATH=$PWD HF_HUB_OFFLINE=1 python bench/bench_variety.py [--fluency] [--no-dictionaries]

`--no-dictionaries` scores with the regex markers alone (the Hunspell evidence switched off), to
show what the dictionaries add. To measure another checkout's code on these files, put that
checkout first on PYTHONPATH; the numbers before the dictionaries (commit 329b0f7):

    git worktree add /tmp/wt-before 329b0f7
    PYTHONPATH=/tmp/wt-before HF_HUB_OFFLINE=1 python bench/bench_variety.py --fluency

Measured 2026-12-07 (2-core shared box), variety AUC before → after, held out:
claudio/new_author2 0.900 → 0.914, new_author3 0.886 → 0.928, helena/new_author2 0.793 → 0.833,
helena/new_author3 0.833 → 0.867 (target 0.95); first Portuguese reply 10–13 s (dictionary load).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BRAZILIAN = ("in_voice_one", "in_voice_none")
EUROPEAN = "european_pt"
GATE = 0.75  # scorer.py: a reply whose variety factor is below this is gated as european_pt

DEV = {
    "metric_dev/claudio": (
        "tests/data/metric_dev/claudio_calibration_prompts.jsonl",
        "fixtures/claudio",
    ),
    "metric_dev/helena": (
        "tests/data/metric_dev/helena_calibration_prompts.jsonl",
        "tests/data/helena",
    ),
    "claudio/new_author": ("fixtures/claudio/validation/new_author_pt.jsonl", "fixtures/claudio"),
}
HELD_OUT = {
    "claudio/new_author2": ("fixtures/claudio/validation/new_author2_pt.jsonl", "fixtures/claudio"),
    "claudio/new_author3": ("fixtures/claudio/validation/new_author3_pt.jsonl", "fixtures/claudio"),
    "helena/new_author2": (
        "tests/data/helena/validation/new_author2_pt.jsonl",
        "tests/data/helena",
    ),
    "helena/new_author3": (
        "tests/data/helena/validation/new_author3_pt.jsonl",
        "tests/data/helena",
    ),
}


def auc(pos: list[float], neg: list[float]) -> float:
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def rows_of(path: str) -> list[dict]:
    with open(ROOT / path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [
        r
        for r in rows
        if r.get("lang", "pt") == "pt" and (r["category"] in BRAZILIAN or r["category"] == EUROPEAN)
    ]


class FluencyScorer:
    """The bundle's fluency score of a reply to one of its prompts (one scorer per bundle)."""

    def __init__(self):
        self._by_bundle: dict[str, tuple] = {}

    def __call__(self, bundle: str, prompt_id: str, reply: str) -> float:
        from molting.metrics.fluency import combine_fluency, fluency_raw

        if bundle not in self._by_bundle:
            from molting.metrics import Scorer
            from molting.persona import load_persona

            persona = load_persona(ROOT / bundle)
            scorer = Scorer.load(persona)
            prompts = {p.id: p for p in persona.eval_prompts() + persona.calibration_prompts()}
            self._by_bundle[bundle] = (scorer, prompts)
        scorer, prompts = self._by_bundle[bundle]
        p = prompts[prompt_id]
        share = scorer.lang_id.share(
            reply, "pt", scorer.persona.languages
        )  # as Scorer.raw measures it
        raw = fluency_raw(
            reply, scorer.lang_id, scorer.lexicon, scorer.lm, prompt=p.prompt, in_language=share
        )
        return combine_fluency(raw, scorer.anchors.fluency_anchors()).score


def measure(
    files: dict[str, tuple[str, str]], fluency: FluencyScorer | None, dictionaries: bool
) -> list[dict]:
    from molting.metrics import fluency as F

    kw = {} if dictionaries else {"dictionaries": False}
    out = []
    for name, (path, bundle) in files.items():
        rows = rows_of(path)
        fac = [F.variety_markers(r["reply"], **kw).factor for r in rows]
        br = [f for f, r in zip(fac, rows) if r["category"] in BRAZILIAN]
        eu = [f for f, r in zip(fac, rows) if r["category"] == EUROPEAN]
        row = {
            "file": name,
            "n_br": len(br),
            "n_eu": len(eu),
            "variety_auc": auc(br, eu),
            "br_penalised": sum(f < 1 for f in br),
            "br_gated": sum(f < GATE for f in br),
            "eu_unmarked": sum(f >= 1 for f in eu),
        }
        if fluency is not None:
            flu = [fluency(bundle, r["prompt_id"], r["reply"]) for r in rows]
            row["fluency_auc"] = auc(
                [s for s, r in zip(flu, rows) if r["category"] in BRAZILIAN],
                [s for s, r in zip(flu, rows) if r["category"] == EUROPEAN],
            )
        out.append(row)
    return out


def table(rows: list[dict]) -> str:
    head = [
        "file",
        "BR/EU replies",
        "variety AUC",
        "BR factor < 1",
        "BR gated (< 0.75)",
        "EU unmarked",
    ]
    if rows and "fluency_auc" in rows[0]:
        head.append("fluency AUC")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["file"],
            f"{r['n_br']}/{r['n_eu']}",
            f"{r['variety_auc']:.3f}",
            f"{r['br_penalised']}/{r['n_br']}",
            f"{r['br_gated']}/{r['n_br']}",
            f"{r['eu_unmarked']}/{r['n_eu']}",
        ]
        if "fluency_auc" in r:
            cells.append(f"{r['fluency_auc']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--fluency",
        action="store_true",
        help="also the fluency score's AUC (fits or loads the scorers)",
    )
    ap.add_argument(
        "--no-dictionaries", action="store_true", help="regex markers only (no Hunspell evidence)"
    )
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    import molting.metrics.fluency as F

    print(f"molting.metrics.fluency from {F.__file__}")
    t = time.perf_counter()
    F.variety_markers("O ônibus chegou.")  # loads the dictionaries, where this code has them
    print(
        f"first Portuguese reply scored in {time.perf_counter() - t:.2f} s "
        "(dictionary load, if any)"
    )
    flu = FluencyScorer() if args.fluency else None
    result = {}
    for title, files in (("development", DEV), ("held-out", HELD_OUT)):
        t = time.perf_counter()
        result[title] = measure(files, flu, dictionaries=not args.no_dictionaries)
        print(f"\n{title} ({time.perf_counter() - t:.1f} s)\n\n{table(result[title])}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
