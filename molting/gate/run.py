"""The gate's engine, free of pytest: check every input, generate for every model, score,
compare, run the controls.

`molting.gate.plugin` drives it inside pytest; `molting generate` and `molting report` use it
without pytest. Data flows one way:
GateInputs (checked) → generations per model → ReplyScores per model → comparisons → EvalResults.
"""

from __future__ import annotations

import platform
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from molting.errors import ConfigError, EvalError, ModelError
from molting.gate import DEFAULT_ADAPTER
from molting.gate.blessed import read_blessed
from molting.gate.criteria import Criteria, load_criteria, model_checks, verdict
from molting.gate.generate import CannedGenerator, GenerationCache, GenerationConfig, Generator
from molting.gate.records import (
    BASE,
    CANDIDATE,
    Comparison,
    EvalResults,
    check_persona,
    load_results,
    prompts_hash,
)
from molting.gate.report import write_reports
from molting.gate.specs import ModelSpec, check_adapters_fit, check_same_base, parse_model
from molting.metrics import SCORER_VERSION, Scorer, state
from molting.metrics import negatives as N
from molting.metrics.fitdata import is_calibration_row, packaged
from molting.metrics.impostors import impostor_rows
from molting.metrics.scorer import bundle_fingerprints
from molting.metrics.stats import mcnemar_regression, paired_bootstrap
from molting.models import library_versions
from molting.persona import Persona, Prompt, load_persona, load_prompts

CONTROL_SETS = ("reference", "generic", "agent", "impostor")
# facts key: the languages where calibration did not tell the persona's voice from voices the
# scorer never saw (Scorer.voice_not_told_apart); the reports say so next to the verdict
WEAK_VOICE = "voice_not_told_apart"
TRAIN_HINT = "train one with: molting train --config configs/phase5.yaml --output {path}"


@dataclass(frozen=True)
class GateOptions:
    """The gate's command-line options, as given (the plugin reads them from pytest)."""

    persona: str | None
    adapter: str = DEFAULT_ADAPTER
    baselines: tuple[str, ...] | None = None  # "base" or "NAME=MODEL"; None: base only
    base_model: str | None = None
    prompts: str | None = None
    criteria: str | None = None
    report_dir: str = "reports"
    max_new_tokens: int | None = None
    batch_size: int | None = None
    repetition_penalty: float | None = None
    replies: str | None = None
    use_cache: bool = True
    update_baseline: bool = False


@dataclass
class Prepared:
    inputs: GateInputs
    scorer: Any
    controls: dict[str, list]
    blessed: dict | None


def parse_baselines(values: tuple[str, ...] | list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values or ["base"]:
        if v == BASE:
            out[BASE] = BASE
            continue
        name, sep, path = v.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"--baseline {v!r}: expected NAME=MODEL or 'base'.")
        if name.strip() in out:
            raise ConfigError(f"--baseline: the name '{name.strip()}' is given twice.")
        out[name.strip()] = path.strip()
    return out


def prepare(opts: GateOptions) -> Prepared:
    """Check every input of a gate run and score the controls — before any model loads. Raises a
    MoltingError naming the problem and the fix."""
    if not opts.persona:
        raise ConfigError(
            "the molting gate needs --persona DIR (a persona bundle: see README, 'Persona bundle')."
        )
    load_persona(opts.persona, need_prompts=False)  # the bundle's own problems first
    if not opts.replies and opts.adapter == DEFAULT_ADAPTER and not Path(opts.adapter).exists():
        raise ModelError(
            f"no candidate at {opts.adapter}: {TRAIN_HINT.format(path=opts.adapter)}, or pass "
            "--adapter."
        )
    d = GenerationConfig()
    gcfg = GenerationConfig(
        max_new_tokens=d.max_new_tokens if opts.max_new_tokens is None else opts.max_new_tokens,
        batch_size=d.batch_size if opts.batch_size is None else opts.batch_size,
        repetition_penalty=d.repetition_penalty
        if opts.repetition_penalty is None
        else opts.repetition_penalty,
    )
    inputs = check_inputs(
        opts.persona,
        opts.adapter,
        parse_baselines(opts.baselines),
        base_model=opts.base_model,
        prompts=opts.prompts,
        criteria=opts.criteria,
        report_dir=opts.report_dir,
        generation=gcfg,
        replies=opts.replies,
        use_cache=opts.use_cache,
    )
    if inputs.replies:
        make_model_generator(inputs)  # checks the replies file now
    blessed = None if opts.update_baseline else read_blessed(inputs.report_dir, inputs.prompts)
    scorer = Scorer.load(inputs.persona)
    controls, problems = run_controls(scorer, inputs)
    if problems:
        raise EvalError(
            f"the controls do not separate for persona {inputs.persona.name}: "
            f"{'; '.join(problems)}. A gate that cannot tell the persona's own replies from "
            "generic ones must not judge a model; recalibrate (molting calibrate --persona "
            f"{inputs.persona.root}) or add data."
        )
    return Prepared(inputs, scorer, controls, blessed)


