"""The gate's engine, free of pytest: generate for every model, score, compare, serialise.

`pytest evals/` (evals/conftest.py) drives it; `molting report` re-scores stored generations
from results.json without loading a model. Data flows one way:
prompts → generations per model → ReplyScores per model → comparisons → EvalResults → reports.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from molting.gate.criteria import Criteria
from molting.errors import EvalError
from molting.gate.generate import BASE, Generation, GenerationConfig
from molting.metrics.stats import Interval, McNemar, mcnemar_regression, paired_bootstrap

DEFAULT_PROMPTS = Path(__file__).resolve().parents[2] / "fixtures" / "claudio" / "eval_prompts.jsonl"
CANDIDATE = "candidate"
RESULTS_VERSION = 1


class Generator(Protocol):
    def names(self) -> list[str]: ...

    def generate(self, name: str, prompts: list[dict[str, Any]], config: GenerationConfig, cache: Any = None) -> list[Generation]: ...


def load_prompts(path: str | Path | None = None) -> list[dict[str, Any]]:
    path = Path(path) if path else DEFAULT_PROMPTS
    if not path.is_file():
        raise EvalError(f"{path}: prompt file not found; pass --prompts PATH (JSONL with id, lang, prompt, reference).")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise EvalError(f"{path}: line {n}: invalid JSON ({err.msg}).") from None
        missing = [k for k in ("id", "lang", "prompt") if k not in row]
        if missing:
            raise EvalError(f"{path}: line {n}: missing key(s) {', '.join(missing)}.")
        rows.append({k: row[k] for k in ("id", "lang", "prompt", "reference", "category", "system") if k in row})
    if not rows:
        raise EvalError(f"{path}: no prompts; an empty eval set never passes.")
    return rows


def prompts_hash(prompts: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(prompts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


@dataclass
class Comparison:
    baseline: str
    personality: Interval  # candidate − baseline, paired bootstrap
    agent: McNemar
    fluency: Interval | None = None  # PT prompts only


@dataclass
class EvalResults:
    prompts: list[dict[str, Any]]
    models: list[str]  # baselines first, candidate last
    generations: dict[str, list[dict[str, Any]]]  # model → [{prompt_id, reply, new_tokens, cached}]
    scores: dict[str, list[Any]] = field(default_factory=dict)  # model → [ReplyScores]
    comparisons: list[Comparison] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    criteria: Criteria = field(default_factory=Criteria)
    judge: dict[str, list[float]] = field(default_factory=dict)  # model → optional LLM-judge scores (0–10)

    def replies(self, model: str) -> list[str]:
        return [g["reply"] for g in self.generations[model]]

    def baselines(self) -> list[str]:
        return [m for m in self.models if m != CANDIDATE]


def generate_all(gen: Generator, models: list[str], prompts: list[dict[str, Any]], config: GenerationConfig,
                 cache: Any = None) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    out, t0 = {}, time.perf_counter()
    for name in models:
        out[name] = [asdict(g) for g in gen.generate(name, prompts, config, cache)]
    tokens = sum(g["new_tokens"] for gs in out.values() for g in gs)
    hits = sum(g["cached"] for gs in out.values() for g in gs)
    facts = {"generation_seconds": round(time.perf_counter() - t0, 2), "tokens_generated": tokens,
             "cache_hits": hits, "cache_misses": sum(len(v) for v in out.values()) - hits}
    return out, facts


def score_all(results: EvalResults, scorer: Any) -> None:
    """Fill `results.scores` and `results.comparisons` from the stored generations."""
    results.scores = {m: scorer.score(results.prompts, results.replies(m)) for m in results.models}
    cand = results.scores[CANDIDATE]
    results.comparisons = []
    for base in results.baselines():
        other = results.scores[base]
        pt = [i for i, p in enumerate(results.prompts) if p["lang"] == "pt"]
        fluency = None
        if pt:
            fluency = paired_bootstrap([cand[i].fluency or 0.0 for i in pt], [other[i].fluency or 0.0 for i in pt],
                                       confidence=results.criteria.comparison_confidence)
        results.comparisons.append(Comparison(
            baseline=base,
            personality=paired_bootstrap([s.personality for s in cand], [s.personality for s in other],
                                         confidence=results.criteria.comparison_confidence),
            agent=mcnemar_regression([s.agent_like for s in cand], [s.agent_like for s in other]),
            fluency=fluency,
        ))


def judge_all(results: EvalResults, judge: Any) -> None:
    """Optional LLM-judge scores for every model: informational, never asserted (a judge alone is not proof)."""
    results.judge = {m: [round(j.score, 4) for j in judge.score_many(results.prompts, results.replies(m))]
                     for m in results.models}


def canary_identical(results: EvalResults) -> list[str]:
    """Adapters whose every reply equals the base's: almost surely not applied."""
    if BASE not in results.generations:
        return []
    base = results.replies(BASE)
    return [m for m in results.models if m != BASE and results.replies(m) == base]


