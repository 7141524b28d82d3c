"""The fixture splits the metrics are fitted and tested on, and their fingerprints.

- train: the raw Cláudio dataset split by curation's own patterns — direct assistant turns are
  persona positives, agent-talk turns negatives — plus the generic-assistant replies in
  negatives/generic_train.jsonl. Conversations whose user prompt also appears in the
  calibration or eval split are dropped (decontamination).
- calibration: fixes anchors and thresholds, nothing else.
- eval: never used for fitting; the report and the tests measure on it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from molting.data import load_dataset
from molting.errors import EvalError
from molting.curate.patterns import PATTERNS_VERSION, is_agent_like

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "claudio"
NEGATIVES = FIXTURES / "negatives"
FILES = {
    "persona": FIXTURES / "persona.yaml",
    "raw_dataset": FIXTURES / "dataset_sharegpt.json",
    "generic_train": NEGATIVES / "generic_train.jsonl",
    "calibration": FIXTURES / "calibration.jsonl",
}
PROMPT_FIELDS = ("id", "lang", "prompt", "reference")


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def fingerprints(fixtures: Path = FIXTURES) -> dict[str, str]:
    """sha256 (first 16 hex digits) of every file the scorer is fitted on, plus the pattern version."""
    out = {name: hashlib.sha256(Path(str(p).replace(str(FIXTURES), str(fixtures))).read_bytes()).hexdigest()[:16]
           for name, p in FILES.items()}
    out["patterns_version"] = PATTERNS_VERSION
    return out


def persona_signatures(fixtures: Path = FIXTURES) -> list[str]:
    with open(fixtures / "persona.yaml", encoding="utf-8") as f:
        card = yaml.safe_load(f)
    return [e for exprs in card["signature_expressions"].values() for e in exprs]


@dataclass(frozen=True)
class TrainSplit:
    texts: list[str]
    labels: list[int]  # 1 = persona, 0 = generic or agent-like
    langs: list[str]
    kinds: list[str]  # "persona" | "agent" | "generic"
    dropped_contaminated: int

    def of(self, kind: str, lang: str | None = None) -> list[str]:
        return [t for t, k, lg in zip(self.texts, self.kinds, self.langs) if k == kind and (lang is None or lg == lang)]


def _lang_of(source: str, fallback: str) -> str:
    head = source.split("/")[0].split("-")[0]
    return {"en": "en", "pt": "pt", "aen": "en", "apt": "pt"}.get(head, fallback)


def train_split(fixtures: Path = FIXTURES, held_out_prompts: set[str] | None = None) -> TrainSplit:
    held = held_out_prompts if held_out_prompts is not None else held_out(fixtures)
    texts, labels, langs, kinds, dropped = [], [], [], [], 0
    for conv in load_dataset(fixtures / "dataset_sharegpt.json").conversations:
        if any(t.role == "user" and t.content.strip() in held for t in conv.turns):
            dropped += 1
            continue
        lang = _lang_of(str(conv.raw.get("source", "")), "en")
        for _, text in conv.assistant_turns():
            agent = is_agent_like(text)
            texts.append(text), labels.append(0 if agent else 1), langs.append(lang)
            kinds.append("agent" if agent else "persona")
    for row in read_jsonl(fixtures / "negatives" / "generic_train.jsonl"):
        texts.append(row["reply"]), labels.append(0), langs.append(row["lang"]), kinds.append("generic")
    return TrainSplit(texts, labels, langs, kinds, dropped)


def load_prompts(path: Path) -> list[dict]:
    rows = read_jsonl(path)
    if not rows:
        raise EvalError(f"{path}: no prompts; an empty eval set never passes")
    for i, r in enumerate(rows):
        missing = [k for k in PROMPT_FIELDS if not r.get(k)]
        if missing:
            raise EvalError(f"{path}: prompt {i} lacks {', '.join(missing)}")
    return rows


def calibration_split(fixtures: Path = FIXTURES) -> list[dict]:
    return load_prompts(fixtures / "calibration.jsonl")


def eval_split(fixtures: Path = FIXTURES) -> list[dict]:
    return load_prompts(fixtures / "eval_prompts.jsonl")


def held_out(fixtures: Path = FIXTURES) -> set[str]:
    """Prompts of the calibration and eval splits: training must not see them."""
    return {r["prompt"].strip() for name in ("calibration.jsonl", "eval_prompts.jsonl")
            for r in read_jsonl(fixtures / name)}
