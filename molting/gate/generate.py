"""Batched, greedy, cached generation for every model the gate compares.

Adapters share one base: it is loaded once, every adapter is attached under its own name and
switched with `set_adapter`, and the base itself is the same model under `disable_adapter()`
(lm-eval #511/#808: adapters silently not applied are a classic failure, so a canary checks
they change the logits). Full models (merged directories, hub ids) are loaded one at a time,
generated, and released. Every model uses the same batch size, padding side, order and dtype,
so comparisons are fair (lm-eval PR #1992: greedy decoding still varies with batch size).

Generations are cached on disk keyed by everything that changes the output: the model's weights
fingerprint, the adapter's sha256, the tokenizer + chat template, the generation config and the
full prompt (system, history, message). The keys are computed from files, so a gate whose
generations (and canary) are all cached loads no model at all.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from molting.errors import EvalError, ModelError
from molting.gate.records import Generation
from molting.gate.specs import ADAPTER_CONFIG, ADAPTER_WEIGHTS, ModelSpec
from molting.io import read_json
from molting.models import cache_root, fingerprint, load_base, resolve, tokenizer_files_hash
from molting.persona import Prompt

END_OF_TURN = (
    "<|im_end|>",
    "<|end|>",
    "<|eot_id|>",
    "<end_of_turn>",
)  # ChatML, Phi-3, Llama 3, Gemma


@dataclass(frozen=True)
class GenerationConfig:
    # persona replies are mostly 20–80 words; 96 tokens leaves room without waste
    max_new_tokens: int = 96
    # same for every model (greedy output depends on batch composition). CPU decoding
    batch_size: int = 96
    # is memory-bound: one step costs 0.18 s at 8 rows, 0.29 s at 32, 0.51 s at 72 (SmolLM2-135M, 2
    # cores), so a whole eval set goes in one batch
    do_sample: bool = False  # greedy: deterministic
    repetition_penalty: float = 1.0  # none: the metrics must see degenerate loops as they are

    def key(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GenerationCache:
    """One JSON file per key under `root` ($MOLTING_GENERATIONS, else
    $MOLTING_CACHE/generations)."""

    root: Path
    hits: int = 0
    misses: int = 0

    @classmethod
    def default(cls) -> GenerationCache:
        env = os.environ.get("MOLTING_GENERATIONS")
        return cls(Path(env) if env else cache_root() / "generations")

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def peek(self, key: str) -> dict[str, Any] | None:
        p = self._path(key)
        try:
            return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None
        except (OSError, json.JSONDecodeError):
            return None  # a damaged entry is a miss, regenerated and rewritten

    def get(self, key: str) -> dict[str, Any] | None:
        value = self.peek(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        p = self._path(key)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, p)
        except OSError:
            pass  # an unwritable cache costs time next run, never correctness


def cache_key(
    *,
    weights: str,
    adapter_sha: str | None,
    tokenizer_hash: str,
    config: GenerationConfig,
    messages: list[dict[str, str]],
    sample_index: int = 0,
) -> str:
    payload = {
        "weights": weights,
        "adapter": adapter_sha,
        "tokenizer": tokenizer_hash,
        "gen": config.key(),
        "messages": messages,
        "sample": sample_index,
    }
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()


def adapter_sha256(adapter_dir: str | Path) -> str:
    """Hash of the adapter weights and config: changes whenever the adapter does."""
    d = Path(adapter_dir)
    digest = hashlib.sha256()
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        f = d / name
        if not f.is_file():
            raise ModelError(
                f"{d}: not a PEFT adapter directory (missing {name}). Train one with `molting "
                "train`."
            )
        digest.update(name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def end_of_turn_ids(tokenizer: Any) -> list[int]:
    ids = {tokenizer.eos_token_id}
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_OF_TURN if t in vocab)
    return sorted(i for i in ids if i is not None)


def render_prompt(tokenizer: Any, prompt: Prompt) -> str:
    return tokenizer.apply_chat_template(
        prompt.messages(), tokenize=False, add_generation_prompt=True
    )


# ---------------------------------------------------------------- identities (from files)


@dataclass(frozen=True)
class Identity:
    """What a model's generations are keyed on, computed without loading it."""

    weights: str  # fingerprint of the (base) weights
    adapter_sha: str | None
    tokenizer: str


def identify(spec: ModelSpec, base_path: str | None, base_source: str | None) -> Identity | None:
    """The cache identity of `spec`, or None when it cannot be known without loading (hub ids)."""
    if spec.kind == "model":
        path, source = resolve(spec.source)
        tok = tokenizer_files_hash(path)
        return (
            None
            if source == "hub" or tok is None
            else Identity(fingerprint(path, source), None, tok)
        )
    if base_path is None or base_source == "hub":
        return None
    tok = tokenizer_files_hash(base_path)
    if tok is None:
        return None
    sha = adapter_sha256(spec.source) if spec.kind == "adapter" else None
    return Identity(fingerprint(base_path, base_source), sha, tok)


