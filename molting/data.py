"""Load, validate and save chat datasets: ShareGPT JSON / JSON Lines and OpenAI-style `messages`.

Records flow one way: file → `Conversation` (roles mapped to system/user/assistant, the raw
record kept for a faithful round trip) → stage → `save_records` (same format as the input,
atomic). Every problem names the file, the example index, the turn index and the fix.

    >>> convs = load_dataset("my-persona/dataset.json").conversations
    >>> convs[0].turns[1].role
    'assistant'
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from molting.errors import DatasetError, OutputError
from molting.io import (
    DuplicateKey,
    decode_text,
    is_text,
    lone_surrogate,
    same_path,
    sniff_encoding,
    temp_beside,
)

# ShareGPT speakers and OpenAI roles, mapped explicitly. Anything else is an error, never dropped
# (TRL's maybe_convert_to_chatml keeps "human"/"gpt" as-is and Phi-3's template drops them).
ROLE_MAP = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
}
SHAREGPT = "sharegpt"
MESSAGES = "messages"
_KEYS = {SHAREGPT: ("conversations", "from", "value"), MESSAGES: ("messages", "role", "content")}
_CHUNK = 1 << 20  # bytes read at a time when streaming a JSON array


@dataclass(frozen=True)
class Turn:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class Conversation:
    index: int  # position in the file, 0-based
    id: str  # the record's "id" if it has one, else its index
    turns: tuple[Turn, ...]
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def assistant_turns(self) -> list[tuple[int, str]]:
        """(turn index, text) of every assistant turn."""
        return [(i, t.content) for i, t in enumerate(self.turns) if t.role == "assistant"]


@dataclass(frozen=True)
class Dataset:
    path: Path
    container: str  # "json" (one JSON list) or "jsonl"
    schema: str  # SHAREGPT or MESSAGES
    conversations: list[Conversation]


# ---------------------------------------------------------------- reading


def detect_container(path: Path) -> str:
    """'jsonl' for .jsonl/.ndjson or a file whose first line is a whole JSON object, else 'json'."""
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return "jsonl"
    with _open_text(path) as f:
        try:
            head = f.read(_CHUNK)
        except UnicodeDecodeError:
            raise _bad_encoding(path, f.encoding) from None
    stripped = head.lstrip()
    if stripped.startswith("{"):
        first_line = stripped.split("\n", 1)[0]
        try:
            json.loads(first_line)
            return "jsonl"
        except json.JSONDecodeError:
            return "json"  # a single pretty-printed object: reported as the wrong top-level type
    return "json"


def iter_raw_records(path: Path, container: str) -> Iterator[tuple[int, Any]]:
    """Yield (index, parsed record) without loading the whole file. Raises DatasetError on bad
    JSON."""
    if container == "jsonl":
        yield from _iter_jsonl(path)
    else:
        yield from _iter_json_array(path)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DatasetError([f"{path}: file not found. Check the path."])
    if path.is_dir():
        raise DatasetError([f"{path}: is a directory, expected a .json or .jsonl dataset file."])


def _encoding(path: Path) -> str:
    """UTF-8, or the UTF-16/32 a byte-order mark announces."""
    with open(path, "rb") as f:
        return sniff_encoding(f.read(4))


def _open_text(path: Path):
    _check_file(path)
    return open(path, encoding=_encoding(path), errors="strict", newline="")


def _decode_error(path: Path, err: UnicodeDecodeError, consumed_bytes: int = 0) -> DatasetError:
    return DatasetError(
        [
            f"{path}: bad encoding at byte {consumed_bytes + err.start}: not valid UTF-8 "
            f"({err.reason}). Re-save the file as UTF-8."
        ]
    )


def _bad_encoding(path: Path, encoding: str) -> DatasetError:
    """The first undecodable byte of the whole file (found only when decoding failed)."""
    try:
        decode_text(path.read_bytes(), path, DatasetError)
    except DatasetError as err:
        return err
    return DatasetError([f"{path}: not valid {encoding}; re-save the file as UTF-8."])


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object_pairs_hook: a key given twice in one object is an error (json.loads would keep
    the last value silently — a reply could disappear)."""
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        raise DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return d


