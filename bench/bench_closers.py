"""Would the style model tell voices apart better if it also read each reply's closing sentence?

Voices that answer alike often part ways where they sign off (the joke, the reassurance, the
verdict). This bench adds two views of the last sentence to the style classifier (character
2–5-grams, and character 1–4-grams of its distorted form) and measures, per persona and
language, with and without them:

- development: AUC of new-author in-voice replies vs other voices on the calibration prompts
  (tests/data/metric_dev; what a change is chosen on);
- calibration controls: AUC of the eval references vs the packaged voices the scorer never saw
  (cross-fitted by voice), and the share of generic-assistant replies reaching 8.5;
- validation (report only): other voices' same-prompt replies reaching 8.5, AUC own vs other,
  new authors' in-voice replies reaching 8.5 (bench_validity's measures).

Nothing is written but the report: the fits live in a temporary cache and the library's style
model is untouched. Marina's bundle is the one `python bench/bench_validity.py` builds under
output/ (built here the same way when it is missing).

Usage: python bench/bench_closers.py [--report reports/STYLE_CLOSERS.md]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ["MOLTING_CACHE"] = tempfile.mkdtemp(prefix="molting-closers-")  # never the user's

import bench_validity as BV  # noqa: E402

from molting.io import read_jsonl, write_text_atomic  # noqa: E402
from molting.metrics import Scorer  # noqa: E402
from molting.metrics import personality as P  # noqa: E402
from molting.metrics.calibration import auc, calibrate  # noqa: E402
from molting.metrics.text import sentences  # noqa: E402
from molting.persona import load_persona  # noqa: E402

THRESHOLD = 8.5


def _closer(style: P.StyleClassifier, text: str) -> str:
    said = sentences(style.prep(text))
    return said[-1] if said else ""


@contextmanager
def closers(on: bool):
    """The style classifier with (on) or without the closing-sentence views."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    plain = P.StyleClassifier._vectorizers

    def with_closers(self, vocabularies=None):
        common = dict(min_df=2, sublinear_tf=True)
        return plain(self) + (
            TfidfVectorizer(
                analyzer="char_wb",
                ngram_range=P.CHAR_NGRAMS,
                preprocessor=lambda t: _closer(self, t),
                **common,
            ),
            TfidfVectorizer(
                analyzer="char",
                ngram_range=P.DISTORTED_NGRAMS,
                preprocessor=lambda t: P.distort(_closer(self, t)),
                **common,
            ),
        )

    if on:
        P.StyleClassifier._vectorizers = with_closers
    try:
        yield
    finally:
        P.StyleClassifier._vectorizers = plain


def dev_auc(name: str, scorer: Scorer) -> dict[str, float]:
    folder = ROOT / "tests" / "data" / "metric_dev"
    own_file, other_file = (
        folder / f"{name}_calibration_prompts.jsonl",
        folder / f"{name}_calibration_other_voices.jsonl",
    )
    if not own_file.is_file():
        return {}
    own = [r for r in read_jsonl(own_file) if r["category"] in BV.OWN]
    other = read_jsonl(other_file)
    out = {}
    for lang in scorer.persona.languages:
        p = scorer.style.proba([r["reply"] for r in own if r["lang"] == lang])
        n = scorer.style.proba([r["reply"] for r in other if r["lang"] == lang])
        out[lang] = auc(list(p), list(n))
    return out


def measure(name: str, root: Path, validation: Path, others: dict) -> dict:
    persona = load_persona(root)
    scorer = Scorer(persona, anchors=None)
    cal = calibrate(persona, THRESHOLD, write_anchors=False, scorer=scorer)
    loaded = Scorer.load
    Scorer.load = classmethod(lambda cls, p, **kw: scorer)
    try:
        val = BV.measure(name, persona, validation, others)
    finally:
        Scorer.load = loaded
    dev = dev_auc(name, scorer)
    return {
        lang: dict(
            dev_auc=dev.get(lang, float("nan")),
            unseen_auc=cal.discriminant[lang]["auc"],
            generic_pass=cal.pass_rate["generic"][lang],
            **{k: val[lang][k] for k in ("rewrites_pass", "auc", "in_voice_one_pass")},
            in_voice_none_pass=val[lang]["in_voice_none_pass"],
        )
        for lang in persona.languages
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", default=str(ROOT / "reports" / "STYLE_CLOSERS.md"))
    args = ap.parse_args()
    marina = ROOT / "output" / "validity" / "marina"
    if not (marina / "persona.yaml").is_file():
        BV.build_from_raw("marina", marina)
    claudio, helena = ROOT / "fixtures" / "claudio", ROOT / "tests" / "data" / "helena"
    bundles = {
        "claudio": (claudio, claudio / "validation"),
        "helena": (helena, helena / "validation"),
        "marina": (marina, ROOT / "tests" / "data" / "marina" / "validation"),
    }
    personas = {k: load_persona(r) for k, (r, _) in bundles.items()}
    t0, rows = time.perf_counter(), []
    for name, (root, folder) in bundles.items():
        others = {o: p for o, p in personas.items() if o != name}
        for on in (False, True):
            with closers(on):
                res = measure(name, root, folder, others)
            for lang, m in res.items():
                rows.append(
                    [name, lang, "with" if on else "without"]
                    + [f"{m['dev_auc']:.3f}", f"{m['unseen_auc']:.3f}", f"{m['generic_pass']:.0%}"]
                    + [f"{m['rewrites_pass']:.0%}", f"{m['auc']:.3f}"]
                    + [f"{m['in_voice_one_pass']:.0%} / {m['in_voice_none_pass']:.0%}"]
                )
            print(rows[-2:], flush=True)
    table = tabulate(
        rows,
        headers=[
            "persona",
            "lang",
            "closing-sentence views",
            "dev AUC in-voice vs other voices",
            "AUC refs vs unseen voices",
            "generic ≥ 8.5",
            "validation: other voices ≥ 8.5",
            "validation: AUC own vs other",
            "validation: in-voice ≥ 8.5 (one / none)",
        ],
        tablefmt="github",
    )
    text = "\n".join(
        [
            "# The closing sentence as a view of the style model",
            "",
            "Measured by `python bench/bench_closers.py` "
            f"({time.perf_counter() - t0:.0f} s). " + __doc__.split("\n\n")[1].replace("\n", " "),
            "",
            table,
            "",
        ]
    )
    write_text_atomic(args.report, text)
    print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
