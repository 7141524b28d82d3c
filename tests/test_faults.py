"""The fault corpus: user errors and damaged inputs across curate, train, persona init,
calibrate, the gate and report. Every case asserts the exit code, one message that names the
file or key and the fix, no traceback, and that nothing outside the case's own output changed
(every file under the case directory and the shipped bundles is hashed before and after).

The gate's cases call the same `prepare()` the pytest plugin runs before any model loads (the
plugin turns its error into one line and exit code 4: see the subprocess cases at the end).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import CLAUDIO, TEST_DATA
from molting.cli import main
from molting.errors import MoltingError

RAW = CLAUDIO / "dataset_sharegpt.json"
CHAT = [
    {"conversations": [{"from": "human", "value": "oi"}, {"from": "gpt", "value": "Oi! Tudo bem?"}]}
]


def tree_hash(*roots: Path) -> dict[str, str]:
    """sha256 of every file, and every folder (an empty one left behind is a change too)."""
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            if "__pycache__" in p.parts:
                continue
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
    return out


@dataclass
class Case:
    id: str
    setup: Callable[[Path], list[str]]  # writes files into the case dir, returns the argv
    code: int
    message: str  # a substring of the one error line (code 0: of a line of the output, e.g. a note)
    changes: tuple[str, ...] = field(
        default=()
    )  # what the case may create or change (globs, relative to the case dir)
    env: dict[str, str | None] = field(
        default_factory=dict
    )  # environment for the run (None: unset)
    check: Callable[[Path], None] | None = None  # more assertions on the case dir afterwards
    slow: bool = False  # a whole calibration or more: run by `make test-slow` (CI runs it too)


def w(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def chat(d: Path, name: str = "d.json", data=None) -> str:
    return str(w(d / name, json.dumps(CHAT if data is None else data, ensure_ascii=False)))


# ---------------------------------------------------------------- curate


def _curate(d: Path, *extra: str, src: str | None = None) -> list[str]:
    return [
        "curate",
        src or chat(d),
        "-o",
        str(d / "out/cur.json"),
        "--report",
        str(d / "out/R.md"),
        *extra,
    ]


CURATE = [
    Case(
        "curate-missing-input", lambda d: _curate(d, src=str(d / "nope.json")), 2, "file not found"
    ),
    Case("curate-input-is-dir", lambda d: _curate(d, src=str(d)), 2, "is a directory"),
    Case(
        "curate-bad-json",
        lambda d: _curate(d, src=str(w(d / "b.json", '[{"conversations": [}]'))),
        2,
        "invalid JSON at line 1",
    ),
    Case(
        "curate-empty-file", lambda d: _curate(d, src=str(w(d / "e.json", ""))), 2, "file is empty"
    ),
    Case(
        "curate-object-not-list",
        lambda d: _curate(d, src=str(w(d / "o.json", '{\n"a": 1\n}'))),
        2,
        "wrong top-level type",
    ),
    Case(
        "curate-unknown-role",
        lambda d: _curate(
            d,
            src=chat(
                d,
                data=[
                    {
                        "conversations": [
                            {"from": "robot", "value": "x"},
                            {"from": "gpt", "value": "y"},
                        ]
                    }
                ],
            ),
        ),
        2,
        "unknown role 'robot'",
    ),
    Case(
        "curate-empty-reply",
        lambda d: _curate(
            d,
            src=chat(
                d,
                data=[
                    {
                        "conversations": [
                            {"from": "human", "value": "x"},
                            {"from": "gpt", "value": " "},
                        ]
                    }
                ],
            ),
        ),
        2,
        "empty assistant reply",
    ),
    Case(
        "curate-no-assistant",
        lambda d: _curate(
            d, src=chat(d, data=[{"conversations": [{"from": "human", "value": "x"}]}])
        ),
        2,
        "no assistant turn",
    ),
    Case(
        "curate-latin1",
        lambda d: _curate(
            d,
            src=str(
                w(
                    d / "l.json",
                    json.dumps(CHAT, ensure_ascii=False).replace("Oi!", "Olá!").encode("latin-1"),
                )
            ),
        ),
        2,
        "bad encoding at byte",
    ),
    Case(
        "curate-duplicate-key",
        lambda d: _curate(
            d,
            src=str(
                w(
                    d / "k.json",
                    '[{"conversations": [{"from": "human", '
                    '"value": "a", "value": "b"}, {"from": "gpt", '
                    '"value": "c"}]}]',
                )
            ),
        ),
        2,
        "appears twice",
    ),
    Case(
        "curate-mixed-schemas",
        lambda d: _curate(
            d,
            src=chat(
                d,
                data=CHAT
                + [
                    {
                        "messages": [
                            {"role": "user", "content": "x"},
                            {"role": "assistant", "content": "y"},
                        ]
                    }
                ],
            ),
        ),
        2,
        "use one format per file",
    ),
    Case(
        "curate-jsonl-bad-line",
        lambda d: _curate(d, src=str(w(d / "d.jsonl", json.dumps(CHAT[0]) + "\n{oops\n"))),
        2,
        "line 2",
    ),
    Case(
        "curate-output-is-input",
        lambda d: ["curate", chat(d), "-o", str(d / "d.json"), "--report", str(d / "R.md")],
        4,
        "input",
    ),
    Case(
        "curate-rejected-is-input",
        lambda d: _curate(d, "--rejected", str(d / "d.json")),
        4,
        "input",
    ),
    Case(
        "curate-report-is-input",
        lambda d: ["curate", chat(d), "-o", str(d / "out/c.json"), "--report", str(d / "d.json")],
        4,
        "input",
    ),
    Case("curate-stats-is-input", lambda d: _curate(d, "--stats", str(d / "d.json")), 4, "input"),
    Case(
        "curate-rejected-is-output",
        lambda d: _curate(d, "--rejected", str(d / "out/cur.json")),
        4,
        "same file",
    ),
    Case(
        "curate-stats-is-output",
        lambda d: _curate(d, "--stats", str(d / "out/cur.json")),
        4,
        "same file",
    ),
    Case(
        "curate-default-stats-clobbers-output",
        lambda d: [
            "curate",
            chat(d),
            "-o",
            str(d / "data/train.json"),
            "--report",
            str(d / "data/train.md"),
        ],
        4,
        "same file",
    ),
    Case(
        "curate-output-is-dir",
        lambda d: [
            "curate",
            chat(d),
            "-o",
            str((d / "od").mkdir() or d / "od"),
            "--report",
            str(d / "R.md"),
        ],
        4,
        "is a directory",
    ),
    Case(
        "curate-report-is-dir",
        lambda d: [
            "curate",
            chat(d),
            "-o",
            str(d / "c.json"),
            "--report",
            str((d / "rd").mkdir() or d / "rd"),
        ],
        4,
        "is a directory",
    ),
    Case(
        "curate-output-parent-is-file",
        lambda d: [
            "curate",
            chat(d),
            "-o",
            str(w(d / "f", "x") / "c.json"),
            "--report",
            str(d / "R.md"),
        ],
        4,
        "is a file",
    ),
    Case(
        "curate-rank-without-persona", lambda d: _curate(d, "--rank"), 2, "--rank needs --persona"
    ),
    Case("curate-top-without-rank", lambda d: _curate(d, "--top", "3"), 2, "work with --rank"),
    # issue 22
    Case(
        "curate-lone-surrogate",
        lambda d: _curate(
            d,
            src=str(
                w(
                    d / "s.json",
                    '[{"conversations": [{"from": "human", '
                    '"value": "oi"}, {"from": "gpt", "value": "Oi \\ud800!"}]}]',
                )
            ),
        ),
        2,
        "example 0, turn 1, 'value': lone surrogate '\\ud800' at character 3",
    ),
    Case(
        "curate-failed-leaves-no-folder",
        lambda d: [
            "curate",
            str(w(d / "b.json", "[{")),
            "-o",
            str(d / "new/deeper/c.json"),
            "--report",
            str(d / "new/R.md"),
        ],
        2,
        "invalid JSON",
    ),
    Case(
        "curate-report-beside-the-output",
        lambda d: ["curate", chat(d), "-o", str(d / "out/c.json")],
        0,
        "out/c.rejected.jsonl, {d}/out/c.report.md, {d}/out/c.report.json",
        changes=("out", "out/*"),
    ),
]


# ---------------------------------------------------------------- train


def _cfg(d: Path, model: Path, dataset: str | None = None, **extra) -> str:
    base = {
        "base_model": str(model),
        "dataset": dataset or chat(d, data=CHAT * 8),
        "quantization": "none",
        "max_steps": 1,
        "batch_size": 2,
        "gradient_accumulation": 1,
        "warmup_steps": 0,
        "val_set_size": 0,
        "max_seq_length": 128,
        "lora_rank": 2,
        "lora_alpha": 4,
    }
    base.update(extra)
    return str(w(d / "cfg.yaml", "".join(f"{k}: {json.dumps(v)}\n" for k, v in base.items())))


def _train(d: Path, model: Path, *extra: str, **cfg) -> list[str]:
    return ["train", "--config", _cfg(d, model, **cfg), "--output", str(d / "run"), *extra]


RUN = ("run", "run/*", ".run.partial", ".run.partial/*")  # what a resumed run may change


def _interrupted(
    d: Path, model: Path, stop: int, max_steps: int = 4, empty: str | None = None
) -> None:
    """A run checkpointed every 2 steps and cut at step `stop`; `empty`: a checkpoint file then
    cut to 0 bytes."""
    from conftest import Interrupt, StopAt
    from molting.train.config import load_config
    from molting.train.trainer import train

    try:
        train(
            load_config(_cfg(d, model, max_steps=max_steps, eval_steps=2)),
            d / "run",
            callbacks=[StopAt(stop).callback],
        )
    except Interrupt:
        pass
    if empty:
        (d / ".run.partial/checkpoints" / empty).write_bytes(b"")


def _resume(
    d: Path,
    model: Path,
    stop: int,
    *extra: str,
    max_steps: int = 4,
    empty: str | None = None,
    **cfg,
) -> list[str]:
    _interrupted(d, model, stop, max_steps, empty)
    return _train(d, model, *extra, max_steps=max_steps, eval_steps=2, **cfg)


def _manifest(d: Path) -> dict:
    return json.loads((d / "run/run.json").read_text(encoding="utf-8"))


def _resumed_with_both_inputs(d: Path) -> None:
    m = _manifest(d)
    assert (
        m["config"]["learning_rate"] == 0.02
        and m["resume"]["interrupted_run"]["config"]["learning_rate"] == 2e-4
    )
    assert m["resume"]["changes"] == {"learning_rate": {"interrupted": 2e-4, "now": 0.02}}


def train_cases(model: Path) -> list[Case]:
    return [
        Case(
            "train-config-missing",
            lambda d: ["train", "--config", str(d / "nope.yaml")],
            2,
            "config file not found",
        ),
        Case(
            "train-config-bad-yaml",
            lambda d: ["train", "--config", str(w(d / "c.yaml", "a: [1,"))],
            2,
            "invalid YAML",
        ),
        Case(
            "train-config-unknown-key",
            lambda d: _train(d, model, lora_rnk=4),
            2,
            "Did you mean 'lora_rank'",
        ),
        Case(
            "train-config-bad-type",
            lambda d: _train(d, model, lora_rank="big"),
            2,
            "'lora_rank' must be an integer",
        ),
        Case(
            "train-config-lr-range",
            lambda d: _train(d, model, learning_rate=3),
            2,
            "'learning_rate' must be in (0, 1)",
        ),
        Case(
            "train-dataset-missing",
            lambda d: _train(d, model, dataset=str(d / "nope.json")),
            2,
            "file not found",
        ),
        Case(
            "train-dataset-bad",
            lambda d: _train(d, model, dataset=str(w(d / "b.json", "[{"))),
            2,
            "invalid JSON",
        ),
        Case(
            "train-format-mismatch",
            lambda d: _train(d, model, format="messages"),
            2,
            "format: messages",
        ),
        Case("train-model-missing", lambda d: _train(d, d / "no-model"), 3, "not found"),
        Case(
            "train-model-dir-no-config",
            lambda d: _train(d, (d / "m").mkdir() or d / "m"),
            3,
            "no config.json",
        ),
        Case(
            "train-output-under-a-file",
            lambda d: [
                "train",
                "--config",
                _cfg(d, model),
                "--output",
                str(w(d / "f", "x") / "run"),
            ],
            4,
            "cannot write",
        ),
        Case(
            "train-output-not-empty",
            lambda d: (w(d / "run/run.json", "{}"), _train(d, model))[1],
            4,
            "--overwrite",
        ),
        Case(
            "train-output-not-a-run",
            lambda d: (w(d / "run/thesis.tex", "x"), _train(d, model, "--overwrite"))[1],
            4,
            "not a molting run",
        ),
        Case(
            "train-overwrite-and-resume",
            lambda d: _train(d, model, "--overwrite", "--resume"),
            2,
            "contradict",
        ),
        Case(
            "train-resume-nothing",
            lambda d: _train(d, model, "--resume"),
            4,
            "no checkpoint to resume from",
        ),
        Case(
            "train-target-modules-match-nothing",
            lambda d: _train(d, model, target_modules=["nope_proj"]),
            2,
            "target_modules",
        ),
        Case(
            "train-nothing-trainable",
            lambda d: _train(d, model, max_seq_length=2),
            2,
            "no example keeps a trained token",
        ),
        Case(
            "train-validation-too-big",
            lambda d: _train(d, model, val_set_size=50),
            2,
            "leaves no training examples",
        ),
        # issue 22
        Case(
            "train-config-not-utf8",
            lambda d: [
                "train",
                "--config",
                str(w(d / "c.yaml", "base_model: modèle\n".encode("latin-1"))),
            ],
            2,
            "bad encoding at byte 15",
        ),
        Case(
            "train-config-duplicate-key",
            lambda d: ["train", "--config", str(w(d / "c.yaml", "lora_rank: 2\nlora_rank: 4\n"))],
            2,
            "key 'lora_rank' appears twice (lines 1 and 2)",
        ),
        Case(
            "train-resume-skips-an-empty-optimizer-file",
            lambda d: _resume(
                d, model, 5, "--resume", max_steps=6, empty="checkpoint-4/optimizer.pt"
            ),
            0,
            "checkpoint-4 (optimizer.pt is empty); resuming from checkpoint-2",
            changes=RUN,
            check=lambda d: _manifest(d)["resumed_from"].endswith("checkpoint-2"),
        ),
        Case(
            "train-resume-with-another-learning-rate",
            lambda d: _resume(d, model, 3, "--resume", learning_rate=0.02),
            2,
            "(learning_rate 0.0002 → 0.02); pass --allow-changes",
        ),
        Case(
            "train-resume-with-another-dataset",
            lambda d: _resume(
                d,
                model,
                3,
                "--resume",
                dataset=chat(
                    d,
                    "other.json",
                    CHAT * 7
                    + [
                        {
                            "conversations": [
                                {"from": "human", "value": "x"},
                                {"from": "gpt", "value": "y"},
                            ]
                        }
                    ],
                ),
            ),
            2,
            "dataset 'sha256",
        ),
        Case(
            "train-resume-allow-changes-records-both",
            lambda d: _resume(d, model, 3, "--resume", "--allow-changes", learning_rate=0.02),
            0,
            "resumed with changed inputs: learning_rate 0.0002 → 0.02",
            changes=RUN,
            check=_resumed_with_both_inputs,
        ),
        Case(
            "train-interrupted-before-a-checkpoint",
            lambda d: _resume(d, model, 1),
            4,
            "saved no checkpoint, so nothing can be resumed; pass --overwrite to start over",
        ),
        Case(
            "train-resume-before-a-checkpoint",
            lambda d: _resume(d, model, 1, "--resume"),
            4,
            "nothing can be resumed; pass --overwrite (instead of --resume) to start over",
        ),
        Case(
            "train-hub-unreachable",
            lambda d: _train(d, "some-org/some-model"),
            3,
            "HF_HUB_OFFLINE=1",
            env={
                "HF_HUB_OFFLINE": None,
                "TRANSFORMERS_OFFLINE": None,
                "HF_ENDPOINT": "http://127.0.0.1:9",
            },
        ),
    ]


# ---------------------------------------------------------------- persona init, calibrate, report


def _bundle(d: Path, edit: Callable[[Path], None] | None = None) -> Path:
    b = d / "bundle"
    shutil.copytree(TEST_DATA / "helena", b)
    if edit:
        edit(b)
    return b


def _results(d: Path) -> Path:
    """A results.json as the gate writes it, for Cláudio's first two eval prompts."""
    from molting.gate.records import CANDIDATE, persona_fingerprints, prompts_hash, replies_hash
    from molting.persona import load_persona, prompt_from_dict

    ev = [
        json.loads(x)
        for x in (CLAUDIO / "eval_prompts.jsonl").read_text(encoding="utf-8").splitlines()
    ][:2]
    samples = [
        {
            "prompt": {k: r[k] for k in ("id", "lang", "prompt", "reference")},
            "models": {
                "base": {"reply": r["generic"], "new_tokens": 3, "cached": False},
                CANDIDATE: {"reply": r["reference"], "new_tokens": 3, "cached": False},
            },
        }
        for r in ev
    ]
    facts = {
        "persona": "Cláudio",
        "persona_fingerprints": persona_fingerprints(load_persona(CLAUDIO)),
    }
    data = {
        "results_version": 2,
        "models": ["base", CANDIDATE],
        "languages": ["en", "pt"],
        "facts": facts,
        "prompts_hash": prompts_hash([prompt_from_dict(s["prompt"], "x") for s in samples]),
        "replies_sha256": {
            m: replies_hash([s["models"][m]["reply"] for s in samples]) for m in ("base", CANDIDATE)
        },
        "samples": samples,
    }
    return w(d / "results.json", json.dumps(data, ensure_ascii=False))


