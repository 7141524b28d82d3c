"""The fitted scorer, stored so a gate re-run loads it instead of refitting it.

Stored under $MOLTING_CACHE/scorers/<key>.{json.gz,npz}, keyed on everything the fit depends
on: the scorer version, the bundle's file fingerprints, the packaged sets, and the versions of
scikit-learn and numpy. No pickle: vocabularies and counts are JSON, arrays are .npz loaded with
allow_pickle=False. A damaged or missing entry is simply refitted.
"""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from molting.io import sha256_json
from molting.metrics.fluency import ClassBigramLM
from molting.metrics.personality import StyleClassifier
from molting.metrics.topicality import Competitor, Topicality
from molting.models import cache_root


def state_key(fingerprints: dict[str, str], version: str) -> str:
    """Everything the fit depends on: bundle, packaged sets, scorer version, the metric code itself
    (a change that forgot to bump the version still refits) and the libraries that fit."""

    libs = {
        name: metadata.version(name)
        for name in ("scikit-learn", "numpy", "lingua-language-detector", "pyspellchecker")
    }
    code = sha256_json(
        {p.name: p.read_text(encoding="utf-8") for p in sorted(Path(__file__).parent.glob("*.py"))}
    )
    return sha256_json(
        {"fingerprints": fingerprints, "version": version, "libs": libs, "code": code}
    )[:24]


def state_dir() -> Path:

    return cache_root() / "scorers"


def save(key: str, style, topicality, lm, foreign: list[str]) -> None:
    meta_style, arrays = style.state()
    tf_vocab = {k: int(v) for k, v in topicality.tfidf.vocabulary_.items()}
    meta = {
        "style_vocabularies": [_ordered(v) for v in meta_style["vocabularies"]],
        "topical_vocabulary": _ordered(tf_vocab),
        "foreign": foreign,
        "topical_df": dict(topicality.df),
        "topical_docs": topicality.n_docs,
        "topical_competitors": [[c.lang, c.prompt, c.text] for c in topicality.competitors],
        "lm": None
        if lm is None
        else {
            "vocab": sorted(lm.vocab),
            "uni": dict(lm.uni),
            "prev": dict(lm.prev),
            "bi": [[a, b, n] for (a, b), n in lm.bi.items()],
        },
    }
    folder = state_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp_json, tmp_npz = (
            folder / f".{key}.{os.getpid()}.json.gz",
            folder / f".{key}.{os.getpid()}.npz",
        )
        with gzip.open(tmp_json, "wt", encoding="utf-8") as f:
            json.dump(meta, f, ensure_ascii=False)
        with open(tmp_npz, "wb") as f:
            np.savez(
                f, topical_idf=topicality.tfidf.idf_, **{f"style_{k}": v for k, v in arrays.items()}
            )
        os.replace(tmp_npz, folder / f"{key}.npz")
        os.replace(tmp_json, folder / f"{key}.json.gz")
    except OSError:
        pass  # an unwritable cache costs a refit next time, never correctness


def load(key: str) -> tuple[dict, dict[str, np.ndarray]] | None:
    folder = state_dir()
    try:
        with gzip.open(folder / f"{key}.json.gz", "rt", encoding="utf-8") as f:
            meta = json.load(f)
        with np.load(folder / f"{key}.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError):
        return None
    return meta, arrays


def _ordered(vocab: dict[str, int]) -> list[str]:
    out = [""] * len(vocab)
    for term, i in vocab.items():
        out[i] = term
    return out


def restore(meta: dict, arrays: dict[str, np.ndarray], signatures) -> tuple[Any, Any, Any]:
    """(style classifier, topicality, class-bigram LM or None, foreign phrases) from a stored
    state."""

    vocabs = [{t: i for i, t in enumerate(v)} for v in meta["style_vocabularies"]]
    style = StyleClassifier.from_state(
        signatures,
        {"vocabularies": vocabs},
        {k[len("style_") :]: v for k, v in arrays.items() if k.startswith("style_")},
    )
    topicality = Topicality.from_state(
        {t: i for i, t in enumerate(meta["topical_vocabulary"])},
        arrays["topical_idf"],
        Counter(meta["topical_df"]),
        meta["topical_docs"],
        [Competitor(*c) for c in meta["topical_competitors"]],
    )
    lm = None
    if meta["lm"] is not None:
        lm = ClassBigramLM.from_counts(
            frozenset(meta["lm"]["vocab"]),
            Counter(meta["lm"]["uni"]),
            Counter({(a, b): n for a, b, n in meta["lm"]["bi"]}),
            Counter(meta["lm"]["prev"]),
        )
    return style, topicality, lm, meta["foreign"]


# ---------------------------------------------------------------- measured replies


class RawCache:
    """A reply's anchor-free measurements (Scorer.raw), stored in SQLite under the fitted state's
    key: a gate re-run (or its controls, the same every run) measures nothing twice."""

    def __init__(self, key: str):

        self.key, self.db = key, None
        try:
            path = cache_root() / "measured.sqlite"
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path), timeout=30)
            self.db.execute("CREATE TABLE IF NOT EXISTS raw (key TEXT PRIMARY KEY, value TEXT)")
        except (OSError, sqlite3.Error):
            self.db = None  # no cache: measured again next time

    def item_key(self, lang: str, prompt: str, reference: str, reply: str) -> str:
        return sha256_json([self.key, lang, prompt, reference, reply])

    def get_many(self, keys: list[str]) -> dict[str, dict]:

        if self.db is None or not keys:
            return {}
        out = {}
        try:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                for k, v in self.db.execute(
                    f"SELECT key, value FROM raw WHERE key IN ({','.join('?' * len(chunk))})", chunk
                ):
                    out[k] = json.loads(v)
        except (sqlite3.Error, ValueError):
            return {}
        return out

    def put_many(self, items: dict[str, dict]) -> None:

        if self.db is None or not items:
            return
        try:
            self.db.executemany(
                "INSERT OR REPLACE INTO raw VALUES (?, ?)",
                [(k, json.dumps(v, ensure_ascii=False)) for k, v in items.items()],
            )
            self.db.commit()
        except sqlite3.Error:
            pass
