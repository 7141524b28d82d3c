"""`make demo`'s own plumbing, with training and the gate stubbed: which data each phase trains
on, what it says when there is no raw set to compare, and that it writes reports/DEMO.md and
never the README."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import CLAUDIO
from molting import demo
from molting.errors import ConfigError
from molting.persona import load_persona

COMPARISON = (
    "# Persona gate\n\n**FAIL** — 1 of 2 criteria not met: X.\n\n"
    "## Success criteria\n\n| a |\n|---|\n\n## Next\n"
)


@pytest.fixture
def stubbed(tmp_path, monkeypatch):
    """Run demo.main in tmp_path with training and the gate replaced; record what they were
    asked."""
    calls = {"train": [], "gate": []}

    def train_phase(name, dataset, out, config):
        calls["train"].append((name, dataset))
        return {
            "phase": name,
            "dataset": str(dataset),
            "config": config,
            "adapter": str(out),
            "steps": 1,
            "tokens": 10,
            "wall_seconds": 1.0,
            "reused": False,
            "quantization": "none",
            "device": "cpu",
        }

    def run_gate(persona, baselines):
        calls["gate"].append(baselines)
        (tmp_path / "reports").mkdir(exist_ok=True)
        (tmp_path / "reports" / "comparison.md").write_text(COMPARISON, encoding="utf-8")
        return 1

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "train_phase", train_phase)
    monkeypatch.setattr(demo, "run_gate", run_gate)
    monkeypatch.setattr(demo, "ensure_calibrated", lambda persona_dir: None)
    monkeypatch.setattr(demo, "_cuda", lambda: False)
    (tmp_path / "README.md").write_text("# my clone\n", encoding="utf-8")
    return tmp_path, calls


def test_the_demo_trains_raw_and_curated_writes_demo_md_and_leaves_the_readme_alone(stubbed):
    tmp, calls = stubbed
    assert demo.main(["--persona", str(CLAUDIO)]) == 1  # the gate's status
    assert [name for name, _ in calls["train"]] == ["phase3", "phase5"]
    assert calls["train"][0][1] == CLAUDIO / "dataset_sharegpt.json" and calls["gate"] == [
        ["base", "phase3"]
    ]
    assert (tmp / "README.md").read_text(encoding="utf-8") == "# my clone\n"
    text = (tmp / "reports" / "DEMO.md").read_text(encoding="utf-8")
    assert "**FAIL**" in text and "reports/report.html" in text and "No raw-vs-curated" not in text


def test_an_already_curated_bundle_is_not_compared_with_itself(stubbed, capsys):
    tmp, calls = stubbed
    bundle = tmp / "curated-bundle"
    shutil.copytree(CLAUDIO, bundle)
    from molting.curate.run import curate_file

    curate_file(
        CLAUDIO / "dataset_sharegpt.json", bundle / "dataset_sharegpt.json", report=tmp / "first.md"
    )
    demo.main(["--persona", str(bundle)])
    assert [name for name, _ in calls["train"]] == ["phase5"] and calls["gate"] == [["base"]]
    out = capsys.readouterr().out
    assert "153 → 153" in out and "no comparison" in out
    assert "**No raw-vs-curated comparison**" in (tmp / "reports" / "DEMO.md").read_text(
        encoding="utf-8"
    )


def test_a_kept_raw_set_is_what_phase_3_trains_on_and_it_is_checked(tmp_path):
    bundle = tmp_path / "b"
    shutil.copytree(CLAUDIO, bundle)
    raw = bundle / "raw_dataset.json"
    shutil.copy(CLAUDIO / "dataset_sharegpt.json", raw)
    persona = load_persona(bundle)
    assert demo.raw_dataset(persona) == raw
    from molting.io import sha256_file

    (bundle / "init.json").write_text(
        json.dumps({"raw_dataset": {"file": raw.name, "sha256": sha256_file(raw)}}),
        encoding="utf-8",
    )
    assert demo.raw_dataset(persona) == raw
    raw.write_text("[]", encoding="utf-8")
    with pytest.raises(ConfigError, match="changed since `molting persona init`"):
        demo.raw_dataset(persona)
    assert (
        demo.raw_dataset(load_persona(CLAUDIO)) == CLAUDIO / "dataset_sharegpt.json"
    )  # no raw set: the dataset


def test_demo_md_carries_the_warning_beside_the_verdict(tmp_path, monkeypatch):
    """The gate says beside its verdict when the metric does not tell the voice apart; DEMO.md
    copies the verdict, so it copies that line too (and no other)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    warning = "**Voice not told apart (EN): … does not prove this voice there.**"
    (tmp_path / "reports" / "comparison.md").write_text(
        COMPARISON.replace("X.\n\n", f"X.\n\n{warning}\n\nModels: a, b.\n\n"), encoding="utf-8"
    )
    table = demo.verdict_table().splitlines()
    assert table[0].startswith("**FAIL**") and table[2] == warning and table[4] == "| a |"
    assert "Models:" not in "\n".join(table)
    (tmp_path / "reports" / "comparison.md").write_text(COMPARISON, encoding="utf-8")
    assert "Voice not told apart" not in demo.verdict_table()
