"""Batched, greedy, cached generation from one base model with several adapters attached.

The base is loaded once; every adapter is attached to it under its own name and switched with
`set_adapter`; the base itself is the same model under `disable_adapter()` (lm-eval #511/#808:
adapters silently not applied are a classic failure, so a canary checks they change logits).
Every model is generated with the same batch size, padding side, order and dtype, so
comparisons are fair (lm-eval PR #1992: greedy decoding still varies with batch size).

Generations are cached on disk keyed by everything that changes the output: base fingerprint,
adapter sha256, tokenizer + chat template hash, generation config, prompt and sample index.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from molting.errors import EvalError, ModelError

BASE = "base"  # the name of the base model with no adapter
END_OF_TURN = ("<|im_end|>", "<|end|>", "<|eot_id|>", "<end_of_turn>")  # ChatML, Phi-3, Llama 3, Gemma


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 96  # Cláudio's replies are 20–80 words; 96 tokens leaves room without waste
    batch_size: int = 96  # same for every model (greedy output depends on batch composition). CPU decoding
    # is memory-bound: one step costs 0.18 s at 8 rows, 0.29 s at 32, 0.51 s at 72 (SmolLM2-135M, 2 cores),
    # so the whole eval set (70 prompts) goes in one batch
    do_sample: bool = False  # greedy: deterministic
    repetition_penalty: float = 1.0  # none: the fluency metric must see degenerate loops as they are

    def key(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Generation:
    model: str
    prompt_id: str
    reply: str
    new_tokens: int
    cached: bool


@dataclass
class GenerationCache:
    """One JSON file per key under `root` ($MOLTING_GENERATIONS, else $MOLTING_CACHE/generations)."""

    root: Path
    hits: int = 0
    misses: int = 0

    @classmethod
    def default(cls) -> GenerationCache:
        from molting.models import cache_root

        env = os.environ.get("MOLTING_GENERATIONS")
        return cls(Path(env) if env else cache_root() / "generations")

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        p = self._path(key)
        if not p.is_file():
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(p.read_text(encoding="utf-8"))

    def put(self, key: str, value: dict[str, Any]) -> None:
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, p)


def cache_key(*, base_fingerprint: str, adapter_sha: str | None, tokenizer_hash: str, config: GenerationConfig,
              prompt: str, system: str | None = None, sample_index: int = 0) -> str:
    payload = {"base": base_fingerprint, "adapter": adapter_sha, "tokenizer": tokenizer_hash, "gen": config.key(),
               "prompt": prompt, "system": system, "sample": sample_index}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def adapter_sha256(adapter_dir: str | Path) -> str:
    """Hash of the adapter weights and config: changes whenever the adapter does."""
    d = Path(adapter_dir)
    digest = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        f = d / name
        if not f.is_file():
            raise ModelError(f"{d}: not a PEFT adapter directory (missing {name}). Train one with `molting train`.")
        digest.update(name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def tokenizer_hash(tokenizer: Any) -> str:
    """Vocabulary size, special tokens and chat template: what decides how prompts are rendered."""
    payload = {"template": tokenizer.chat_template, "vocab": len(tokenizer), "special": tokenizer.all_special_tokens,
               "class": type(tokenizer).__name__}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def end_of_turn_ids(tokenizer: Any) -> list[int]:
    ids = {tokenizer.eos_token_id}
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_OF_TURN if t in vocab)
    return sorted(i for i in ids if i is not None)


@dataclass
class ModelBank:
    """A base model with named adapters attached; `generate(name, …)` switches between them."""

    base: Any  # molting.models.LoadedBase
    adapters: dict[str, Path] = field(default_factory=dict)
    adapter_shas: dict[str, str] = field(default_factory=dict)
    model: Any = None

    @classmethod
    def load(cls, base_model: str, adapters: dict[str, Path], quantization: str = "4bit") -> ModelBank:
        from molting.models import load_base

        bank = cls(base=load_base(base_model, quantization, for_training=False), adapters={})
        bank.model = bank.base.model
        for name, path in adapters.items():
            bank.attach(name, Path(path))
        bank.model.eval()
        return bank

    def attach(self, name: str, path: Path) -> None:
        from peft import PeftModel

        if name == BASE:
            raise EvalError(f"'{BASE}' is reserved for the base model; give the adapter another name.")
        sha = adapter_sha256(path)
        if self.adapters:
            self.model.load_adapter(str(path), adapter_name=name)
        else:
            self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name)
        self.adapters[name], self.adapter_shas[name] = path, sha

    def names(self) -> list[str]:
        return [BASE, *self.adapters]

    def close(self) -> None:
        import gc

        self.model = None
        self.base = None
        gc.collect()

    # -------------------------------------------------------------- generation

    def generate(self, name: str, prompts: Sequence[dict[str, Any]], config: GenerationConfig,
                 cache: GenerationCache | None = None) -> list[Generation]:
        """Generate one reply per prompt (dicts with `id`, `prompt`, optional `system`)."""
        tok = self.base.tokenizer
        keys = [cache_key(base_fingerprint=self.base.fingerprint, adapter_sha=self.adapter_shas.get(name),
                          tokenizer_hash=tokenizer_hash(tok), config=config, prompt=p["prompt"],
                          system=p.get("system")) for p in prompts]
        found = [cache.get(k) if cache else None for k in keys]
        todo = [i for i, f in enumerate(found) if f is None]
        fresh = self._generate_uncached(name, [prompts[i] for i in todo], config) if todo else []
        for i, (reply, n) in zip(todo, fresh):
            found[i] = {"reply": reply, "new_tokens": n}
            if cache:
                cache.put(keys[i], found[i] | {"model": name, "prompt_id": prompts[i]["id"]})
        todo_set = set(todo)
        return [Generation(name, p["id"], f["reply"], f["new_tokens"], i not in todo_set)
                for i, (p, f) in enumerate(zip(prompts, found))]

    def _generate_uncached(self, name: str, prompts: Sequence[dict[str, Any]], config: GenerationConfig) -> list[tuple[str, int]]:
        import contextlib

        import torch
        from tqdm.auto import tqdm

        model = self.model
        if name == BASE:
            ctx = model.disable_adapter() if self.adapters else contextlib.nullcontext()
        else:
            if name not in self.adapters:
                raise EvalError(f"unknown model '{name}'; loaded: {', '.join(self.names())}.")
            model.set_adapter(name)
            ctx = contextlib.nullcontext()
        model.eval()
        texts = [render_prompt(self.base.tokenizer, p) for p in prompts]
        order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))  # less padding, same for every model
        out: list[tuple[str, int] | None] = [None] * len(texts)
        starts = range(0, len(order), config.batch_size)
        bar = tqdm(starts, desc=f"generating ({name})", unit="batch", leave=False, disable=None)
        with ctx, torch.inference_mode():
            for start in bar:
                idx = order[start:start + config.batch_size]
                for i, res in zip(idx, self._generate_batch([texts[i] for i in idx], config, model)):
                    out[i] = res
        return out  # type: ignore[return-value]

    def _generate_batch(self, texts: list[str], config: GenerationConfig, model: Any) -> list[tuple[str, int]]:
        tok = self.base.tokenizer
        tok.padding_side = "left"  # decoder-only batching: prompts end where generation starts
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        stop = end_of_turn_ids(tok)
        gen = model.generate(**enc, max_new_tokens=config.max_new_tokens, do_sample=config.do_sample,
                             repetition_penalty=config.repetition_penalty, eos_token_id=stop,
                             pad_token_id=tok.pad_token_id, temperature=None, top_p=None, top_k=None)
        new = gen[:, enc["input_ids"].shape[1]:]
        results = []
        for row in new:
            ids = row.tolist()
            n = next((k for k, t in enumerate(ids) if t in stop), len(ids))
            results.append((tok.decode(ids[:n], skip_special_tokens=True).strip(), n))
        return results

    def canary(self, prompt: dict[str, Any]) -> dict[str, float]:
        """Max |logit difference| between each adapter and the base on one prompt: 0 = not applied."""
        import contextlib

        import torch

        tok = self.base.tokenizer
        enc = tok([render_prompt(tok, prompt)], return_tensors="pt", add_special_tokens=False).to(self.model.device)
        with torch.inference_mode():
            with self.model.disable_adapter() if self.adapters else contextlib.nullcontext():
                base = self.model(**enc).logits[0, -1].float()
            diffs = {}
            for name in self.adapters:
                self.model.set_adapter(name)
                diffs[name] = float((self.model(**enc).logits[0, -1].float() - base).abs().max())
        return diffs


def render_prompt(tokenizer: Any, prompt: dict[str, Any]) -> str:
    messages = ([{"role": "system", "content": prompt["system"]}] if prompt.get("system") else [])
    messages.append({"role": "user", "content": prompt["prompt"]})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