def run_facts(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    from molting.train.outputs import library_versions

    return {"python": platform.python_version(), "platform": platform.platform(), "libraries": library_versions(),
            **(extra or {})}


# ------------------------------------------------------------------ (de)serialisation


def results_to_json(results: EvalResults) -> dict[str, Any]:
    per_sample = []
    for i, p in enumerate(results.prompts):
        row = {"prompt": p, "models": {}}
        for m in results.models:
            g = results.generations[m][i]
            row["models"][m] = {"reply": g["reply"], "new_tokens": g["new_tokens"], "cached": g["cached"]}
            if results.scores:
                s = results.scores[m][i]
                row["models"][m]["scores"] = {k: v for k, v in asdict(s).items() if k not in ("id", "lang")}
            if results.judge:
                row["models"][m]["judge"] = results.judge[m][i]
        per_sample.append(row)
    return {
        "results_version": RESULTS_VERSION,
        "models": results.models,
        "criteria": results.criteria.as_dict(),
        "facts": results.facts,
        "prompts_hash": prompts_hash(results.prompts),
        "comparisons": [asdict(c) for c in results.comparisons],
        "samples": per_sample,
    }


def results_from_json(data: dict[str, Any], criteria: Criteria) -> EvalResults:
    """Rebuild stored generations (not scores: `molting report` re-scores them)."""
    if data.get("results_version") != RESULTS_VERSION:
        raise EvalError(f"results.json has version {data.get('results_version')}, expected {RESULTS_VERSION}; re-run pytest evals/.")
    models = data["models"]
    prompts = [s["prompt"] for s in data["samples"]]
    gens = {m: [{"model": m, "prompt_id": s["prompt"]["id"], **{k: s["models"][m][k] for k in ("reply", "new_tokens", "cached")}}
                for s in data["samples"]] for m in models}
    return EvalResults(prompts=prompts, models=models, generations=gens, facts=data.get("facts", {}), criteria=criteria)


def rescore_file(results_path: str | Path, report_dir: str | Path | None = None,
                 criteria_path: str | Path | None = None) -> tuple[list[Path], str]:
    """`molting report`: re-score results.json's generations with the current scorer; no model is loaded."""
    from molting.gate.criteria import load_criteria
    from molting.metrics import SCORER_VERSION, Scorer
    from molting.gate.report import checks, verdict, write_reports

    path = Path(results_path)
    if not path.is_file():
        raise EvalError(f"{path}: no stored generations; run `pytest evals/` first.")
    results = results_from_json(json.loads(path.read_text(encoding="utf-8")), load_criteria(criteria_path))
    score_all(results, Scorer.load())
    results.facts["scorer_version"] = SCORER_VERSION
    results.facts["rescored_by"] = "molting report"
    written = write_reports(results, Path(report_dir) if report_dir else path.parent)
    return written, verdict(checks(results))
