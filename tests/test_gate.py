"""The gate itself: pytest runs the gate's tests in a subprocess against canned replies (the
plugin is molting's pytest11 entry point), plus one real-model run (offline default + a
2-step adapter) through generation, scoring, reports and a fully cached re-run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CLAUDIO
from molting.gate.generate import GenerationConfig, adapter_sha256, cache_key
from molting.io import read_jsonl

pytest_plugins = ["pytester"]


def _rows(persona: Path = CLAUDIO) -> list[dict]:
    return read_jsonl(persona / "eval_prompts.jsonl")


def _replies(tmp: Path, candidate_field: str, persona: Path = CLAUDIO) -> Path:
    rows = _rows(persona)
    base = {
        r["id"]: r.get("generic")
        or "Great question! There are several factors to consider. I hope this helps!"
        for r in rows
    }
    data = {"base": base, "candidate": {r["id"]: r[candidate_field] for r in rows}}
    path = tmp / f"replies-{candidate_field}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


GATE = [sys.executable, "-m", "pytest", "--pyargs", "molting.gate", "-q", "-p", "no:cacheprovider"]


def gate(
    cwd: Path, *args: str, timeout: int = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the gate as a user would, from a directory outside the repository:
    `pytest --pyargs molting.gate --persona …`, in a subprocess (torch cannot be imported twice in
    one process, and pytester would try)."""
    return subprocess.run(
        [*GATE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def molting(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "molting.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _canned_run(tmp: Path, candidate_field: str) -> tuple[Path, subprocess.CompletedProcess]:
    """One gate run on canned replies: the candidate says each prompt's `candidate_field`."""
    done = gate(
        tmp,
        "--persona",
        str(CLAUDIO),
        "--replies",
        str(_replies(tmp, candidate_field)),
        "--report-dir",
        str(tmp / "reports"),
    )
    return tmp, done


@pytest.fixture(scope="module")
def passing(tmp_path_factory):
    """The persona's own references as the candidate."""
    return _canned_run(tmp_path_factory.mktemp("pass"), "reference")


def test_reference_replies_pass_every_criterion(passing):
    tmp, done = passing
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "9 passed" in done.stdout
    report = (tmp / "reports/comparison.md").read_text(encoding="utf-8")
    assert report.splitlines()[2].startswith("**PASS**") and "## Self-check controls" in report
    assert report.splitlines()[4].startswith("**Voice not told apart (EN, PT-BR)")  # next to it
    assert (tmp / "reports/comparison.png").stat().st_size > 1000
    page = (tmp / "reports/report.html").read_text(encoding="utf-8")
    assert all(f'id="p-{r["id"]}"' in page for r in _rows())  # every prompt in the page's matrix
    data = json.loads((tmp / "reports/results.json").read_text(encoding="utf-8"))
    assert len(data["samples"]) == len(_rows()) and data["facts"]["models_loaded"] == [
        "none (--replies)"
    ]
    assert data["samples"][0]["models"]["candidate"]["scores"]["personality"] >= 0


def test_molting_report_rescores_without_a_model_and_reaches_the_same_verdict(passing):
    tmp, _ = passing
    done = molting(
        "report",
        "--persona",
        str(CLAUDIO),
        "--results",
        str(tmp / "reports/results.json"),
        "--report-dir",
        str(tmp / "rescored"),
    )
    assert done.returncode == 0 and done.stdout.startswith("**PASS**"), (
        done.stdout + done.stderr[-2000:]
    )
    first = json.loads((tmp / "reports/results.json").read_text(encoding="utf-8"))
    again = json.loads((tmp / "rescored/results.json").read_text(encoding="utf-8"))
    assert [s["models"]["candidate"]["scores"] for s in first["samples"]] == [
        s["models"]["candidate"]["scores"] for s in again["samples"]
    ]


def test_molting_report_refuses_edited_generations(passing, tmp_path):
    tmp, _ = passing
    data = json.loads((tmp / "reports/results.json").read_text(encoding="utf-8"))
    data["samples"][0]["models"]["candidate"]["reply"] = "Edited by hand."
    edited = tmp_path / "results.json"
    edited.write_text(json.dumps(data), encoding="utf-8")
    done = molting("report", "--persona", str(CLAUDIO), "--results", str(edited))
    assert done.returncode != 0 and "changed since the gate wrote this file" in done.stderr
    assert not (tmp_path / "comparison.md").exists()


@pytest.fixture(scope="module")
def failing(tmp_path_factory):
    """Agent-like replies as the candidate."""
    return _canned_run(tmp_path_factory.mktemp("fail"), "agent_like")


def test_agent_like_replies_fail_the_right_tests_and_still_write_the_report(failing):
    tmp_path, done = failing
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    for name in (
        "test_personality",
        "test_agent_phrase_rate[en]",
        "test_agent_phrase_rate[pt]",
        "test_directness",
        "test_candidate_beats_baseline_on_personality[base]",
        "test_no_agent_phrase_regression[base]",
    ):
        failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED ")]
        assert any(
            line.split(" ")[1].endswith(f"test_persona_gate.py::{name}") for line in failed
        ), name
    assert "Agent-phrase rate (EN): measured 100.0%" in done.stdout and "target ≤ 5%" in done.stdout
    assert "ev-en-" in done.stdout
    assert "**FAIL**" in (tmp_path / "reports/comparison.md").read_text(encoding="utf-8")


def test_an_english_only_persona_skips_the_portuguese_checks(tmp_path):
    bundle = tmp_path / "en-only"
    bundle.mkdir()
    card = (CLAUDIO / "persona.yaml").read_text(encoding="utf-8")
    for name in ("dataset_sharegpt.json", "anchors.json", "calibration.jsonl"):
        (bundle / name).write_bytes((CLAUDIO / name).read_bytes())
    (bundle / "negatives").mkdir()
    (bundle / "negatives/generic.jsonl").write_bytes(
        (CLAUDIO / "negatives/generic.jsonl").read_bytes()
    )
    (bundle / "persona.yaml").write_text(card, encoding="utf-8")
    (bundle / "eval_prompts.jsonl").write_bytes((CLAUDIO / "eval_prompts.jsonl").read_bytes())
    en = [r for r in _rows() if r["lang"] == "en"]
    prompts = tmp_path / "en.jsonl"
    prompts.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in en) + "\n", encoding="utf-8"
    )
    done = gate(
        tmp_path,
        "--persona",
        str(bundle),
        "--prompts",
        str(prompts),
        "--replies",
        str(_replies(tmp_path, "reference")),
        "--report-dir",
        str(tmp_path / "reports"),
        "-rs",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "6 passed, 3 skipped" in done.stdout and "no prompts in that language" in done.stdout
    assert "Skipped: no prompts in PT-BR" in (tmp_path / "reports/comparison.md").read_text(
        encoding="utf-8"
    )


def test_criteria_file_selects_the_optional_llm_judge(tmp_path, tiny_llama_dir):
    """`judge: <model>` in a criteria file adds judge scores to the reports; criteria stay
    offline."""
    rows = [r for r in _rows() if r["id"] in ("ev-en-001", "ev-pt-001")]
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8"
    )
    criteria = tmp_path / "criteria.yaml"
    criteria.write_text(f"judge: {tiny_llama_dir}\n", encoding="utf-8")
    done = gate(
        tmp_path,
        "--persona",
        str(CLAUDIO),
        "--replies",
        str(_replies(tmp_path, "reference")),
        "--prompts",
        str(prompts),
        "--criteria",
        str(criteria),
        "--report-dir",
        str(tmp_path / "reports"),
        "-k",
        "personality and not beats",
    )
    assert done.returncode == 0 and "1 passed" in done.stdout, (
        done.stdout[-3000:] + done.stderr[-2000:]
    )
    report = (tmp_path / "reports/comparison.md").read_text(encoding="utf-8")
    assert "## LLM judge (optional)" in report and str(tiny_llama_dir) in report
    data = json.loads((tmp_path / "reports/results.json").read_text(encoding="utf-8"))
    assert all(
        0 <= s["models"][m]["judge"] <= 10 for s in data["samples"] for m in ("base", "candidate")
    )


def test_missing_candidate_adapter_stops_the_run_in_one_line(tmp_path):
    done = gate(tmp_path, "--persona", str(CLAUDIO), "--adapter", str(tmp_path / "nope"))
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "nope not found" in errors[0] and "molting train" in errors[0], (
        done.stderr
    )


def test_the_plugin_is_inert_without_gate_tests(pytester):
    pytester.makepyfile(test_x="def test_x():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_cache_key_changes_with_everything_that_changes_the_output(tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    (a / "adapter_config.json").write_text("{}")
    (a / "adapter_model.safetensors").write_bytes(b"one")
    sha1 = adapter_sha256(a)
    (a / "adapter_model.safetensors").write_bytes(b"two")
    sha2 = adapter_sha256(a)
    msgs = [{"role": "user", "content": "oi"}]
    base = dict(weights="fp", tokenizer_hash="t", config=GenerationConfig(), messages=msgs)
    keys = {
        cache_key(adapter_sha=sha1, **base),
        cache_key(adapter_sha=sha2, **base),
        cache_key(adapter_sha=sha1, **(base | {"config": GenerationConfig(max_new_tokens=8)})),
        cache_key(adapter_sha=sha1, **(base | {"tokenizer_hash": "u"})),
        cache_key(adapter_sha=sha1, **(base | {"weights": "fp2"})),
        cache_key(adapter_sha=sha1, **(base | {"messages": [{"role": "user", "content": "olá"}]})),
        cache_key(
            adapter_sha=sha1, **(base | {"messages": [{"role": "system", "content": "s"}, *msgs]})
        ),
        cache_key(adapter_sha=sha1, sample_index=1, **base),
    }
    assert sha1 != sha2 and len(keys) == 8
    assert cache_key(adapter_sha=sha1, **base) == cache_key(adapter_sha=sha1, **base)


@pytest.mark.realmodel
def test_real_model_gate_generates_scores_reports_and_replays_from_the_cache(
    tmp_path, smollm2_adapter
):
    """Offline default + a 2-step adapter, 4 prompts: the whole path; criteria not asserted. The
    second run finds every generation and the canary in the cache and loads no model."""
    rows = [r for r in _rows() if r["id"] in ("ev-en-001", "ev-en-013", "ev-pt-001", "ev-pt-013")]
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8"
    )
    env = os.environ | {"MOLTING_GENERATIONS": str(tmp_path / "gens")}
    args = [
        "--persona",
        str(CLAUDIO),
        "--adapter",
        str(smollm2_adapter),
        "--baseline",
        "base",
        "--prompts",
        str(prompts),
        "--max-new-tokens",
        "12",
        "--report-dir",
        str(tmp_path / "reports"),
        "-k",
        "adapters_are_applied",
    ]

    def run() -> dict:
        done = gate(tmp_path, *args, env=env)
        assert done.returncode == 0 and "1 passed" in done.stdout, (
            done.stdout[-3000:] + done.stderr[-2000:]
        )
        return json.loads((tmp_path / "reports/results.json").read_text(encoding="utf-8"))

    first = run()
    assert first["facts"]["cache_misses"] == 8 and first["facts"]["quantization"] in (
        "none",
        "4bit",
    )
    assert all(
        s["models"]["candidate"]["scores"]["personality"] is not None for s in first["samples"]
    )
    assert (
        (tmp_path / "reports/comparison.md")
        .read_text(encoding="utf-8")
        .startswith("# Persona gate")
    )
    second = run()
    assert second["facts"]["cache_hits"] == 8 and second["facts"]["cache_misses"] == 0
    assert second["facts"]["models_loaded"] == ["none (every generation was cached)"]
    assert [s["models"]["candidate"]["reply"] for s in second["samples"]] == [
        s["models"]["candidate"]["reply"] for s in first["samples"]
    ]


def test_several_candidates_compare_in_one_table(passing, failing, tmp_path):
    tmp, _ = passing
    other, _ = failing
    done = molting(
        "report",
        "--persona",
        str(CLAUDIO),
        "--results",
        f"refs={tmp / 'reports/results.json'}",
        "--results",
        f"agent={other / 'reports/results.json'}",
        "--report-dir",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "candidates.md").read_text(encoding="utf-8")
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| refs") or line.startswith("| agent")
    ]
    assert (
        len(rows) == 2
        and "Δ personality vs base" in text
        and "**PASS**" in text
        and "**FAIL**" in text
    )
    page = (tmp_path / "candidates.html").read_text(encoding="utf-8")
    assert all(f'<th data-model="{m}">' in page for m in ("base", "refs", "agent"))


