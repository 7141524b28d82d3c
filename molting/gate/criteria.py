"""Success criteria: read from YAML (package defaults ← the bundle's criteria.yaml ← --criteria),
validated once, then evaluated on a model's scores into `Check`s — the tests assert exactly
these, the report renders exactly these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from molting.errors import ConfigError
from molting.io import check_keys, read_yaml_mapping
from molting.metrics.aggregate import aggregate

DEFAULT_CRITERIA = Path(__file__).with_name("criteria.yaml")


@dataclass(frozen=True)
class Criteria:
    personality_min: float
    agent_rate_max: float
    directness_min: float
    pt_fluency_min: float
    pt_language_match_min: float
    comparison_confidence: float
    agent_regression_alpha: float
    judge: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# key → (low, high, inclusive): the range a value must lie in
_RANGES = {
    "personality_min": (0.0, 10.0, True),
    "pt_fluency_min": (0.0, 10.0, True),
    "agent_rate_max": (0.0, 1.0, True),
    "directness_min": (0.0, 1.0, True),
    "pt_language_match_min": (0.0, 1.0, True),
    "comparison_confidence": (0.0, 1.0, False),
    "agent_regression_alpha": (0.0, 1.0, False),
}


def load_criteria(*overrides: str | Path | None) -> Criteria:
    """The package defaults, then each existing override file in order (later wins)."""
    names = [f.name for f in fields(Criteria)]
    merged: dict[str, Any] = {}
    for path in (DEFAULT_CRITERIA, *(Path(p) for p in overrides if p is not None)):
        raw = read_yaml_mapping(path, "criteria file")
        check_keys(raw, names, str(path))
        for key, value in raw.items():
            _check_value(path, key, value)
        merged.update(raw)
    missing = [n for n in names if n not in merged]
    if missing:
        raise ConfigError(f"{DEFAULT_CRITERIA}: missing {', '.join(missing)}; reinstall molting.")
    return Criteria(**{k: (float(v) if k in _RANGES else str(v)) for k, v in merged.items()})


def _check_value(path: Path, key: str, value: Any) -> None:
    if key == "judge":
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f"{path}: 'judge' must be 'none' or a model path / hub id, got {value!r}."
            )
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{path}: '{key}' must be a number, got {value!r}.")
    low, high, inclusive = _RANGES[key]
    ok = low <= value <= high if inclusive else low < value < high
    if not ok:
        bounds = f"[{low:g}, {high:g}]" if inclusive else f"({low:g}, {high:g})"
        raise ConfigError(f"{path}: '{key}' must be in {bounds}, got {value!r}.")


@dataclass(frozen=True)
class Check:
    name: str  # criterion id, also the test's parameter
    metric: str
    target: str
    value: float | None
    passed: bool
    shown: str  # how the value is printed


def model_checks(criteria: Criteria, scores: list, languages: tuple[str, ...]) -> list[Check]:
    """Every absolute criterion on one model's scores. Per-language checks exist only for the
    languages that have prompts; the PT-BR checks only when Portuguese is one of them."""
    c, summ = criteria, aggregate(scores)
    p = summ["all"].personality.mean
    out = [
        Check(
            "personality",
            "Personality (0–10)",
            f"≥ {c.personality_min:g}",
            p,
            p >= c.personality_min,
            f"{p:.2f}",
        )
    ]
    for lang in languages:
        if lang in summ:
            r = summ[lang].agent_rate
            out.append(
                Check(
                    f"agent_rate_{lang}",
                    f"Agent-phrase rate ({lang.upper()})",
                    f"≤ {c.agent_rate_max:.0%}",
                    r.rate,
                    r.rate <= c.agent_rate_max,
                    f"{r.rate:.1%} [{r.low:.0%}, {r.high:.0%}]",
                )
            )
    d = summ["all"].direct_rate
    out.append(
        Check(
            "directness",
            "Directness (answer first)",
            f"≥ {c.directness_min:.0%}",
            d.rate,
            d.rate >= c.directness_min,
            f"{d.rate:.1%}",
        )
    )
    if "pt" in summ:
        m = summ["pt"].lang_match_rate
        out.append(
            Check(
                "pt_language",
                "PT prompts answered in PT",
                f"≥ {c.pt_language_match_min:.0%}",
                m.rate,
                m.rate >= c.pt_language_match_min,
                f"{m.rate:.1%}",
            )
        )
        f = summ["pt"].fluency
        out.append(
            Check(
                "pt_fluency",
                "PT-BR fluency (0–10)",
                f"≥ {c.pt_fluency_min:g}",
                f.mean if f else None,
                bool(f and f.mean >= c.pt_fluency_min),
                f"{f.mean:.2f}" if f else "–",
            )
        )
    return out


def comparison_checks(criteria: Criteria, comparisons: list) -> list[Check]:
    out = []
    for comp in comparisons:
        iv = comp.personality
        out.append(
            Check(
                f"beats_{comp.baseline}",
                f"Personality Δ vs {comp.baseline} (paired {criteria.comparison_confidence:.0%} "
                "CI)",
                "CI above 0",
                iv.low,
                iv.low > 0,
                f"{iv.estimate:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]",
            )
        )
        a = comp.agent
        out.append(
            Check(
                f"no_agent_regression_{comp.baseline}",
                f"Agent phrases vs {comp.baseline} (McNemar)",
                f"p ≥ {criteria.agent_regression_alpha:g}",
                a.p_value,
                a.p_value >= criteria.agent_regression_alpha,
                f"+{a.candidate_only}/−{a.baseline_only}, p={a.p_value:.3f}",
            )
        )
    return out


def verdict(checks: list[Check]) -> str:
    failed = [c.metric for c in checks if not c.passed]
    if not failed:
        return f"**PASS** — the candidate meets all {len(checks)} criteria."
    return f"**FAIL** — {len(failed)} of {len(checks)} criteria not met: " + "; ".join(failed) + "."
