"""Training config: a frozen dataclass loaded from YAML, validated once at the boundary.

Keys are the seed's (`base_model, dataset, format, quantization, lora_rank, lora_alpha,
learning_rate, batch_size, gradient_accumulation, epochs, warmup_steps`) plus what a real run
needs. Paths are relative to the working directory, as in the seed.

    >>> cfg = load_config("configs/phase5.yaml", overrides={"epochs": 7})
    >>> cfg.epochs, cfg.lora_rank
    (7, 16)
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from molting.errors import ConfigError
from molting.io import check_keys, read_yaml_mapping

QUANTIZATIONS = ("4bit", "none")
PRECISIONS = ("fp32", "bf16")  # cpu_precision: see molting.train.precision
FORMATS = ("sharegpt", "messages")
WARMUP_WARN_FRACTION = 0.10  # warmup over ~10% of the run leaves little time at the target rate


@dataclass(frozen=True)
class TrainConfig:
    # --- the seed's keys
    base_model: str = "smollm2-135m"  # the offline default; any hub id or local path works too
    dataset: str | None = None  # no sensible default: the run must name its data
    format: str = "sharegpt"  # the seed's format; checked against the file's actual schema
    # the seed's QLoRA; on a machine without CUDA it becomes LoRA (logged)
    quantization: str = "4bit"
    lora_rank: int = 16  # the seed's value; enough capacity for a style/persona shift
    lora_alpha: int = 32  # the seed's value (alpha = 2 × rank, the common QLoRA setting)
    learning_rate: float = 2e-4  # the seed's value; the QLoRA paper's rate for small models
    batch_size: int = 4  # the seed's per-device batch size
    gradient_accumulation: int = 4  # the seed's value: effective batch 16
    epochs: int = 3  # the seed's phase-3 run; phase 5 asks for 5-7 on the smaller curated set
    warmup_steps: int = 5  # a few steps stabilise Adam; the seed's 50 exceeded its whole run
    # --- what a real run needs
    output_dir: str | None = None  # no default: runs must not overwrite each other by accident
    max_seq_length: int = 1024  # chat examples are short; Phi-3-mini-4k allows up to 4096
    max_steps: int | None = None  # None: train for `epochs`; set it to budget a CPU run in steps
    seed: int = 42  # fixed so a rerun reproduces the loss curve; recorded in run.json
    val_set_size: float = 0.1  # fraction (<1) or count (>=1) held out; small sets overfit fast
    # cap on a fractional split: evaluation stays a small share of training
    val_set_max: int | None = None
    early_stopping_patience: int = 3  # evaluations without improvement before stopping
    eval_steps: int = 10  # evaluate (and checkpoint) this often; ~3-5 evals per short run
    lora_dropout: float = 0.05  # the QLoRA paper's value for models up to 13B
    # QLoRA paper: adapting every linear layer matters
    target_modules: str | list[str] = "all-linear"
    lr_scheduler: str = "cosine"  # decays smoothly to 0 by the end of the run
    weight_decay: float = 0.0  # LoRA matrices are small; the QLoRA paper uses none
    max_grad_norm: float = 0.3  # the QLoRA paper's clipping value
    logging_steps: int = 1  # runs are short: log every step to loss.csv
    padding_free: bool = True  # short chat examples waste most of a padded batch; see bench/
    gradient_checkpointing: bool = False  # costs ~30% more compute; turn on only if memory is short
    # None: the cores other work leaves free, re-checked every step; N pins it
    cpu_threads: int | None = None
    # bf16: autocast, ~1.5x faster with AMX, loss outside fp32's seed noise (bench_bf16.py)
    cpu_precision: str = "fp32"
    trust_remote_code: bool = False  # never run code from a model repo unless asked
    # pin a hub revision (branch, tag or commit) for reproducibility
    model_revision: str | None = None
    # intermediate checkpoints are only for --resume; dropped on success
    keep_checkpoints: bool = False

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.gradient_accumulation


def field_names() -> list[str]:
    return [f.name for f in fields(TrainConfig)]


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read YAML (or start from the defaults when `path` is None), apply non-None overrides,
    validate."""
    raw = read_yaml_mapping(path, "config file") if path is not None else {}
    where = str(path) if path is not None else "config"
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return build_config(raw, where)


def build_config(raw: dict[str, Any], where: str = "config") -> TrainConfig:
    check_keys(raw, field_names(), where)
    types_ = typing.get_type_hints(TrainConfig)
    values = {k: _coerce(where, k, v, types_[k]) for k, v in raw.items()}
    cfg = TrainConfig(**values)
    _check_fields(cfg, where)
    return cfg


def _coerce(where: str, key: str, value: Any, tp: Any) -> Any:
    """Check `value` against the field type; accept YAML's '2e-4' (a string in YAML 1.1) for
    floats."""
    options = typing.get_args(tp) if isinstance(tp, types.UnionType) else (tp,)
    if value is None and type(None) in options:
        return None
    for option in options:
        ok, converted = _try_type(value, option)
        if ok:
            return converted
    names = " or ".join(_type_name(o) for o in options)
    raise ConfigError(f"{where}: '{key}' must be {names}, got {value!r}.")


def _try_type(value: Any, option: Any) -> tuple[bool, Any]:
    if option is bool:
        return isinstance(value, bool), value
    if option is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if option is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        if isinstance(value, str):
            try:
                return True, float(value)
            except ValueError:
                return False, None
        return False, None
    if option is str:
        return isinstance(value, str), value
    if typing.get_origin(option) is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return ok, list(value) if ok else None
    return False, None


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is list:
        return "a list of strings"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, "null"
    )


