"""The gate's records: what was generated, how it scored, how models compare — and their JSON
form (results.json), which `molting report` reads back and checks before trusting it.

results.json stores a sha256 of every model's replies; a file whose replies were edited is
refused (a hand-edited reply must not flip a verdict).
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from molting.errors import EvalError
from molting.gate.criteria import Check, Criteria, comparison_checks, model_checks
from molting.io import read_json
from molting.metrics.stats import Interval, McNemar
from molting.persona import Persona, Prompt, prompt_from_dict

CANDIDATE = "candidate"
BASE = "base"  # the base model with no adapter
RESULTS_VERSION = 2


@dataclass(frozen=True)
class Generation:
    model: str
    prompt_id: str
    reply: str
    new_tokens: int
    cached: bool


@dataclass
class Comparison:
    baseline: str
    personality: Interval  # candidate − baseline, paired bootstrap
    agent: McNemar
    fluency: Interval | None = None  # PT prompts only
    candidate: str = CANDIDATE  # `molting report` with several candidates compares each


@dataclass
class EvalResults:
    prompts: list[Prompt]
    models: list[str]  # baselines first, candidate last
    generations: dict[str, list[Generation]]
    criteria: Criteria
    languages: tuple[str, ...]  # the persona's languages
    scores: dict[str, list[Any]] = field(default_factory=dict)  # model → [ReplyScores]
    comparisons: list[Comparison] = field(default_factory=list)
    controls: dict[str, list[Any]] = field(default_factory=dict)  # control set → [ReplyScores]
    facts: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, list[float]] = field(
        default_factory=dict
    )  # model → optional LLM-judge scores (0–10)
    # model → per prompt, the question whose persona answer the reply is closest to, other than its
    # own
    nearest: dict[str, list[str | None]] = field(default_factory=dict)
    candidates: tuple[str, ...] = (CANDIDATE,)  # several with `molting report --results NAME=… …`

    def replies(self, model: str) -> list[str]:
        return [g.reply for g in self.generations[model]]

    def baselines(self) -> list[str]:
        return [m for m in self.models if m not in self.candidates]

    def prompt_langs(self) -> tuple[str, ...]:
        return tuple(lg for lg in self.languages if any(p.lang == lg for p in self.prompts))

    def checks(self, model: str = CANDIDATE) -> list[Check]:
        """Every criterion: the model's absolute ones, then (a candidate's) comparisons with each
        baseline."""
        out = model_checks(self.criteria, self.scores[model], self.prompt_langs())
        return out + comparison_checks(
            self.criteria, [c for c in self.comparisons if c.candidate == model]
        )


def prompts_hash(prompts: list[Prompt]) -> str:
    return hashlib.sha256(
        json.dumps([p.as_dict() for p in prompts], sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()[:16]


def replies_hash(replies: list[str]) -> str:
    return hashlib.sha256(json.dumps(replies, ensure_ascii=False).encode()).hexdigest()


# ------------------------------------------------------------------ (de)serialisation


def results_to_json(results: EvalResults) -> dict[str, Any]:
    samples = []
    for i, p in enumerate(results.prompts):
        row: dict[str, Any] = {"prompt": p.as_dict(), "models": {}}
        for m in results.models:
            g = results.generations[m][i]
            row["models"][m] = {"reply": g.reply, "new_tokens": g.new_tokens, "cached": g.cached}
            if results.scores:
                s = results.scores[m][i]
                row["models"][m]["scores"] = {
                    k: v for k, v in asdict(s).items() if k not in ("id", "lang")
                }
            if results.judge:
                row["models"][m]["judge"] = results.judge[m][i]
            if results.nearest.get(m):
                row["models"][m]["nearest_question"] = results.nearest[m][i]
        samples.append(row)
    return {
        "results_version": RESULTS_VERSION,
        "models": results.models,
        "languages": list(results.languages),
        "criteria": results.criteria.as_dict(),
        "facts": results.facts,
        "prompts_hash": prompts_hash(results.prompts),
        "replies_sha256": {m: replies_hash(results.replies(m)) for m in results.models},
        "comparisons": [asdict(c) for c in results.comparisons],
        "controls": {k: [round(s.personality, 4) for s in v] for k, v in results.controls.items()},
        "samples": samples,
    }


def load_results(path: str | Path, criteria: Criteria) -> EvalResults:
    """Read results.json back (generations only: `molting report` re-scores them), checking its
    structure and that no reply was changed since the gate wrote it."""
    path = Path(path)
    if not path.is_file():
        raise EvalError(f"{path}: no stored results; run the gate first (pytest --persona DIR …).")
    data = read_json(path, "results file", EvalError)
    where = str(path)
    _need(isinstance(data, dict), where, "expected a JSON object written by the gate")
    _need(
        data.get("results_version") == RESULTS_VERSION,
        where,
        f"results version {data.get('results_version')!r}, expected {RESULTS_VERSION}; re-run the "
        "gate",
    )
    models, samples = data.get("models"), data.get("samples")
    _need(
        isinstance(models, list)
        and models
        and all(isinstance(m, str) for m in models)
        and CANDIDATE in models,
        where,
        f"'models' must list the model names, including '{CANDIDATE}'",
    )
    _need(isinstance(samples, list) and samples, where, "'samples' must be a non-empty list")
    languages = tuple(data.get("languages") or ())
    _need(bool(languages), where, "'languages' is missing")
    prompts, gens = [], {m: [] for m in models}
    for i, s in enumerate(samples):
        at = f"{where}: samples[{i}]"
        _need(
            isinstance(s, dict)
            and isinstance(s.get("prompt"), dict)
            and isinstance(s.get("models"), dict),
            at,
            "needs 'prompt' and 'models' objects",
        )
        try:
            prompts.append(prompt_from_dict(s["prompt"], at, languages))
        except Exception as err:  # ConfigError from the prompt check, reported as a results problem
            raise EvalError(str(err)) from None
        for m in models:
            g = s["models"].get(m)
            _need(
                isinstance(g, dict) and isinstance(g.get("reply"), str),
                at,
                f"model '{m}' has no reply text",
            )
            n, cached = g.get("new_tokens", 0), g.get("cached", False)
            _need(
                type(n) is int and n >= 0,
                at,
                f"model '{m}': 'new_tokens' must be a count (a whole number ≥ 0), "
                f"got {n!r}; re-run the gate instead of editing results.json",
            )
            _need(
                type(cached) is bool,
                at,
                f"model '{m}': 'cached' must be true or false, got {cached!r}",
            )
            gens[m].append(Generation(m, prompts[-1].id, g["reply"], n, cached))
    stored = data.get("replies_sha256") or {}
    for m in models:
        if stored.get(m) != replies_hash([g.reply for g in gens[m]]):
            raise EvalError(
                f"{where}: the replies of '{m}' changed since the gate wrote this file (sha256 "
                "mismatch); re-run the gate instead of editing results.json."
            )
    _need(
        "prompts_hash" in data,
        where,
        "records no prompts_hash (written by an older molting); re-run the gate",
    )
    _need(
        data["prompts_hash"] == prompts_hash(prompts),
        where,
        "the prompts or references changed since the gate "
        "wrote this file (prompts_hash mismatch); re-run the gate instead of editing results.json",
    )
    return EvalResults(
        prompts=prompts,
        models=models,
        generations=gens,
        criteria=criteria,
        languages=languages,
        facts=data.get("facts") if isinstance(data.get("facts"), dict) else {},
    )


def persona_fingerprints(persona: Persona) -> dict[str, str]:
    """What makes a bundle this persona's (card, data, prompts, negatives): stored with every gate
    run."""
    return {k: v for k, v in persona.fingerprints().items() if k != "patterns_version"}


def check_persona(results: EvalResults, persona: Persona, where: str | Path) -> None:
    """Refuse to re-score a gate run with another persona's metric (or with this one's after its
    bundle changed): the verdict would belong to neither."""
    stored = results.facts.get("persona_fingerprints")
    if not isinstance(stored, dict):
        # an older molting stored no fingerprint: the run's prompts and references must then be
        # this bundle's eval set itself, or the file belongs to another persona or bundle
        if prompts_hash(results.prompts) == prompts_hash(persona.eval_prompts()):
            print(
                f"molting: {where} records no persona fingerprint (written by an older molting); "
                f"its prompts and references are {persona.root}'s eval set, so it is re-scored "
                "with that bundle's metric.",
                file=sys.stderr,
            )
            return
        raise EvalError(
            f"{where}: records no persona fingerprint (written by an older molting) and its "
            f"prompts are not {persona.root}'s eval set; re-run the gate."
        )
    now = persona_fingerprints(persona)
    changed = sorted(k for k in set(stored) | set(now) if stored.get(k) != now.get(k))
    if changed:
        raise EvalError(
            f"{where}: written by a gate run on persona {results.facts.get('persona')!r}, and the "
            f"bundle {persona.root} ({persona.name}) differs from that one in "
            f"{', '.join(changed)}; pass the bundle the gate ran with, or re-run the gate."
        )


def _need(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise EvalError(f"{where}: {what}.")
