"""Training on tiny random models: weights, outputs, resume, early stopping, CLI errors."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import Interrupt, StopAt
from molting.cli import main
from molting.errors import ConfigError, DatasetError, OutputError
from molting.train.config import build_config
from molting.train.rundir import plan_run, stage_dir
from molting.train.trainer import _run, train

FAST = {
    "batch_size": 2,
    "gradient_accumulation": 1,
    "warmup_steps": 0,
    "max_seq_length": 256,
    "val_set_size": 0,
    "learning_rate": 1e-2,
    "lora_rank": 4,
    "lora_alpha": 8,
    "logging_steps": 1,
    "lora_dropout": 0.0,
    "quantization": "none",
}


def cfg_for(model_dir, dataset, **changes):
    return build_config({**FAST, "base_model": str(model_dir), "dataset": str(dataset), **changes})


def adapter(folder):
    return load_file(str(folder / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_llama_dir):
    """One small run shared by the output tests: 4 steps with a validation split."""
    from conftest import sample_conversations, write_sharegpt

    root = tmp_path_factory.mktemp("run")
    data = write_sharegpt(root / "data.json", sample_conversations(), repeat=6)
    cfg = cfg_for(tiny_llama_dir, data, max_steps=4, val_set_size=4, eval_steps=2)
    return train(cfg, root / "out")


def test_lora_weights_change_and_base_weights_do_not(tiny_llama_dir, tiny_dataset, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_before = load_file(str(tiny_llama_dir / "model.safetensors"))
    out = train(cfg_for(tiny_llama_dir, tiny_dataset, max_steps=3), tmp_path / "out").output_dir
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), out)
    lora_b = {k: v for k, v in model.state_dict().items() if "lora_B" in k}
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b.values())  # B starts at zero
    for name, value in model.get_base_model().state_dict().items():
        key = name.replace("base_layer.", "")
        if "lora_" not in name and key in base_before:
            torch.testing.assert_close(value, base_before[key], msg=f"{key} changed")


def test_the_phi3_architecture_trains_too(tiny_phi3_dir, tiny_dataset, tmp_path):
    manifest = train(cfg_for(tiny_phi3_dir, tiny_dataset, max_steps=2), tmp_path / "out").manifest
    assert manifest["steps"] == 2 and manifest["final_train_loss"] > 0


def test_outputs_are_written(trained):
    out = trained.output_dir
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "tokenizer.json",
        "run.json",
        "loss.csv",
        "loss.png",
    ):
        assert (out / name).is_file(), name
    assert not (out / "checkpoints").exists()
    assert not list(out.glob("*.bin"))  # safetensors only


def test_run_manifest_records_what_reproduces_the_run(trained):
    m = json.loads((trained.output_dir / "run.json").read_text())
    assert m["config"]["max_steps"] == 4 and m["seeds"]["seed"] == 42
    assert len(m["dataset"]["sha256"]) == 64 and m["dataset"]["validation"] == 4
    assert m["base_model"]["fingerprint"] and m["device"] == "cpu"
    assert m["quantization"] == {"requested": "none", "used": "none", "substitution": None}
    assert {"torch", "transformers", "peft"} <= m["libraries"].keys()
    assert m["steps"] == 4 and m["tokens_seen"] > 0 and m["tokens_per_second"] > 0
    assert m["best_val_loss"] is not None and m["best_checkpoint_step"] in (2, 4)


def test_loss_csv_has_a_row_per_step_and_validation_losses(trained):
    rows = list(csv.DictReader((trained.output_dir / "loss.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert [bool(r["val_loss"]) for r in rows] == [False, True, False, True]


class ScriptedValidationLoss:
    """Replaces each evaluation's loss with the next scripted value, before early stopping and
    best-model tracking read it: the run's decisions follow the script on every CPU."""

    def __init__(self, losses):
        from transformers import TrainerCallback

        self.losses = list(losses)
        outer = self

        class _Callback(TrainerCallback):
            def on_evaluate(self, args, state, control, metrics=None, **kw):
                value = outer.losses.pop(0)
                metrics["eval_loss"] = value  # the dict best-model tracking reads next
                state.log_history[-1]["eval_loss"] = value  # what run.json and loss.csv record

        self.callback = _Callback()


