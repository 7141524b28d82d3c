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

# cpu_threads pinned: the same-seed and resume tests compare runs bit for bit, and a kernel's sum
# order depends on its thread count (auto sizing is tested on its own, below)
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
    "cpu_threads": 1,
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


# ------------------------------------------------- threads, attention, precision per device


@pytest.mark.parametrize(
    "cores, others_busy, threads",
    [
        (2, 0.0, 2),
        (2, 0.2, 2),
        (2, 0.3, 1),
        (2, 1.0, 1),
        (2, 5.0, 1),  # a busy 2-core machine: never 0
        (8, 0.0, 8),
        (8, 2.2, 6),
        (8, 2.3, 5),
        (1, 0.0, 1),
        (4, -0.1, 4),
    ],
)
def test_threads_are_the_cores_other_work_leaves_free(cores, others_busy, threads):
    from molting.train.threads import choose_threads

    assert choose_threads(cores, others_busy) == threads


def test_usable_cores_follow_affinity_and_a_cgroup_quota(tmp_path, monkeypatch):
    from molting.train import threads
    from molting.train.threads import cgroup_quota, usable_cores

    monkeypatch.setattr(threads, "cgroup_quota", lambda: None)
    assert usable_cores({0, 1, 2, 3}) == 4
    monkeypatch.undo()
    assert usable_cores({0, 1, 2, 3}, quota=1.5) == 2 and usable_cores({0, 1}, quota=8.0) == 2
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_quota(tmp_path) is None
    assert cgroup_quota(tmp_path / "missing") is None


def test_busy_seconds_count_only_this_process_cpus():
    from molting.train.threads import busy_seconds

    stat = (
        "cpu  300 0 100 2000 0 0 0 0 0 0\n"
        "cpu0 100 0 50 800 10 0 0 0 0 0\n"  # user nice system idle iowait …
        "cpu1 200 0 50 1200 0 0 0 0 0 0\n"
    )
    assert busy_seconds(stat, {0}, 100.0) == 1.5
    assert busy_seconds(stat, {0, 1}, 100.0) == 4.0
    assert busy_seconds(stat, {7}, 100.0) is None


@pytest.fixture()
def torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_thread_sizer_drops_threads_when_others_compete_and_takes_them_back(torch_threads):
    from molting.train.threads import ThreadSizer

    # (wall s, this process's CPU s, busy CPU s of its cores): others = (busy - own) / wall
    samples = iter(
        [
            (0.0, 0.0, 0.0),
            (10.0, 19.0, 20.0),  # quiet: 0.1 core busy elsewhere
            (20.0, 29.0, 40.0),  # one busy loop: 1.0 core
            (20.5, 29.5, 41.0),  # too soon to judge: no change
            (30.0, 49.0, 60.0),
        ]
    )  # quiet again
    sizer = ThreadSizer(cores=2, _cpus={0, 1})
    sizer._sample = lambda: next(samples)
    sizer.begin()
    assert [sizer.start(), sizer.check(1), sizer.check(2), sizer.check(3)] == [2, 1, 1, 2]
    assert [(c["step"], c["threads"], c["others_busy_cores"]) for c in sizer.changes] == [
        (0, 2, 0.1),
        (1, 1, 1.0),
        (3, 2, 0.0),
    ]
    assert sizer.summary()["mode"] == "auto" and sizer.summary()["usable_cores"] == 2


def test_pinned_threads_never_change(torch_threads):
    from molting.train.threads import ThreadSizer

    sizer = ThreadSizer(pinned=1, cores=2)
    sizer._sample = lambda: pytest.fail("a pinned count needs no measurement")
    torch.set_num_threads(2)
    assert sizer.start() == 1 and sizer.check(5) == 1 and torch.get_num_threads() == 1
    sizer.finish()
    assert torch.get_num_threads() == 2  # what runs after training gets its threads back
    assert sizer.summary() == {
        "mode": "pinned",
        "usable_cores": 2,
        "n_changes": 1,
        "changes": [{"step": 0, "threads": 1, "others_busy_cores": None}],
    }


