"""The training loop: transformers' Trainer with molting's batches, LoRA adapter and callbacks.

Batches are padding-free by default: a micro-batch's examples are concatenated into one row
with `position_ids` restarting at 0 for each example, so no compute goes to padding; attention
stays within each example (molting.train.attention: per example on a CPU, one varlen kernel on
CUDA), so examples never see each other.

Multi-GPU: the Trainer is accelerate-native, so run the same command under accelerate, e.g.

    accelerate launch --num_processes 2 -m molting.cli train --config configs/phase5.yaml

Each process loads its own copy of the (4-bit) base on its own GPU (`LOCAL_RANK`); the
effective batch becomes batch_size × gradient_accumulation × processes.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from molting.errors import ConfigError
from molting.train.attention import AttentionChoice, use_attention
from molting.train.config import TrainConfig
from molting.train.masking import IGNORE, Example
from molting.train.threads import ThreadSizer

log = logging.getLogger("molting.train")


class ExampleDataset(torch.utils.data.Dataset):
    def __init__(self, examples: list[Example]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        ex = self.examples[i]
        return {"input_ids": ex.input_ids, "labels": ex.labels}


class PaddingFreeCollator:
    """Concatenate a micro-batch into one row; position_ids mark where each example starts.

    The first label of every example is IGNORE so the loss never asks the last token of one
    example to predict the first token of the next.
    """

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        ids, labels, positions = [], [], []
        for f in features:
            ids += f["input_ids"]
            labels += [IGNORE] + f["labels"][1:]
            positions += range(len(f["input_ids"]))
        return {
            "input_ids": torch.tensor([ids]),
            "labels": torch.tensor([labels]),
            "position_ids": torch.tensor([positions]),
        }


class PaddedCollator:
    """Right-pad to the longest example in the micro-batch (padding_free: false)."""

    def __init__(self, pad_token_id: int):
        self.pad = pad_token_id

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)

        def padded(seq: list[int], value: int) -> list[int]:
            return seq + [value] * (longest - len(seq))

        return {
            "input_ids": torch.tensor([padded(f["input_ids"], self.pad) for f in features]),
            "labels": torch.tensor([padded(f["labels"], IGNORE) for f in features]),
            "attention_mask": torch.tensor(
                [padded([1] * len(f["input_ids"]), 0) for f in features]
            ),
        }


def add_adapter(model: Any, cfg: TrainConfig, attention: AttentionChoice) -> Any:
    """Wrap `model` in a fresh LoRA adapter, attention switched to `attention`
    (molting.train.attention.choose_attention). Call transformers.set_seed(cfg.seed) first."""
    from peft import LoraConfig, get_peft_model

    disable_kv_cache(model)
    use_attention(
        model, attention
    )  # attention within each packed example only: same result, less work
    lora = LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        model = get_peft_model(model, lora)
    except ValueError as err:  # PEFT's NoMatchingPeftModuleError is a ValueError
        if "target" not in str(err).lower():
            raise
        names = sorted(
            {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"}
        )
        raise ConfigError(
            f"target_modules {cfg.target_modules!r} matches no layer of the base model; use "
            f"'all-linear' or some of: {', '.join(names[:12])}."
        ) from None
    if cfg.gradient_checkpointing:
        model.enable_input_require_grads()
    return model


def disable_kv_cache(model: Any) -> None:
    """Training needs no KV cache, and with one transformers skips packed-sequence masking:
    padding-free examples would silently attend to each other (tests/test_masking.py)."""
    model.config.use_cache = False


def thread_callback(sizer: ThreadSizer) -> Any:
    """A Trainer callback that sizes the CPU threads before training and after every optimizer
    step."""
    from transformers import TrainerCallback

    class _Threads(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            sizer.start()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            sizer.check(state.global_step)

    return _Threads()


def training_arguments(
    cfg: TrainConfig,
    checkpoint_dir: str,
    has_val: bool,
    device: str,
    dtype: str,
    autocast_bf16: bool = False,
) -> Any:
    """`autocast_bf16`: bf16 autocast over fp32 weights on a CPU (molting.train.precision)."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=checkpoint_dir,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps if cfg.max_steps is not None else -1,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        logging_steps=cfg.logging_steps,
        eval_strategy="steps" if has_val else "no",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.eval_steps,  # load-best needs a checkpoint at every evaluation
        load_best_model_at_end=has_val,
        metric_for_best_model="eval_loss" if has_val else None,
        greater_is_better=False if has_val else None,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=(device == "cuda" and dtype == "bfloat16") or autocast_bf16,
        use_cpu=device == "cpu",
        activation_checkpointing=cfg.gradient_checkpointing,
        # padding-free rows hold no padding; with padding, count attention_mask (pad may equal EOS)
        include_num_input_tokens_seen="all" if cfg.padding_free else "non_padding",
        # padded batches waste less when lengths are similar
        train_sampling_strategy="random" if cfg.padding_free else "group_by_length",
        remove_unused_columns=False,
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def build_trainer(
    model: Any,
    tokenizer: Any,
    cfg: TrainConfig,
    args: Any,
    train: list[Example],
    val: list[Example],
    callbacks: list[Any],
) -> Any:
    from transformers import EarlyStoppingCallback, Trainer

    collator = PaddingFreeCollator() if cfg.padding_free else PaddedCollator(tokenizer.pad_token_id)
    callbacks = list(callbacks)
    if val and cfg.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    return Trainer(
        model=model,
        args=args,
        data_collator=collator,
        processing_class=tokenizer,
        train_dataset=ExampleDataset(train),
        eval_dataset=ExampleDataset(val) if val else None,
        callbacks=callbacks,
    )


def loss_rows(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per logged step: step, epoch, train_loss, val_loss, learning_rate."""
    rows: dict[int, dict[str, Any]] = {}
    for entry in log_history:
        step = entry.get("step")
        if step is None or not ({"loss", "eval_loss"} & entry.keys()):
            continue
        row = rows.setdefault(
            step,
            {
                "step": step,
                "epoch": entry.get("epoch"),
                "train_loss": None,
                "val_loss": None,
                "learning_rate": None,
            },
        )
        if "loss" in entry:
            row["train_loss"], row["learning_rate"] = entry["loss"], entry.get("learning_rate")
        if "eval_loss" in entry:
            row["val_loss"] = entry["eval_loss"]
    return [rows[s] for s in sorted(rows)]
