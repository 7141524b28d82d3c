"""`molting train`: config → base model → masked examples → LoRA/QLoRA adapter + run manifest.

Outputs in the output dir: the adapter (PEFT layout, safetensors), the tokenizer, run.json
(everything needed to reproduce and audit the run), loss.csv and loss.png. Checkpoints live in
`checkpoints/` while training so `--resume` can pick up after an interruption.

    >>> result = train(load_config("configs/cpu.yaml", {"dataset": "d.json"}), "out/run1")
    >>> result.manifest["quantization"]["used"]
    'none'
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from molting.train import outputs
from molting.train.config import TrainConfig, plan_warnings, planned_steps, split_sizes
from molting.data import Dataset, load_dataset
from molting.errors import ConfigError, DatasetError, OutputError
from molting.train.masking import Example, describe, encode
from molting.models import choose_quantization, load_base, load_tokenizer, resolve

log = logging.getLogger("molting.train")

CHECKPOINTS = "checkpoints"
MARKERS = ("run.json", "adapter_config.json", CHECKPOINTS)  # files that make a dir a molting run


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    manifest: dict[str, Any]


@dataclass(frozen=True)
class Prepared:
    dataset: Dataset
    train: list[Example]
    val: list[Example]
    dropped: list[int]  # indices of examples left with no trained token after truncation
    warnings: list[str]


def train(cfg: TrainConfig, output_dir: str | Path | None = None, *, overwrite: bool = False,
          resume: bool = False, callbacks: list[Any] | None = None) -> TrainResult:
    """Train an adapter; return the output dir and the manifest written to run.json."""
    import transformers

    out = _output_dir(cfg, output_dir)
    resume_from = prepare_output_dir(out, overwrite=overwrite, resume=resume)
    started = time.perf_counter()
    base = load_base(cfg.base_model, cfg.quantization, trust_remote_code=cfg.trust_remote_code,
                     revision=cfg.model_revision, gradient_checkpointing=cfg.gradient_checkpointing)
    prep = prepare_examples(cfg, base.tokenizer)
    for warning in prep.warnings:
        log.warning("%s", warning)
    transformers.set_seed(cfg.seed)  # before the adapter: its initial weights depend on it
    from molting.train.loop import add_adapter, build_trainer, training_arguments

    model = add_adapter(base.model, cfg)
    args = training_arguments(cfg, str(out / CHECKPOINTS), bool(prep.val), base.device, base.dtype)
    trainer = build_trainer(model, base.tokenizer, cfg, args, prep.train, prep.val, callbacks or [])
    log.info("training %s on %d examples (%d held out), %d steps planned, quantization %s, device %s",
             base.model_id, len(prep.train), len(prep.val), planned_steps(cfg, len(prep.train)),
             base.quantization, base.device)
    run = _run(trainer, resume_from, cfg)
    manifest = outputs.write_outputs(out, cfg, base, prep, trainer, run, time.perf_counter() - started)
    if not cfg.keep_checkpoints:
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    return TrainResult(out, manifest)


def _output_dir(cfg: TrainConfig, output_dir: str | Path | None) -> Path:
    chosen = output_dir if output_dir is not None else cfg.output_dir
    if chosen is None:
        raise ConfigError("no output directory: pass --output DIR or set output_dir in the config.")
    return Path(chosen)


def prepare_output_dir(out: Path, *, overwrite: bool, resume: bool) -> str | None:
    """Check the output dir before any slow work. Returns the checkpoint to resume from, if any."""
    from transformers.trainer_utils import get_last_checkpoint

    if overwrite and resume:
        raise ConfigError("--overwrite and --resume contradict each other; pass one.")
    existing = out.is_dir() and any(out.iterdir())
    if resume:
        last = get_last_checkpoint(str(out / CHECKPOINTS)) if (out / CHECKPOINTS).is_dir() else None
        if last is None:
            raise OutputError(f"{out}: no checkpoint to resume from (expected {out / CHECKPOINTS}/checkpoint-N).")
        return last
    if existing and not overwrite:
        raise OutputError(f"{out}: output directory is not empty; pass --overwrite to replace it or --resume to continue it.")
    if existing:
        if not any((out / m).exists() for m in MARKERS):
            raise OutputError(f"{out}: not a molting run directory (no run.json/adapter); refusing to delete it. Choose another --output.")
        shutil.rmtree(out)
    _check_writable(out)
    return None


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".molting-write-test"
        probe.write_text("ok", encoding="utf-8")
        probe.unlink()
    except OSError as err:
        raise OutputError(f"{out}: cannot write the adapter here ({err.strerror}); choose another --output.") from None


def prepare_examples(cfg: TrainConfig, tokenizer: Any) -> Prepared:
    """Load the dataset, encode with the loss mask, split train/validation (seeded)."""
    if cfg.dataset is None:
        raise ConfigError("no dataset: pass --dataset PATH or set dataset in the config.")
    dataset = load_dataset(cfg.dataset)
    if dataset.schema != cfg.format:
        raise ConfigError(f"{cfg.dataset}: the file is in '{dataset.schema}' format but the config says "
                          f"format: {cfg.format}; fix the config.")
    encoded = [encode(tokenizer, conv, cfg.max_seq_length) for conv in dataset.conversations]
    kept = [ex for ex in encoded if ex.n_trainable > 0]
    dropped = [ex.index for ex in encoded if ex.n_trainable == 0]
    if not kept:
        raise DatasetError([f"{cfg.dataset}: no example keeps a trained token within max_seq_length={cfg.max_seq_length}."])
    n_train, n_val = split_sizes(cfg, len(kept))
    order = list(range(len(kept)))
    random.Random(cfg.seed).shuffle(order)
    val = [kept[i] for i in sorted(order[:n_val])]
    train_ = [kept[i] for i in sorted(order[n_val:])]
    warnings = plan_warnings(cfg, n_train, [ex.full_length for ex in encoded])
    if dropped:
        warnings.append(f"{len(dropped)} examples dropped: truncation to max_seq_length left no assistant "
                        f"token (dataset indices {dropped[:10]}{' …' if len(dropped) > 10 else ''}).")
    return Prepared(dataset, train_, val, dropped, warnings)


def _run(trainer: Any, resume_from: str | None, cfg: TrainConfig) -> dict[str, Any]:
    import torch

    started = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=resume_from)
    except torch.OutOfMemoryError:
        raise ConfigError(
            f"out of memory at batch_size={cfg.batch_size}, max_seq_length={cfg.max_seq_length}: lower "
            f"batch_size (raise gradient_accumulation to keep the effective batch) or max_seq_length, "
            f"or set gradient_checkpointing: true."
        ) from None
    return {"train_result": result, "seconds": time.perf_counter() - started, "resumed_from": resume_from}


def dry_run(cfg: TrainConfig, n_tokens: int | None = 200) -> str:
    """Tokenize with the loss mask and describe the plan without loading weights or writing files."""
    import torch

    path, _ = resolve(cfg.base_model)
    tokenizer = load_tokenizer(path, trust_remote_code=cfg.trust_remote_code, revision=cfg.model_revision)
    prep = prepare_examples(cfg, tokenizer)
    used, reason = choose_quantization(cfg.quantization, torch.cuda.is_available())
    lines = [describe(tokenizer, prep.train[0], limit=n_tokens), "",
             (f"train examples: {len(prep.train)}, validation: {len(prep.val)}, "
              f"steps planned: {planned_steps(cfg, len(prep.train))}, quantization: {used}")]
    lines += [f"note: {reason}"] if reason else []
    lines += [f"warning: {w}" for w in prep.warnings]
    return "\n".join(lines)
