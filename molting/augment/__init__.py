"""`molting augment`: new persona-rich conversations from a generator, each one gated.

Request by request (prompts.Planner), the generator (generators: anthropic, openai, local) writes
one user message and the persona's reply as JSON; the quality checks (checks.QualityChecks)
keep it or name a reason; retries and the request budget live in retry.Caller. Outputs,
written all or nothing at the end: the accepted examples as ShareGPT (each with its provenance)
and an audit JSON Lines file with one row per request.

    >>> generator = make_example_generator("anthropic")
    >>> result = augment(persona, generator, AugmentConfig(n=100), output="aug.json")
    >>> result.accepted, dict(result.rejected), result.requests
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from molting import __version__
from molting.augment.checks import Example, QualityChecks, Verdict
from molting.augment.generators import Completion, make_example_generator
from molting.augment.prompts import Planner, Request
from molting.augment.retry import Budget, BudgetExhausted, Caller, RequestFailed, RetryPolicy
from molting.data import load_dataset
from molting.errors import SHORTFALL_EXIT, ConfigError
from molting.gate.criteria import load_criteria
from molting.io import OutputSet, json_text
from molting.metrics import Scorer
from molting.persona import Persona, parse_lang_shares

__all__ = [
    "SHORTFALL_EXIT",
    "AugmentConfig",
    "AugmentResult",
    "augment",
    "make_example_generator",
    "summary",
]

BUDGET_FACTOR = 2  # default --max-requests: 2 × n (retries included)
RAW_CHARS = 2000  # unparseable generator text is kept this far in the audit


@dataclass(frozen=True)
class AugmentConfig:
    n: int
    seed: int = 0
    max_requests: int | None = None  # None: BUDGET_FACTOR × n
    lang_share: str | None = None  # "en=1,pt=1"; None: balanced over the persona's languages
    min_personality: float | None = None  # None: the criteria's personality_min
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def budget(self) -> int:
        return self.max_requests if self.max_requests is not None else BUDGET_FACTOR * self.n

    def check(self) -> None:
        if self.n < 1:
            raise ConfigError(f"-n must be at least 1, got {self.n}.")
        if self.budget < self.n:
            raise ConfigError(
                f"--max-requests {self.budget} is below -n {self.n}: the run could never produce "
                f"{self.n} examples; raise it (default {BUDGET_FACTOR} × n)."
            )
        if self.min_personality is not None and not 0 <= self.min_personality <= 10:
            raise ConfigError(f"--min-personality must be in [0, 10], got {self.min_personality}.")


@dataclass
class AugmentResult:
    n: int
    records: list[dict] = field(default_factory=list)  # accepted examples (ShareGPT + provenance)
    audit: list[dict] = field(default_factory=list)  # one row per request
    rejected: Counter = field(default_factory=Counter)  # reason code → count
    failed_requests: int = 0  # requests given up after every retry
    requests: int = 0  # HTTP requests made (or local generations), retries included
    budget: int = 0
    budget_exhausted: bool = False
    min_personality: float = 0.0
    wrote: list[Path] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.records)

    @property
    def short(self) -> bool:
        return self.accepted < self.n


def augment(
    persona: Persona,
    generator: Any,
    config: AugmentConfig,
    *,
    output: str | Path,
    audit: str | Path | None = None,
    scorer: Scorer | None = None,
    progress: Callable[[str], None] | None = None,
) -> AugmentResult:
    """Generate until `config.n` examples pass the gate or the budget runs out; write both outputs.
    `scorer`: the persona's fitted Scorer (loaded from the bundle when None)."""
    config.check()
    shares = parse_lang_shares(config.lang_share, persona.languages) or {
        lang: 1.0 / len(persona.languages) for lang in persona.languages
    }
    audit = Path(audit) if audit else default_audit_path(output)
    OutputSet(inputs=list(persona.input_files().values())).claim_all(
        {"dataset": output, "audit": audit}
    )
    scorer = scorer or Scorer.load(persona)
    result = AugmentResult(
        config.n, budget=config.budget, min_personality=threshold(persona, config)
    )
    gate = QualityChecks(scorer, result.min_personality, training_prompts(persona))
    planner = Planner(
        persona.card, scorer.train.pairs, seed=config.seed, shares=shares, count=config.budget
    )
    caller = Caller(generator, Budget(config.budget), config.retry, seed=config.seed)
    _run(
        result,
        planner,
        caller,
        gate,
        _provenance_base(generator, config),
        persona,
        progress or (lambda _: None),
    )
    result.requests = caller.budget.used
    result.wrote = write_outputs(result, output, audit, list(persona.input_files().values()))
    return result


