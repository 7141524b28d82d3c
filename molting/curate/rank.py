"""Rank the curated examples by how much they sound like the persona, then hand-pick.

The seed plan's second iteration step ("manual curation: hand-pick the top 100 examples"):

    # best 100, languages balanced
    molting curate RAW -o top.json --rank --persona DIR --top 100
    # after reviewing the sheet
    molting curate RAW -o picked.json --rank --persona DIR --picks sheet.csv

Every kept example is scored with the persona's scorer, turn by turn (a training reply has no
held-out reference, so the score is the voice: style, directness, signature expressions,
language, Brazilian variety, degenerate-text gates — topicality is not measured); an example's
score is its weakest turn. The review sheet (CSV and Markdown, one row per example: rank, id,
language, score, why, first reply, an empty `keep` column) is written beside the output. The
audit trail records why each example was dropped: a pattern, a duplicate, `rank.cut` (below the
top N) or `pick.dropped` (marked in the sheet).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from molting.curate.report import render_report
from molting.curate.run import curate_file, default_report
from molting.data import Conversation, load_dataset, to_record
from molting.errors import ConfigError
from molting.io import OutputSet, decode_text, json_text, read_bytes
from molting.metrics import Scorer
from molting.metrics.language import conversation_languages
from molting.persona import Prompt, load_persona, parse_lang_shares
from molting.text.markdown import cell

RANK_CUT = "rank.cut"
PICK_DROPPED = "pick.dropped"
KEEP_WORDS = {"y", "yes", "1", "x", "keep", "true", "s", "sim"}
DROP_WORDS = {"n", "no", "0", "drop", "false", "nao", "não"}
SHEET_COLUMNS = ("rank", "id", "lang", "score", "why", "first_reply", "keep")


@dataclass(frozen=True)
class Ranked:
    conversation: Conversation
    lang: str
    score: float  # the weakest assistant turn's voice score, 0–10
    why: str  # the parts behind it, short


def rank(conversations: list[Conversation], langs: dict[str, str], scorer) -> list[Ranked]:
    """Every conversation scored, best first (ties: earlier in the file first)."""
    prompts, replies, owner = [], [], []
    for c in conversations:
        for i, t in enumerate(c.turns):
            if t.role != "assistant":
                continue
            user = next((u.content for u in reversed(c.turns[:i]) if u.role == "user"), "")
            prompts.append(Prompt(f"{c.id}/{i}", langs[c.id], user or t.content, t.content))
            replies.append(t.content)
            owner.append(c.id)
    scores = scorer.score(prompts, replies) if prompts else []
    worst: dict[str, object] = {}
    for cid, s in zip(owner, scores):
        if cid not in worst or s.personality < worst[cid].personality:
            worst[cid] = s
    out = [
        Ranked(c, langs[c.id], round(worst[c.id].personality, 2), _why(worst[c.id]))
        for c in conversations
    ]
    return sorted(out, key=lambda r: (-r.score, r.conversation.index))


def _why(s) -> str:
    p = s.parts
    bits = [f"style {p['style']:.2f}", "direct" if s.direct else f"preamble {p['preamble']}"]
    if p["signatures"]:
        bits.append(f"{p['signatures']} signature")
    bits += [g for g in s.gates if g != "off_topic"]
    return ", ".join(bits)


def select_top(ranked: list[Ranked], n: int, shares: dict[str, float] | None) -> set[str]:
    """The ids of the N best, each language getting its share (default: its share of the set).
    A language with too few examples gives its remaining slots to the others, best first."""
    counts = Counter(r.lang for r in ranked)
    shares = shares or {lang: k / len(ranked) for lang, k in counts.items()}
    quota = {lang: min(counts.get(lang, 0), int(round(n * s))) for lang, s in shares.items()}
    chosen = []
    for lang in sorted(quota):
        chosen += [r for r in ranked if r.lang == lang][: quota[lang]]
    picked = {r.conversation.id for r in chosen}
    for r in ranked:  # fill what rounding or short languages left open, best first
        if len(picked) >= n:
            break
        picked.add(r.conversation.id)
    return set([r.conversation.id for r in ranked if r.conversation.id in picked][:n])


def read_picks(path: Path, ranked: list[Ranked]) -> dict[str, bool]:
    """The reviewed sheet's `keep` column: id → keep (True) / drop (False); a blank keeps the
    example."""
    known = {r.conversation.id for r in ranked}
    text = decode_text(read_bytes(path, "review sheet"), path)
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "id" not in reader.fieldnames or "keep" not in reader.fieldnames:
        raise ConfigError(
            f"{path}: a review sheet needs 'id' and 'keep' columns (write one with --rank)."
        )
    out = {}
    for n, row in enumerate(reader, start=2):
        cid, mark = (row.get("id") or "").strip(), (row.get("keep") or "").strip().lower()
        if cid not in known:
            raise ConfigError(
                f"{path}: line {n}: id {cid!r} is not a kept example of this dataset."
            )
        if mark in KEEP_WORDS or not mark:
            out[cid] = True
        elif mark in DROP_WORDS:
            out[cid] = False
        else:
            raise ConfigError(
                f"{path}: line {n}: keep = {row.get('keep')!r}; write y or n (or leave it blank)."
            )
    return out


def sheet_csv(ranked: list[Ranked], kept: set[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SHEET_COLUMNS)
    for i, r in enumerate(ranked, start=1):
        first = next(t.content for t in r.conversation.turns if t.role == "assistant")
        w.writerow(
            [
                i,
                r.conversation.id,
                r.lang,
                f"{r.score:.2f}",
                r.why,
                " ".join(first.split())[:300],
                "y" if r.conversation.id in kept else "n",
            ]
        )
    return buf.getvalue()


def sheet_markdown(ranked: list[Ranked], kept: set[str], persona: str) -> str:
    rows = [
        [
            i,
            f"`{cell(r.conversation.id, 30)}`",
            r.lang,
            f"{r.score:.2f}",
            cell(r.why, 60),
            cell(next(t.content for t in r.conversation.turns if t.role == "assistant"), 110),
            "✅" if r.conversation.id in kept else "–",
        ]
        for i, r in enumerate(ranked, start=1)
    ]
    head = (
        f"# Review sheet: ranked by how much each example sounds like {persona}\n\n"
        f"{len(kept)} of {len(ranked)} kept. Change the CSV's `keep` column (y / n; blank = keep) "
        "and apply it with `molting curate … --rank --persona DIR --picks SHEET.csv`.\n\n"
    )
    return (
        head
        + tabulate(
            rows,
            headers=["#", "id", "lang", "score", "why", "first reply", "kept"],
            tablefmt="github",
        )
        + "\n"
    )


# ---------------------------------------------------------------- the command


def curate_ranked(
    input_path: str | Path,
    output: str | Path,
    persona_dir: str | Path,
    *,
    top: int | None = None,
    shares: str | None = None,
    picks: str | Path | None = None,
    report: str | Path | None = None,
    rejected: str | Path | None = None,
    stats: str | Path | None = None,
) -> dict:
    """Curate with the patterns, rank what is kept with the persona's scorer, keep the top N and/or
    apply a reviewed sheet; write curated set, rejected file, report, stats and the sheets — all or
    nothing."""
    output = Path(output)
    report = Path(report) if report else default_report(output)
    rejected = Path(rejected) if rejected else output.with_name(output.stem + ".rejected.jsonl")
    stats = Path(stats) if stats else report.with_suffix(".json")
    sheet = output.with_name(output.stem + ".review.csv")
    outs = OutputSet(inputs=[input_path, *([picks] if picks else [])])
    outs.claim_all(
        {
            "curated set": output,
            "rejected file": rejected,
            "report": report,
            "stats": stats,
            "review sheet": sheet,
            "review sheet (Markdown)": sheet.with_suffix(".md"),
        }
    )
    if top is not None and top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}.")
    persona = load_persona(persona_dir)
    scorer = Scorer.load(persona)
    tmp = Path(
        tempfile.mkdtemp(
            prefix=".molting-rank-", dir=output.parent if output.parent.exists() else None
        )
    )
    try:
        first = curate_file(input_path, tmp / f"curated{output.suffix}", report=tmp / "r.md")
        curated = load_dataset(first.output)
        langs = conversation_languages(curated.conversations, persona.languages)
        ranked = rank(curated.conversations, langs, scorer)
        keep = {r.conversation.id for r in ranked}
        dropped: dict[str, str] = {}
        if top is not None:
            keep = select_top(ranked, top, parse_lang_shares(shares, persona.languages))
            dropped |= {
                r.conversation.id: RANK_CUT for r in ranked if r.conversation.id not in keep
            }
        if picks:
            for cid, ok in read_picks(Path(picks), ranked).items():
                if ok:
                    keep.add(cid)
                    dropped.pop(cid, None)
                else:
                    keep.discard(cid)
                    dropped[cid] = PICK_DROPPED
        by_id = {r.conversation.id: r for r in ranked}
        records = [to_record(c, curated.schema) for c in curated.conversations if c.id in keep]
        extra = [
            json_text(
                {
                    "index": by_id[cid].conversation.index,
                    "id": cid,
                    "reason": why,
                    "score": by_id[cid].score,
                    "why": by_id[cid].why,
                    "record": to_record(by_id[cid].conversation, curated.schema),
                },
                indent=None,
            )
            for cid, why in sorted(dropped.items(), key=lambda kv: by_id[kv[0]].conversation.index)
        ]
        summary = first.stats | {
            "ranked_with": persona.name,
            "kept_after_ranking": len(records),
            "ranked_out": sum(v == RANK_CUT for v in dropped.values()),
            "hand_dropped": sum(v == PICK_DROPPED for v in dropped.values()),
        }
        text = render_report(first.stats, output=output, rejected=rejected) + _ranking_section(
            summary, top, sheet
        )
        with outs:
            outs.add(output, _container_text(records, curated.container), "curated set")
            outs.add(
                rejected,
                first.rejected.read_text(encoding="utf-8") + "".join(extra),
                "rejected file",
            )
            outs.add(report, text, "report")
            outs.add(
                stats,
                json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                "stats",
            )
            outs.add(sheet, sheet_csv(ranked, keep), "review sheet")
            outs.add(
                sheet.with_suffix(".md"),
                sheet_markdown(ranked, keep, persona.name),
                "review sheet (Markdown)",
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    written = [output, rejected, report, stats, sheet, sheet.with_suffix(".md")]
    return summary | {
        "output": str(output),
        "sheet": str(sheet),
        "written": [str(p) for p in written],
    }


def _container_text(records: list[dict], container: str) -> str:
    if container == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    body = ",".join(
        "\n  " + json.dumps(r, ensure_ascii=False, indent=2).replace("\n", "\n  ") for r in records
    )
    return "[" + body + ("\n]\n" if records else "]\n")


def _ranking_section(s: dict, top: int | None, sheet: Path) -> str:
    return (
        f"\n## Ranking (persona {s['ranked_with']})\n\n"
        f"{s['kept']} examples passed the patterns; ranked by the persona's scorer"
        + (f", the best {top} kept (languages balanced)" if top else "")
        + f": {s['kept_after_ranking']} kept, {s['ranked_out']} ranked out, {s['hand_dropped']} "
        f"dropped by hand. Review sheet: `{sheet}` (and `.md`).\n"
    )
