"""Success criteria for the gate, read from one YAML file (evals/criteria.yaml)."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from molting.errors import ConfigError

DEFAULT_CRITERIA = Path(__file__).resolve().parents[2] / "evals" / "criteria.yaml"


@dataclass(frozen=True)
class Criteria:
    personality_min: float = 8.5  # seed's Phase 5 target
    agent_rate_max: float = 0.05  # "minimal" agent-like behaviour
    directness_min: float = 0.90  # "high" directness
    pt_fluency_min: float = 8.0  # "good+" Portuguese
    pt_language_match_min: float = 0.90  # PT prompts answered in PT
    comparison_confidence: float = 0.95  # paired bootstrap CI level
    agent_regression_alpha: float = 0.05  # McNemar significance for an agent-rate regression
    judge: str = "none"  # optional local LLM judge; never the default

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_criteria(path: str | Path | None = None) -> Criteria:
    path = Path(path) if path else DEFAULT_CRITERIA
    if not path.is_file():
        raise ConfigError(f"{path}: criteria file not found; pass --criteria PATH or restore evals/criteria.yaml.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of criterion: value.")
    names = [f.name for f in fields(Criteria)]
    for key in raw:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{path}: unknown criterion '{key}'{hint}")
    for key, value in raw.items():
        if key != "judge" and not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: '{key}' must be a number, got {value!r}.")
    return Criteria(**raw)