def test_the_best_checkpoint_is_reloaded_at_the_end(tiny_llama_dir, tiny_dataset, tmp_path):
    """Validation loss improves twice, then stalls: early stopping ends the run after `patience`
    evaluations without improvement and the kept adapter is the best checkpoint's."""
    script = ScriptedValidationLoss([3.0, 2.0, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0])
    cfg = cfg_for(
        tiny_llama_dir,
        tiny_dataset,
        max_steps=8,
        val_set_size=4,
        eval_steps=1,
        early_stopping_patience=2,
        keep_checkpoints=True,
    )
    result = train(cfg, tmp_path / "out", callbacks=[script.callback])
    m = result.manifest
    val = {r["step"]: r["val_loss"] for r in m["losses"] if r["val_loss"] is not None}
    assert val == {1: 3.0, 2: 2.0, 3: 2.5, 4: 2.6}
    assert m["best_checkpoint_step"] == 2 and m["best_val_loss"] == 2.0
    assert m["stopped_early"] and m["steps"] == 4
    saved = adapter(result.output_dir / "checkpoints" / "checkpoint-2")
    last = adapter(result.output_dir / "checkpoints" / "checkpoint-4")
    final = adapter(result.output_dir)
    assert all(torch.equal(final[k], saved[k]) for k in final)
    assert not all(
        torch.equal(final[k], last[k]) for k in final
    )  # the later, worse weights were dropped


def test_same_seed_same_losses(tiny_llama_dir, tiny_dataset, tmp_path):
    cfg = cfg_for(tiny_llama_dir, tiny_dataset, max_steps=2)
    a = train(cfg, tmp_path / "a").manifest["losses"]
    b = train(cfg, tmp_path / "b").manifest["losses"]
    assert [r["train_loss"] for r in a] == [r["train_loss"] for r in b]


def test_an_interrupted_run_resumes_from_its_last_checkpoint(
    tiny_llama_dir, tiny_dataset, tmp_path
):
    cfg = cfg_for(tiny_llama_dir, tiny_dataset, max_steps=4, eval_steps=2)
    with pytest.raises(Interrupt):
        train(cfg, tmp_path / "cut", callbacks=[StopAt(3).callback])
    assert (stage_dir(tmp_path / "cut") / "checkpoints" / "checkpoint-2").is_dir()
    assert not (tmp_path / "cut").exists()  # nothing half-written where the finished run goes
    with pytest.raises(OutputError, match="--resume"):
        train(cfg, tmp_path / "cut")
    resumed = train(cfg, tmp_path / "cut", resume=True)
    assert resumed.manifest["steps"] == 4 and resumed.manifest["resumed_from"].endswith(
        "checkpoint-2"
    )
    assert not stage_dir(tmp_path / "cut").exists() and resumed.manifest["complete"] is True
    straight = train(cfg, tmp_path / "straight")
    a, b = adapter(resumed.output_dir), adapter(straight.output_dir)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    # tokens/s of a resumed run counts what it trained itself, not the tokens before the cut
    assert resumed.manifest["tokens_seen"] == straight.manifest["tokens_seen"]
    assert resumed.manifest["tokens_per_second"] < 3 * straight.manifest["tokens_per_second"]


def test_resume_skips_an_incomplete_newest_checkpoint_and_says_so(
    tiny_llama_dir, tiny_dataset, tmp_path, caplog
):
    cfg = cfg_for(tiny_llama_dir, tiny_dataset, max_steps=6, eval_steps=2)
    with pytest.raises(Interrupt):
        train(cfg, tmp_path / "cut", callbacks=[StopAt(5).callback])
    newest = stage_dir(tmp_path / "cut") / "checkpoints" / "checkpoint-4"
    (newest / "optimizer.pt").unlink()  # killed while saving
    resumed = train(cfg, tmp_path / "cut", resume=True)
    assert (
        resumed.manifest["resumed_from"].endswith("checkpoint-2") and resumed.manifest["steps"] == 6
    )
    assert "skipped incomplete checkpoint(s) checkpoint-4" in caplog.text