def _edit_results(change: Callable[[dict], None]) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        path = _results(d)
        data = json.loads(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(json.dumps(data), encoding="utf-8")
        return [
            "report",
            "--persona",
            str(CLAUDIO),
            "--results",
            str(path),
            "--report-dir",
            str(d / "rep"),
        ]

    return setup


OTHER = [
    Case(
        "init-dataset-missing",
        lambda d: [
            "persona",
            "init",
            str(d / "b"),
            "--dataset",
            str(d / "no.json"),
            "--card",
            str(TEST_DATA / "helena/persona.yaml"),
        ],
        2,
        "not found",
    ),
    Case(
        "init-card-invalid",
        lambda d: [
            "persona",
            "init",
            str(d / "b"),
            "--dataset",
            str(RAW),
            "--card",
            str(w(d / "card.yaml", "name: X\nlanguages: [klingon]\n")),
        ],
        2,
        "not supported",
    ),
    Case(
        "init-bundle-holds-input",
        lambda d: [
            "persona",
            "init",
            str(d),
            "--dataset",
            chat(d),
            "--card",
            str(TEST_DATA / "helena/persona.yaml"),
        ],
        4,
        "holds the input",
    ),
    Case(
        "init-too-little-data",
        lambda d: [
            "persona",
            "init",
            str(d / "b"),
            "--dataset",
            str(TEST_DATA / "helena/dataset.json"),
            "--card",
            str(TEST_DATA / "helena/persona.yaml"),
        ],
        2,
        "too little data",
    ),
    # issue 22: persona init never deletes what it did not write
    Case(
        "init-overwrite-a-folder-of-the-users",
        lambda d: (
            w(d / "mine/thesis.tex", "x"),
            w(d / "mine/notes/a.txt", "y"),
            [
                "persona",
                "init",
                str(d / "mine"),
                "--dataset",
                str(RAW),
                "--card",
                str(CLAUDIO / "persona.yaml"),
                "--overwrite",
                "--no-base-replies",
            ],
        )[-1],
        4,
        "not a bundle `molting persona init` wrote (no init.json)",
    ),
    Case(
        "init-overwrite-a-bundle-holding-the-users-files",
        lambda d: (
            w(d / "b/init.json", json.dumps({"inputs": "other", "files": ["persona.yaml"]})),
            w(d / "b/persona.yaml", "x"),
            w(d / "b/criteria.yaml", "personality_min: 9\n"),
            [
                "persona",
                "init",
                str(d / "b"),
                "--dataset",
                str(RAW),
                "--card",
                str(CLAUDIO / "persona.yaml"),
                "--overwrite",
            ],
        )[-1],
        4,
        "holds files `molting persona init` did not write (criteria.yaml)",
    ),
    Case(
        "init-keeps-a-folder-named-like-its-staging",
        lambda d: (
            w(d / ".b.init/keep.txt", "mine"),
            [
                "persona",
                "init",
                str(d / "b"),
                "--dataset",
                str(TEST_DATA / "helena/dataset.json"),
                "--card",
                str(TEST_DATA / "helena/persona.yaml"),
            ],
        )[-1],
        2,
        "too little data",
    ),
    Case(
        "init-dir-is-a-file",
        lambda d: [
            "persona",
            "init",
            str(w(d / "raw.json", "[]")),
            "--dataset",
            str(RAW),
            "--card",
            str(CLAUDIO / "persona.yaml"),
        ],
        4,
        "raw.json: is a file",
    ),
    Case(
        "init-dir-under-a-file",
        lambda d: [
            "persona",
            "init",
            str(w(d / "raw.json", "[]") / "bundle"),
            "--dataset",
            str(RAW),
            "--card",
            str(CLAUDIO / "persona.yaml"),
        ],
        4,
        "raw.json is a file",
    ),
    Case(
        "init-card-lone-surrogate",
        lambda d: [
            "persona",
            "init",
            str(d / "b"),
            "--dataset",
            str(RAW),
            "--card",
            str(w(d / "card.yaml", 'name: "Cl\\ud800udio"\nlanguages: [en]\n')),
        ],
        2,
        "card.yaml, 'name': lone surrogate '\\ud800'",
    ),
    Case(
        "init-bad-eval-count",
        lambda d: [
            "persona",
            "init",
            str(d / "b"),
            "--dataset",
            str(RAW),
            "--card",
            str(CLAUDIO / "persona.yaml"),
            "--eval",
            "0",
        ],
        2,
        "--eval must be at least 1",
    ),
    Case(
        "calibrate-no-bundle",
        lambda d: ["calibrate", "--persona", str(d / "nope")],
        2,
        "molting persona init",
    ),
    Case(
        "calibrate-no-calibration-file",
        lambda d: [
            "calibrate",
            "--persona",
            str(_bundle(d, lambda b: (b / "calibration.jsonl").unlink())),
        ],
        2,
        "calibration prompts are missing",
    ),
    Case(
        "calibrate-bad-calibration-json",
        lambda d: [
            "calibrate",
            "--persona",
            str(_bundle(d, lambda b: w(b / "calibration.jsonl", "{not json\n"))),
        ],
        2,
        "invalid JSON",
    ),
    Case(
        "calibrate-report-over-an-input",
        lambda d: [
            "calibrate",
            "--persona",
            str(b := _bundle(d)),
            "--report",
            str(b / "eval_prompts.jsonl"),
        ],
        4,
        "input",
    ),
    Case(
        "calibrate-card-typo-key",
        lambda d: [
            "calibrate",
            "--persona",
            str(
                _bundle(
                    d,
                    lambda b: w(
                        b / "persona.yaml",
                        (b / "persona.yaml").read_text(encoding="utf-8") + "sumary: Terse.\n",
                    ),
                )
            ),
        ],
        2,
        "unknown key 'sumary'. Did you mean 'summary'?",
    ),
    # issue 22: a card is the user's prose; a key molting does not read is kept, with a warning
    Case(
        "calibrate-card-extra-key",
        lambda d: [
            "calibrate",
            "--persona",
            str(
                _bundle(
                    d,
                    lambda b: w(
                        b / "persona.yaml",
                        (b / "persona.yaml").read_text(encoding="utf-8")
                        + "catchphrase_note: at most one catchphrase per reply\n",
                    ),
                )
            ),
        ],
        0,
        "molting does not read the key 'catchphrase_note'; it stays in the card as written",
        changes=("bundle/anchors.json", "bundle/METRICS_CALIBRATION.md"),
        slow=True,  # a full calibration (25 s): the card's warning itself is quick to reach
    ),
    Case(
        "report-missing",
        lambda d: ["report", "--persona", str(CLAUDIO), "--results", str(d / "no.json")],
        5,
        "no stored results",
    ),
    Case(
        "report-not-json",
        lambda d: ["report", "--persona", str(CLAUDIO), "--results", str(w(d / "r.json", "{"))],
        5,
        "invalid JSON",
    ),
    Case(
        "report-wrong-version",
        _edit_results(lambda x: x.update(results_version=1)),
        5,
        "results version",
    ),
    Case(
        "report-no-samples",
        _edit_results(lambda x: x.pop("samples")),
        5,
        "'samples' must be a non-empty list",
    ),
    Case(
        "report-no-models",
        _edit_results(lambda x: x.update(models="candidate")),
        5,
        "'models' must list",
    ),
    Case(
        "report-sample-without-reply",
        _edit_results(lambda x: x["samples"][0]["models"]["base"].pop("reply")),
        5,
        "has no reply text",
    ),
    Case(
        "report-edited-reply",
        _edit_results(lambda x: x["samples"][1]["models"]["candidate"].update(reply="Edited.")),
        5,
        "changed since the gate wrote this file",
    ),
    Case(
        "report-prompt-without-reference",
        _edit_results(lambda x: x["samples"][0]["prompt"].pop("reference")),
        5,
        "missing 'reference'",
    ),
    Case(
        "report-languages-missing",
        _edit_results(lambda x: x.pop("languages")),
        5,
        "'languages' is missing",
    ),
    # issue 22: a results file is re-scored only as the gate wrote it, and only with its own persona
    Case(
        "report-count-not-a-number",
        _edit_results(lambda x: x["samples"][0]["models"]["base"].update(new_tokens="three")),
        5,
        "samples[0]: model 'base': 'new_tokens' must be a count",
    ),
    Case(
        "report-edited-reference",
        _edit_results(lambda x: x["samples"][1]["prompt"].update(reference="Edited.")),
        5,
        "the prompts or references changed since the gate wrote this file",
    ),
    Case(
        "report-another-personas-results",
        lambda d: [
            "report",
            "--persona",
            str(TEST_DATA / "helena"),
            "--results",
            str(_results(d)),
            "--report-dir",
            str(d / "rep"),
        ],
        5,
        "written by a gate run on persona 'Cláudio'",
    ),
    Case(
        "report-dir-is-a-file",
        lambda d: [
            "report",
            "--persona",
            str(CLAUDIO),
            "--results",
            str(_results(d)),
            "--report-dir",
            str(w(d / "f", "x")),
        ],
        2,
        "is a file",
    ),
    Case(
        "report-unnamed-comparison",
        lambda d: [
            "report",
            "--persona",
            str(CLAUDIO),
            "--results",
            str(_results(d)),
            "--results",
            str(d / "results.json"),
        ],
        2,
        "name each run",
    ),
]


def run_cli(case: Case, d: Path, capsys, monkeypatch) -> None:
    argv = case.setup(d)
    capsys.readouterr()  # what the setup printed is not the command's
    for key, value in case.env.items():
        monkeypatch.delenv(key, raising=False) if value is None else monkeypatch.setenv(key, value)
    before = tree_hash(d, CLAUDIO, TEST_DATA)
    code = main(argv)
    out = capsys.readouterr()
    errors = [line for line in out.err.splitlines() if line.startswith("error:")]
    assert code == case.code, (code, out.err[-2000:])
    if case.code:
        assert len(errors) == 1 and case.message in errors[0], out.err[-2000:]
    else:
        message = case.message.replace("{d}", str(d))
        assert not errors and any(message in line for line in (out.out + out.err).splitlines()), (
            out.out + out.err
        )
    assert "Traceback" not in out.err + out.out
    after = tree_hash(d, CLAUDIO, TEST_DATA)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    unexpected = {
        k
        for k in changed
        if not (
            Path(k).is_relative_to(d)
            and any(fnmatch.fnmatch(Path(k).relative_to(d).as_posix(), g) for g in case.changes)
        )
    }
    assert not unexpected, f"files changed outside the command's outputs: {sorted(unexpected)[:5]}"
    if case.check:
        case.check(d)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in CURATE + OTHER],
)
def test_cli_faults(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default output path lands in the case dir, where it is seen
    run_cli(case, tmp_path, capsys, monkeypatch)


TRAIN_IDS = [c.id for c in train_cases(Path("x"))]


@pytest.mark.parametrize("case_id", TRAIN_IDS)
def test_train_faults(case_id, tiny_llama_dir, tmp_path, capsys, monkeypatch):
    case = next(c for c in train_cases(tiny_llama_dir) if c.id == case_id)
    monkeypatch.chdir(tmp_path)
    run_cli(case, tmp_path, capsys, monkeypatch)


# ---------------------------------------------------------------- the gate


def _adapter(
    d: Path,
    name: str = "ad",
    run: dict | None = None,
    weights: bytes | None = None,
    tensors: dict | None = None,
) -> Path:
    import torch
    from safetensors.torch import save_file

    a = d / name
    a.mkdir(parents=True, exist_ok=True)
    w(
        a / "adapter_config.json",
        json.dumps({"peft_type": "LORA", "base_model_name_or_path": "smollm2-135m"}),
    )
    save_file(tensors or {"x": torch.zeros(4)}, str(a / "adapter_model.safetensors"))
    if weights is not None:
        (a / "adapter_model.safetensors").write_bytes(weights)
    if run is not None:
        w(a / "run.json", json.dumps(run))
    return a


def _lora(hidden: int, zero: bool = False) -> dict:
    """One LoRA pair (rank 2) on the first attention query of a model with this hidden size."""
    import torch

    at = "base_model.model.model.layers.0.self_attn.q_proj"
    return {
        f"{at}.lora_A.weight": torch.ones(2, hidden),
        f"{at}.lora_B.weight": torch.zeros(hidden, 2) if zero else torch.ones(hidden, 2),
    }


def _gate(persona: Path = CLAUDIO, **kw):
    from molting.gate.run import GateOptions

    return GateOptions(persona=None if persona is None else str(persona), **kw)


def _replies(d: Path, models=("base", "candidate"), drop: str | None = None) -> str:
    ev = [
        json.loads(x)
        for x in (CLAUDIO / "eval_prompts.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    data = {m: {r["id"]: r["reference"] for r in ev if r["id"] != drop} for m in models}
    return str(w(d / "replies.json", json.dumps(data, ensure_ascii=False)))


def _criteria(d: Path, text: str) -> str:
    return str(w(d / "criteria.yaml", text))


def _bundle_copy(d: Path, edit: Callable[[Path], None]) -> Path:
    b = d / "claudio"
    shutil.copytree(CLAUDIO, b, ignore=shutil.ignore_patterns("validation"))
    edit(b)
    return b


def _edit_anchors(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(b: Path) -> None:
        anchors = json.loads((b / "anchors.json").read_text(encoding="utf-8"))
        change(anchors)
        w(b / "anchors.json", json.dumps(anchors))

    return edit


GATE: list[tuple[str, Callable[[Path], object], str]] = [
    ("gate-no-persona", lambda d: _gate(persona=None), "needs --persona"),
    ("gate-persona-missing", lambda d: _gate(d / "nope"), "persona bundle not found"),
    (
        "gate-card-invalid",
        lambda d: _gate(_bundle_copy(d, lambda b: w(b / "persona.yaml", "name: [x]\n"))),
        "'name'",
    ),
    (
        "gate-duplicate-prompt-ids",
        lambda d: _gate(
            _bundle_copy(
                d,
                lambda b: w(
                    b / "eval_prompts.jsonl",
                    (b / "eval_prompts.jsonl").read_text(encoding="utf-8").splitlines()[0] * 0
                    + "\n".join(
                        [(b / "eval_prompts.jsonl").read_text(encoding="utf-8").splitlines()[0]] * 2
                    )
                    + "\n",
                ),
            ),
            adapter="base",
        ),
        "ids must be unique",
    ),
    (
        "gate-prompt-bad-lang",
        lambda d: _gate(
            prompts=str(
                w(
                    d / "p.jsonl",
                    json.dumps({"id": "a", "lang": "pt-PT", "prompt": "x", "reference": "y"})
                    + "\n",
                )
            ),
            adapter="base",
        ),
        "European Portuguese",
    ),
    (
        "gate-prompts-missing",
        lambda d: _gate(prompts=str(d / "nope.jsonl"), adapter="base"),
        "not found",
    ),
    (
        "gate-criteria-confidence",
        lambda d: _gate(criteria=_criteria(d, "comparison_confidence: 1.5\n"), adapter="base"),
        "'comparison_confidence' must be in (0, 1)",
    ),
    (
        "gate-criteria-negative-rate",
        lambda d: _gate(criteria=_criteria(d, "agent_rate_max: -1\n"), adapter="base"),
        "'agent_rate_max' must be in [0, 1]",
    ),
    (
        "gate-criteria-unknown",
        lambda d: _gate(criteria=_criteria(d, "personality_mn: 9\n"), adapter="base"),
        "Did you mean 'personality_min'",
    ),
    (
        "gate-criteria-not-number",
        lambda d: _gate(criteria=_criteria(d, "personality_min: high\n"), adapter="base"),
        "must be a number",
    ),
    (
        "gate-report-dir-is-file",
        lambda d: _gate(report_dir=str(w(d / "f", "x")), adapter="base"),
        "is a file",
    ),
    ("gate-candidate-missing", lambda d: _gate(adapter=str(d / "nope")), "not found"),
    ("gate-default-candidate-missing", lambda d: _gate(), "molting train"),
    (
        "gate-adapter-bin-only",
        lambda d: _gate(
            adapter=str(
                (
                    a := _adapter(d),
                    (a / "adapter_model.safetensors").rename(a / "adapter_model.bin"),
                )[0]
            )
        ),
        "pickle",
    ),
    (
        "gate-adapter-truncated",
        lambda d: _gate(adapter=str(_adapter(d, weights=b"\x10\x00\x00\x00\x00\x00\x00\x00{}"))),
        "adapter_model.safetensors",
    ),
    (
        "gate-adapter-config-corrupt",
        lambda d: _gate(adapter=str((a := _adapter(d), w(a / "adapter_config.json", "{"))[0])),
        "adapter_config.json",
    ),
    (
        "gate-run-json-corrupt",
        lambda d: _gate(
            adapter=str(
                _adapter(d, run=None)
                if False
                else (a := _adapter(d), w(a / "run.json", "{oops"))[0]
            )
        ),
        "run.json",
    ),
    (
        "gate-run-incomplete",
        lambda d: _gate(adapter=str(_adapter(d, run={"base_model": {"id": "x"}}))),
        "did not finish",
    ),
    (
        "gate-run-without-manifest",
        lambda d: _gate(adapter=str((a := _adapter(d), (a / "checkpoints").mkdir())[0])),
        "interrupted",
    ),
    (
        "gate-adapters-on-different-bases",
        lambda d: _gate(
            adapter=str(
                _adapter(
                    d,
                    "a",
                    run={"complete": True, "base_model": {"id": "m1", "fingerprint": "fp-1"}},
                )
            ),
            baselines=(
                "base",
                "old="
                + str(
                    _adapter(
                        d,
                        "b",
                        run={"complete": True, "base_model": {"id": "m2", "fingerprint": "fp-2"}},
                    )
                ),
            ),
        ),
        "different bases",
    ),
    (
        "gate-baseline-malformed",
        lambda d: _gate(adapter="base", baselines=("phase3",)),
        "expected NAME=MODEL",
    ),
    (
        "gate-baseline-named-candidate",
        lambda d: _gate(adapter="base", baselines=("candidate=base",)),
        "candidate",
    ),
    (
        "gate-replies-missing-model",
        lambda d: _gate(replies=_replies(d, models=("candidate",))),
        "no replies for model 'base'",
    ),
    (
        "gate-replies-missing-prompt",
        lambda d: _gate(replies=_replies(d, drop="ev-en-003")),
        "ev-en-003",
    ),
    ("gate-replies-not-json", lambda d: _gate(replies=str(w(d / "r.json", "[1,"))), "invalid JSON"),
    (
        "gate-blessed-corrupt",
        lambda d: _gate(
            replies=_replies(d),
            report_dir=str(
                (w(d / "rep/blessed_baseline.json", '{"personality": [1]}'), d / "rep")[1]
            ),
        ),
        "not a blessed baseline",
    ),
    (
        "gate-stale-anchors",
        lambda d: _gate(
            _bundle_copy(
                d,
                lambda b: w(
                    b / "calibration.jsonl",
                    (b / "calibration.jsonl").read_text(encoding="utf-8") + "\n",
                ),
            ),
            replies=_replies(d),
        ),
        "molting calibrate --persona",
    ),
    (
        "gate-bad-generation-settings",
        lambda d: _gate(adapter="base", max_new_tokens=0),
        "--max-new-tokens",
    ),
    # issue 22: what the adapter's files tell is checked before the base model loads
    (
        "gate-adapter-trained-on-another-base",
        lambda d: _gate(
            adapter=str(
                _adapter(
                    d,
                    run={
                        "complete": True,
                        "base_model": {"id": "smollm2-135m", "fingerprint": "sha256-head:0000"},
                    },
                    tensors=_lora(576),
                )
            )
        ),
        (
            "was trained on base smollm2-135m (sha256-head:0000), "
            "but the base to load is smollm2-135m (sha256-head:"
        ),
    ),
    (
        "gate-adapter-all-zero",
        lambda d: _gate(adapter=str(_adapter(d, tensors=_lora(576, zero=True)))),
        "every lora_B weight is zero, so it changes nothing",
    ),
    (
        "gate-adapter-of-another-architecture",
        lambda d: _gate(adapter=str(_adapter(d, tensors=_lora(32)))),
        (
            "does not fit base smollm2-135m: model.layers.0.self_attn.q_proj: lora_A is 2×32, "
            "the base's weight is 576×576"
        ),
    ),
    # issue 22: anchors.json checked as it loads, named by file and key
    (
        "gate-anchors-missing-language",
        lambda d: _gate(
            _bundle_copy(d, _edit_anchors(lambda a: a["base_generic"].pop("pt"))),
            replies=_replies(d),
        ),
        "anchors.json: 'base_generic' has no value for language 'pt'",
    ),
    (
        "gate-anchors-not-a-number",
        lambda d: _gate(
            _bundle_copy(d, _edit_anchors(lambda a: a["topical"]["en"].update(low="low"))),
            replies=_replies(d),
        ),
        "anchors.json: 'topical.en.low' must be a number, got 'low'",
    ),
    (
        "gate-anchors-nan",
        lambda d: _gate(
            _bundle_copy(d, _edit_anchors(lambda a: a["base_reference"].update(en=math.nan))),
            replies=_replies(d),
        ),
        "anchors.json: 'base_reference.en' must be a finite number",
    ),
]


@pytest.mark.parametrize("case_id, setup, message", GATE, ids=[g[0] for g in GATE])
def test_gate_faults(case_id, setup, message, tmp_path, monkeypatch):
    from molting.gate.run import prepare

    monkeypatch.chdir(tmp_path)  # the default candidate is relative to the working directory
    opts = setup(tmp_path)
    before = tree_hash(tmp_path, CLAUDIO, TEST_DATA)
    with pytest.raises(MoltingError) as err:
        prepare(opts)
    text = str(err.value)
    assert message in text and "\n" not in text.strip(), text
    assert tree_hash(tmp_path, CLAUDIO, TEST_DATA) == before


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--persona", str(CLAUDIO), "--adapter", "base", "--criteria", "CRIT"],
            "'agent_rate_max' must be in [0, 1]",
        ),
        (["--adapter", "base"], "needs --persona"),
        # issue 22: options checked before collection; a damaged anchors.json named, not an
        # INTERNALERROR
        (
            ["--persona", str(CLAUDIO), "--adapter", "base", "--baseline", "phase3"],
            "--baseline 'phase3': expected NAME=MODEL",
        ),
        (
            [
                "--persona",
                str(CLAUDIO),
                "--adapter",
                "base",
                "--baseline",
                "old=base",
                "--baseline",
                "old=x",
            ],
            "the name 'old' is given twice",
        ),
        (
            ["--persona", "NAN_ANCHORS", "--replies", "REPLIES"],
            "anchors.json: 'base_reference.en' must be a finite number",
        ),
    ],
)
def test_the_gate_turns_every_input_problem_into_one_line_and_exit_code_4(tmp_path, args, message):
    given = {
        "CRIT": lambda: _criteria(tmp_path, "agent_rate_max: -1\n"),
        "REPLIES": lambda: _replies(tmp_path),
        "NAN_ANCHORS": lambda: str(
            _bundle_copy(tmp_path, _edit_anchors(lambda a: a["base_reference"].update(en=math.nan)))
        ),
    }
    args = [given[a]() if a in given else a for a in args]
    before = set(tmp_path.iterdir())
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "--pyargs",
        "molting.gate",
        "-q",
        "-p",
        "no:cacheprovider",
        *args,
    ]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert done.returncode == 4 and len(errors) == 1 and message in errors[0], (
        done.stdout[-1000:] + done.stderr[-1000:]
    )
    assert "Traceback" not in done.stdout + done.stderr
    assert (
        set(tmp_path.iterdir()) == before
    )  # nothing left in the working directory (no .benchmarks/ either)


def test_ci_runs_every_test_the_slow_ones_too():
    """issue 22: the installed-wheel test was marked slow, so neither `make test` nor CI ran it
    (and it had broken unseen). CI runs `make test` (the README's command) and then the slow
    tests."""
    from conftest import ROOT

    ci, make = (
        (ROOT / ".ci/run").read_text(encoding="utf-8"),
        (ROOT / "Makefile").read_text(encoding="utf-8"),
    )
    assert "\nmake test\n" in ci and "\nmake test-slow\n" in ci
    assert "test-slow: $(STAMP)\n\t$(BIN)/python -m pytest tests -q -m slow\n" in make