# json.loads(…, object_pairs_hook=_object) without building a decoder per record. Not orjson: it
# keeps a duplicate key's last value silently, and no cheap test on the line tells soundly when
# the strict decoder must check instead; and decoding is 4% of `molting curate` in one process
# (cProfile: 7%; 20k conversations of bench_curate's input), so it could save little.
_DECODER = json.JSONDecoder(object_pairs_hook=_object)
decode_json_line = _DECODER.decode


def _iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    _check_file(path)
    encoding = _encoding(path)
    if encoding != "utf-8":  # UTF-16/32: lines cannot be split as bytes
        with _open_text(path) as f:
            try:
                lines = [line.encode("utf-8") for line in f.read().splitlines(keepends=True)]
            except UnicodeDecodeError:
                raise _bad_encoding(path, encoding) from None
        yield from _parse_lines(path, iter(lines))
        return
    with open(path, "rb") as f:
        yield from _parse_lines(path, f)


def _parse_lines(path: Path, lines: Iterable[bytes]) -> Iterator[tuple[int, Any]]:
    index, offset = 0, 0
    for lineno, raw_line in enumerate(lines, start=1):
        try:
            line = raw_line.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as err:
            raise _decode_error(path, err, offset) from None
        offset += len(raw_line)
        if not line.strip():
            continue
        try:
            record = decode_json_line(line)
        except json.JSONDecodeError as err:
            raise DatasetError(
                [f"{path}: invalid JSON at line {lineno}, column {err.colno}: {err.msg}."]
            ) from None
        except DuplicateKey as err:
            raise DatasetError(
                [f"{path}: line {lineno}: key {err.key!r} appears twice in one object; keep one."]
            ) from None
        yield index, record
        index += 1


