"""The QLoRA code path without a GPU: MOLTING_CPU_4BIT=1 loads the base in 4-bit NF4 through
bitsandbytes on the CPU, so prepare_model_for_kbit_training, training, saving and the gate's
4-bit load + adapter + generation all run for real on a tiny model (the default stays the loud
fp32 substitution)."""

from __future__ import annotations

import json

import pytest

from molting.models import CPU_4BIT, choose_quantization


def test_without_the_opt_in_4bit_on_cpu_is_a_loud_fp32_substitution(monkeypatch):
    monkeypatch.delenv(CPU_4BIT, raising=False)
    used, reason = choose_quantization("4bit", cuda=False)
    assert used == "none" and "needs a CUDA GPU" in reason


@pytest.fixture(scope="module")
def tiny_4bit_dir(tmp_path_factory, llama_tokenizer):
    """The tiny Llama, wide enough for bitsandbytes' CPU 4-bit kernels (blocks of 64 along K)."""
    import conftest

    wide = {**conftest.TINY, "hidden_size": 128, "intermediate_size": 256}
    return conftest._save_tiny(
        "llama", llama_tokenizer, tmp_path_factory.mktemp("tiny-4bit"), config=wide
    )


def test_qlora_trains_saves_and_the_gate_loads_it_in_4bit_on_cpu(
    tiny_4bit_dir, tiny_dataset, tmp_path, monkeypatch
):
    tiny_llama_dir = tiny_4bit_dir
    monkeypatch.setenv(CPU_4BIT, "1")
    from molting.gate.generate import GenerationConfig, LoadedModels
    from molting.gate.specs import parse_model
    from molting.persona import Prompt
    from molting.train.config import build_config
    from molting.train.trainer import train

    cfg = build_config(
        {
            "base_model": str(tiny_llama_dir),
            "dataset": str(tiny_dataset),
            "quantization": "4bit",
            "max_steps": 2,
            "batch_size": 2,
            "gradient_accumulation": 1,
            "warmup_steps": 0,
            "val_set_size": 0,
            "max_seq_length": 128,
            "lora_rank": 2,
            "lora_alpha": 4,
            "learning_rate": 1e-2,
        }
    )
    result = train(cfg, tmp_path / "qlora")
    m = result.manifest
    assert (
        m["quantization"]["used"] == "4bit"
        and CPU_4BIT in m["quantization"]["substitution"]
        and m["steps"] == 2
    )
    assert (result.output_dir / "adapter_model.safetensors").is_file()

    spec = parse_model("candidate", str(result.output_dir))
    models = LoadedModels(
        str(tiny_llama_dir),
        {"base": parse_model("base", "base"), "candidate": spec},
        quantization="4bit",
    )
    base = models.ensure_base()
    assert base.quantization == "4bit"
    assert any(
        type(mod).__name__ == "Linear4bit" for mod in base.model.modules()
    )  # bitsandbytes layers, really
    prompt = Prompt("p", "en", "Say hi", "hi")
    assert models.canary(prompt)["candidate"] > 0
    replies = models.generate(
        "candidate",
        [prompt, Prompt("q", "pt", "Oi?", "Oi!")],
        GenerationConfig(max_new_tokens=4, batch_size=2),
    )
    assert len(replies) == 2 and all(isinstance(r, str) and n <= 4 for r, n in replies)
    json.dumps(m)  # the manifest stays JSON
    models.close()


@pytest.mark.parametrize("flag", ["0", ""])
def test_only_the_value_1_opts_in(monkeypatch, flag):
    monkeypatch.setenv(CPU_4BIT, flag)
    assert choose_quantization("4bit", cuda=False)[0] == "none"