@pytest.mark.parametrize(
    "device, padding_free, dtype, flash, expected",
    [
        ("cpu", True, "float32", False, "molting_segments"),
        ("cpu", True, "bfloat16", True, "molting_segments"),  # flash-attn has no CPU kernel
        ("cpu", False, "float32", False, "sdpa"),
        ("cuda", True, "bfloat16", True, "flash_attention_2"),  # varlen over the packed row
        ("cuda", True, "float16", True, "flash_attention_2"),
        ("cuda", True, "float32", True, "sdpa"),  # FlashAttention has no fp32 kernel
        ("cuda", True, "bfloat16", False, "sdpa"),  # block-diagonal mask from position_ids
        ("cuda", False, "bfloat16", True, "sdpa"),
    ],
)
def test_attention_is_chosen_per_device(device, padding_free, dtype, flash, expected):
    from molting.train.attention import choose_attention

    choice = choose_attention(device, padding_free, dtype, flash)
    assert choice.implementation == expected and choice.reason


@pytest.mark.parametrize(
    "requested, flags, device, dtype, autocast, says",
    [
        ("bf16", ["amx_bf16"], "cpu", "float32", True, "AMX_BF16"),
        ("bf16", ["avx512_bf16"], "cpu", "float32", True, "AVX512_BF16"),
        (
            "bf16",
            [],
            "cpu",
            "float32",
            True,
            "EMULATED",
        ),  # asked for on a CPU without bf16 units: said so
        ("fp32", ["amx_bf16"], "cpu", "float32", False, None),  # the default, whatever the CPU
        (
            "bf16",
            ["amx_bf16"],
            "cuda",
            "bfloat16",
            False,
            None,
        ),  # CUDA picks its dtype when loading
        (
            "bf16",
            ["amx_bf16"],
            "cpu",
            "bfloat16",
            False,
            None,
        ),  # a 4-bit base already computes in bf16
    ],
)
def test_cpu_precision_choice(requested, flags, device, dtype, autocast, says):
    from molting.train.precision import choose_cpu_precision

    choice = choose_cpu_precision(requested, flags, device, dtype)
    assert choice.autocast_bf16 is autocast
    assert (choice.reason is None) if says is None else says in choice.reason.upper()


def test_bf16_flags_are_read_from_cpuinfo():
    from molting.train.precision import bf16_flags

    info = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile amx_bf16\n"
    assert bf16_flags(info) == ["amx_bf16", "avx512_bf16"]
    assert bf16_flags("flags\t: fpu avx2\n") == []


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_cpu_precision_decides_the_dtype_the_linear_layers_compute_in(
    tiny_llama_dir, tiny_dataset, tmp_path, precision, dtype
):
    from transformers import TrainerCallback

    seen = set()

    class Spy(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            layer = next(m for n, m in model.named_modules() if n.endswith("q_proj.base_layer"))
            layer.register_forward_hook(
                lambda mod, inp, out: seen.add(out.dtype) if mod.training else None
            )

    m = train(
        cfg_for(tiny_llama_dir, tiny_dataset, max_steps=1, cpu_precision=precision),
        tmp_path / "out",
        callbacks=[Spy()],
    ).manifest
    assert seen == {dtype} and m["precision"]["autocast_bf16"] is (precision == "bf16")
    assert m["precision"]["requested"] == precision and m["final_train_loss"] > 0


def test_run_json_says_which_attention_precision_and_threads_trained(
    trained, tiny_llama_dir, tiny_dataset, tmp_path, torch_threads
):
    m = json.loads((trained.output_dir / "run.json").read_text())
    assert (
        m["attention"]["implementation"] == "molting_segments" and "CPU" in m["attention"]["reason"]
    )
    assert m["precision"] == {
        "requested": "fp32",
        "autocast_bf16": False,
        "cpu_bf16_flags": m["precision"]["cpu_bf16_flags"],
        "reason": None,
    }
    assert m["cpu_threads"]["mode"] == "pinned" and m["cpu_threads"]["changes"][0]["threads"] == 1
    auto = train(
        cfg_for(tiny_llama_dir, tiny_dataset, max_steps=2, cpu_threads=None), tmp_path / "auto"
    ).manifest
    first = auto["cpu_threads"]["changes"][0]
    assert auto["cpu_threads"]["mode"] == "auto" and first["step"] == 0
    assert 1 <= first["threads"] <= auto["cpu_threads"]["usable_cores"]