def test_the_nearest_competing_question_is_stored_so_a_cached_rerun_loads_no_fitted_part():
    from molting.gate.run import nearest_questions
    from molting.metrics import Scorer
    from molting.persona import load_persona

    persona = load_persona(CLAUDIO)
    prompts = persona.eval_prompts()[:4]
    replies = [
        prompts[1].reference,
        prompts[0].reference,
        "Olha só: use git stash.",
        "Bottom line: yes.",
    ]
    first = nearest_questions(Scorer.load(persona), prompts, replies)
    assert first[0] is not None and first[0] != prompts[0].prompt  # another question, never its own
    again = Scorer.load(persona)
    assert nearest_questions(again, prompts, replies) == first and again.fitted == "not yet"


def test_an_older_results_file_is_rescored_only_against_the_bundle_whose_eval_set_it_holds(
    tmp_path, capsys
):
    """No stored fingerprint (an older molting): its prompts and references must be the bundle's
    own eval set; another bundle's file is refused."""
    from molting.errors import EvalError
    from molting.gate.criteria import load_criteria
    from molting.gate.records import check_persona, load_results
    from molting.persona import load_persona

    data = json.loads(
        (CLAUDIO.parent.parent / "reports" / "results.json").read_text(encoding="utf-8")
    )
    data["facts"].pop("persona_fingerprints", None)
    old = tmp_path / "results.json"
    old.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    results = load_results(old, load_criteria())
    check_persona(results, load_persona(CLAUDIO), old)
    assert "records no persona fingerprint" in capsys.readouterr().err
    with pytest.raises(EvalError, match="not .*eval set"):
        check_persona(
            results, load_persona(CLAUDIO.parent.parent / "tests" / "data" / "helena"), old
        )


