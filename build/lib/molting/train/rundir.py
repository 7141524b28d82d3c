"""Where a training run writes, so that nothing finished is ever lost.

A run trains in a staging directory beside its target (`.NAME.partial/`), with its checkpoints;
only when it is complete (run.json written last, marked complete) is the staging directory
swapped into place. An interruption leaves the previous run untouched and the staging directory
ready for `--resume`; `--overwrite` replaces a finished run only once the new one has finished.

    >>> plan = plan_run(Path("output/phase5"), overwrite=False, resume=False)   # checks only
    >>> plan.stage
    PosixPath('output/.phase5.partial')
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from molting.errors import ConfigError, ModelError, OutputError

log = logging.getLogger("molting.train")

CHECKPOINTS = "checkpoints"
RUN_MANIFEST = "run.json"
MARKERS = (RUN_MANIFEST, "adapter_config.json", CHECKPOINTS)  # files that make a dir a molting run
CHECKPOINT_FILES = ("trainer_state.json", "adapter_model.safetensors", "optimizer.pt", "scheduler.pt")


@dataclass(frozen=True)
class RunPlan:
    target: Path  # where the finished run goes
    stage: Path  # where it trains
    resume_from: str | None  # checkpoint directory, when resuming
    note: str | None = None  # said to the user (e.g. a checkpoint skipped as incomplete)


def stage_dir(target: Path) -> Path:
    return target.parent / f".{target.name}.partial"


def _old_dir(target: Path) -> Path:
    return target.parent / f".{target.name}.old"


def is_molting_run(path: Path) -> bool:
    return any((path / m).exists() for m in MARKERS)


def plan_run(target: Path, *, overwrite: bool, resume: bool) -> RunPlan:
    """Check the output before any slow work; changes nothing on disk."""
    if overwrite and resume:
        raise ConfigError("--overwrite and --resume contradict each other; pass one.")
    _recover(target)
    stage = stage_dir(target)
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target}: is a file; choose a directory for the run (--output).")
    existing = target.is_dir() and any(target.iterdir())
    if resume:
        ckpt, note = last_complete_checkpoint(stage / CHECKPOINTS)
        if ckpt is None:
            where = stage / CHECKPOINTS
            done = " (that run already finished)" if (target / RUN_MANIFEST).is_file() else ""
            raise OutputError(f"{target}: no checkpoint to resume from in {where}{done}; train without --resume.")
        return RunPlan(target, stage, ckpt, note)
    if existing and not is_molting_run(target):
        raise OutputError(f"{target}: not a molting run directory (no run.json/adapter); refusing to replace it. "
                          "Choose another --output.")
    if existing and not overwrite:
        raise OutputError(f"{target}: output directory is not empty; pass --overwrite to replace it (the old run "
                          "stays until the new one finishes) or --resume to continue an interrupted run.")
    if stage.exists() and not overwrite:
        raise OutputError(f"{target}: an interrupted run is in {stage}; pass --resume to continue it or --overwrite "
                          "to start over.")
    _check_writable(target.parent)
    return RunPlan(target, stage, None)


def _check_writable(parent: Path) -> None:
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir() or not os.access(p, os.W_OK):
                raise OutputError(f"{parent}: cannot write the adapter here ({p} is not a writable directory); "
                                  "choose another --output.")
            return


def start_stage(plan: RunPlan) -> None:
    """Make the staging directory (a fresh one unless resuming)."""
    if plan.resume_from is None and plan.stage.exists():
        shutil.rmtree(plan.stage)
    try:
        plan.stage.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{plan.stage}: cannot write the adapter here ({err.strerror}); choose another --output.") from None


def finish(plan: RunPlan, keep_checkpoints: bool) -> Path:
    """Swap the complete staging directory into place; the previous run is removed only now."""
    manifest = json.loads((plan.stage / RUN_MANIFEST).read_text(encoding="utf-8"))
    assert manifest.get("complete") is True, "finish() needs a complete run.json"
    if not keep_checkpoints:
        shutil.rmtree(plan.stage / CHECKPOINTS, ignore_errors=True)
    old = _old_dir(plan.target)
    if plan.target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(plan.target, old)
    os.replace(plan.stage, plan.target)
    shutil.rmtree(old, ignore_errors=True)
    return plan.target


def _recover(target: Path) -> None:
    """A previous swap cut between its two renames left `.NAME.old` and no NAME: put it back."""
    old = _old_dir(target)
    if old.is_dir() and not target.exists():
        os.replace(old, target)
        log.warning("restored %s from an interrupted swap", target)
    elif old.is_dir():
        shutil.rmtree(old, ignore_errors=True)


def last_complete_checkpoint(folder: Path) -> tuple[str | None, str | None]:
    """(newest checkpoint whose files are all there and readable, note about skipped ones)."""
    if not folder.is_dir():
        return None, None
    found = sorted((p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    skipped = []
    for ckpt in found:
        if _complete(ckpt):
            note = (f"skipped incomplete checkpoint(s) {', '.join(skipped)}; resuming from {ckpt.name}"
                    if skipped else None)
            return str(ckpt), note
        skipped.append(ckpt.name)
    return None, None


def _complete(ckpt: Path) -> bool:
    from molting.models import check_safetensors

    if not all((ckpt / f).is_file() for f in CHECKPOINT_FILES):
        return False
    try:
        json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
        check_safetensors(ckpt / "adapter_model.safetensors")
    except (ValueError, OSError, ModelError):
        return False
    return True