def prompt_keys(
    identity: Identity, prompts: Sequence[Prompt], config: GenerationConfig
) -> list[str]:
    return [
        cache_key(
            weights=identity.weights,
            adapter_sha=identity.adapter_sha,
            tokenizer_hash=identity.tokenizer,
            config=config,
            messages=p.messages(),
        )
        for p in prompts
    ]


# ---------------------------------------------------------------- generation


@dataclass
class LoadedModels:
    """The base with its adapters attached (loaded lazily), and full models loaded one at a time."""

    base_model: str | None
    specs: dict[str, ModelSpec]
    quantization: str = "4bit"  # 4-bit on CUDA; fp32 on CPU, said loudly
    base: Any = None  # molting.models.LoadedBase once loaded
    model: Any = None  # the PEFT-wrapped base
    adapter_shas: dict[str, str] = field(default_factory=dict)
    loaded: list[str] = field(
        default_factory=list
    )  # what was actually loaded (facts for the report)

    def ensure_base(self) -> Any:
        if self.base is None:
            self.base = load_base(self.base_model, self.quantization, for_training=False)
            self.model = self.base.model
            self.loaded.append(f"base {self.base_model}")
            for name, spec in self.specs.items():
                if spec.kind == "adapter":
                    self._attach(name, spec)
            self.model.eval()
        return self.base

    def _attach(self, name: str, spec: ModelSpec) -> None:
        from peft import PeftModel

        if spec.base_fingerprint and spec.base_fingerprint != self.base.fingerprint:
            raise EvalError(
                f"adapter '{name}' ({spec.source}) was trained on base {spec.base_id} "
                f"({spec.base_fingerprint}), but the loaded base is {self.base_model} "
                f"({self.base.fingerprint}); pass --base-model with the model it was trained on."
            )
        try:
            if self.adapter_shas:
                self.model.load_adapter(spec.source, adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, spec.source, adapter_name=name)
        except (RuntimeError, ValueError, KeyError) as err:
            first = str(err).strip().splitlines()[0][:300]
            raise EvalError(
                f"adapter '{name}' ({spec.source}) does not fit base {self.base_model}: {first}"
            ) from None
        self.adapter_shas[name] = adapter_sha256(spec.source)

    def generate(
        self, name: str, prompts: Sequence[Prompt], config: GenerationConfig
    ) -> list[tuple[str, int]]:
        spec = self.specs[name]
        if spec.kind == "model":
            own = load_base(spec.source, self.quantization, for_training=False)
            self.loaded.append(f"model {spec.source}")
            try:
                return _generate(own.model, own.tokenizer, prompts, config, name)
            finally:
                del own
        self.ensure_base()
        if spec.kind == "base":
            ctx = self.model.disable_adapter() if self.adapter_shas else contextlib.nullcontext()
        else:
            self.model.set_adapter(name)
            ctx = contextlib.nullcontext()
        with ctx:
            return _generate(self.model, self.base.tokenizer, prompts, config, name)

    def canary(self, prompt: Prompt) -> dict[str, float]:
        """Max |logit difference| between each adapter and the base on one prompt: 0 = not
        applied."""
        import torch

        self.ensure_base()
        tok = self.base.tokenizer
        enc = tok([render_prompt(tok, prompt)], return_tensors="pt", add_special_tokens=False).to(
            self.model.device
        )
        diffs = {}
        with torch.inference_mode():
            with self.model.disable_adapter() if self.adapter_shas else contextlib.nullcontext():
                base = self.model(**enc).logits[0, -1].float()
            for name in self.adapter_shas:
                self.model.set_adapter(name)
                diffs[name] = float((self.model(**enc).logits[0, -1].float() - base).abs().max())
        return diffs

    def close(self) -> None:
        self.model = self.base = None
        gc.collect()


def _generate(
    model: Any, tok: Any, prompts: Sequence[Prompt], config: GenerationConfig, name: str
) -> list[tuple[str, int]]:
    import torch

    model.eval()
    texts = [render_prompt(tok, p) for p in prompts]
    order = sorted(
        range(len(texts)), key=lambda i: (len(texts[i]), i)
    )  # less padding, same for every model
    out: list[tuple[str, int] | None] = [None] * len(texts)
    starts = range(0, len(order), config.batch_size)
    with torch.inference_mode():
        for start in tqdm(
            starts, desc=f"generating ({name})", unit="batch", leave=False, disable=None
        ):
            idx = order[start : start + config.batch_size]
            for i, res in zip(idx, _batch(model, tok, [texts[i] for i in idx], config)):
                out[i] = res
    return out  # type: ignore[return-value]


