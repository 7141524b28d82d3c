"""The gate itself: pytester runs `pytest evals/`'s tests against canned replies, plus one
real-model run (offline default + a 2-step adapter) through generation, scoring and reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from molting.gate.generate import GenerationConfig, adapter_sha256, cache_key

ROOT = Path(__file__).resolve().parents[1]
EVALS = ROOT / "evals"
PROMPTS = ROOT / "fixtures/claudio/eval_prompts.jsonl"

pytest_plugins = ["pytester"]


def _rows() -> list[dict]:
    return [json.loads(x) for x in PROMPTS.read_text(encoding="utf-8").splitlines() if x.strip()]


def _setup(pytester: pytest.Pytester, candidate_field: str) -> Path:
    rows = _rows()
    replies = {"base": {r["id"]: r["generic"] for r in rows}, "candidate": {r["id"]: r[candidate_field] for r in rows}}
    path = pytester.path / "replies.json"
    path.write_text(json.dumps(replies, ensure_ascii=False), encoding="utf-8")
    pytester.makeconftest("from molting.gate.plugin import *\n")
    pytester.makepyfile(test_success_criteria=(EVALS / "test_success_criteria.py").read_text(encoding="utf-8"))
    return path


def _run(pytester, replies: Path):
    return pytester.runpytest_subprocess("--replies", str(replies), "--baseline", "base", "--report-dir",
                                        str(pytester.path / "reports"), "-p", "no:cacheprovider")


def test_reference_replies_pass_every_criterion(pytester):
    result = _run(pytester, _setup(pytester, "reference"))
    result.assert_outcomes(passed=9)
    report = (pytester.path / "reports/comparison.md").read_text(encoding="utf-8")
    assert report.splitlines()[2].startswith("**PASS**")
    assert (pytester.path / "reports/comparison.png").stat().st_size > 1000
    data = json.loads((pytester.path / "reports/results.json").read_text(encoding="utf-8"))
    assert len(data["samples"]) == len(_rows()) and data["samples"][0]["models"]["candidate"]["scores"]["personality"] >= 0

    # `molting report` re-scores the stored generations without a model and reaches the same verdict.
    # In a subprocess: pytester unloads modules imported during the test, and torch cannot be re-imported.
    done = subprocess.run([sys.executable, "-m", "molting.cli", "report", "--results",
                           str(pytester.path / "reports/results.json"), "--report-dir", str(pytester.path / "rescored")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("**PASS**"), done.stdout + done.stderr[-2000:]
    assert (pytester.path / "rescored/comparison.md").is_file()


def test_agent_like_replies_fail_the_right_tests_and_still_write_the_report(pytester):
    result = _run(pytester, _setup(pytester, "agent_like"))
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 6 and outcomes["passed"] == 3
    out = result.stdout.str()
    for name in ("test_personality", "test_agent_phrase_rate[en]", "test_agent_phrase_rate[pt]", "test_directness",
                 "test_candidate_beats_baseline_on_personality[base]", "test_no_agent_phrase_regression[base]"):
        assert f"FAILED test_success_criteria.py::{name}" in out
    assert "Agent-phrase rate (EN): measured 100.0%" in out and "target ≤ 5%" in out and "ev-en-001" in out
    assert "**FAIL**" in (pytester.path / "reports/comparison.md").read_text(encoding="utf-8")


def test_criteria_file_selects_the_optional_llm_judge(pytester, tiny_llama_dir):
    """`judge: <model>` in the criteria file adds judge scores to the reports; criteria stay offline."""
    replies = _setup(pytester, "reference")
    rows = [r for r in _rows() if r["id"] in ("ev-en-001", "ev-pt-001")]
    prompts = pytester.path / "p.jsonl"
    prompts.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    criteria = pytester.path / "criteria.yaml"
    criteria.write_text((EVALS / "criteria.yaml").read_text(encoding="utf-8").replace("judge: none", f"judge: {tiny_llama_dir}"),
                        encoding="utf-8")
    result = pytester.runpytest_subprocess("--replies", str(replies), "--baseline", "base", "--prompts", str(prompts),
                                           "--criteria", str(criteria), "--report-dir", str(pytester.path / "reports"),
                                           "-p", "no:cacheprovider", "-k", "personality")
    assert "passed" in result.stdout.str()
    report = (pytester.path / "reports/comparison.md").read_text(encoding="utf-8")
    assert "## LLM judge (optional)" in report and str(tiny_llama_dir) in report
    data = json.loads((pytester.path / "reports/results.json").read_text(encoding="utf-8"))
    assert all(0 <= s["models"][m]["judge"] <= 10 for s in data["samples"] for m in ("base", "candidate"))


def test_missing_candidate_adapter_fails_in_one_line(pytester):
    pytester.makeconftest("from molting.gate.plugin import *\n")
    pytester.makepyfile(test_x="def test_x(gate):\n    pass\n")
    result = pytester.runpytest_subprocess("--adapter", str(pytester.path / "nope"), "--baseline", "base")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "no candidate adapter at" in result.stderr.str() and "molting train" in result.stderr.str()


def test_cache_key_changes_with_everything_that_changes_the_output(tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    (a / "adapter_config.json").write_text("{}")
    (a / "adapter_model.safetensors").write_bytes(b"one")
    sha1 = adapter_sha256(a)
    (a / "adapter_model.safetensors").write_bytes(b"two")
    sha2 = adapter_sha256(a)
    base = dict(base_fingerprint="fp", tokenizer_hash="t", config=GenerationConfig(), prompt="oi")
    keys = {cache_key(adapter_sha=sha1, **base), cache_key(adapter_sha=sha2, **base),
            cache_key(adapter_sha=sha1, **(base | {"config": GenerationConfig(max_new_tokens=8)})),
            cache_key(adapter_sha=sha1, **(base | {"tokenizer_hash": "u"})),
            cache_key(adapter_sha=sha1, **(base | {"base_fingerprint": "fp2"})),
            cache_key(adapter_sha=sha1, **(base | {"prompt": "olá"})),
            cache_key(adapter_sha=sha1, sample_index=1, **base)}
    assert sha1 != sha2 and len(keys) == 7
    assert cache_key(adapter_sha=sha1, **base) == cache_key(adapter_sha=sha1, **base)


@pytest.mark.realmodel
def test_real_model_gate_generates_scores_and_reports(tmp_path):
    """Offline default + a 2-step adapter, 4 prompts: the whole path; criteria not asserted.

    Runs the gate in a plain subprocess: pytester's sys.modules snapshot would unload the
    torch/transformers submodules imported here and their re-import fails (c10d registration).
    """
    from molting.train.config import load_config, with_overrides
    from molting.train.trainer import train

    cfg = with_overrides(load_config(ROOT / "configs/cpu.yaml"), max_steps=2, val_set_size=0, batch_size=2,
                         gradient_accumulation=1, warmup_steps=0, learning_rate=2e-3, dataset=str(ROOT / "fixtures/claudio/dataset_sharegpt.json"))
    adapter = tmp_path / "adapter"
    train(cfg, adapter)
    prompts = tmp_path / "p.jsonl"
    rows = [r for r in _rows() if r["id"] in ("ev-en-001", "ev-en-013", "ev-pt-001", "ev-pt-013")]
    prompts.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    gate_dir = tmp_path / "gate"
    gate_dir.mkdir()
    (gate_dir / "conftest.py").write_text("from molting.gate.plugin import *\n", encoding="utf-8")
    (gate_dir / "test_success_criteria.py").write_text((EVALS / "test_success_criteria.py").read_text(encoding="utf-8"),
                                                       encoding="utf-8")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--adapter", str(adapter),
           "--baseline", "base", "--prompts", str(prompts), "--max-new-tokens", "12",
           "--report-dir", str(tmp_path / "reports"), "-k", "adapters_are_applied", "test_success_criteria.py"]
    env = os.environ | {"MOLTING_GENERATIONS": str(tmp_path / "gens")}

    def gate() -> dict:
        done = subprocess.run(cmd, cwd=gate_dir, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
        return json.loads((tmp_path / "reports/results.json").read_text(encoding="utf-8"))

    first = gate()
    assert first["facts"]["cache_misses"] == 8 and first["facts"]["quantization"] in ("none", "4bit")
    assert all(s["models"]["candidate"]["scores"]["personality"] is not None for s in first["samples"])
    assert (tmp_path / "reports/comparison.md").read_text(encoding="utf-8").startswith("# Persona gate")
    second = gate()
    assert second["facts"]["cache_hits"] == 8 and second["facts"]["cache_misses"] == 0
    assert [s["models"]["candidate"]["reply"] for s in second["samples"]] == \
        [s["models"]["candidate"]["reply"] for s in first["samples"]]
