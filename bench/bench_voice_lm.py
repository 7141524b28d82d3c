"""Can a language model tell a persona's replies from other voices' given the cards alone?
And does that add to the style classifier?

The card likelihood ratio: a causal LM (the offline SmolLM2-135M) reads each reply after the
persona's card as its system prompt and after each packaged impostor voice's card
(molting.metrics.impostors), and

    card ratio = [log p(reply | persona card, prompt)
                  − log mean_v p(reply | card_v, prompt)] / reply tokens

(the general impostors method, Koppel & Winter 2014, with cards for impostors). The persona's
signature expressions are masked out of the reply first, as the style classifier masks them
(a catchphrase has its own bounded bonus); `--keep-catchphrases` leaves them in, to show how much
of the ratio they carry.

For each persona (Cláudio and Helena, hand-built; Marina, built by `molting persona init` into
output/validity/marina as bench/bench_validity.py does), on replies written by authors who never
saw the training data, per language:

- own: the eval references and the new authors' in-voice replies (validation/*: in_voice_one,
  in_voice_none);
- other: same-prompt replies in other voices (validation/*: other_voice) and the other personas'
  real eval references.

AUC own vs other of: the style classifier's logit (what the score uses today), the card ratio
alone, and the two added after standardising each by its spread over the persona's calibration
references (equal weights: two pieces of evidence, neither tuned on these sets).

Usage: python bench/bench_voice_lm.py [--every 2] [--report reports/VOICE_LM.md]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_validity import OWN, build_from_raw, validation_rows  # noqa: E402

from molting.io import read_yaml_mapping, write_text_atomic  # noqa: E402
from molting.metrics import Scorer  # noqa: E402
from molting.metrics import personality as P  # noqa: E402
from molting.metrics.calibration import auc  # noqa: E402
from molting.metrics.embeddings import EmbeddingCache  # noqa: E402
from molting.metrics.impostors import CORPUS, packaged_voices  # noqa: E402
from molting.models import cache_root, load_base  # noqa: E402
from molting.persona import Card, Persona, Prompt, card_from_dict, load_persona  # noqa: E402

PERSONAS = {
    "Cláudio (hand-built)": (ROOT / "fixtures" / "claudio", ROOT / "fixtures" / "claudio"),
    "Helena (hand-built)": (ROOT / "tests" / "data" / "helena", ROOT / "tests" / "data" / "helena"),
    "Marina (persona init)": (ROOT / "output" / "validity" / "marina", ROOT / "tests/data/marina"),
}


MAX_REPLY_TOKENS = 256  # the opening carries the voice; longer replies cost time, add little


def card_text(card: Card) -> str:
    """The card as a system prompt: who, the summary, the voice rules, the usual expressions."""
    lines = [f"You are {card.name}. {card.summary}".strip()]
    if card.voice:
        lines.append(f"Voice: {card.voice}")
    sigs = card.all_signatures()
    if sigs:
        lines.append("Typical expressions: " + ", ".join(sigs))
    return "\n".join(lines)


def voice_cards() -> dict[str, Card]:
    """The packaged impostor voices' cards, by voice id."""
    out = {}
    for voice in packaged_voices():
        path = CORPUS / f"{voice.id}.yaml"
        raw = read_yaml_mapping(path, "packaged impostor card")
        raw.setdefault("languages", sorted(voice.signatures) or ["en"])
        out[voice.id] = card_from_dict(raw, str(path))
    return out


@dataclass(frozen=True)
class Reading:
    """One reply read after each card: summed log-probabilities and the reply's token count."""

    own: float
    voices: dict[str, float]
    tokens: int

    def ratio(self, without: frozenset[str] = frozenset()) -> float:
        """Per-token log-ratio of the persona's card against the mean of the other voices' cards
        (`without`: voices left out, e.g. the reply's own voice when it is one of them)."""
        others = np.array([v for k, v in sorted(self.voices.items()) if k not in without])
        if not len(others):
            raise ValueError("no other voice's card is left to compare with")
        mean = np.logaddexp.reduce(others) - np.log(len(others))
        return float((self.own - mean) / max(self.tokens, 1))