# ---------------------------------------------------------------- the impostor control


def test_the_impostor_control_is_other_voices_scored_for_voice_alone(claudio, claudio_scorer):
    """Other voices' replies answer other prompts: as replies to the eval prompts they were cut
    as off topic (a mean of 0.04 for Cláudio, whoever wrote them). Scored for voice on their own
    prompts, the control measures voice: other voices sound more like the persona than generic
    replies do (measured 5.5 EN / 4.0 PT vs 0.8), and still fail."""
    import numpy as np

    from molting.gate.run import impostor_controls, score_controls
    from molting.metrics.fitdata import is_calibration_row

    prompts = claudio.eval_prompts()
    asked, replies = impostor_controls(claudio, prompts)
    assert len(replies) == len(prompts) and all(
        map(is_calibration_row, replies)
    )  # never trained on
    assert [a.lang for a in asked] == [p.lang for p in prompts]
    assert all(a.prompt != p.prompt and a.id == p.id for a, p in zip(asked, prompts))
    scores = score_controls(claudio_scorer, claudio, prompts)
    assert all(s.parts["topical"] == 1.0 for s in scores["impostor"])

    def mean(kind):
        return float(np.mean([s.personality for s in scores[kind]]))

    assert mean("generic") + 2 < mean("impostor") < 8.5, (mean("generic"), mean("impostor"))


