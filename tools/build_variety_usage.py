"""Build molting/metrics/data/variety_usage.tsv: how much more often European than Brazilian
Portuguese uses each word, from two real word-frequency lists.

Source: FrequencyWords by Hermit Dave (https://github.com/hermitdave/FrequencyWords, content
CC BY-SA 4.0), 2018 edition, the 50,000 most frequent words of the OpenSubtitles 2018 corpus
(opus.nlpl.eu) for `pt` (subtitles made in Portugal, 212M tokens) and `pt_br` (made in Brazil,
419M tokens). Subtitles are everyday written dialogue: "telemóvel", "equipa", "ficheiro",
"arrendar", "tu estás" on one side; "celular", "ônibus", "pra", "você" on the other.

Per word: log(share in pt) − log(share in pt_br). A word missing from one list is counted at
that list's cut-off (its least frequent entry): all that is known is that it is rarer than that,
so the value is a bound, never an artefact of the cut ("rega": 169 in pt, under 126 in pt_br,
+0.84 — not +4). Clipped to ±CLIP (no single word decides), dropped under ±MIN_ABS (the bulk of
shared words), and kept only for lower-case letter words of three letters or more that are not
English words (pyspellchecker's list: loanwords like "time" or "site" read differently in code
talk). Hyphenated words are left out: the pt_br list splits them.

Usage: python tools/build_variety_usage.py PT_50K.txt PT_BR_50K.txt [--out PATH]
(from a checkout of FrequencyWords: content/2018/pt/pt_50k.txt, content/2018/pt_br/pt_br_50k.txt)
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from molting.io import write_text_atomic  # noqa: E402
from molting.metrics.variety import DICTIONARIES, USAGE_CLIP, USAGE_FILE  # noqa: E402

MIN_ABS = 0.5
_WORD = re.compile(r"[^\W\d_]{3,}")


def read_counts(path: Path) -> dict[str, int]:
    counts = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        word, _, n = line.rpartition(" ")
        if not word or not n.isdigit():
            raise SystemExit(f"{path}:{i}: expected 'word count', got {line!r}")
        counts[word] = int(n)
    return counts


def build(pt: dict[str, int], br: dict[str, int]) -> list[tuple[str, float]]:
    english = DICTIONARIES.english  # the list the dictionaries' evidence leaves out too
    total_pt, total_br = sum(pt.values()), sum(br.values())
    floor_pt, floor_br = min(pt.values()), min(br.values())
    rows = []
    for word in sorted(set(pt) | set(br)):
        if not _WORD.fullmatch(word) or word != word.lower() or word in english:
            continue
        lo = math.log(pt.get(word, floor_pt) / total_pt) - math.log(
            br.get(word, floor_br) / total_br
        )
        lo = max(-USAGE_CLIP, min(USAGE_CLIP, lo))
        if abs(lo) >= MIN_ABS:
            rows.append((word, round(lo, 2)))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pt", type=Path)
    ap.add_argument("pt_br", type=Path)
    ap.add_argument("--out", type=Path, default=USAGE_FILE)
    args = ap.parse_args()
    rows = build(read_counts(args.pt), read_counts(args.pt_br))
    header = [
        "# European vs Brazilian Portuguese word usage: log(share in pt) - log(share in pt_br)",
        "# Built by tools/build_variety_usage.py from FrequencyWords 2018 (Hermit Dave,",
        "# https://github.com/hermitdave/FrequencyWords), OpenSubtitles 2018 pt and pt_br lists.",
        "# Licence of this file: CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/).",
    ]
    write_text_atomic(args.out, "\n".join(header + [f"{w}\t{v:.2f}" for w, v in rows]) + "\n")
    eu = sum(v > 0 for _, v in rows)
    print(f"wrote {args.out}: {len(rows)} words, {eu} leaning European, {len(rows) - eu} Brazilian")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
