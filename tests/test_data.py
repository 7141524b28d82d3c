"""Data model: load, validate (file/example/turn in every message), save atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from molting.cli import main
from molting.data import AtomicWriter, load_dataset, save_records
from molting.errors import DatasetError, OutputError

SHAREGPT = [
    {
        "id": "a",
        "conversations": [
            {"from": "system", "value": "be nice"},
            {"from": "human", "value": "hi"},
            {"from": "gpt", "value": "Olá!"},
        ],
    }
]
MESSAGES = [
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
]


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return p


def problems_of(path: Path) -> list[str]:
    with pytest.raises(DatasetError) as err:
        load_dataset(path)
    return err.value.problems


def test_sharegpt_roles_are_mapped_explicitly(tmp_path):
    ds = load_dataset(write(tmp_path, "d.json", json.dumps(SHAREGPT)))
    assert [t.role for t in ds.conversations[0].turns] == ["system", "user", "assistant"]
    assert ds.conversations[0].id == "a" and ds.schema == "sharegpt" and ds.container == "json"


def test_jsonl_and_messages_formats_load(tmp_path):
    p = write(tmp_path, "d.jsonl", "\n".join(json.dumps(r) for r in MESSAGES * 3) + "\n\n")
    ds = load_dataset(p)
    assert ds.container == "jsonl" and ds.schema == "messages" and len(ds.conversations) == 3
    assert ds.conversations[2].id == "2"


def test_json_file_holding_json_lines_is_detected(tmp_path):
    p = write(tmp_path, "d.json", "\n".join(json.dumps(r) for r in SHAREGPT * 2))
    assert load_dataset(p).container == "jsonl"


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[{"conversations": [}]', "invalid JSON at line 1, column 21"),
        ('[\n  {"conversations": []},\n  oops\n]', "line 3, column 3"),
        ('{"conversations": []\n, "x": 1}', "wrong top-level type"),
        ("42", "wrong top-level type"),
        ("", "file is empty"),
        ('[{"conversation": []}]', "example 0: missing key 'conversations'"),
        ('[{"conversations": []}]', "example 0: empty conversation"),
        ('[{"conversations": "hi"}]', "'conversations' must be a list"),
        ('[{"conversations": [{"from": "human"}]}]', "example 0, turn 0: missing key 'value'"),
        (
            '[{"conversations": [{"from": "human", "value": 3}]}]',
            "turn 0: 'value' must be a string, got int",
        ),
        (
            '[{"conversations": [{"from": "tool", "value": "x"}, {"from": "gpt", "value": "y"}]}]',
            "turn 0: unknown role 'tool'",
        ),
        ('[{"conversations": [{"from": "human", "value": "x"}]}]', "no assistant turn"),
        (
            '[{"conversations": [{"from": "human", "value": "x"}, '
            '{"from": "system", "value": "s"}, {"from": "gpt", "value": "y"}]}]',
            "system turn may only be the first",
        ),
        ("[7]", "example 0: expected an object"),
        (
            '[{"conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "y"}]}, '
            '{"messages": []}]',
            "example 1: uses 'messages'",
        ),
    ],
)
def test_validation_errors_name_the_place(tmp_path, text, expected):
    problems = problems_of(write(tmp_path, "bad.json", text))
    assert any(expected in p for p in problems), problems
    assert all(str(tmp_path / "bad.json") in p for p in problems)


def test_bad_encoding_is_reported_with_byte_offset(tmp_path):
    p = write(tmp_path, "bad.jsonl", b'{"messages": []}\n{"messages": "\xff"}\n')
    assert "bad encoding at byte" in problems_of(p)[0]


def test_jsonl_error_names_the_line(tmp_path):
    p = write(tmp_path, "bad.jsonl", json.dumps(MESSAGES[0]) + "\n{nope}\n")
    assert "line 2" in problems_of(p)[0]


def test_all_record_problems_are_collected(tmp_path):
    records = [{"conversations": [{"from": "bot", "value": "x"}]} for _ in range(30)]
    assert len(problems_of(write(tmp_path, "bad.json", json.dumps(records)))) == 30


def test_missing_file_is_a_dataset_error(tmp_path):
    assert "file not found" in problems_of(tmp_path / "nope.json")[0]


def test_save_keeps_format_and_is_atomic(tmp_path):
    src = write(tmp_path, "in.jsonl", "\n".join(json.dumps(r) for r in MESSAGES))
    ds = load_dataset(src)
    out = save_records(
        [c.raw for c in ds.conversations], tmp_path / "out.jsonl", "jsonl", input_path=src
    )
    assert load_dataset(out).conversations[0].raw == MESSAGES[0]
    assert not list(tmp_path.glob(".*tmp"))


def test_save_refuses_to_overwrite_the_input(tmp_path):
    src = write(tmp_path, "in.json", json.dumps(SHAREGPT))
    with pytest.raises(OutputError, match="output is the input"):
        save_records([], src, "json", input_path=src)
    assert json.loads(src.read_text()) == SHAREGPT


def test_aborted_writer_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with AtomicWriter(tmp_path / "out.json", "json") as w:
            w.write({"x": 1})
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_cli_prints_one_line_per_problem_and_writes_nothing(tmp_path, capsys):
    records = [{"conversations": [{"from": "bot", "value": "x"}]} for _ in range(25)]
    src = write(tmp_path, "bad.json", json.dumps(records))
    out = tmp_path / "out" / "cur.json"
    rc = main(["curate", str(src), "-o", str(out), "--report", str(tmp_path / "r" / "R.md")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 21 and "unknown role 'bot'" in err[0] and "5 more problems" in err[-1]
    assert not out.exists() and not (tmp_path / "r").exists()
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p != src]


_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(_text, _text.filter(str.strip)), min_size=1, max_size=4),
    st.sampled_from(["json", "jsonl"]),
)
def test_round_trip_preserves_records(tmp_path_factory, turns, container):
    d = tmp_path_factory.mktemp("rt")
    records = [
        {
            "conversations": [
                x
                for u, a in turns
                for x in ({"from": "human", "value": u}, {"from": "gpt", "value": a})
            ]
        }
    ]
    p1 = save_records(records, d / f"a.{container}", container)
    p2 = save_records(
        [c.raw for c in load_dataset(p1).conversations], d / f"b.{container}", container
    )
    assert p1.read_bytes() == p2.read_bytes()
    assert load_dataset(p2).conversations[0].raw == records[0]
