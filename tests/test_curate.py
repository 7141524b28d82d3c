"""Curation: the fixture reproduces the seed's table; outputs are deterministic and audited."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from molting.cli import main
from molting.curate.filter import DUPLICATE, curate
from molting.curate.run import curate_file
from molting.data import Conversation, Turn, load_dataset

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "fixtures/claudio/dataset_sharegpt.json"


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    d = tmp_path_factory.mktemp("cur")
    return curate_file(RAW, d / "curated.json", report=d / "CURATION_REPORT.md"), d


def test_fixture_reproduces_the_seed_table(curated):
    result, _ = curated
    s = result.stats
    assert (s["total"], s["kept"], s["removed"], s["change_pct"]) == (484, 153, 331, -68.4)
    assert (s["removed_agent"], s["removed_duplicate"]) == (331, 0)


def test_seed_categories_dominate_removals(curated):
    cats = curated[0].stats["removed_by_category"]
    assert cats["start-continue"] == 168
    assert 100 <= cats["let-me"] <= 115
    assert 30 <= cats["vou"] <= 36
    assert cats.get("thinking", 0) >= 5


def test_kept_are_exactly_the_direct_examples(curated):
    import sys

    sys.path.insert(0, str(ROOT / "fixtures/claudio"))
    from build_fixture import build

    _, keep_ids = build()
    kept = {c.id for c in load_dataset(curated[0].output).conversations}
    assert kept == keep_ids


def test_rejected_file_is_an_audit_trail(curated):
    lines = [json.loads(x) for x in curated[0].rejected.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 331
    for r in lines:
        assert r["reason"] and r["record"]["conversations"] and r["hits"]
        h = r["hits"][0]
        assert {"turn", "pattern", "span", "match", "lang", "category"} <= set(h)
        text = r["record"]["conversations"][h["turn"]]["value"]
        assert text[h["span"][0] : h["span"][1]].strip() == h["match"]


def test_report_has_the_required_sections(curated):
    text = curated[0].report.read_text(encoding="utf-8")
    for heading in (
        "Curation impact",
        "per language",
        "per pattern",
        "per category",
        "Overlaps",
        "One sample per pattern",
    ):
        assert heading in text
    assert "| **Total examples**" in text and "484" in text and "-68.4%" in text
    stats = json.loads(curated[0].stats_path.read_text())
    assert stats["kept"] == 153


def test_same_input_gives_byte_identical_outputs(curated, tmp_path):
    first, d = curated
    again = curate_file(
        RAW,
        tmp_path / "curated.json",
        report=tmp_path / "CURATION_REPORT.md",
        rejected=tmp_path / "curated.rejected.jsonl",
    )
    assert again.output.read_bytes() == first.output.read_bytes()
    assert again.rejected.read_bytes() == first.rejected.read_bytes()

    def norm(p):
        return p.read_text().replace(str(tmp_path), "X").replace(str(d), "X")

    assert norm(again.report) == norm(first.report)


def test_curating_a_curated_set_removes_nothing(curated, tmp_path):
    again = curate_file(curated[0].output, tmp_path / "twice.json", report=tmp_path / "R.md")
    assert again.stats["removed"] == 0
    assert again.output.read_text() == curated[0].output.read_text()


def test_exact_duplicates_are_removed_with_their_own_reason(tmp_path):
    rec = {
        "conversations": [
            {"from": "human", "value": "oi"},
            {"from": "gpt", "value": "Olha só: usa `ls`."},
        ]
    }
    dup = {
        "conversations": [
            {"from": "human", "value": "OI "},
            {"from": "gpt", "value": "olha  só: usa `ls`."},
        ]
    }
    src = tmp_path / "d.json"
    src.write_text(json.dumps([rec, dup]))
    res = curate_file(src, tmp_path / "o.json", report=tmp_path / "R.md")
    assert res.stats["removed_by_reason"] == {DUPLICATE: 1}


def test_messages_jsonl_stays_messages_jsonl(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": a}]}
        for a in ("Use a set.", "Let me check the file first.")
    ]
    src = tmp_path / "d.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = curate_file(src, tmp_path / "o.jsonl", report=tmp_path / "R.md").output
    assert [json.loads(x) for x in out.read_text().splitlines()] == rows[:1]


def test_cli_curate_refuses_to_overwrite_input(tmp_path, capsys):
    src = tmp_path / "d.json"
    src.write_text(RAW.read_text(encoding="utf-8"), encoding="utf-8")
    before = src.read_bytes()
    assert main(["curate", str(src), "-o", str(src), "--report", str(tmp_path / "R.md")]) == 4
    assert "would overwrite the input" in capsys.readouterr().err
    assert src.read_bytes() == before and not (tmp_path / "R.md").exists()


REPLIES = st.sampled_from(
    [
        "Short answer: use a set.",
        "Let me check the config first.",
        "Olha só: `ss -tulpn`.",
        "Vou analisar o log.",
        "I'll start by reading main.py.",
        "Let me know if it works!",
        "Vou ser sincero: tá ótimo.",
        "<thinking>hm</thinking> ok",
    ]
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(REPLIES, min_size=1, max_size=3), max_size=25))
def test_kept_is_a_subset_counts_add_up_and_curation_is_idempotent(convs):
    items = [
        Conversation(
            i, str(i), tuple(t for r in rs for t in (Turn("user", "q"), Turn("assistant", r)))
        )
        for i, rs in enumerate(convs)
    ]
    decisions = list(curate(items))
    kept = [d.conversation for d in decisions if d.kept]
    assert len(kept) + sum(not d.kept for d in decisions) == len(items)
    assert all(k in items for k in kept)
    assert all(d.kept for d in curate(kept))


WORDS = st.sampled_from(
    [
        "não",
        "você",
        "que",
        "isso",
        "é",
        "the",
        "and",
        "you",
        "it's",
        "x",
        "a.b",
        "(",
        ")",
        ".",
        "!?",
        "isso.é",
        "(não)",
        "((the",
        "you!!",
        "é.",
        "THE",
        "Você",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(WORDS, st.sampled_from([" ", "\t", "", "\n", " \u00a0"])), max_size=30))
def test_language_vote_counts_words_stripped_of_edge_punctuation(pieces):
    from molting.curate.filter import _EN_WORDS, _PT_WORDS, guess_language

    text = "".join(w + sep for w, sep in pieces)
    words = text.lower().split()
    pt = sum(w.strip(".,:;!?()") in _PT_WORDS for w in words)
    en = sum(w.strip(".,:;!?()") in _EN_WORDS for w in words)
    conv = Conversation(0, "0", (Turn("user", text), Turn("assistant", "ok")))
    assert guess_language(conv) == ("pt" if pt > en else "en")


def test_json_lines_input_keeps_the_same_records_as_the_json_list(curated, tmp_path):
    rows = json.loads(RAW.read_text(encoding="utf-8"))
    src = tmp_path / "d.jsonl"
    src.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    out = curate_file(src, tmp_path / "o.jsonl", report=tmp_path / "R.md").output
    kept = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert kept == json.loads(curated[0].output.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- several processes, the same bytes


@pytest.fixture
def parallel_always(monkeypatch):
    """Workers for any file size, small chunks so that duplicates cross chunk boundaries."""
    from molting.curate import parallel

    monkeypatch.setattr(parallel, "MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "CHUNK_LINES", 7)
    runs = []
    real = parallel.curate_parallel
    monkeypatch.setattr(
        parallel, "curate_parallel", lambda *a, **k: runs.append(a[-1]) or real(*a, **k)
    )
    return runs  # the jobs of every parallel run


def _outputs(src: Path, d: Path, jobs: int) -> dict[str, bytes]:
    d.mkdir()
    r = curate_file(src, d / "o.jsonl", report=d / "R.md", jobs=jobs)
    stats = json.loads(r.stats_path.read_text(encoding="utf-8"))
    assert stats.pop("input") == str(src)
    return {
        "curated": r.output.read_bytes(),
        "rejected": r.rejected.read_bytes(),
        "stats": json.dumps(stats).encode(),
        "report": r.report.read_bytes().replace(str(d).encode(), b"D"),
    }


def _jsonl(path: Path, rows: list, head: bytes = b"", blank_every: int = 0) -> Path:
    with open(path, "wb") as f:
        f.write(head)
        for i, r in enumerate(rows):
            f.write(json.dumps(r, ensure_ascii=False).encode() + b"\n")
            if blank_every and i % blank_every == 0:
                f.write(b"   \n" if i % 2 else "\u00a0\u2028\n".encode())
    return path


def test_worker_processes_write_the_same_bytes_as_one_process(parallel_always, tmp_path):
    rows = json.loads(RAW.read_text(encoding="utf-8"))
    # every record twice (duplicates land in other chunks), a BOM, blank and Unicode-blank lines
    src = _jsonl(tmp_path / "d.jsonl", rows + rows[::-1], head=b"\xef\xbb\xbf", blank_every=5)
    one, two = _outputs(src, tmp_path / "one", 1), _outputs(src, tmp_path / "two", 2)
    assert parallel_always == [2]  # one process for jobs=1, workers for jobs=2
    assert one == two
    stats = json.loads(one["stats"])
    assert stats["removed_duplicate"] == 153 and stats["kept"] == 153


def test_worker_processes_keep_the_messages_format(parallel_always, tmp_path):
    rows = [
        {
            "messages": [
                {
                    "role": {"human": "user", "gpt": "assistant"}.get(t["from"], t["from"]),
                    "content": t["value"],
                }
                for t in r["conversations"]
            ]
        }
        for r in json.loads(RAW.read_text(encoding="utf-8"))
    ]
    src = _jsonl(tmp_path / "m.jsonl", rows + rows[:40])
    assert _outputs(src, tmp_path / "one", 1) == _outputs(src, tmp_path / "two", 2)


@pytest.mark.parametrize(
    "bad, message",
    [
        (b'{"conversations": [}\n', "invalid JSON at line 60"),
        (
            b'{"conversations": [{"from": "human", "value": "q"}]}\n',
            "example 59: no assistant turn",
        ),
        (
            b'{"messages": [{"role": "user", "content": "q"}, '
            b'{"role": "assistant", "content": "a"}]}\n',
            "use one format per file",
        ),
        (b'{"conversations": [], "conversations": []}\n', "appears twice"),
        (b"\xff\xfe\n", "bad encoding"),
    ],
)
def test_worker_processes_report_a_bad_line_exactly_as_one_process(
    parallel_always, tmp_path, bad, message
):
    from molting.errors import DatasetError

    rows = json.loads(RAW.read_text(encoding="utf-8"))[:100]
    src = tmp_path / "bad.jsonl"
    _jsonl(src, rows)
    lines = src.read_bytes().splitlines(keepends=True)
    src.write_bytes(b"".join(lines[:59] + [bad] + lines[59:]))
    errors = []
    for jobs in (1, 2):
        with pytest.raises(DatasetError) as err:
            curate_file(
                src, tmp_path / f"o{jobs}.jsonl", report=tmp_path / f"R{jobs}.md", jobs=jobs
            )
        errors.append(str(err.value))
        assert not list(tmp_path.glob(f"*o{jobs}*")) and not list(
            tmp_path.glob(f"R{jobs}*")
        )  # nothing written
    assert parallel_always == [2]  # the workers met the bad line; one process then reported it
    assert errors[0] == errors[1] and message in errors[0]


def _die(*_args):
    import os

    os._exit(3)


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the workers inherit the patched function by fork"
)
def test_a_dying_worker_sends_the_run_to_one_process_with_a_message(
    parallel_always, tmp_path, monkeypatch, capsys
):
    from molting.curate import parallel

    src = _jsonl(tmp_path / "d.jsonl", json.loads(RAW.read_text(encoding="utf-8")))
    one = _outputs(src, tmp_path / "one", 1)
    monkeypatch.setattr(parallel, "_work", _die)
    assert _outputs(src, tmp_path / "two", 2) == one
    assert "worker process stopped" in capsys.readouterr().err and parallel_always == [2]
