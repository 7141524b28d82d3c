"""`molting train`: config → base model → masked examples → LoRA/QLoRA adapter + run manifest.

Outputs in the output dir: the adapter (PEFT layout, safetensors), the tokenizer, run.json
(everything needed to reproduce and audit the run, written last and marked complete), loss.csv
and loss.png. The run trains in a staging directory beside the output, with its checkpoints,
so an interruption loses nothing and `--resume` can pick up (molting.train.rundir).

    >>> result = train(load_config("configs/cpu.yaml", {"dataset": "d.json"}), "out/run1")
    >>> result.manifest["quantization"]["used"]
    'none'
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from molting.data import Dataset, load_dataset
from molting.errors import ConfigError, DatasetError
from molting.io import sha256_file
from molting.models import choose_quantization, load_base, load_tokenizer, resolve
from molting.train import outputs
from molting.train.attention import AttentionChoice, choose_attention, flash_attn_available
from molting.train.config import TrainConfig, plan_warnings, planned_steps, split_sizes, to_dict
from molting.train.loop import add_adapter, build_trainer, thread_callback, training_arguments
from molting.train.masking import Example, describe, encode
from molting.train.precision import PrecisionChoice, bf16_flags, choose_cpu_precision
from molting.train.rundir import (
    CHECKPOINTS,
    finish,
    plan_run,
    resume_changes,
    run_inputs,
    start_stage,
)
from molting.train.threads import ThreadSizer

log = logging.getLogger("molting.train")


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


def train(
    cfg: TrainConfig,
    output_dir: str | Path | None = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    allow_changes: bool = False,
    callbacks: list[Any] | None = None,
) -> TrainResult:
    """Train an adapter; return the output dir and the manifest written to run.json.

    Everything a user can get wrong — output directory, base model, tokenizer, dataset, a resume
    with other inputs than the interrupted run (refused unless `allow_changes`) — is checked
    before the weights load and before anything on disk changes (molting.train.rundir)."""
    import transformers

    out = _output_dir(cfg, output_dir)
    plan = plan_run(out, overwrite=overwrite, resume=resume)
    if plan.note:
        log.warning("%s", plan.note)
    started = time.perf_counter()
    threads = ThreadSizer(pinned=cfg.cpu_threads)
    threads.begin()  # loading the model is the first look at how busy the machine is
    path, _ = resolve(cfg.base_model)
    prep = prepare_examples(
        cfg,
        load_tokenizer(path, trust_remote_code=cfg.trust_remote_code, revision=cfg.model_revision),
    )
    inputs = run_inputs(to_dict(cfg), sha256_file(prep.dataset.path))
    resumed = resume_changes(plan, inputs, allow_changes)
    if resumed.get("changes"):
        log.warning(
            "resuming with changed inputs (recorded in run.json): %s", ", ".join(resumed["changes"])
        )
    for warning in prep.warnings:
        log.warning("%s", warning)
    base = load_base(
        cfg.base_model,
        cfg.quantization,
        trust_remote_code=cfg.trust_remote_code,
        revision=cfg.model_revision,
        gradient_checkpointing=cfg.gradient_checkpointing,
    )
    transformers.set_seed(cfg.seed)  # before the adapter: its initial weights depend on it

    attention, precision = _choose_kernels(cfg, base)
    model = add_adapter(base.model, cfg, attention)
    start_stage(plan, inputs)
    args = training_arguments(
        cfg,
        str(plan.stage / CHECKPOINTS),
        bool(prep.val),
        base.device,
        base.dtype,
        autocast_bf16=precision.autocast_bf16,
    )
    on_cpu = [thread_callback(threads)] if base.device == "cpu" else []
    trainer = build_trainer(
        model, base.tokenizer, cfg, args, prep.train, prep.val, on_cpu + (callbacks or [])
    )
    log.info(
        "training %s on %d examples (%d held out), %d steps planned, quantization %s, device %s, "
        "attention %s",
        base.model_id,
        len(prep.train),
        len(prep.val),
        planned_steps(cfg, len(prep.train)),
        base.quantization,
        base.device,
        attention.implementation,
    )
    try:
        run = _run(trainer, plan.resume_from, cfg) | {"resume": resumed or None}
    finally:
        threads.finish()
    run["attention"] = {"implementation": attention.implementation, "reason": attention.reason}
    run["precision"] = {
        "requested": cfg.cpu_precision,
        "autocast_bf16": precision.autocast_bf16,
        "cpu_bf16_flags": list(precision.cpu_flags),
        "reason": precision.reason,
    }
    run["cpu_threads"] = threads.summary() if base.device == "cpu" else None
    manifest = outputs.write_outputs(
        plan.stage, cfg, base, prep, trainer, run, time.perf_counter() - started
    )
    return TrainResult(finish(plan, cfg.keep_checkpoints), manifest)


def _choose_kernels(cfg: TrainConfig, base: Any) -> tuple[AttentionChoice, PrecisionChoice]:
    """The attention for this device and, on a CPU, fp32 or bf16 autocast; both said in the log."""
    flash = base.device == "cuda" and flash_attn_available()
    attention = choose_attention(base.device, cfg.padding_free, base.dtype, flash)
    precision = choose_cpu_precision(cfg.cpu_precision, bf16_flags(), base.device, base.dtype)
    log.info("attention: %s (%s)", attention.implementation, attention.reason)
    if precision.reason:
        log.warning("!!! %s", precision.reason.upper())
    return attention, precision


def _output_dir(cfg: TrainConfig, output_dir: str | Path | None) -> Path:
    chosen = output_dir if output_dir is not None else cfg.output_dir
    if chosen is None:
        raise ConfigError("no output directory: pass --output DIR or set output_dir in the config.")
    return Path(chosen)


def prepare_examples(cfg: TrainConfig, tokenizer: Any) -> Prepared:
    """Load the dataset, encode with the loss mask, split train/validation (seeded)."""
    if cfg.dataset is None:
        raise ConfigError("no dataset: pass --dataset PATH or set dataset in the config.")
    dataset = load_dataset(cfg.dataset)
    if dataset.schema != cfg.format:
        raise ConfigError(
            f"{cfg.dataset}: the file is in '{dataset.schema}' format but the config says "
            f"format: {cfg.format}; fix the config."
        )
    encoded = [encode(tokenizer, conv, cfg.max_seq_length) for conv in dataset.conversations]
    kept = [ex for ex in encoded if ex.n_trainable > 0]
    dropped = [ex.index for ex in encoded if ex.n_trainable == 0]
    if not kept:
        raise DatasetError(
            [
                f"{cfg.dataset}: no example keeps a trained token within "
                f"max_seq_length={cfg.max_seq_length}."
            ]
        )
    n_train, n_val = split_sizes(cfg, len(kept))
    order = list(range(len(kept)))
    random.Random(cfg.seed).shuffle(order)
    val = [kept[i] for i in sorted(order[:n_val])]
    train_ = [kept[i] for i in sorted(order[n_val:])]
    warnings = plan_warnings(cfg, n_train, [ex.full_length for ex in encoded])
    if dropped:
        warnings.append(
            f"{len(dropped)} examples dropped: truncation to max_seq_length left no assistant "
            f"token (dataset indices {dropped[:10]}{' …' if len(dropped) > 10 else ''})."
        )
    return Prepared(dataset, train_, val, dropped, warnings)


def _run(trainer: Any, resume_from: str | None, cfg: TrainConfig) -> dict[str, Any]:
    import torch

    tokens_before = _tokens_at(resume_from)
    started = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=resume_from)
    except torch.OutOfMemoryError:
        raise ConfigError(
            f"out of memory at batch_size={cfg.batch_size}, max_seq_length={cfg.max_seq_length}: "
            "lower batch_size (raise gradient_accumulation to keep the effective batch) or "
            "max_seq_length, or set gradient_checkpointing: true."
        ) from None
    return {
        "train_result": result,
        "seconds": time.perf_counter() - started,
        "resumed_from": resume_from,
        "tokens_before": tokens_before,
    }


def _tokens_at(checkpoint: str | None) -> int:
    """Tokens the run had seen at `checkpoint`: a resumed run's speed counts only what it
    trained."""
    if checkpoint is None:
        return 0
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
    return int(state.get("num_input_tokens_seen") or 0)


def dry_run(cfg: TrainConfig, n_tokens: int | None = 200) -> str:
    """Tokenize with the loss mask and describe the plan without loading weights or writing
    files."""
    import torch

    path, _ = resolve(cfg.base_model)
    tokenizer = load_tokenizer(
        path, trust_remote_code=cfg.trust_remote_code, revision=cfg.model_revision
    )
    prep = prepare_examples(cfg, tokenizer)
    used, reason = choose_quantization(cfg.quantization, torch.cuda.is_available())
    lines = [
        describe(tokenizer, prep.train[0], limit=n_tokens),
        "",
        (
            f"train examples: {len(prep.train)}, validation: {len(prep.val)}, "
            f"steps planned: {planned_steps(cfg, len(prep.train))}, quantization: {used}"
        ),
    ]
    lines += [f"note: {reason}"] if reason else []
    lines += [f"warning: {w}" for w in prep.warnings]
    return "\n".join(lines)