def test_overwrite_keeps_the_old_run_until_the_new_one_is_complete(
    tiny_llama_dir, tiny_dataset, tmp_path
):
    cfg = cfg_for(tiny_llama_dir, tiny_dataset, max_steps=2)
    first = train(cfg, tmp_path / "run")
    before = (first.output_dir / "adapter_model.safetensors").read_bytes()
    with pytest.raises(DatasetError):  # a dataset typo: checked before anything is deleted
        train(
            cfg_for(tiny_llama_dir, tmp_path / "typo.json", max_steps=2),
            tmp_path / "run",
            overwrite=True,
        )
    with pytest.raises(Interrupt):  # Ctrl-C during the retrain
        train(
            cfg_for(tiny_llama_dir, tiny_dataset, max_steps=2, learning_rate=5e-2),
            tmp_path / "run",
            overwrite=True,
            callbacks=[StopAt(1).callback],
        )
    assert (first.output_dir / "adapter_model.safetensors").read_bytes() == before
    again = train(
        cfg_for(tiny_llama_dir, tiny_dataset, max_steps=2, learning_rate=5e-2),
        tmp_path / "run",
        overwrite=True,
    )
    assert (again.output_dir / "adapter_model.safetensors").read_bytes() != before
    assert not stage_dir(tmp_path / "run").exists()


def test_output_dir_rules(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("{}")
    with pytest.raises(OutputError, match="--overwrite"):
        plan_run(tmp_path / "run", overwrite=False, resume=False)
    plan = plan_run(tmp_path / "run", overwrite=True, resume=False)
    assert (
        plan.resume_from is None and (tmp_path / "run" / "run.json").exists()
    )  # nothing deleted yet
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(OutputError, match="not a molting run"):
        plan_run(tmp_path / "mine", overwrite=True, resume=False)
    with pytest.raises(OutputError, match="no checkpoint"):
        plan_run(tmp_path / "empty", overwrite=False, resume=True)
    with pytest.raises(ConfigError, match="contradict"):
        plan_run(tmp_path / "empty", overwrite=True, resume=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        plan_run(tmp_path / "file" / "sub", overwrite=False, resume=False)


def test_out_of_memory_is_one_line_with_the_fix():
    class OOM:
        def train(self, resume_from_checkpoint=None):
            raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(ConfigError, match="batch_size=4.*max_seq_length=1024"):
        _run(OOM(), None, build_config({}))


def write_cfg(tmp_path, model_dir, dataset, **extra):
    lines = {**FAST, "base_model": str(model_dir), "dataset": str(dataset), "max_steps": 1, **extra}
    path = tmp_path / "cfg.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in lines.items()))
    return path


def test_cli_dry_run_prints_tokens_with_labels(tiny_llama_dir, tiny_dataset, tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--config",
                str(write_cfg(tmp_path, tiny_llama_dir, tiny_dataset)),
                "--dry-run",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "+ " in out and ". " in out and "<|im_end|>" in out and "steps planned: 1" in out
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "case, code, message",
    [
        ("bad_dataset", 2, "invalid JSON"),
        ("bad_config", 2, "unknown key 'lora_rnk'"),
        ("bad_model", 3, "not found"),
        ("bad_output", 4, "cannot write"),
    ],
)
def test_cli_errors_are_one_line_and_non_zero(
    tiny_llama_dir, tiny_dataset, tmp_path, capsys, case, code, message
):
    dataset, model, extra = tiny_dataset, tiny_llama_dir, {}
    if case == "bad_dataset":
        dataset = tmp_path / "bad.json"
        dataset.write_text("[{")
    if case == "bad_config":
        extra = {"lora_rnk": 8}
    if case == "bad_model":
        model = tmp_path / "missing-model"
    (tmp_path / "file").write_text("x")
    output = tmp_path / "file" / "out" if case == "bad_output" else tmp_path / "out"
    argv = [
        "train",
        "--config",
        str(write_cfg(tmp_path, model, dataset, **extra)),
        "--output",
        str(output),
    ]
    assert main(argv) == code
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and message in err[0]


def test_run_json_says_why_the_run_stopped(trained):
    m = json.loads((trained.output_dir / "run.json").read_text())
    assert (
        m["stop_reason"].startswith("reached max_steps=4") and "best checkpoint" in m["stop_reason"]
    )


def test_a_fractional_validation_split_can_be_capped():
    from molting.train.config import split_sizes

    cfg = build_config({"val_set_size": 0.1, "val_set_max": 16})
    assert split_sizes(cfg, 484) == (468, 16) and split_sizes(cfg, 44) == (40, 4)
