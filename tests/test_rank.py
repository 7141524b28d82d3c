"""Rank, then hand-pick: `molting curate … --rank --persona DIR [--top N] [--picks SHEET]`."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import CLAUDIO
from molting.cli import main
from molting.curate.rank import PICK_DROPPED, RANK_CUT
from molting.data import load_dataset
from molting.errors import ConfigError
from molting.io import read_jsonl
from molting.persona import parse_lang_shares

RAW = CLAUDIO / "dataset_sharegpt.json"


@pytest.fixture(scope="module")
def top40(tmp_path_factory, claudio_scorer):
    d = tmp_path_factory.mktemp("rank")
    argv = [
        "curate",
        str(RAW),
        "-o",
        str(d / "top.json"),
        "--report",
        str(d / "R.md"),
        "--rank",
        "--persona",
        str(CLAUDIO),
        "--top",
        "40",
        "--lang-share",
        "en=0.5,pt=0.5",
    ]
    assert main(argv) == 0
    return d


def test_top_n_keeps_the_best_balanced_across_languages(top40):
    kept = load_dataset(top40 / "top.json").conversations
    rows = list(csv.DictReader((top40 / "top.review.csv").open(encoding="utf-8")))
    assert len(kept) == 40 and len(rows) == 153
    kept_ids = {c.id for c in kept}
    langs = [r["lang"] for r in rows if r["id"] in kept_ids]
    assert langs.count("en") == 20 and langs.count("pt") == 20
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert [r["keep"] for r in rows] == ["y" if r["id"] in kept_ids else "n" for r in rows]
    assert {"rank", "id", "lang", "score", "why", "first_reply", "keep"} == set(rows[0])
    assert "## Ranking (persona Cláudio)" in (top40 / "R.md").read_text(encoding="utf-8")


def test_the_audit_trail_says_why_each_example_went(top40):
    reasons = [r["reason"] for r in read_jsonl(top40 / "top.rejected.jsonl")]
    stats = json.loads((top40 / "R.json").read_text(encoding="utf-8"))
    assert reasons.count(RANK_CUT) == stats["kept"] - 40 == stats["ranked_out"]
    assert len(reasons) - reasons.count(RANK_CUT) == stats["removed"]


def test_a_reviewed_sheet_is_applied(top40, tmp_path):
    rows = list(csv.DictReader((top40 / "top.review.csv").open(encoding="utf-8")))
    rows[0]["keep"], rows[-1]["keep"] = "n", "y"  # drop the best, rescue the worst
    sheet = tmp_path / "picked.csv"
    with sheet.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    argv = [
        "curate",
        str(RAW),
        "-o",
        str(tmp_path / "picked.json"),
        "--report",
        str(tmp_path / "R.md"),
        "--rank",
        "--persona",
        str(CLAUDIO),
        "--picks",
        str(sheet),
    ]
    assert main(argv) == 0
    kept = {c.id for c in load_dataset(tmp_path / "picked.json").conversations}
    assert rows[0]["id"] not in kept and rows[-1]["id"] in kept
    dropped = {
        r["id"]
        for r in read_jsonl(tmp_path / "picked.rejected.jsonl")
        if r["reason"] == PICK_DROPPED
    }
    assert dropped == {r["id"] for r in rows if r["keep"] == "n"} and len(kept) == 40


def test_ranking_is_deterministic(top40, tmp_path):
    argv = [
        "curate",
        str(RAW),
        "-o",
        str(tmp_path / "top.json"),
        "--report",
        str(tmp_path / "R.md"),
        "--rank",
        "--persona",
        str(CLAUDIO),
        "--top",
        "40",
        "--lang-share",
        "en=0.5,pt=0.5",
    ]
    assert main(argv) == 0
    assert (tmp_path / "top.json").read_bytes() == (top40 / "top.json").read_bytes()
    assert (tmp_path / "top.review.csv").read_bytes() == (top40 / "top.review.csv").read_bytes()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--top", "5"], "work with --rank"),
        (["--rank"], "--rank needs --persona"),
        (["--rank", "--persona", str(CLAUDIO), "--top", "0"], "--top must be at least 1"),
    ],
)
def test_rank_flags_are_checked(tmp_path, capsys, argv, message):
    assert (
        main(
            [
                "curate",
                str(RAW),
                "-o",
                str(tmp_path / "o.json"),
                "--report",
                str(tmp_path / "R.md"),
                *argv,
            ]
        )
        == 2
    )
    assert message in capsys.readouterr().err and not (tmp_path / "o.json").exists()


def test_a_sheet_with_unknown_ids_or_marks_is_refused(tmp_path, capsys):
    sheet = tmp_path / "s.csv"
    sheet.write_text("id,keep\nnot-an-id,y\n", encoding="utf-8")
    argv = [
        "curate",
        str(RAW),
        "-o",
        str(tmp_path / "o.json"),
        "--report",
        str(tmp_path / "R.md"),
        "--rank",
        "--persona",
        str(CLAUDIO),
        "--picks",
        str(sheet),
    ]
    assert main(argv) == 2 and "not-an-id" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()


def test_language_shares_are_validated():
    """One parser for curate --rank and augment: weights become shares."""
    assert parse_lang_shares("en=0.6,pt=0.4", ("en", "pt")) == {"en": 0.6, "pt": 0.4}
    assert parse_lang_shares("en=3,pt=1", ("en", "pt")) == {"en": 0.75, "pt": 0.25}
    assert parse_lang_shares(None, ("en", "pt")) is None
    for bad in ("fr=1", "en=x,pt=1", "en=-1,pt=1", "en=0,pt=0", "en"):
        with pytest.raises(ConfigError):
            parse_lang_shares(bad, ("en", "pt"))
