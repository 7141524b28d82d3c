"""The Cláudio fixture: composition, voice constraints, and disjoint splits."""

from __future__ import annotations

import json
import re
from itertools import combinations
from pathlib import Path

import pytest
import yaml

from molting.data import load_dataset
from molting.text.patterns import is_agent_like

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "fixtures/claudio"
NEAR_DUP = 0.8  # character 5-gram Jaccard above this = near-duplicate (the bound)


def grams(text: str, n: int = 5) -> set[str]:
    t = " ".join(text.lower().split())
    return {t[i : i + n] for i in range(max(1, len(t) - n + 1))}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def max_pair_jaccard(texts: list[str]) -> tuple[float, str, str]:
    gs = [grams(t) for t in texts]
    best = (0.0, "", "")
    for (i, a), (j, b) in combinations(enumerate(gs), 2):
        if len(a) * 2 < len(b) or len(b) * 2 < len(a):
            continue  # Jaccard cannot exceed 0.5 when sizes differ 2×
        s = jaccard(a, b)
        if s > best[0]:
            best = (s, texts[i][:50], texts[j][:50])
    return best


@pytest.fixture(scope="module")
def kept_pools():
    return yaml.safe_load((FIX / "pools/kept_en.yaml").read_text()) + yaml.safe_load(
        (FIX / "pools/kept_pt.yaml").read_text()
    )


def jsonl(name: str) -> list[dict]:
    return [
        json.loads(x) for x in (FIX / name).read_text(encoding="utf-8").splitlines() if x.strip()
    ]


def test_raw_dataset_is_the_built_one():
    import sys

    sys.path.insert(0, str(FIX))
    from build_fixture import build

    records, keep = build()
    assert json.loads((FIX / "dataset_sharegpt.json").read_text(encoding="utf-8")) == records
    assert len(records) == 484 and len(keep) == 153


def test_kept_pool_composition(kept_pools):
    assert len(kept_pools) == 153
    pt = sum(x["id"].startswith("pt-") for x in kept_pools)
    assert pt / 153 >= 0.40
    assert sum(len(x["turns"]) > 1 for x in kept_pools) / 153 >= 0.20
    assert len({x["topic"] for x in kept_pools}) >= 8


def test_kept_replies_are_short_direct_and_distinct(kept_pools):
    replies = [t["claudio"] for x in kept_pools for t in x["turns"]]
    assert len(set(replies)) == len(replies)
    assert not [r[:60] for r in replies if is_agent_like(r)]
    words = sorted(len(r.split()) for r in replies)
    assert words[int(0.9 * len(words))] <= 90  # most replies well under ~120 tokens
    score, a, b = max_pair_jaccard(replies)
    assert score <= NEAR_DUP, (score, a, b)


def test_portuguese_is_brazilian(kept_pools):
    european = re.compile(
        r"\b(tu est[aá]s|estou a \w+r|telem[oó]vel|ecr[aã]|ficheiro|utilizador|autocarro|equipa)\b",
        re.I,
    )
    pt = [t["claudio"] for x in kept_pools if x["id"].startswith("pt-") for t in x["turns"]]
    assert not [r[:60] for r in pt if european.search(r)]


@pytest.mark.parametrize(
    "name, n, per_lang", [("eval_prompts.jsonl", 60, 30), ("calibration.jsonl", 30, 15)]
)
def test_prompt_splits(name, n, per_lang):
    rows = jsonl(name)
    assert len(rows) >= n
    assert (
        sum(r["lang"] == "en" for r in rows) >= per_lang
        and sum(r["lang"] == "pt" for r in rows) >= per_lang
    )
    assert len({r["id"] for r in rows}) == len(rows)
    assert sum(r["category"] == "tempts-agent" for r in rows) >= 10
    assert sum(r["category"] == "small-talk" for r in rows) >= 4
    assert not [r["id"] for r in rows if is_agent_like(r["reference"])]
    assert all(is_agent_like(r["agent_like"]) for r in rows), [
        r["id"] for r in rows if not is_agent_like(r["agent_like"])
    ]


def test_no_prompt_is_shared_across_splits():
    train = [
        t.content
        for c in load_dataset(FIX / "dataset_sharegpt.json").conversations
        for t in c.turns
        if t.role == "user"
    ]
    splits = {
        "train": train,
        "eval": [r["prompt"] for r in jsonl("eval_prompts.jsonl")],
        "calibration": [r["prompt"] for r in jsonl("calibration.jsonl")],
    }
    grams_by = {k: [grams(p) for p in v] for k, v in splits.items()}
    for a, b in (("train", "eval"), ("train", "calibration"), ("eval", "calibration")):
        worst = max(jaccard(x, y) for x in grams_by[a] for y in grams_by[b])
        assert worst <= NEAR_DUP, (a, b, worst)
