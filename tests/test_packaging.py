"""molting works installed: the wheel holds what the commands and the gate need (criteria
defaults, packaged generic sets, the pytest11 entry point), and runs from a directory outside
the checkout on a persona bundle that lives there too."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, TEST_DATA
from molting.io import read_jsonl

# Left out of the source copy the wheel is built from: anywhere, and (ROOT_ONLY) at the top of the
# checkout only — molting/metrics/data holds packaged sets, while ./data is a user's working folder.
ANYWHERE = shutil.ignore_patterns(
    ".git", ".venv", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", ".benchmarks"
)
ROOT_ONLY = ("output", "data", "build")


def source_copy_ignore(folder: str, names: list[str]) -> set[str]:
    ignored = set(ANYWHERE(folder, names))
    return ignored | ({n for n in names if n in ROOT_ONLY} if Path(folder) == ROOT else set())


def test_the_source_copy_keeps_every_package_file():
    """What the slow test below builds its wheel from: every file of the package is in the copy."""
    tracked = subprocess.run(
        ["git", "ls-files", "molting"], cwd=ROOT, capture_output=True, text=True
    )
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    left_out = []
    for rel in tracked.stdout.split():
        parts = Path(rel).parts
        for i in range(len(parts)):
            if parts[i] in source_copy_ignore(str(ROOT.joinpath(*parts[:i])), [parts[i]]):
                left_out.append(rel)
                break
    assert not left_out and any(
        p.startswith("molting/metrics/data/") for p in tracked.stdout.split()
    ), left_out[:5]


def run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_the_installed_wheel_calibrates_gates_and_reports_outside_the_checkout(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    dist, src = tmp_path / "dist", tmp_path / "src"
    # built from a copy: setuptools writes build/ and *.egg-info beside the sources
    shutil.copytree(ROOT, src, ignore=source_copy_ignore)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
        ],
        tmp_path,
        env,
    )
    wheel = next(dist.glob("molting-*.whl"))
    venv = tmp_path / "env"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    py = venv / "bin" / "python"
    # the heavy dependencies come from the test's own environment; molting itself only from the
    # wheel
    purelib = run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env
    ).stdout.strip()
    Path(purelib, "deps.pth").write_text(site.getsitepackages()[0] + "\n", encoding="utf-8")
    run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        tmp_path,
        env,
    )

    work = tmp_path / "elsewhere"
    shutil.copytree(TEST_DATA / "helena", work / "helena")
    where = run(
        [str(py), "-c", "import molting; print(molting.__file__)"], work, env
    ).stdout.strip()
    assert where.startswith(purelib), where  # the wheel, not the checkout

    run([str(venv / "bin" / "molting"), "calibrate", "--persona", "helena"], work, env)
    assert (work / "helena" / "anchors.json").is_file() and (
        work / "helena" / "METRICS_CALIBRATION.md"
    ).is_file()

    prompts = read_jsonl(work / "helena" / "eval_prompts.jsonl")
    replies = {
        "base": {
            p["id"]: "Great question! There are several factors to consider. I hope this helps!"
            for p in prompts
        },
        "candidate": {p["id"]: p["reference"] for p in prompts},
    }
    (work / "replies.json").write_text(json.dumps(replies, ensure_ascii=False), encoding="utf-8")
    gate = run(
        [
            str(py),
            "-m",
            "pytest",
            "--pyargs",
            "molting.gate",
            "-q",
            "-p",
            "no:cacheprovider",
            "--persona",
            "helena",
            "--replies",
            "replies.json",
            "--report-dir",
            "reports",
        ],
        work,
        env,
    )
    assert "9 passed" in gate.stdout, gate.stdout[-2000:]
    report = run(
        [
            str(venv / "bin" / "molting"),
            "report",
            "--persona",
            "helena",
            "--results",
            "reports/results.json",
            "--report-dir",
            "rescored",
        ],
        work,
        env,
    )
    assert report.stdout.startswith("**PASS**") and (work / "rescored" / "comparison.md").is_file()
    assert '<table id="matrix">' in (work / "rescored" / "report.html").read_text(
        encoding="utf-8"
    )  # template shipped
