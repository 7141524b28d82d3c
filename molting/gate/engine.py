"""The gate engine: from prepared inputs (molting.gate.run.prepare: inputs checked, scorer
loaded, controls scored, blessed baseline read) to EvalResults — generate, score, judge, compare
with the baselines and the blessed one (molting.gate.blessed). The pytest plugin only calls
these from its hooks.

    results, generator = run_gate(prepare(inputs))
"""

from __future__ import annotations

from typing import Any

from molting.errors import MoltingError
from molting.gate.blessed import compare_blessed
from molting.gate.records import (
    CANDIDATE,
    EvalResults,
    persona_fingerprints,
    prompts_hash,
)
from molting.gate.run import (
    WEAK_VOICE,
    Prepared,
    canary_identical,
    generate_all,
    judge_all,
    make_model_generator,
    run_facts,
    score_all,
)
from molting.metrics import SCORER_VERSION
from molting.metrics.judge import LLMJudge


def run_gate(prepared: Prepared) -> tuple[EvalResults, Any]:
    """Generate every model's replies, score them, judge (optional), compare with the baselines
    and the blessed one; return the results and the open generator (close it when done)."""
    inputs = prepared.inputs
    gen = make_model_generator(inputs)
    dead = [n for n, d in gen.canary(inputs.persona.canary_prompt()).items() if d == 0.0]
    if dead:
        raise MoltingError(
            f"adapter(s) {', '.join(dead)} do not change the model's logits: not applied "
            "(or zero-initialised)."
        )
    generations, gfacts = generate_all(gen, inputs)
    facts = {
        "persona": inputs.persona.name,
        "persona_dir": str(inputs.persona.root),
        "persona_fingerprints": persona_fingerprints(inputs.persona),
        "prompts": inputs.prompts_source,
        "prompts_hash": prompts_hash(inputs.prompts),
        "generation": inputs.generation.key(),
        "scorer_version": SCORER_VERSION,
        **gen.facts(),
        **gfacts,
    }
    if inputs.notes:
        facts["notes"] = inputs.notes
    if weak := prepared.scorer.voice_not_told_apart():
        facts[WEAK_VOICE] = weak
    results = EvalResults(
        prompts=inputs.prompts,
        models=inputs.models,
        generations=generations,
        criteria=inputs.criteria,
        languages=inputs.persona.languages,
        facts=run_facts(facts),
        controls=prepared.controls,
    )
    score_all(results, prepared.scorer)
    same = canary_identical(results)
    if same:
        results.facts["identical_to_base"] = same
    if inputs.criteria.judge != "none":
        judge_all(results, LLMJudge.from_pretrained(inputs.criteria.judge, inputs.persona.card))
        results.facts["judge"] = inputs.criteria.judge
    compare_blessed(results, prepared.blessed)
    assert CANDIDATE in results.scores
    return results, gen