def _run(
    result: AugmentResult,
    planner: Planner,
    caller: Caller,
    gate: QualityChecks,
    base: dict,
    persona: Persona,
    progress: Callable[[str], None],
) -> None:
    index = 0
    while result.accepted < result.n:
        if caller.budget.left <= 0:
            result.budget_exhausted = True
            return
        request = planner.request(index)
        index += 1
        try:
            completion, attempts = caller.call(request)
        except BudgetExhausted as err:
            result.audit.append(
                _row(request, "unfinished", "budget_exhausted", err.attempts, error=err.last_error)
            )
            result.budget_exhausted = True
            return
        except RequestFailed as err:
            result.failed_requests += 1
            result.audit.append(
                _row(request, "failed", "request_failed", err.attempts, error=str(err.last))
            )
            continue
        ex, verdict = gate.check(
            completion.text,
            request.lang,
            [p.reply for p in request.examples],
            pid=f"request-{request.index}",
        )
        result.audit.append(_judged_row(request, attempts, completion, ex, verdict))
        if not verdict.accepted:
            result.rejected[verdict.reason] += 1
            continue
        gate.accept(ex)
        result.records.append(_record(persona, request, completion, ex, verdict, base))
        progress(
            f"[{result.accepted}/{result.n}] accepted request {request.index} ({request.lang}, "
            f"personality {verdict.personality:.2f}): {_clip(ex.user, 70)}"
        )


def _row(request: Request, status: str, reason: str | None, attempts: int, **extra: Any) -> dict:
    return {
        "request": request.index,
        "status": status,
        "reason": reason,
        "lang": request.lang,
        "topic": list(request.topic),
        "prompt_sha256": request.sha256,
        "attempts": attempts,
        **extra,
    }


def _judged_row(
    request: Request, attempts: int, completion: Completion, ex: Example | None, verdict: Verdict
) -> dict:
    row = _row(
        request,
        "accepted" if verdict.accepted else "rejected",
        verdict.reason,
        attempts,
        failed=list(verdict.failed),
        model=completion.model,
        personality=verdict.personality,
        detail=verdict.detail,
    )
    if ex is not None:
        row |= {"user": ex.user, "reply": ex.reply}
    else:
        row["raw"] = completion.text[:RAW_CHARS]
    return row


def _provenance_base(generator: Any, config: AugmentConfig) -> dict:
    return {
        "generator": generator.kind,
        "model": generator.model,
        "seed": config.seed,
        "molting": __version__,
    }


def _record(
    persona: Persona,
    request: Request,
    completion: Completion,
    ex: Example,
    verdict: Verdict,
    base: dict,
) -> dict:
    turns = (
        [{"from": "system", "value": persona.card.system_prompt}]
        if persona.card.system_prompt
        else []
    )
    turns += [{"from": "human", "value": ex.user}, {"from": "gpt", "value": ex.reply}]
    provenance = base | {
        "model_served": completion.model,
        "prompt_sha256": request.sha256,
        "request": request.index,
        "lang": request.lang,
        "topic": list(request.topic),
        "personality": verdict.personality,
    }
    return {
        "id": f"aug-s{base['seed']}-r{request.index:05d}",
        "conversations": turns,
        "provenance": provenance,
    }


def _clip(text: str, n: int) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"


def threshold(persona: Persona, config: AugmentConfig) -> float:
    if config.min_personality is not None:
        return config.min_personality
    return load_criteria(persona.criteria_path).personality_min


def training_prompts(persona: Persona) -> list[str]:
    """Every user turn of the persona's dataset (curated or not: a copy of any is no new
    example)."""
    return [
        t.content
        for c in load_dataset(persona.dataset).conversations
        for t in c.turns
        if t.role == "user"
    ]


def default_audit_path(output: str | Path) -> Path:
    """OUT.json → OUT.audit.jsonl"""
    out = Path(output)
    return out.with_name(out.stem + ".audit.jsonl")


def write_outputs(
    result: AugmentResult, output: str | Path, audit: Path, inputs: list[Path]
) -> list[Path]:
    """The dataset (JSON list, or JSON Lines for .jsonl/.ndjson; skipped when nothing passed) and
    the audit, all or nothing."""
    with OutputSet(inputs=inputs) as out:
        if result.records:
            if Path(output).suffix.lower() in (".jsonl", ".ndjson"):
                text = "".join(json_text(r, indent=None) for r in result.records)
            else:
                text = json_text(result.records)
            out.add(output, text, "dataset")
        out.add(audit, "".join(json_text(r, indent=None) for r in result.audit), "audit")
        staged = [target for _, target in out.staged]
    return staged


def summary(result: AugmentResult) -> str:
    """One paragraph for the terminal: accepted, rejected by reason, requests used, budget."""
    reasons = ", ".join(
        f"{k} {v}" for k, v in sorted(result.rejected.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    lines = [
        f"accepted {result.accepted} of {result.n}; rejected {sum(result.rejected.values())}"
        + (f" ({reasons})" if reasons else "")
        + (
            f"; {result.failed_requests} requests failed after retries"
            if result.failed_requests
            else ""
        )
        + f"; requests used {result.requests} of {result.budget} (personality ≥ "
        f"{result.min_personality:g})"
    ]
    if result.budget_exhausted and result.short:
        lines.append(
            f"the request budget ran out (--max-requests {result.budget}) before {result.n} "
            "examples passed"
        )
    wrote = ", ".join(str(p) for p in result.wrote)
    lines.append(
        f"wrote {wrote}" + ("" if result.records else " (no example passed: no dataset written)")
    )
    return "\n".join(lines)
