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
import zipfile
from dataclasses import dataclass
from pathlib import Path

from molting.errors import ConfigError, ModelError, OutputError
from molting.io import write_json_atomic
from molting.models import check_safetensors

log = logging.getLogger("molting.train")

CHECKPOINTS = "checkpoints"
RUN_MANIFEST = "run.json"
MARKERS = (RUN_MANIFEST, "adapter_config.json", CHECKPOINTS)  # files that make a dir a molting run
CHECKPOINT_FILES = (
    "trainer_state.json",
    "adapter_model.safetensors",
    "optimizer.pt",
    "scheduler.pt",
)
RUN_INPUTS = (
    "run_inputs.json"  # in the staging directory: what the run started with, checked by --resume
)
# config keys that do not change what is trained: a resume may change them freely
NOT_INPUTS = (
    "output_dir",
    "keep_checkpoints",
    "dataset",
)  # the dataset is compared by its sha256, not its path


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
    """Check the output before any slow work; changes nothing on disk (but a swap cut short is
    undone)."""
    if overwrite and resume:
        raise ConfigError("--overwrite and --resume contradict each other; pass one.")
    stage = stage_dir(target)
    for mine in (
        stage,
        _old_dir(target),
    ):  # names molting uses beside the output: never someone else's folder
        if mine.exists() and not (
            mine.is_dir()
            and (is_molting_run(mine) or (mine / RUN_INPUTS).exists() or not any(mine.iterdir()))
        ):
            raise OutputError(
                f"{mine}: is in the way (molting trains in {stage.name} and swaps through "
                f"{_old_dir(target).name} beside the output) and is not a molting run; move it "
                "away."
            )
    _recover(target)
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target}: is a file; choose a directory for the run (--output).")
    existing = target.is_dir() and any(target.iterdir())
    ckpt, note = last_complete_checkpoint(stage / CHECKPOINTS)
    if resume:
        if ckpt is None:
            raise OutputError(f"{target}: {_nothing_to_resume(target, stage)}")
        return RunPlan(target, stage, ckpt, note)
    if existing and not is_molting_run(target):
        raise OutputError(
            f"{target}: not a molting run directory (no run.json/adapter); refusing to replace it. "
            "Choose another --output."
        )
    if existing and not overwrite:
        raise OutputError(
            f"{target}: output directory is not empty; pass --overwrite to replace it (the old run "
            "stays until the new one finishes) or --resume to continue an interrupted run."
        )
    if stage.exists() and not overwrite:
        if ckpt is None:
            raise OutputError(
                f"{target}: an interrupted run in {stage} saved no checkpoint, so nothing can be "
                "resumed; pass --overwrite to start over."
            )
        raise OutputError(
            f"{target}: an interrupted run is in {stage}; pass --resume to continue it or "
            "--overwrite to start over."
        )
    _check_writable(target.parent)
    return RunPlan(target, stage, None)


def _nothing_to_resume(target: Path, stage: Path) -> str:
    """Why --resume cannot go on, and the one thing that will work."""
    if stage.is_dir():
        return (
            f"the interrupted run in {stage} saved no complete checkpoint, so nothing can be "
            "resumed; pass --overwrite (instead of --resume) to start over."
        )
    if (target / RUN_MANIFEST).is_file():
        return (
            f"no checkpoint to resume from in {stage / CHECKPOINTS} (that run already finished); "
            "train without --resume (with --overwrite to replace it)."
        )
    return (
        f"no checkpoint to resume from in {stage / CHECKPOINTS}: no interrupted run; "
        "train without --resume."
    )


def _check_writable(parent: Path) -> None:
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir() or not os.access(p, os.W_OK):
                raise OutputError(
                    f"{parent}: cannot write the adapter here ({p} is not a writable directory); "
                    "choose another --output."
                )
            return


def start_stage(plan: RunPlan, inputs: dict) -> None:
    """Make the staging directory (a fresh one unless resuming), with the inputs the run starts
    from."""
    if plan.resume_from is None and plan.stage.exists():
        shutil.rmtree(plan.stage)
    try:
        plan.stage.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(
            f"{plan.stage}: cannot write the adapter here ({err.strerror}); choose another "
            "--output."
        ) from None
    if plan.resume_from is None:
        write_json_atomic(plan.stage / RUN_INPUTS, inputs)


def run_inputs(config: dict, dataset_sha256: str) -> dict:
    """What decides the trained weights: the config (less NOT_INPUTS) and the dataset's bytes."""
    return {
        "config": {k: v for k, v in config.items() if k not in NOT_INPUTS},
        "dataset_sha256": dataset_sha256,
    }


def resume_changes(plan: RunPlan, inputs: dict, allow_changes: bool) -> dict:
    """Compare a resume's inputs with the interrupted run's; refuse a change unless allowed.

    Returns what run.json records: the interrupted run's inputs, the changes, the checkpoints
    skipped."""
    if plan.resume_from is None:
        return {}
    path = plan.stage / RUN_INPUTS
    record: dict = {"from": plan.resume_from, "skipped": plan.note}
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
        old_config, old_sha = before["config"], before["dataset_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        record["note"] = (
            f"the interrupted run recorded no readable {RUN_INPUTS}: its inputs could not be "
            "compared"
        )
        return record
    changes = {
        k: {"interrupted": old_config.get(k), "now": v}
        for k, v in inputs["config"].items()
        if old_config.get(k) != v
    }
    if old_sha != inputs["dataset_sha256"]:
        changes["dataset"] = {
            "interrupted": f"sha256 {old_sha[:12]}…",
            "now": f"sha256 {inputs['dataset_sha256'][:12]}…",
        }
    if changes and not allow_changes:
        raise ConfigError(
            f"{plan.target}: --resume with other inputs than the interrupted run in {plan.stage} "
            f"({describe_changes(changes)}); pass --allow-changes to resume with them anyway (both "
            f"are recorded in {RUN_MANIFEST}), or --overwrite to start over."
        )
    return record | {"interrupted_run": before, "changes": changes}


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


def describe_changes(changes: dict) -> str:
    """'learning_rate 0.01 → 0.02; dataset …': what a resume changed, for messages."""
    return "; ".join(f"{k} {c['interrupted']!r} → {c['now']!r}" for k, c in changes.items())


def _recover(target: Path) -> None:
    """A previous swap cut between its two renames left `.NAME.old` and no NAME: put it back.
    (plan_run has checked that `.NAME.old`, if there, is a molting run.)"""
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
    found = sorted(
        (p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
        reverse=True,
    )
    skipped = []
    for ckpt in found:
        damage = _damage(ckpt)
        if damage is None:
            note = (
                f"skipped incomplete checkpoint(s) {', '.join(skipped)}; resuming from {ckpt.name}"
                if skipped
                else None
            )
            return str(ckpt), note
        skipped.append(f"{ckpt.name} ({damage})")
    return None, None


def _damage(ckpt: Path) -> str | None:
    """What makes a checkpoint unusable (a file missing, empty or cut short by a crash), or None."""
    for name in CHECKPOINT_FILES:
        f = ckpt / name
        if not f.is_file():
            return f"{name} missing"
        if f.stat().st_size == 0:
            return f"{name} is empty"
    for name in CHECKPOINT_FILES:
        if name.endswith(".pt") and not zipfile.is_zipfile(
            ckpt / name
        ):  # torch.save writes a zip archive
            return f"{name} is cut short"
    try:
        json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return "trainer_state.json is unreadable"
    try:
        check_safetensors(ckpt / "adapter_model.safetensors")
    except (OSError, ModelError):
        return "adapter_model.safetensors is cut short"
    return None
