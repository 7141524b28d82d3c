"""What a training run leaves behind: adapter + tokenizer, run.json, loss.csv, loss.png."""

from __future__ import annotations

import csv
import io
import json
import logging
import platform
import sys
from pathlib import Path
from typing import Any

from molting.io import sha256_file, write_text_atomic
from molting.models import library_versions
from molting.train.config import TrainConfig, to_dict
from molting.train.loop import loss_rows

log = logging.getLogger("molting.train")

LOSS_COLUMNS = ("step", "epoch", "train_loss", "val_loss", "learning_rate")


def write_outputs(
    out: Path,
    cfg: TrainConfig,
    base: Any,
    prep: Any,
    trainer: Any,
    run: dict[str, Any],
    total_seconds: float,
) -> dict[str, Any]:
    trainer.model.save_pretrained(out, safe_serialization=True)
    base.tokenizer.save_pretrained(out)
    rows = loss_rows(trainer.state.log_history)
    write_text_atomic(out / "loss.csv", loss_csv(rows))
    plot_losses(rows, out / "loss.png")
    manifest = build_manifest(cfg, base, prep, trainer, run, rows, total_seconds)
    write_text_atomic(out / "run.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    log.info("wrote adapter, run.json, loss.csv and loss.png to %s", out)
    return manifest


def build_manifest(
    cfg: TrainConfig,
    base: Any,
    prep: Any,
    trainer: Any,
    run: dict[str, Any],
    rows: list[dict[str, Any]],
    total_seconds: float,
) -> dict[str, Any]:
    state = trainer.state
    train_seconds = run["seconds"]
    tokens = int(state.num_input_tokens_seen)
    tokens_now = tokens - run.get(
        "tokens_before", 0
    )  # a resumed run's speed is what it trained itself
    val_losses = [r["val_loss"] for r in rows if r["val_loss"] is not None]
    return {
        "config": to_dict(cfg),
        "dataset": {
            "path": str(prep.dataset.path),
            "sha256": sha256_file(prep.dataset.path),
            "schema": prep.dataset.schema,
            "examples": len(prep.dataset.conversations),
            "train": len(prep.train),
            "validation": len(prep.val),
            "dropped_after_truncation": prep.dropped,
            "trained_tokens": sum(ex.n_trainable for ex in prep.train),
        },
        "base_model": {
            "id": base.model_id,
            "source": base.source,
            "path": base.path,
            "revision": cfg.model_revision,
            "fingerprint": base.fingerprint,
        },
        "quantization": {
            "requested": cfg.quantization,
            "used": base.quantization,
            "substitution": base.substitution,
        },
        "device": base.device,
        "dtype": base.dtype,
        "attention": run.get("attention"),
        "precision": run.get("precision"),
        "cpu_threads": run.get("cpu_threads"),
        "seeds": {"seed": cfg.seed, "data_seed": cfg.seed, "split_seed": cfg.seed},
        "steps": state.global_step,
        "epochs_done": state.epoch,
        "stopped_early": state.global_step < state.max_steps,  # early stopping ended it
        "stop_reason": stop_reason(cfg, state, val_losses),
        "best_checkpoint_step": _best_step(state.best_model_checkpoint),
        "best_val_loss": state.best_metric,
        "final_val_loss": val_losses[-1] if val_losses else None,
        "final_train_loss": next(
            (r["train_loss"] for r in reversed(rows) if r["train_loss"] is not None), None
        ),
        "losses": rows,
        "resumed_from": run["resumed_from"],
        "resume": run.get(
            "resume"
        ),  # the interrupted run's inputs, what changed, checkpoints skipped
        "warnings": prep.warnings,
        "tokens_seen": tokens,
        "tokens_per_second": round(tokens_now / train_seconds, 1) if train_seconds > 0 else None,
        "train_seconds": round(train_seconds, 1),
        "wall_seconds": round(total_seconds, 1),
        "libraries": library_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "complete": True,  # written last: a run.json without it is a run that did not finish
    }


def stop_reason(cfg: TrainConfig, state: Any, val_losses: list[float]) -> str:
    """Why the run ended, in words (run.json): early stopping, the step budget or the epochs."""
    best = _best_step(state.best_model_checkpoint)
    if state.global_step < state.max_steps:
        return (
            f"early stopping at step {state.global_step} of {state.max_steps}: the validation loss "
            f"did not improve for {cfg.early_stopping_patience} evaluations after step {best} "
            f"(best {state.best_metric:.4f}); the adapter is step {best}'s"
        )
    kept = (
        f"; the adapter is the best checkpoint, step {best}"
        if best is not None and val_losses
        else ""
    )
    if cfg.max_steps is not None:
        return f"reached max_steps={cfg.max_steps}{kept}"
    return f"completed {cfg.epochs} epochs ({state.global_step} steps){kept}"


def _best_step(checkpoint: str | None) -> int | None:
    if not checkpoint:
        return None
    return int(Path(checkpoint).name.rsplit("-", 1)[-1])


def loss_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOSS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in LOSS_COLUMNS})
    return buf.getvalue()


def plot_losses(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label, style in (("train_loss", "train", "-"), ("val_loss", "validation", "o-")):
        points = [(r["step"], r[key]) for r in rows if r[key] is not None]
        if points:
            ax.plot(*zip(*points), style, label=label)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (assistant tokens)")
    ax.legend()
    ax.grid(alpha=0.3)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
