"""Curation of a large JSON Lines file on several cores, with the same bytes out as one process.

The main process reads lines and numbers them (line number, example index) exactly as
`molting.data` does, and hands chunks of raw lines to worker processes. A worker parses and
validates its lines, matches the patterns, and returns for every conversation either its
finished rejected-file line, or — when no pattern hit — its curated-file line with the digest
that duplicate detection needs. Only the main process knows which conversations came before,
so it alone decides duplicates, in input order, and writes every line in input order.

Memory stays flat: at most `2 × jobs` chunks are in flight. Any problem in the data (a bad
line, a record that fails validation, formats mixed in one file) stops the parallel run and
`curate_file` starts over in one process, which reports every problem with the exact messages
it always gives — the error path is the rare one, so it is not duplicated here.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from molting.curate.filter import (
    DUPLICATE,
    CurationStats,
    Decision,
    assess,
    guess_language,
    rejected_record,
    rejected_row,
)
from molting.data import (
    AtomicWriter,
    decode_json_line,
    encode_json_line,
    parse_record,
    sniff_encoding,
)
from molting.io import DuplicateKey

CHUNK_LINES = 1000  # lines per task: big enough to amortise the hand-over, small enough to balance
MIN_BYTES = 4 << 20  # below ~6,000 conversations starting workers costs more than it saves


def default_jobs() -> int:
    """The cores this process may use (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def worth_it(path: Path, container: str, jobs: int) -> bool:
    """Parallel only for UTF-8 JSON Lines big enough to pay for the workers."""
    if jobs < 2 or container != "jsonl" or not path.is_file() or path.stat().st_size < MIN_BYTES:
        return False
    with open(path, "rb") as f:
        return sniff_encoding(f.read(4)) in ("utf-8", "utf-8-sig")  # lines split as bytes


class Fallback(Exception):
    """Curate in one process instead: the data has a problem, which that run reports exactly, or
    (with a message) the worker processes could not run."""

    def __init__(self, why: str = ""):
        super().__init__(why)
        self.why = why


@dataclass
class _Chunk:
    """A worker's answer for one chunk, in input order: `rejected[k]` holds the rejected-file lines
    that come before candidate k (the last one, those after every candidate)."""

    schemas: set[str] = field(default_factory=set)
    rejected: list[str] = field(default_factory=list)
    # a conversation no pattern hit: (digest, curated line, index, id, language, multi-turn)
    candidates: list[tuple[bytes, str, int, str, str, bool]] = field(default_factory=list)
    stats: CurationStats = field(default_factory=CurationStats)
    ok: bool = True


def _work(path_name: str, offset: int, size: int, lineno: int, index: int) -> _Chunk:
    """Curate the lines in bytes [offset, offset + size) of the file; the first is line `lineno`,
    and its first record is example `index`."""
    out, path = _Chunk(), Path(path_name)
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(size)
    rejected: list[str] = []
    for raw in data.split(b"\n"):
        try:
            line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            lineno += 1
            if not line.strip():
                continue
            record = decode_json_line(line)
        except (UnicodeDecodeError, json.JSONDecodeError, DuplicateKey):
            return _Chunk(ok=False)
        conv, schema, problems = parse_record(path, index, record, None)
        if problems or conv is None:
            return _Chunk(ok=False)
        index += 1
        out.schemas.add(schema)
        hits, digest = assess(conv)
        if hits:
            d = Decision(conv, hits[0][1].pattern.id, hits)
            out.stats.add(d)
            rejected.append(encode_json_line(rejected_record(d, schema)) + "\n")
        else:
            lang, multi = guess_language(conv), len(conv.assistant_turns()) > 1
            out.stats.add(Decision(conv, None), lang)
            out.rejected.append("".join(rejected))
            rejected = []
            out.candidates.append(
                (digest, encode_json_line(conv.raw) + "\n", conv.index, conv.id, lang, multi)
            )
    out.rejected.append("".join(rejected))
    return out


def _chunks(path: Path):
    """(offset, size, first line number, first example index) of chunks of whole lines, numbered
    as molting.data numbers them (blank lines have a line number but no example index)."""
    index, lineno, offset, start, start_lineno, start_index, n = 0, 1, 0, 0, 1, 0, 0
    with open(path, "rb") as f:
        for raw in f:
            if (
                raw.lstrip()[:1] != b"{"
            ):  # not obviously a record: blank the way the one-process reader decides
                try:
                    index += bool(raw.decode("utf-8-sig" if lineno == 1 else "utf-8").strip())
                except UnicodeDecodeError:
                    raise Fallback() from None
            else:
                index += 1
            lineno += 1
            offset += len(raw)
            n += 1
            if n == CHUNK_LINES:
                yield (
                    start,
                    offset - start - 1 if raw.endswith(b"\n") else offset - start,
                    start_lineno,
                    start_index,
                )
                start, start_lineno, start_index, n = offset, lineno, index, 0
    if n:
        yield (
            start,
            offset - start - 1 if raw.endswith(b"\n") else offset - start,
            start_lineno,
            start_index,
        )


def _context():
    # fork where the OS has it (Linux): workers start at once and need no importable __main__; they
    # run only this module's parsing and matching, never a lock another thread of the parent holds.
    if sys.platform.startswith("linux"):
        return mp.get_context("fork")
    return mp.get_context("spawn")


def curate_parallel(
    path: Path, kept_w: AtomicWriter, rej_w: AtomicWriter, jobs: int
) -> CurationStats:
    """Curate `path` into the two writers with `jobs` worker processes; raise Fallback on any
    problem."""
    stats = CurationStats()
    seen: set[bytes] = set()
    schemas: set[str] = set()

    def take(chunk: _Chunk) -> None:
        if not chunk.ok:
            raise Fallback()
        schemas.update(chunk.schemas)
        if len(schemas) > 1:
            # formats mixed: the one-process run names the first example that switches
            raise Fallback()
        stats.merge(chunk.stats)
        for before, (digest, line, index, cid, lang, multi) in zip(
            chunk.rejected, chunk.candidates
        ):
            rej_w.write_lines(before)
            if digest in seen:
                stats.kept_to_duplicate(lang, multi)  # rare: decoding the record back costs nothing
                rej_w.write_lines(
                    encode_json_line(
                        rejected_row(index, cid, DUPLICATE, [], decode_json_line(line))
                    )
                    + "\n"
                )
            else:
                seen.add(digest)
                kept_w.write_lines(line)
        rej_w.write_lines(chunk.rejected[-1])

    # On a problem, cancel what has not started and let the running chunks finish (at most two per
    # worker) before leaving: terminating a multiprocessing.Pool mid-stream can deadlock its task
    # thread.
    with ProcessPoolExecutor(max_workers=jobs, mp_context=_context()) as pool:
        pending: deque = deque()
        try:
            for task in _chunks(path):
                pending.append(pool.submit(_work, str(path), *task))
                if len(pending) >= 2 * jobs:
                    take(pending.popleft().result())
            while pending:
                take(pending.popleft().result())
        except BrokenProcessPool as err:
            raise Fallback(f"a worker process stopped ({err})") from None
        except OSError as err:  # e.g. no more processes allowed
            raise Fallback(f"worker processes could not run ({err})") from None
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return stats