class CardLM:
    """Reads replies after the persona's card and each other voice's card, with a causal LM
    (default: the offline SmolLM2-135M). Readings are cached on disk by model, card, prompt and
    reply, so a re-run reads nothing twice."""

    def __init__(self, persona: Card, mask: bool = True, model: str = "smollm2-135m"):
        self.persona = card_text(persona)
        self.voices = {k: card_text(c) for k, c in voice_cards().items()}
        self.model_name = model
        self.mask = _signature_mask(persona.all_signatures() if mask else [])
        self.cache = EmbeddingCache(cache_root() / "card_lm.sqlite")
        self._lm = None
        self._prefix: dict[str, tuple[str, object]] = {}
        self.read_count = 0  # (card, reply) pairs actually run through the model
        self.read_seconds = 0.0  # … and the time they took

    def read(self, prompts: list[str], replies: list[str]) -> list[Reading]:
        cards = {"": self.persona, **self.voices}
        out = []
        for prompt, reply in zip(prompts, replies):
            reply = self.mask(reply)
            got = {name: self._logp(text, prompt, reply) for name, text in cards.items()}
            tokens = int(got[""][1])
            out.append(Reading(got[""][0], {k: v[0] for k, v in got.items() if k}, tokens))
        return out

    def _logp(self, card: str, prompt: str, reply: str) -> tuple[float, int]:
        key = hashlib.sha256(
            "\x00".join((self.model_name, card, prompt, reply)).encode()
        ).hexdigest()
        hit = self.cache.get_many([key])
        if key in hit:
            return float(hit[key][0]), int(hit[key][1])
        value = self._forward(card, prompt, reply)
        self.cache.put_many({key: np.array(value, dtype=np.float32)})
        return value

    def _load(self):
        if self._lm is None:
            base = load_base(self.model_name, "none", for_training=False)
            self._lm = (base.model.eval(), base.tokenizer)
        return self._lm

    def _card_prefix(self, card: str) -> tuple[str, object]:
        """The chat template's text up to the user turn, and its key/value cache (once per
        card)."""
        if card not in self._prefix:
            import torch
            from transformers import DynamicCache

            model, tok = self._load()
            marker = "\x00user-turn\x00"
            full = tok.apply_chat_template(
                [{"role": "system", "content": card}, {"role": "user", "content": marker}],
                tokenize=False,
            )
            head = full[: full.index(marker)]
            head = head[: head.rindex("<|im_start|>")] if "<|im_start|>" in head else head
            ids = tok(head, add_special_tokens=False)["input_ids"]
            kv = DynamicCache(config=model.config)
            with torch.inference_mode():
                model(torch.tensor([ids], device=model.device), cache=kv, use_cache=True)
            self._prefix[card] = (head, kv)
        return self._prefix[card]

    def _forward(self, card: str, prompt: str, reply: str) -> tuple[float, int]:
        import torch

        t0 = time.perf_counter()
        model, tok = self._load()
        head, kv = self._card_prefix(card)
        turn = tok.apply_chat_template(
            [{"role": "system", "content": card}, {"role": "user", "content": prompt}],
            tokenize=False,
            add_generation_prompt=True,
        )
        if not turn.startswith(head):
            raise ValueError("the chat template does not start with the system turn")
        context = tok(turn[len(head) :], add_special_tokens=False)["input_ids"]
        # the end-of-turn token is scored too: where a voice stops is part of how it talks
        target = tok(reply + (tok.eos_token or ""), add_special_tokens=False)["input_ids"]
        target = target[:MAX_REPLY_TOKENS]
        ids = torch.tensor([context + target], device=model.device)
        with torch.inference_mode():
            logits = model(ids, cache=kv, use_cache=True, logits_to_keep=len(target) + 1).logits[
                0, :-1
            ]
        kv.crop(-ids.shape[1])  # back to the card alone for the next reply
        logp = torch.log_softmax(logits.float(), -1)
        picked = logp.gather(1, torch.tensor(target, device=logp.device)[:, None])
        self.read_count += 1
        self.read_seconds += time.perf_counter() - t0
        return float(picked.sum()), len(target)


def _signature_mask(signatures: list[str]):
    """reply → reply without the persona's signature expressions (case-insensitive)."""
    alts = sorted({re.escape(s.strip()) for s in signatures if s.strip()}, key=len, reverse=True)
    if not alts:
        return lambda text: text
    rx = re.compile("(?:" + "|".join(alts) + r")[ \t]*", re.IGNORECASE)
    return lambda text: rx.sub("", text).strip()