class _ArrayStream:
    """Incremental reader of one top-level JSON array: keeps line/column for error messages.

    Not ijson: its C backend (yajl) turns a lone surrogate escape into '?' (the record would pass
    changed instead of being refused), refuses NaN, names no line/column, and with duplicate keys
    refused reads no faster; its Python backend is 9× slower (reports/BENCHMARKS.md, "Reading a
    JSON array")."""

    def __init__(self, path: Path, f):
        self.path, self.f = path, f
        self.buf, self.pos, self.eof = "", 0, False
        self.lines_before = 0  # newlines in text already dropped from buf

    def fill(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.f.read(_CHUNK)
        except UnicodeDecodeError:
            raise _bad_encoding(self.path, self.f.encoding) from None
        if not chunk:
            self.eof = True
            return False
        dropped = self.buf[: self.pos]
        self.lines_before += dropped.count("\n")
        self.buf, self.pos = self.buf[self.pos :] + chunk, 0
        return True

    def where(self, pos: int) -> str:
        line = self.lines_before + self.buf.count("\n", 0, pos) + 1
        col = pos - (self.buf.rfind("\n", 0, pos) + 1) + 1
        return f"line {line}, column {col}"

    def skip_ws(self) -> str:
        """Return the next non-whitespace char ('' at end of file) without consuming it."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def fail(self, what: str, pos: int | None = None) -> DatasetError:
        where = self.where(self.pos if pos is None else pos)
        return DatasetError([f"{self.path}: invalid JSON at {where}: {what}."])


def _iter_json_array(path: Path) -> Iterator[tuple[int, Any]]:
    with _open_text(path) as f:
        s = _ArrayStream(path, f)
        first = s.skip_ws()
        if first == "":
            raise DatasetError([f"{path}: file is empty; expected a JSON list of conversations."])
        if first != "[":
            kind = "an object" if first == "{" else "a scalar"
            raise DatasetError(
                [
                    f"{path}: wrong top-level type: expected a JSON list of conversations "
                    f"(or JSON Lines, one conversation per line), got {kind}."
                ]
            )
        s.pos += 1
        index = 0
        while True:
            ch = s.skip_ws()
            if ch == "]" and index == 0:
                s.pos += 1
                break
            if ch == "":
                raise s.fail("unexpected end of file inside the top-level list")
            while True:
                try:
                    record, end = _DECODER.raw_decode(s.buf, s.pos)
                    break
                except json.JSONDecodeError as err:
                    if not s.fill():
                        raise s.fail(err.msg, err.pos) from None
                except DuplicateKey as err:
                    raise DatasetError(
                        [
                            f"{path}: example {index} (at {s.where(s.pos)}): key {err.key!r} "
                            "appears twice in one object; keep one."
                        ]
                    ) from None
            s.pos = end
            yield index, record
            index += 1
            sep = s.skip_ws()
            if sep == ",":
                s.pos += 1
                continue
            if sep == "]":
                s.pos += 1
                break
            raise s.fail(
                "expected ',' or ']' after a list element" if sep else "unexpected end of file"
            )
        if s.skip_ws() != "":
            raise s.fail("extra data after the top-level list")


# ---------------------------------------------------------------- validating


def parse_record(
    path: Path, index: int, record: Any, schema: str | None
) -> tuple[Conversation | None, str | None, list[str]]:
    """Validate one record. Returns (conversation or None, schema it uses, problems)."""
    where = f"{path}: example {index}"
    if not isinstance(record, dict):
        kind = type(record).__name__
        return (
            None,
            schema,
            [
                f"{where}: expected an object with 'conversations' (ShareGPT) or 'messages', got "
                f"{kind}."
            ],
        )
    found = SHAREGPT if "conversations" in record else MESSAGES if "messages" in record else None
    if found is None:
        keys = ", ".join(sorted(map(str, record))) or "none"
        return (
            None,
            schema,
            [
                f"{where}: missing key 'conversations' (ShareGPT) or 'messages' (OpenAI); keys "
                f"found: {keys}."
            ],
        )
    if schema is not None and found != schema:
        return (
            None,
            schema,
            [
                f"{where}: uses '{_KEYS[found][0]}' but earlier examples use '{_KEYS[schema][0]}'; "
                "use one format per file."
            ],
        )
    list_key, role_key, text_key = _KEYS[found]
    for key, value in record.items():  # the turns' own strings are checked with each turn
        if key != list_key and not (type(value) is str and value.isascii()):
            bad = lone_surrogate(value, f", {key!r}")
            if bad:
                return None, found, [f"{where}{bad}"]
    turns_raw = record[list_key]
    if not isinstance(turns_raw, list):
        return (
            None,
            found,
            [f"{where}: '{list_key}' must be a list of turns, got {type(turns_raw).__name__}."],
        )
    if not turns_raw:
        return (
            None,
            found,
            [f"{where}: empty conversation ('{list_key}' is []). Remove it or add turns."],
        )
    turns, problems = [], []
    for j, t in enumerate(turns_raw):
        turn, problem = _parse_turn(where, j, t, role_key, text_key)
        if problem:
            problems.append(problem)
        else:
            turns.append(turn)
    if not problems and not any(t.role == "assistant" for t in turns):
        problems.append(
            f"{where}: no assistant turn ('gpt'/'assistant'); there is nothing to train on."
        )
    if problems:
        return None, found, problems
    rid = record.get("id")
    cid = str(rid) if isinstance(rid, (str, int)) and not isinstance(rid, bool) else str(index)
    return Conversation(index=index, id=cid, turns=tuple(turns), raw=record), found, []


def _parse_turn(
    example: str, j: int, t: Any, role_key: str, text_key: str
) -> tuple[Turn | None, str | None]:
    if type(t) is dict:  # the common, valid case first: no message is built for it
        role, text = t.get(role_key), t.get(text_key)
        mapped = ROLE_MAP.get(role) if type(role) is str else None
        if (
            mapped
            and type(text) is str
            and (mapped != "system" or j == 0)
            and (mapped != "assistant" or text.strip())
            and (text.isascii() or is_text(text))
            and (len(t) == 2 or not lone_surrogate(t))
        ):
            return Turn(mapped, text), None
    where = f"{example}, turn {j}"
    if not isinstance(t, dict):
        return (
            None,
            f"{where}: expected an object with '{role_key}' and '{text_key}', got "
            f"{type(t).__name__}.",
        )
    bad = lone_surrogate(t)
    if bad:
        return None, f"{where}{bad}"
    for key in (role_key, text_key):
        if key not in t:
            return None, f"{where}: missing key '{key}'."
    role, text = t[role_key], t[text_key]
    if not isinstance(role, str) or role.strip().lower() not in ROLE_MAP:
        known = ", ".join(sorted(ROLE_MAP))
        return None, f"{where}: unknown role {role!r}; expected one of {known}."
    if not isinstance(text, str):
        return None, f"{where}: '{text_key}' must be a string, got {type(text).__name__}."
    mapped = ROLE_MAP[role.strip().lower()]
    if mapped == "system" and j != 0:
        return None, f"{where}: a system turn may only be the first turn."
    if mapped == "assistant" and not text.strip():
        return None, f"{where}: empty assistant reply."
    return Turn(mapped, text), None


def iter_conversations(path: str | Path, problems: list[str]) -> Iterator[Conversation]:
    """Stream valid conversations; append record-level problems to `problems` and keep going.

    Structural errors (bad JSON, bad encoding, wrong top-level type) raise DatasetError at once.
    """
    path = Path(path)
    container = detect_container(path)
    schema = None
    for index, record in iter_raw_records(path, container):
        conv, schema, found = parse_record(path, index, record, schema)
        problems.extend(found)
        if conv is not None:
            yield conv


def load_dataset(path: str | Path) -> Dataset:
    """Load and validate a whole dataset; raise DatasetError listing every problem."""
    path = Path(path)
    problems: list[str] = []
    convs = list(iter_conversations(path, problems))
    if problems:
        raise DatasetError(problems)
    if not convs:
        raise DatasetError([f"{path}: no conversations found; the dataset is empty."])
    schema = SHAREGPT if "conversations" in convs[0].raw else MESSAGES
    return Dataset(path=path, container=detect_container(path), schema=schema, conversations=convs)


# ---------------------------------------------------------------- writing


def to_record(conv: Conversation, schema: str) -> dict[str, Any]:
    """The record to write: the original one when it exists (faithful round trip), else built."""
    if conv.raw:
        return conv.raw
    list_key, role_key, text_key = _KEYS[schema]
    back = {"user": "human", "assistant": "gpt", "system": "system"} if schema == SHAREGPT else {}
    turns = [{role_key: back.get(t.role, t.role), text_key: t.content} for t in conv.turns]
    return {"id": conv.id, list_key: turns}


# json.dumps(record, ensure_ascii=False[, indent=2]) without building an encoder per record.
encode_json_line = json.JSONEncoder(ensure_ascii=False).encode
_ENCODE_INDENTED = json.JSONEncoder(ensure_ascii=False, indent=2).encode


class AtomicWriter:
    """Write records to a temp file beside `path`; `commit()` renames it into place.

    Refuses to write over `input_path`. If `commit()` is never called (error), nothing is left.
    """

    def __init__(self, path: str | Path, container: str, input_path: str | Path | None = None):
        self.path, self.container, self.count = Path(path), container, 0
        if input_path is not None and same_path(self.path, Path(input_path)):
            raise OutputError(f"{self.path}: output is the input file; choose another output path.")
        fd, self.tmp = temp_beside(self.path)
        self.f = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        if container == "json":
            self.f.write("[")

    def write(self, record: dict[str, Any]) -> None:
        if self.container == "jsonl":
            self.f.write(encode_json_line(record) + "\n")
        else:
            body = _ENCODE_INDENTED(record).replace("\n", "\n  ")
            self.f.write(("," if self.count else "") + "\n  " + body)
        self.count += 1

    def write_lines(self, lines: str) -> None:
        """Records already encoded as JSON Lines (each line with its newline), as `write` would."""
        assert self.container == "jsonl", "encoded lines are JSON Lines"
        self.f.write(lines)
        self.count += lines.count("\n")

    def finish(self) -> Path:
        """Close the temp file, complete, without moving it into place (for an OutputSet)."""
        if self.container == "json":
            self.f.write("\n]\n" if self.count else "]\n")
        self.f.close()
        os.chmod(self.tmp, 0o644)
        return self.tmp

    def commit(self) -> Path:
        os.replace(self.finish(), self.path)
        return self.path

    def abort(self) -> None:
        if not self.f.closed:
            self.f.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is not None:
            self.abort()


def save_records(
    records: Iterable[dict[str, Any]],
    path: str | Path,
    container: str,
    input_path: str | Path | None = None,
) -> Path:
    """Atomically write records as a JSON list or JSON Lines."""
    with AtomicWriter(path, container, input_path) as w:
        for r in records:
            w.write(r)
        return w.commit()
