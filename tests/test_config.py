"""Config loading: the seed's keys, unknown-key hints, types, cross-field checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from molting.errors import ConfigError
from molting.train.config import (
    TrainConfig,
    build_config,
    load_config,
    plan_warnings,
    planned_steps,
    split_sizes,
)

SEED_PHASE5 = """
base_model: microsoft/Phi-3-mini-4k-instruct
dataset: dataset_sharegpt_curated.json
format: sharegpt
quantization: 4bit
lora_rank: 16
lora_alpha: 32
learning_rate: 2e-4
batch_size: 4
gradient_accumulation: 4
epochs: 5
warmup_steps: 50
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_seeds_config_loads_with_its_values(tmp_path):
    cfg = load_config(write(tmp_path, SEED_PHASE5))
    assert (cfg.base_model, cfg.quantization, cfg.lora_rank, cfg.lora_alpha) == (
        "microsoft/Phi-3-mini-4k-instruct",
        "4bit",
        16,
        32,
    )
    assert cfg.learning_rate == 2e-4  # YAML 1.1 reads '2e-4' as a string; we accept it as a number
    assert cfg.effective_batch == 16


@pytest.mark.parametrize("name", ["phase3.yaml", "phase5.yaml", "cpu.yaml"])
def test_shipped_configs_are_valid(name):
    cfg = load_config(Path(__file__).parents[1] / "configs" / name)
    assert cfg.dataset and cfg.output_dir


def test_cpu_profile_is_the_offline_default_without_quantization():
    cfg = load_config(Path(__file__).parents[1] / "configs" / "cpu.yaml")
    assert (cfg.base_model, cfg.quantization) == ("smollm2-135m", "none") and cfg.max_steps


@pytest.mark.parametrize(
    "key, hint",
    [
        ("lora_rnk", "lora_rank"),
        ("learning_rat", "learning_rate"),
        ("warmup", "warmup_steps"),
        ("max_seq_len", "max_seq_length"),
    ],
)
def test_unknown_key_names_the_closest_valid_key(tmp_path, key, hint):
    with pytest.raises(ConfigError, match=f"unknown key '{key}'.*Did you mean '{hint}'"):
        load_config(write(tmp_path, f"{key}: 1\n"))


@pytest.mark.parametrize(
    "text, message",
    [
        ("epochs: 5-7\n", "'epochs' must be an integer"),
        ("quantization: 8bit\n", "'quantization' must be one of"),
        ("learning_rate: fast\n", "'learning_rate' must be a number"),
        ("batch_size: 0\n", "'batch_size' must be at least 1"),
        ("val_set_size: 1.5\n", "'val_set_size' must be a fraction"),
        ("format: alpaca\n", "'format' must be one of"),
        ("padding_free: 1\n", "'padding_free' must be true/false"),
        ("target_modules: [q_proj, 3]\n", "'target_modules' must be a string or a list of strings"),
        ("- a\n- b\n", "expected a mapping"),
        ("a: [\n", "invalid YAML"),
    ],
)
def test_bad_values_are_config_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_flags_override_the_config_and_none_means_unset(tmp_path):
    cfg = load_config(
        write(tmp_path, SEED_PHASE5), {"epochs": 7, "dataset": None, "base_model": "x/y"}
    )
    assert (cfg.epochs, cfg.dataset, cfg.base_model) == (7, "dataset_sharegpt_curated.json", "x/y")


def test_the_seeds_warmup_exceeding_its_run_is_reported(tmp_path):
    cfg = load_config(write(tmp_path, SEED_PHASE5))
    steps = planned_steps(cfg, 153)
    assert 45 <= steps <= 50  # 153 / (4×4) × 5 ≈ 48 (the Trainer rounds each epoch up)
    warnings = plan_warnings(cfg, 153, [100] * 153)
    assert (
        len(warnings) == 1 and "warmup_steps=50" in warnings[0] and f"{steps} steps" in warnings[0]
    )


def test_a_short_warmup_is_not_reported():
    assert plan_warnings(TrainConfig(warmup_steps=3), 153, [100] * 153) == []


def test_examples_longer_than_max_seq_length_are_counted():
    warnings = plan_warnings(
        TrainConfig(max_seq_length=100, warmup_steps=0), 10, [50, 120, 300, 99]
    )
    assert (
        len(warnings) == 1 and "2 of 4 examples are longer than max_seq_length=100" in warnings[0]
    )
    assert "longest 300" in warnings[0]


@pytest.mark.parametrize(
    "size, n, expected",
    [(0, 10, (10, 0)), (0.1, 153, (138, 15)), (16, 153, (137, 16)), (0.1, 3, (2, 1))],
)
def test_validation_split_sizes(size, n, expected):
    assert split_sizes(build_config({"val_set_size": size}), n) == expected


def test_validation_split_that_leaves_nothing_to_train_is_an_error():
    with pytest.raises(ConfigError, match="leaves no training examples"):
        split_sizes(build_config({"val_set_size": 10}), 10)