def rows(name: str, personas: dict[str, Persona]) -> list[tuple[Prompt, str, int]]:
    """(prompt, reply, 1 own / 0 other voice) for one persona's metric."""
    p = personas[name]
    out = [(x, x.reference, 1) for x in p.eval_prompts()]
    for prompt, r in validation_rows(p, PERSONAS[name][1] / "validation"):
        if r["category"] in OWN or r["category"] == "other_voice":
            out.append((prompt, r["reply"], int(r["category"] in OWN)))
    for other, q in personas.items():
        if other != name:
            out += [(x, x.reference, 0) for x in q.eval_prompts() if x.lang in p.languages]
    return out


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def measure(name: str, personas: dict[str, Persona], every: int) -> tuple[list[list], tuple]:
    """AUC rows per language, and (readings run through the model, seconds they took)."""
    persona = personas[name]
    scorer, lm, kept = Scorer.load(persona), CardLM(persona.card), CardLM(persona.card, mask=False)
    items = rows(name, personas)[::every]
    prompts, replies = [p.prompt for p, _, _ in items], [t for _, t, _ in items]
    cal = persona.calibration_prompts()
    ratio = np.array([r.ratio() for r in lm.read(prompts, replies)])
    cal_ratio = np.array(
        [r.ratio() for r in lm.read([p.prompt for p in cal], [p.reference for p in cal])]
    )
    with_phrases = np.array([r.ratio() for r in kept.read(prompts, replies)])
    style = logit(
        np.array([r["style"] for r in scorer.raw_cached([p for p, _, _ in items], replies)])
    )
    cal_style = logit(np.array([r["style"] for r in scorer.raw(cal, [p.reference for p in cal])]))
    phrase = np.array([P.count_signatures(scorer.signatures, t) > 0 for t in replies])
    own = np.array([y for _, _, y in items], bool)
    out = []
    for lang in persona.languages:
        at = np.array([p.lang == lang for p, _, _ in items])
        c = np.array([p.lang == lang for p in cal])
        fused = style / cal_style[c].std() + ratio / cal_ratio[c].std()
        row = [name, lang, int((at & own).sum()), int((at & ~own).sum())]
        for values in (style, ratio, fused, with_phrases):
            row.append(f"{auc(list(values[at & own]), list(values[at & ~own])):.3f}")
        bare = at & own & ~phrase
        row.append(
            f"{auc(list(with_phrases[bare]), list(with_phrases[at & ~own])):.3f} ({bare.sum()})"
        )
        out.append(row)
    return out, (lm.read_count + kept.read_count, lm.read_seconds + kept.read_seconds)


def _timing(times: list[tuple[int, float]]) -> str:
    n, seconds = sum(t[0] for t in times), sum(t[1] for t in times)
    if not n:
        return "Every reading came from the cache ($MOLTING_CACHE/card_lm.sqlite)."
    return (
        f"{n} (card, reply) readings run this time, {seconds / n * 1000:.0f} ms each on this "
        "machine; a reply takes nine (the persona's card and eight other voices')."
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=2, help="score every Nth reply (CPU time)")
    ap.add_argument("--report", default=str(ROOT / "reports" / "VOICE_LM.md"))
    args = ap.parse_args()
    marina = PERSONAS["Marina (persona init)"][0]
    if not (marina / "init.json").is_file():
        build_from_raw("marina", marina)
    personas = {k: load_persona(root) for k, (root, _) in PERSONAS.items()}
    table, times = [], []
    for name in personas:
        got, reads = measure(name, personas, args.every)
        table += got
        times.append(reads)
        print(tabulate(got), flush=True)
    text = "\n".join(
        [
            "# Card likelihood ratio vs the style classifier",
            "",
            f"`python bench/bench_voice_lm.py --every {args.every}` (one reply in {args.every}). "
            "A language model (the offline SmolLM2-135M) reads each reply after the persona's "
            "card as its system prompt and after each packaged other voice's card; the card "
            "ratio is the per-token log-likelihood under the persona's card minus the log-mean "
            "under the other voices' cards (the general impostors method with cards for "
            "impostors). Own replies: the eval references and new authors' in-voice replies; "
            "other: other voices' replies to the same prompts and the other personas' real "
            "replies — all written by people who never saw the training data. The persona's "
            "catchphrases are masked before reading, as the style classifier masks them; the "
            "last two columns leave them in, and then compare only the own replies that use "
            "none. Style + card ratio: each standardised by its spread over the persona's "
            "calibration references, added with equal weights (not tuned on these sets).",
            "",
            tabulate(
                table,
                headers=[
                    "persona's metric",
                    "lang",
                    "own n",
                    "other n",
                    "AUC style (today)",
                    "AUC card ratio",
                    "AUC style + card ratio",
                    "AUC card ratio, catchphrases left in",
                    "… own replies without a catchphrase (n)",
                ],
                tablefmt="github",
            ),
            "",
            _timing(times) + " Targets (issue: discriminant validity): AUC ≥ 0.9.",
            "",
        ]
    )
    write_text_atomic(args.report, text)
    print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
