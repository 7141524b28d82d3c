"""The blessed baseline: a candidate's per-prompt scores stored by `--update-baseline`
(`blessed_baseline.json` in the report directory), read back and checked when a gate run is
prepared, and compared with the candidate's scores in later runs."""

from __future__ import annotations

from pathlib import Path

from molting.errors import ConfigError
from molting.gate import BLESSED
from molting.gate.records import CANDIDATE, Comparison, EvalResults, prompts_hash
from molting.io import read_json, write_json_atomic
from molting.metrics import SCORER_VERSION
from molting.metrics.stats import mcnemar_regression, paired_bootstrap
from molting.persona import Prompt


def read_blessed(report_dir: Path, prompts: list[Prompt]) -> dict | None:
    """The stored scores of the blessed run in `report_dir` (None without one), checked against
    these prompts and this scorer."""
    path = report_dir / BLESSED
    if not path.is_file():
        return None
    data = read_json(path, "blessed baseline")
    n = len(prompts)
    ok = (
        isinstance(data, dict)
        and isinstance(data.get("personality"), list)
        and isinstance(data.get("agent_like"), list)
        and len(data["personality"]) == n
        and len(data["agent_like"]) == n
        and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in data["personality"]
        )
        and all(isinstance(x, bool) for x in data["agent_like"])
    )
    if not ok:
        raise ConfigError(
            f"{path}: not a blessed baseline for these {n} prompts; delete it or re-bless with "
            "--update-baseline."
        )
    if data.get("prompts_hash") != prompts_hash(prompts):
        raise ConfigError(
            f"{path}: the prompt set changed since the baseline was blessed; re-bless with "
            "--update-baseline."
        )
    if data.get("scorer_version") != SCORER_VERSION:
        raise ConfigError(
            f"{path}: scorer {data.get('scorer_version')} ≠ {SCORER_VERSION}; re-bless with "
            "--update-baseline."
        )
    return data


def compare_blessed(results: EvalResults, blessed: dict | None) -> None:
    """The candidate against the blessed baseline's stored scores (--update-baseline wrote them)."""
    if blessed is None:
        return
    cand = results.scores[CANDIDATE]
    results.comparisons.append(
        Comparison(
            baseline="blessed",
            personality=paired_bootstrap(
                [s.personality for s in cand],
                blessed["personality"],
                confidence=results.criteria.comparison_confidence,
            ),
            agent=mcnemar_regression([s.agent_like for s in cand], blessed["agent_like"]),
        )
    )


def write_blessed(results: EvalResults, report_dir: Path) -> Path:
    """Bless this run's candidate: later runs compare against its scores."""
    cand = results.scores[CANDIDATE]
    data = {
        "prompts_hash": prompts_hash(results.prompts),
        "scorer_version": SCORER_VERSION,
        "persona": results.facts.get("persona"),
        "prompt_ids": [p.id for p in results.prompts],
        "personality": [s.personality for s in cand],
        "agent_like": [s.agent_like for s in cand],
    }
    return write_json_atomic(report_dir / BLESSED, data, indent=1)