def _check_fields(cfg: TrainConfig, where: str) -> None:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(f"{where}: {message}")

    need(
        cfg.quantization in QUANTIZATIONS,
        f"'quantization' must be one of {QUANTIZATIONS}, got {cfg.quantization!r}.",
    )
    need(cfg.format in FORMATS, f"'format' must be one of {FORMATS}, got {cfg.format!r}.")
    for key in (
        "lora_rank",
        "lora_alpha",
        "batch_size",
        "gradient_accumulation",
        "epochs",
        "max_seq_length",
        "eval_steps",
        "logging_steps",
    ):
        need(getattr(cfg, key) >= 1, f"'{key}' must be at least 1, got {getattr(cfg, key)}.")
    need(cfg.warmup_steps >= 0, f"'warmup_steps' must be >= 0, got {cfg.warmup_steps}.")
    need(
        cfg.max_steps is None or cfg.max_steps >= 1,
        f"'max_steps' must be at least 1 (or null), got {cfg.max_steps}.",
    )
    need(0 < cfg.learning_rate < 1, f"'learning_rate' must be in (0, 1), got {cfg.learning_rate}.")
    need(0 <= cfg.lora_dropout < 1, f"'lora_dropout' must be in [0, 1), got {cfg.lora_dropout}.")
    need(
        cfg.val_set_size >= 0 and (cfg.val_set_size < 1 or cfg.val_set_size.is_integer()),
        f"'val_set_size' must be a fraction in [0, 1) or a whole count, got {cfg.val_set_size}.",
    )
    need(
        cfg.early_stopping_patience >= 0, "'early_stopping_patience' must be >= 0 (0 disables it)."
    )
    need(
        cfg.val_set_max is None or cfg.val_set_max >= 1,
        f"'val_set_max' must be at least 1 (or null), got {cfg.val_set_max}.",
    )
    need(cfg.max_grad_norm > 0, f"'max_grad_norm' must be > 0, got {cfg.max_grad_norm}.")
    need(
        cfg.cpu_threads is None or cfg.cpu_threads >= 1,
        f"'cpu_threads' must be at least 1 (or null for auto), got {cfg.cpu_threads}.",
    )
    need(
        cfg.cpu_precision in PRECISIONS,
        f"'cpu_precision' must be one of {PRECISIONS}, got {cfg.cpu_precision!r}.",
    )
    need(
        cfg.lr_scheduler in ("linear", "cosine", "constant", "constant_with_warmup"),
        "'lr_scheduler' must be linear, cosine, constant or constant_with_warmup, got "
        f"{cfg.lr_scheduler!r}.",
    )


def with_overrides(cfg: TrainConfig, **changes: Any) -> TrainConfig:
    """A validated copy with some fields changed (tests, benchmarks)."""
    merged = {f.name: getattr(cfg, f.name) for f in fields(TrainConfig)}
    merged.update(changes)
    return build_config(merged)


# ---------------------------------------------------------------- checks that need the data


def split_sizes(cfg: TrainConfig, n_examples: int) -> tuple[int, int]:
    """(train, validation) example counts for `n_examples`."""
    if cfg.val_set_size == 0:
        return n_examples, 0
    n_val = (
        int(cfg.val_set_size)
        if cfg.val_set_size >= 1
        else max(1, round(n_examples * cfg.val_set_size))
    )
    if cfg.val_set_max is not None:
        n_val = min(n_val, cfg.val_set_max)
    if n_val >= n_examples:
        raise ConfigError(
            f"'val_set_size' ({cfg.val_set_size}) leaves no training examples out of {n_examples}."
        )
    return n_examples - n_val, n_val


def planned_steps(cfg: TrainConfig, n_train: int) -> int:
    """Optimizer steps the run will take (before early stopping)."""
    if cfg.max_steps is not None:
        return cfg.max_steps
    batches = math.ceil(
        n_train / cfg.batch_size
    )  # as the Trainer counts: a short last batch still steps
    return math.ceil(batches / cfg.gradient_accumulation) * cfg.epochs


def plan_warnings(cfg: TrainConfig, n_train: int, lengths: list[int]) -> list[str]:
    """Cross-field checks against the actual data: warmup vs run length, truncation."""
    warnings = []
    steps = planned_steps(cfg, n_train)
    if cfg.warmup_steps > WARMUP_WARN_FRACTION * steps:
        how = (
            f"max_steps={steps}"
            if cfg.max_steps is not None
            else f"{n_train} examples / ({cfg.batch_size}×{cfg.gradient_accumulation}) × "
            f"{cfg.epochs} epochs ≈ {steps} steps"
        )
        warnings.append(
            f"warmup_steps={cfg.warmup_steps} covers {cfg.warmup_steps / steps:.0%} of the run "
            f"({how}); the learning rate barely reaches its target. Use at most "
            f"{max(1, int(WARMUP_WARN_FRACTION * steps))}."
        )
    too_long = [n for n in lengths if n > cfg.max_seq_length]
    if too_long:
        warnings.append(
            f"{len(too_long)} of {len(lengths)} examples are longer than max_seq_length="
            f"{cfg.max_seq_length} tokens (longest {max(too_long)}); they are truncated and lose "
            f"their last turns. Raise max_seq_length to keep them whole."
        )
    return warnings


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in fields(TrainConfig)}