def _batch(
    model: Any, tok: Any, texts: list[str], config: GenerationConfig
) -> list[tuple[str, int]]:
    tok.padding_side = "left"  # decoder-only batching: prompts end where generation starts
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    stop = end_of_turn_ids(tok)
    gen = model.generate(
        **enc,
        max_new_tokens=config.max_new_tokens,
        do_sample=config.do_sample,
        repetition_penalty=config.repetition_penalty,
        eos_token_id=stop,
        pad_token_id=tok.pad_token_id,
        temperature=None,
        top_p=None,
        top_k=None,
    )
    results = []
    for row in gen[:, enc["input_ids"].shape[1] :]:
        ids = row.tolist()
        n = next((k for k, t in enumerate(ids) if t in stop), len(ids))
        results.append((tok.decode(ids[:n], skip_special_tokens=True).strip(), n))
    return results


class Generator:
    """Generates (or replays from the cache) every model's replies; loads models only for misses."""

    def __init__(
        self, specs: dict[str, ModelSpec], base_model: str | None, cache: GenerationCache | None
    ):
        self.specs, self.cache = specs, cache
        self.base_path, self.base_source = resolve(base_model) if base_model else (None, None)
        self.models = LoadedModels(base_model, specs)
        self.identities = {
            n: identify(s, self.base_path, self.base_source) for n, s in specs.items()
        }

    def generate(
        self, name: str, prompts: list[Prompt], config: GenerationConfig
    ) -> list[Generation]:
        ident = self.identities[name]
        keys = (
            prompt_keys(ident, prompts, config) if ident and self.cache else [None] * len(prompts)
        )
        found = [self.cache.get(k) if k else None for k in keys]
        todo = [i for i, f in enumerate(found) if f is None]
        fresh = self.models.generate(name, [prompts[i] for i in todo], config) if todo else []
        for i, (reply, n) in zip(todo, fresh):
            found[i] = {"reply": reply, "new_tokens": n}
            if keys[i] and self.cache:
                self.cache.put(keys[i], found[i] | {"model": name, "prompt_id": prompts[i].id})
        missed = set(todo)
        return [
            Generation(name, p.id, f["reply"], f["new_tokens"], i not in missed)
            for i, (p, f) in enumerate(zip(prompts, found))
        ]

    def canary(self, prompt: Prompt) -> dict[str, float]:
        """Per adapter, max |Δ logit| vs the base on `prompt`; cached like generations."""
        adapters = [n for n, s in self.specs.items() if s.kind == "adapter"]
        if not adapters:
            return {}
        idents = [self.identities[n] for n in adapters]
        key = None
        if self.cache and all(idents):
            key = cache_key(
                weights=idents[0].weights,
                adapter_sha="canary:" + ",".join(i.adapter_sha for i in idents),
                tokenizer_hash=idents[0].tokenizer,
                config=GenerationConfig(),
                messages=prompt.messages(),
            )
            hit = self.cache.peek(key)
            if hit is not None and set(hit.get("diffs", {})) == set(adapters):
                return hit["diffs"]
        diffs = self.models.canary(prompt)
        if key:
            self.cache.put(key, {"diffs": diffs})
        return diffs

    def facts(self) -> dict[str, Any]:
        b = self.models.base
        out: dict[str, Any] = {
            "models_loaded": self.models.loaded or ["none (every generation was cached)"]
        }
        if b is not None:
            out |= {
                "base_model": b.model_id,
                "base_fingerprint": b.fingerprint,
                "device": b.device,
                "dtype": b.dtype,
                "quantization": b.quantization,
            }
            if b.substitution:
                out["substitution"] = b.substitution
        out["models"] = {
            n: {
                "kind": s.kind,
                "source": s.source,
                **(
                    {"sha256": self.identities[n].adapter_sha[:16]}
                    if s.kind == "adapter" and self.identities[n]
                    else {}
                ),
                **({"note": s.note} if s.note else {}),
            }
            for n, s in self.specs.items()
        }
        return out

    def close(self) -> None:
        self.models.close()


class CannedGenerator:
    """Replies given in a JSON file: {model: {prompt_id: reply}} (`molting generate` writes one)."""

    def __init__(self, path: str | Path, models: list[str], prompts: list[Prompt]):
        data = read_json(path, "replies file", EvalError)
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise EvalError(f"{path}: expected {{model: {{prompt_id: reply}}}}.")
        for name in models:
            if name not in data:
                raise EvalError(
                    f"{path}: no replies for model '{name}' (has: {', '.join(data) or 'none'})."
                )
            missing = [p.id for p in prompts if not isinstance(data[name].get(p.id), str)]
            if missing:
                raise EvalError(
                    f"{path}: model '{name}' has no reply for prompt(s) {', '.join(missing[:5])}"
                    f"{' …' if len(missing) > 5 else ''}."
                )
        self.data, self.path = data, path

    def generate(
        self, name: str, prompts: list[Prompt], config: GenerationConfig
    ) -> list[Generation]:
        return [
            Generation(name, p.id, self.data[name][p.id], len(self.data[name][p.id].split()), False)
            for p in prompts
        ]

    def canary(self, prompt: Prompt) -> dict[str, float]:
        return {}

    def facts(self) -> dict[str, Any]:
        return {"generator": f"replies from {self.path}", "models_loaded": ["none (--replies)"]}

    def close(self) -> None:
        pass