@dataclass
class GateInputs:
    """Everything the gate needs, checked before any model loads."""

    persona: Persona
    criteria: Criteria
    prompts: list[Prompt]
    specs: dict[str, ModelSpec]  # baselines first, candidate last
    base_model: str | None
    generation: GenerationConfig
    report_dir: Path
    replies: str | None = None
    use_cache: bool = True
    notes: list[str] = field(default_factory=list)
    prompts_source: str = ""

    @property
    def models(self) -> list[str]:
        return list(self.specs)


def check_inputs(
    persona_dir: str,
    candidate: str,
    baselines: dict[str, str],
    *,
    base_model: str | None = None,
    prompts: str | None = None,
    criteria: str | None = None,
    report_dir: str = "reports",
    generation: GenerationConfig | None = None,
    replies: str | None = None,
    use_cache: bool = True,
) -> GateInputs:
    """Validate every input of a gate run; raise ConfigError / ModelError / EvalError naming the
    problem."""
    persona = load_persona(persona_dir)
    crit = load_criteria(persona.criteria_path, criteria)
    prompt_list = load_prompts(prompts, persona.languages) if prompts else persona.eval_prompts()
    source = str(prompts or persona.files["eval"])
    generation = generation or GenerationConfig()
    if (
        generation.max_new_tokens < 1
        or generation.batch_size < 1
        or generation.repetition_penalty <= 0
    ):
        raise ConfigError(
            "--max-new-tokens and --batch-size must be ≥ 1 and --repetition-penalty > 0."
        )
    out = Path(report_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--report-dir {out}: is a file; choose a directory for the reports.")
    if CANDIDATE in baselines:
        raise ConfigError(
            f"--baseline: '{CANDIDATE}' is the candidate's name; give the baseline another name."
        )
    names = {**baselines, CANDIDATE: candidate}
    if replies:
        specs = {n: ModelSpec(n, "base" if v == BASE else "canned", v) for n, v in names.items()}
        return GateInputs(
            persona,
            crit,
            prompt_list,
            specs,
            None,
            generation,
            out,
            replies,
            use_cache,
            prompts_source=source,
        )
    specs = {n: parse_model(n, v) for n, v in names.items()}
    base = check_same_base(list(specs.values()), base_model)
    check_adapters_fit(list(specs.values()), base)
    notes = [f"{s.name}: {s.note}" for s in specs.values() if s.note]
    return GateInputs(
        persona, crit, prompt_list, specs, base, generation, out, None, use_cache, notes, source
    )


def make_model_generator(inputs: GateInputs) -> Any:
    if inputs.replies:
        return CannedGenerator(inputs.replies, inputs.models, inputs.prompts)
    cache = GenerationCache.default() if inputs.use_cache else None
    return Generator(inputs.specs, inputs.base_model, cache)


def generate_all(gen: Any, inputs: GateInputs) -> tuple[dict[str, list], dict[str, Any]]:
    out, t0 = {}, time.perf_counter()
    for name in inputs.models:
        out[name] = gen.generate(name, inputs.prompts, inputs.generation)
    hits = sum(g.cached for gs in out.values() for g in gs)
    facts = {
        "generation_seconds": round(time.perf_counter() - t0, 2),
        "tokens_generated": sum(g.new_tokens for gs in out.values() for g in gs if not g.cached),
        "cache_hits": hits,
        "cache_misses": sum(len(v) for v in out.values()) - hits,
    }
    return out, facts


def score_all(results: EvalResults, scorer: Any) -> None:
    """Fill `results.scores`, `results.nearest` and `results.comparisons` from the stored
    generations."""
    results.scores = {m: scorer.score(results.prompts, results.replies(m)) for m in results.models}
    results.nearest = {
        m: nearest_questions(scorer, results.prompts, results.replies(m)) for m in results.models
    }
    compare_all(results)


def compare_all(results: EvalResults) -> None:
    """Paired comparisons of each candidate with each baseline, from `results.scores`."""
    conf = results.criteria.comparison_confidence
    pt = [i for i, p in enumerate(results.prompts) if p.lang == "pt"]
    results.comparisons = []
    for name in results.candidates:
        cand = results.scores[name]
        for base in results.baselines():
            other = results.scores[base]
            fluency = None
            if pt:
                fluency = paired_bootstrap(
                    [cand[i].fluency or 0.0 for i in pt],
                    [other[i].fluency or 0.0 for i in pt],
                    confidence=conf,
                )
            results.comparisons.append(
                Comparison(
                    baseline=base,
                    personality=paired_bootstrap(
                        [s.personality for s in cand],
                        [s.personality for s in other],
                        confidence=conf,
                    ),
                    agent=mcnemar_regression(
                        [s.agent_like for s in cand], [s.agent_like for s in other]
                    ),
                    fluency=fluency,
                    candidate=name,
                )
            )


def nearest_questions(scorer: Any, prompts: list[Prompt], replies: list[str]) -> list[str | None]:
    """Per reply, the question whose persona answer it is closest to other than its own (the
    topicality margin's competitor): what a reader needs to see why a reply counts as off topic.
    Stored like the scorer's measurements, so a cached gate re-run loads no fitted part for it."""
    store = state.RawCache(
        state.state_key(bundle_fingerprints(scorer.persona), SCORER_VERSION) + "/nearest"
    )
    keys = [store.item_key(p.lang, p.prompt, p.reference, r) for p, r in zip(prompts, replies)]
    found = store.get_many(keys)
    todo = [i for i, k in enumerate(keys) if k not in found]
    if todo:
        enc = scorer.encoder
        rivals = scorer.topicality.rivals(
            [replies[i] for i in todo],
            [prompts[i].prompt for i in todo],
            [prompts[i].lang for i in todo],
            lambda a, b: enc.encode(a) @ enc.encode(b).T,
        )
        fresh = {keys[i]: {"question": r[1].prompt if r else None} for i, r in zip(todo, rivals)}
        store.put_many(fresh)
        found |= fresh
    return [found[k]["question"] for k in keys]


# ---------------------------------------------------------------- controls


def control_replies(persona: Persona, prompts: list[Prompt]) -> dict[str, list[str]]:
    """The eval set's own references (must pass) and its generic and agent negatives (must fail),
    one per eval prompt."""
    pool = list(packaged("generic"))
    return {
        "reference": [p.reference for p in prompts],
        "generic": [N.generic(p, pool) for p in prompts],
        "agent": [N.agent(p) for p in prompts],
    }


def impostor_controls(persona: Persona, prompts: list[Prompt]) -> tuple[list[Prompt], list[str]]:
    """One reply in another voice per eval prompt (must fail): chosen by hash among the other
    voices' replies in its language that the style model never trained on (fitdata's held-out
    rows), each with the prompt it answers. It is scored for voice alone (`Scorer.score_voice`):
    as a reply to the eval prompt it would be off topic, and the control would say nothing about
    voice."""
    rows = [r for r in impostor_rows(persona) if is_calibration_row(r["reply"])]
    out: list[tuple[Prompt, str]] = []
    for p in prompts:
        same = [r for r in rows if r["lang"] == p.lang]
        if not same:
            continue
        r = same[zlib.crc32(f"{p.id}/impostor".encode()) % len(same)]
        asked = Prompt(id=p.id, lang=p.lang, prompt=r.get("prompt") or p.prompt, reference="")
        out.append((asked, r["reply"]))
    return [p for p, _ in out], [x for _, x in out]


def score_controls(scorer: Any, persona: Persona, prompts: list[Prompt]) -> dict[str, list]:
    """Every control set scored: the references and negatives on the eval prompts, the other
    voices for voice alone."""
    scores = {k: scorer.score(prompts, v) for k, v in control_replies(persona, prompts).items()}
    imp_prompts, imp_replies = impostor_controls(persona, prompts)
    if imp_replies:
        scores["impostor"] = scorer.score_voice(imp_prompts, imp_replies)
    return scores


def run_controls(scorer: Any, inputs: GateInputs) -> tuple[dict[str, list], list[str]]:
    """Score the controls; return (scores per set, problems). The gate must not judge a model when
    its references fail a criterion or its negatives pass the personality criterion."""
    langs = tuple(
        lg for lg in inputs.persona.languages if any(p.lang == lg for p in inputs.prompts)
    )
    scores = score_controls(scorer, inputs.persona, inputs.prompts)
    problems = []
    for c in model_checks(inputs.criteria, scores["reference"], langs):
        if not c.passed:
            problems.append(
                f"the persona's own references fail '{c.metric}' ({c.shown}, target {c.target})"
            )
    for kind in ("generic", "agent", "impostor"):
        if kind not in scores:
            continue
        c = next(
            c for c in model_checks(inputs.criteria, scores[kind], langs) if c.name == "personality"
        )
        if c.passed:
            problems.append(f"{kind} replies pass '{c.metric}' ({c.shown})")
    return scores, problems


def run_facts(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": library_versions(),
        **(extra or {}),
    }


def judge_all(results: EvalResults, judge: Any) -> None:
    """Optional LLM-judge scores for every model: informational, never asserted (a judge alone is
    not proof)."""
    results.judge = {
        m: [round(j.score, 4) for j in judge.score_many(results.prompts, results.replies(m))]
        for m in results.models
    }


def canary_identical(results: EvalResults) -> list[str]:
    """Models whose every reply equals the base's: an adapter almost surely not applied."""
    if BASE not in results.generations:
        return []
    base = results.replies(BASE)
    return [m for m in results.models if m != BASE and results.replies(m) == base]


# ---------------------------------------------------------------- molting report


def rescore_file(
    persona_dir: str,
    results_path: str | Path,
    report_dir: str | Path | None = None,
    criteria_path: str | Path | None = None,
) -> tuple[list[Path], str]:
    """`molting report`: re-score results.json's generations with the persona's scorer; no model is
    loaded."""
    persona = load_persona(persona_dir)
    crit = load_criteria(persona.criteria_path, criteria_path)
    path = Path(results_path)
    out = Path(report_dir) if report_dir else path.parent
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--report-dir {out}: is a file; choose a directory for the reports.")
    results = load_results(path, crit)
    check_persona(results, persona, path)
    missing = [lg for lg in results.languages if lg not in persona.languages]
    if missing:
        raise EvalError(
            f"{path}: its prompts are in {', '.join(missing)}, which persona {persona.name} does "
            "not speak; pass the persona the gate ran with."
        )
    results.languages = persona.languages
    try:
        scorer = Scorer.load(persona)
    except ModelError as err:
        raise EvalError(str(err)) from None
    score_all(results, scorer)
    results.controls = score_controls(scorer, persona, results.prompts)
    results.facts |= {
        "scorer_version": SCORER_VERSION,
        "rescored_by": "molting report",
        "persona": persona.name,
        "prompts_hash": prompts_hash(results.prompts),
    }
    results.facts.pop(WEAK_VOICE, None)
    if weak := scorer.voice_not_told_apart():
        results.facts[WEAK_VOICE] = weak
    written = write_reports(results, out)
    return written, verdict(results.checks())
