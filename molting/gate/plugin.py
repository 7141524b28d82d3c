"""The pytest plugin behind `pytest evals/`: options, session fixtures, report writing.

Options live in the "molting gate" group; state lives in `config.stash`; the session fixture
loads the base once, attaches every adapter, generates (cached), scores and compares; the
reports are written in `pytest_sessionfinish`, also when tests fail.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from molting.gate.criteria import load_criteria
from molting.errors import EvalError, MoltingError
from molting.gate.run import (
    CANDIDATE,
    Comparison,
    EvalResults,
    generate_all,
    judge_all,
    load_prompts,
    prompts_hash,
    run_facts,
    score_all,
)
from molting.gate.generate import BASE, Generation, GenerationCache, GenerationConfig
from molting.metrics.stats import mcnemar_regression, paired_bootstrap

DEFAULT_ADAPTER = "output/phase5-curated"  # the seed's output path
DEFAULT_PHASE3 = "output/phase3"
BLESSED = "blessed_baseline.json"
TRAIN_HINT = "train one with: molting train --config configs/cpu.yaml --output {path}  (or run `make demo`)"


@dataclass
class GateState:
    adapter: str | None
    baselines: dict[str, str | None]  # name → adapter dir (None = the base model)
    report_dir: Path
    results: EvalResults | None = None
    written: list[Path] = field(default_factory=list)


STATE = pytest.StashKey[GateState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("molting gate", "molting persona acceptance gate")
    g.addoption("--adapter", default=DEFAULT_ADAPTER, help=f"candidate adapter dir (default {DEFAULT_ADAPTER})")
    g.addoption("--baseline", action="append", default=None, metavar="NAME=DIR",
                help=f"baseline adapter, repeatable; 'base' = the base model without adapter "
                     f"(default: base, and phase3={DEFAULT_PHASE3} when it exists)")
    g.addoption("--base-model", default=None, help="base model id/path (default: the one the candidate was trained on)")
    g.addoption("--prompts", default=None, help="held-out prompts JSONL (default fixtures/claudio/eval_prompts.jsonl)")
    g.addoption("--criteria", default=None, help="criteria YAML (default evals/criteria.yaml)")
    g.addoption("--report-dir", default="reports", help="where comparison.md, results.json and the chart go")
    g.addoption("--max-new-tokens", type=int, default=GenerationConfig.max_new_tokens, help="generation length cap")
    g.addoption("--batch-size", type=int, default=GenerationConfig.batch_size, help="same for every model")
    g.addoption("--repetition-penalty", type=float, default=GenerationConfig.repetition_penalty,
                help="same for every model; default 1.0 (none): the metrics see degenerate loops as they are")
    g.addoption("--device", choices=("auto", "cpu"), default="auto", help="'cpu' hides CUDA GPUs from the run")
    g.addoption("--replies", default=None, metavar="JSON",
                help="score these replies ({model: {prompt_id: reply}}) instead of generating: no model is loaded")
    g.addoption("--no-cache", action="store_true", help="regenerate even when cached generations exist")
    g.addoption("--update-baseline", action="store_true",
                help=f"store the candidate's per-sample scores as the blessed baseline ({BLESSED})")


def _parse_baselines(values: list[str] | None) -> dict[str, str | None]:
    if values is None:
        out: dict[str, str | None] = {BASE: None}
        if Path(DEFAULT_PHASE3).is_dir():
            out["phase3"] = DEFAULT_PHASE3
        return out
    out = {}
    for v in values:
        if v == BASE:
            out[BASE] = None
            continue
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise pytest.UsageError(f"--baseline {v!r}: expected NAME=DIR or 'base'.")
        out[name] = path
    return out


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--device", default="auto") == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    config.stash[STATE] = GateState(
        adapter=config.getoption("--adapter"),
        baselines=_parse_baselines(config.getoption("--baseline")),
        report_dir=Path(config.getoption("--report-dir")),
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    st = session.config.stash[STATE]
    if session.config.getoption("--replies"):
        return
    for name, path in [(CANDIDATE, st.adapter), *st.baselines.items()]:
        if path is not None and not (Path(path) / "adapter_config.json").is_file():
            raise pytest.UsageError(f"no {name} adapter at {path}: {TRAIN_HINT.format(path=path)}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    from molting.metrics import SCORER_VERSION
    from molting.train.outputs import library_versions

    st = config.stash[STATE]
    libs = ", ".join(f"{k} {v}" for k, v in library_versions().items() if v)
    return [f"molting gate: candidate={st.adapter} baselines={', '.join(st.baselines)} scorer={SCORER_VERSION}",
            f"molting libraries: {libs}"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "baseline_name" in metafunc.fixturenames:
        st = metafunc.config.stash[STATE]
        names = list(st.baselines)
        if (st.report_dir / BLESSED).is_file() and not metafunc.config.getoption("--update-baseline"):
            names.append("blessed")
        metafunc.parametrize("baseline_name", names)


class CannedGenerator:
    """Replies given in a JSON file: {model: {prompt_id: reply}} (tests, or generations made elsewhere)."""

    def __init__(self, path: str | Path):
        self.data = json.loads(Path(path).read_text(encoding="utf-8"))

    def names(self) -> list[str]:
        return list(self.data)

    def generate(self, name: str, prompts: list[dict[str, Any]], config: GenerationConfig, cache: Any = None) -> list[Generation]:
        if name not in self.data:
            raise EvalError(f"--replies has no model '{name}' (has: {', '.join(self.data)}).")
        missing = [p["id"] for p in prompts if p["id"] not in self.data[name]]
        if missing:
            raise EvalError(f"--replies: model '{name}' has no reply for prompt(s) {', '.join(missing[:5])}.")
        return [Generation(name, p["id"], self.data[name][p["id"]], len(self.data[name][p["id"]].split()), False) for p in prompts]


@pytest.fixture(scope="session")
def gate(request: pytest.FixtureRequest) -> Any:
    """Generate, score and compare once per session; yield the EvalResults."""
    config = request.config
    st = config.stash[STATE]
    t0 = time.perf_counter()
    try:
        results, bank = _build_results(config, st)
    except MoltingError as err:
        pytest.fail(f"gate could not run: {err}", pytrace=False)
    st.results = results
    results.facts["wall_seconds"] = round(time.perf_counter() - t0, 1)
    yield results
    if bank is not None:
        bank.close()


def _build_results(config: pytest.Config, st: GateState) -> tuple[EvalResults, Any]:
    from molting.metrics import Scorer

    criteria = load_criteria(config.getoption("--criteria"))
    prompts = load_prompts(config.getoption("--prompts"))
    gcfg = GenerationConfig(max_new_tokens=config.getoption("--max-new-tokens"), batch_size=config.getoption("--batch-size"),
                            repetition_penalty=config.getoption("--repetition-penalty"))
    models = [*st.baselines, CANDIDATE]
    facts: dict[str, Any] = {"prompts": config.getoption("--prompts") or "fixtures/claudio/eval_prompts.jsonl",
                             "prompts_hash": prompts_hash(prompts), "generation": gcfg.key()}
    bank = None
    if config.getoption("--replies"):
        gen: Any = CannedGenerator(config.getoption("--replies"))
        facts["generator"] = f"canned replies from {config.getoption('--replies')}"
    else:
        bank = _load_bank(config, st)
        gen = bank
        facts.update(_bank_facts(bank))
    cache = None if config.getoption("--no-cache") or bank is None else GenerationCache.default()
    generations, gfacts = generate_all(gen, models, prompts, gcfg, cache)
    facts.update(gfacts)
    results = EvalResults(prompts=prompts, models=models, generations=generations, criteria=criteria, facts=run_facts(facts))
    scorer = Scorer.load()
    results.facts["scorer_version"] = scorer_version()
    score_all(results, scorer)
    if criteria.judge != "none":
        from molting.metrics.judge import LLMJudge

        judge_all(results, LLMJudge.from_pretrained(criteria.judge))
        results.facts["judge"] = criteria.judge
    _blessed(config, st, results)
    return results, bank


def _load_bank(config: pytest.Config, st: GateState) -> Any:
    from molting.gate.generate import ModelBank

    adapters = {n: Path(p) for n, p in st.baselines.items() if p is not None}
    adapters[CANDIDATE] = Path(st.adapter)
    base_model = config.getoption("--base-model") or _trained_on(Path(st.adapter))
    bank = ModelBank.load(base_model, adapters, quantization="4bit")  # 4-bit on CUDA; fp32 on CPU, said loudly
    for name, path in adapters.items():
        run = _run_json(path)
        fp = (run.get("base_model") or {}).get("fingerprint")
        if fp and fp != bank.base.fingerprint:
            raise EvalError(f"adapter '{name}' ({path}) was trained on base {fp}, but the loaded base is "
                            f"{bank.base.fingerprint}; pass --base-model with the model it was trained on.")
    probe = {"id": "canary", "prompt": "Olá! Tudo bem?"}
    dead = [n for n, d in bank.canary(probe).items() if d == 0.0]
    if dead:
        raise EvalError(f"adapter(s) {', '.join(dead)} do not change the model's logits: not applied (or zero-initialised).")
    return bank


def _run_json(path: Path) -> dict[str, Any]:
    f = path / "run.json"
    return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else {}


def _trained_on(adapter: Path) -> str:
    run = _run_json(adapter)
    base = (run.get("base_model") or {}).get("id")
    if base:
        return base
    cfg = adapter / "adapter_config.json"
    name = json.loads(cfg.read_text(encoding="utf-8")).get("base_model_name_or_path") if cfg.is_file() else None
    if not name:
        raise EvalError(f"{adapter}: cannot tell which base model it was trained on; pass --base-model.")
    return name


def _bank_facts(bank: Any) -> dict[str, Any]:
    b = bank.base
    facts = {"base_model": b.model_id, "base_fingerprint": b.fingerprint, "device": b.device, "dtype": b.dtype,
             "quantization": b.quantization, "adapters": {n: {"path": str(p), "sha256": bank.adapter_shas[n][:16]}
                                                          for n, p in bank.adapters.items()}}
    if b.substitution:
        facts["substitution"] = b.substitution
    return facts


def scorer_version() -> str:
    from molting.metrics import SCORER_VERSION

    return SCORER_VERSION


def _blessed(config: pytest.Config, st: GateState, results: EvalResults) -> None:
    path = st.report_dir / BLESSED
    if config.getoption("--update-baseline") or not path.is_file():
        return
    stored = json.loads(path.read_text(encoding="utf-8"))
    if stored["prompts_hash"] != prompts_hash(results.prompts):
        raise EvalError(f"{path}: the prompt set changed since the baseline was blessed; re-bless with --update-baseline.")
    if stored["scorer_version"] != scorer_version():
        raise EvalError(f"{path}: scorer {stored['scorer_version']} ≠ {scorer_version()}; re-bless with --update-baseline.")
    cand = results.scores[CANDIDATE]
    results.comparisons.append(Comparison(
        baseline="blessed",
        personality=paired_bootstrap([s.personality for s in cand], stored["personality"],
                                     confidence=results.criteria.comparison_confidence),
        agent=mcnemar_regression([s.agent_like for s in cand], stored["agent_like"]),
    ))


def _write_blessed(st: GateState, results: EvalResults) -> Path:
    from molting.data import write_text_atomic

    cand = results.scores[CANDIDATE]
    data = {"prompts_hash": prompts_hash(results.prompts), "scorer_version": scorer_version(),
            "fingerprints": {k: results.facts.get(k) for k in ("base_fingerprint", "adapters")},
            "prompt_ids": [p["id"] for p in results.prompts],
            "personality": [s.personality for s in cand], "agent_like": [s.agent_like for s in cand]}
    return write_text_atomic(st.report_dir / BLESSED, json.dumps(data, indent=1) + "\n")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from molting.gate.report import write_reports

    st = session.config.stash.get(STATE, None)
    if st is None or st.results is None or not st.results.scores:
        return
    st.written = write_reports(st.results, st.report_dir)
    if session.config.getoption("--update-baseline"):
        st.written.append(_write_blessed(st, st.results))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    st = config.stash.get(STATE, None)
    if st and st.written:
        terminalreporter.write_line(f"molting gate: reports written to {', '.join(str(p) for p in st.written)}")
