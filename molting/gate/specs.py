"""What the gate compares: each candidate or baseline named on the command line, checked from
its files before any model loads.

A model is one of:
- `base`: the base model with no adapter;
- a PEFT adapter directory (adapter_config.json + adapter_model.safetensors); a molting run also
  has run.json, written last, so a run that did not finish is refused; `.bin` weights are refused
  (pickle);
- a full model: a merged model directory (config.json + *.safetensors), a hub id ("org/name") or
  the offline default's name — loaded as its own model.

    >>> parse_model("phase3", "output/phase3").kind
    'adapter'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from molting.errors import ModelError
from molting.io import read_json
from molting.models import (
    HUB_ID,
    OFFLINE_DEFAULT,
    check_safetensors,
    fingerprint,
    resolve,
    safetensors_header,
)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
RUN_MANIFEST = "run.json"
RUN_MARKERS = ("checkpoints", "loss.csv")  # files only a molting run has


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # "base" | "adapter" | "model"
    source: str | None = None  # directory or hub id
    base_id: str | None = None  # adapters: the base model it was trained on, as recorded
    base_fingerprint: str | None = None  # adapters trained by molting: the base's fingerprint
    note: str | None = None  # shown in the report (e.g. "external adapter: base not verified")


def parse_model(name: str, value: str) -> ModelSpec:
    """Check one model from its files (no weights are loaded). Raises ModelError naming the file."""
    if value == "base":
        return ModelSpec(name, "base")
    path = Path(value).expanduser()
    if path.is_dir():
        if (path / ADAPTER_CONFIG).exists() or (path / "adapter_model.bin").exists():
            return _adapter(name, path)
        return _full_model(name, path)
    if path.exists():
        raise ModelError(
            f"{name}: {path} is a file; expected an adapter or model directory, a hub id or 'base'."
        )
    if value == OFFLINE_DEFAULT or HUB_ID.fullmatch(value):
        return ModelSpec(
            name,
            "model",
            value,
            note="hub model: downloaded unless already cached"
            if value != OFFLINE_DEFAULT
            else None,
        )
    raise ModelError(
        f"{name}: {value} not found: not a directory, not a hub id ('org/name'), not 'base'. "
        f"Train one with: molting train --config … --output {value}"
    )


def _adapter(name: str, path: Path) -> ModelSpec:
    cfg_path, weights = path / ADAPTER_CONFIG, path / ADAPTER_WEIGHTS
    if not weights.is_file():
        if (path / "adapter_model.bin").is_file():
            raise ModelError(
                f"{path}: adapter weights are a pickle (.bin); molting loads safetensors only. "
                "Re-save with model.save_pretrained(dir, safe_serialization=True)."
            )
        raise ModelError(f"{path}: no {ADAPTER_WEIGHTS}; not a complete adapter.")
    cfg = _json_object(cfg_path, "adapter config")
    if "peft_type" not in cfg:
        raise ModelError(f"{cfg_path}: not a PEFT adapter config (no 'peft_type').")
    check_safetensors(weights)
    run_path = path / RUN_MANIFEST
    if run_path.is_file():
        run = _json_object(run_path, "run manifest")
        if run.get("complete") is not True:
            raise ModelError(
                f"{path}: this training run did not finish ({RUN_MANIFEST} is not marked "
                "complete); resume it with `molting train … --resume` or train again."
            )
        base = run.get("base_model") if isinstance(run.get("base_model"), dict) else {}
        return ModelSpec(
            name,
            "adapter",
            str(path),
            base_id=base.get("id") or cfg.get("base_model_name_or_path"),
            base_fingerprint=base.get("fingerprint"),
        )
    if any((path / m).exists() for m in RUN_MARKERS):
        raise ModelError(
            f"{path}: a molting run without {RUN_MANIFEST}: it was interrupted before it finished; "
            "resume it with `molting train … --resume` or train again."
        )
    return ModelSpec(
        name,
        "adapter",
        str(path),
        base_id=cfg.get("base_model_name_or_path"),
        note="external adapter (no run.json): its base model cannot be verified",
    )


def _full_model(name: str, path: Path) -> ModelSpec:
    if not (path / "config.json").is_file():
        raise ModelError(
            f"{name}: {path} is neither an adapter (no {ADAPTER_CONFIG}) nor a model (no "
            "config.json)."
        )
    _json_object(path / "config.json", "model config")
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        what = (
            "pickle weights (.bin); molting loads safetensors only"
            if list(path.glob("*.bin"))
            else "no weights"
        )
        raise ModelError(f"{path}: {what}.")
    for w in weights:
        check_safetensors(w)
    return ModelSpec(name, "model", str(path))


def _json_object(path: Path, what: str) -> dict:
    if not path.is_file():
        raise ModelError(f"{path}: missing {what}.")
    try:
        data = read_json(path, what, ModelError)
    except ModelError as err:
        raise ModelError(f"{err} The {what} is corrupt; re-save or re-train.") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: the {what} is not a JSON object; re-save or re-train.")
    return data


def check_same_base(specs: list[ModelSpec], base_model: str | None) -> str | None:
    """The base every adapter shares (the base of `base` too), refusing adapters trained on
    different bases, naming both. `base_model` (--base-model) wins when given."""
    adapters = [s for s in specs if s.kind == "adapter"]
    if base_model is None and adapters:
        base_model = adapters[0].base_id
    for s in adapters:
        first = adapters[0]
        if (
            s.base_fingerprint
            and first.base_fingerprint
            and s.base_fingerprint != first.base_fingerprint
        ):
            raise ModelError(
                f"adapters '{first.name}' and '{s.name}' were trained on different bases "
                f"({first.base_id} {first.base_fingerprint} vs {s.base_id} {s.base_fingerprint}); "
                "compare adapters of one base, or pass the other one as a merged model."
            )
        if (
            not (s.base_fingerprint and first.base_fingerprint)
            and s.base_id
            and first.base_id
            and s.base_id != first.base_id
        ):
            raise ModelError(
                f"adapters '{first.name}' and '{s.name}' name different bases ({first.base_id} vs "
                f"{s.base_id}); compare adapters of one base."
            )
    needs_base = any(s.kind in ("base", "adapter") for s in specs)
    if needs_base and not base_model:
        raise ModelError(
            "cannot tell which base model to load: no adapter records one; pass --base-model."
        )
    return base_model if needs_base else None


def check_adapters_fit(specs: list[ModelSpec], base_model: str | None) -> None:
    """What can be told from files before the base loads: each adapter was trained on this base (the
    fingerprint its run recorded), it changes something (its weights are not all zero), and its
    LoRA matrices have the shapes of the base's layers. A hub base's files are not here: PEFT and
    the canary check those adapters after loading."""
    adapters = [s for s in specs if s.kind == "adapter"]
    if not adapters or base_model is None:
        return
    path, source = resolve(base_model)
    if source == "hub":
        return
    base_fp = fingerprint(path, source)
    layers = _layer_shapes(Path(path))
    for s in adapters:
        if s.base_fingerprint and s.base_fingerprint != base_fp:
            raise ModelError(
                f"adapter '{s.name}' ({s.source}) was trained on base {s.base_id} "
                f"({s.base_fingerprint}), but the base to load is {base_model} ({base_fp}); pass "
                "--base-model with the model it was trained on."
            )
        tensors = _tensors(Path(s.source) / ADAPTER_WEIGHTS)
        lora_b = [
            t for k, t in tensors.items() if "lora_B" in k
        ]  # B starts at zero: a LoRA update is B·A
        if not any(bool(t.any()) for t in lora_b or tensors.values()):
            raise ModelError(
                f"adapter '{s.name}' ({s.source}): every {'lora_B ' if lora_b else ''}weight is "
                "zero, so it changes nothing (an untrained or zeroed adapter); train it, or pass "
                "the right directory."
            )
        for key, t in tensors.items():
            problem = _misfit(key, tuple(t.shape), layers)
            if problem:
                raise ModelError(
                    f"adapter '{s.name}' ({s.source}) does not fit base {base_model}: {problem}; "
                    "pass --base-model with the model it was trained on."
                )


def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def _layer_shapes(model_dir: Path) -> dict[str, tuple[int, ...]] | None:
    """Weight shapes from the base's safetensors headers (nothing loaded); None when they would not
    compare (a checkpoint saved quantized packs its weights)."""
    cfg = model_dir / "config.json"
    if cfg.is_file() and "quantization_config" in json.loads(cfg.read_text(encoding="utf-8")):
        return None
    shapes: dict[str, tuple[int, ...]] = {}
    for f in sorted(model_dir.glob("*.safetensors")):
        shapes |= {
            k: tuple(v["shape"]) for k, v in safetensors_header(f)[1].items() if k != "__metadata__"
        }
    return shapes


def _misfit(
    key: str, shape: tuple[int, ...], layers: dict[str, tuple[int, ...]] | None
) -> str | None:
    """'layers.0.self_attn.q_proj: lora_A is 2×32, the base's weight is 576×576' when a LoRA matrix
    cannot multiply its base layer; None when it can, or when the layer is not found by name."""
    if layers is None or not key.endswith((".lora_A.weight", ".lora_B.weight")):
        return None
    module = key.removeprefix("base_model.model.").rsplit(".lora_", 1)[0]
    weight = next(
        (
            layers[n]
            for n in (f"{module}.weight", f"{module.split('.', 1)[-1]}.weight")
            if n in layers
        ),
        None,
    )
    if weight is None or len(weight) != 2 or len(shape) != 2:
        return None
    side = shape[1] if ".lora_A." in key else shape[0]  # A: rank × in, B: out × rank
    if side in weight:  # either way round: Conv1D layers (GPT-2) store their weight transposed
        return None
    which = "lora_A" if ".lora_A." in key else "lora_B"
    return (
        f"{module}: {which} is {shape[0]}×{shape[1]}, the base's weight is {weight[0]}×{weight[1]}"
    )