def test_a_persona_its_impostor_control_cannot_fail_is_not_judged(
    claudio, claudio_scorer, monkeypatch
):
    """When other voices pass for the persona's voice (here: its own references stand in for
    them), the run refuses to judge a model."""
    from types import SimpleNamespace

    import molting.gate.run as R
    from molting.gate.criteria import load_criteria

    prompts = claudio.eval_prompts()
    own = [
        {"voice": "self", "lang": p.lang, "prompt": p.prompt, "reply": p.reference} for p in prompts
    ]
    monkeypatch.setattr(R, "impostor_rows", lambda persona: own)
    inputs = SimpleNamespace(persona=claudio, prompts=prompts, criteria=load_criteria())
    _, problems = R.run_controls(claudio_scorer, inputs)
    assert any(p.startswith("impostor replies pass 'Personality") for p in problems), problems


def test_the_report_says_when_the_voice_is_not_told_apart(claudio_scorer):
    """Cláudio's calibration puts voices the scorer never saw at or above his references in both
    languages (METRICS_CALIBRATION.md, *Other voices*): every gate report on him says so."""
    from molting.gate.view import weak_voice_warning

    weak = claudio_scorer.voice_not_told_apart()
    assert sorted(weak) == ["en", "pt"] and all(0 < v < 1 for v in weak.values()), weak
    line = weak_voice_warning({"voice_not_told_apart": weak})
    assert line.startswith("Voice not told apart (EN, PT-BR)") and "does not prove" in line
    assert f"in {weak['en']:.0%} (EN) and {weak['pt']:.0%} (PT-BR) of cases" in line
    # a results.json written before the shares were recorded: the languages alone
    assert "never saw scores at least" in weak_voice_warning({"voice_not_told_apart": ["en"]})
    assert weak_voice_warning({}) == ""
