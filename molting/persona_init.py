"""`molting persona init`: a ready persona bundle from the user's raw dataset and card.

Everything the metric needs is already in the user's data: held-out conversations are
references in the persona's real voice, curation's rejects are real agent talk, and the base
model's own replies are the "generic assistant" the fine-tune must move away from. Steps:

1. curate the raw dataset (audit trail and CURATION_REPORT.md go into the bundle);
2. detect each conversation's language from its user and assistant turns;
3. split held-out conversations off the curated set by conversation, stratified by language,
   with no near-duplicate prompts across train / calibration / eval; each held-out prompt
   carries the conversation so far and the persona's real reply as reference (a reply that
   opens with generic filler is no reference: its conversation stays in training);
4. negatives: agent talk = the rejects; generic = the base model's greedy replies to the
   held-out prompts (cached like the gate's generations) plus the packaged generic set;
   off-topic = the persona's replies to the nearest other questions (built by the scorer);
5. fit and calibrate the scorer; write anchors.json and METRICS_CALIBRATION.md;
6. refuse — nothing written — when a language has too little data for the splits, or when the
   held-out references cannot be told apart from generic replies (AUC below MIN_AUC).

The bundle is built in a staging directory and moved into place only when it is complete; a
re-run with the same inputs finds init.json unchanged and reuses the bundle as it is.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from molting import __version__ as MOLTING_VERSION
from molting.curate.run import curate_file
from molting.data import Conversation, load_dataset, save_records, to_record
from molting.errors import ConfigError, OutputError
from molting.gate.generate import GenerationCache, GenerationConfig, Generator
from molting.gate.specs import ModelSpec
from molting.io import (
    OutputSet,
    check_writable_dir,
    json_text,
    missing_dirs,
    read_json,
    read_jsonl,
    read_yaml_mapping,
    remove_empty_dirs,
    same_path,
    sha256_file,
    sha256_json,
)
from molting.metrics.agent import directness
from molting.metrics.calibration import CalibrationResult, calibrate
from molting.metrics.language import conversation_languages
from molting.metrics.report import render
from molting.metrics.text import NearDuplicates
from molting.persona import CARD_FILE, Persona, Prompt, card_from_dict, load_persona, load_prompts

# Minimum curated conversations per language: enough to learn the voice, fit anchors, evaluate.
MIN_TRAIN_PER_LANGUAGE = 20  # the style classifier needs a few dozen of the persona's own replies
MIN_HELD_OUT_PER_LANGUAGE = 6  # per split: quantiles and AUCs on fewer replies are noise
DEFAULT_HELD_OUT_SHARE = 0.2  # of each language's curated conversations, for each held-out split
MAX_HELD_OUT_PER_LANGUAGE = 40  # enough for the anchors and the gate; the rest trains
MAX_TRAIN_BASE_REPLIES = (
    100  # base-model replies to training prompts: the style classifier's hardest negatives
)
# Held-out references vs generic replies, per language. 0.85: below it one generic reply in
# seven outranks a real one, and the gate's paired comparisons stop meaning much.
MIN_AUC = 0.85
# Held-out references vs other voices the scorer never saw (cross-fitted by voice), per language:
# below this the gate could pass a model that speaks in someone else's voice.
MIN_VOICE_AUC = 0.80
INIT_FILE = "init.json"
# + the raw set's suffix: the raw conversations less the held-out ones (the demo's Phase 3)
RAW_FILE = "raw_dataset"


@dataclass(frozen=True)
class InitOptions:
    dataset: Path
    card: Path
    eval_n: int | None = None  # per language; None: DEFAULT_HELD_OUT_SHARE
    calibration_n: int | None = None
    eval_prompts: Path | None = None  # user-written eval prompts take precedence
    base_model: str = "smollm2-135m"
    seed: int = 42
    generic_from_base: bool = True  # generate the base model's replies to the held-out prompts
    max_new_tokens: int = 96
    accept_weak_voice: bool = False  # build the bundle even when other voices are not told apart

    def fingerprint(self) -> str:
        return sha256_json(
            {
                "dataset": sha256_file(self.dataset),
                "card": sha256_file(self.card),
                "eval_prompts": sha256_file(self.eval_prompts) if self.eval_prompts else None,
                "eval_n": self.eval_n,
                "calibration_n": self.calibration_n,
                "base_model": self.base_model,
                "seed": self.seed,
                "generic_from_base": self.generic_from_base,
                "max_new_tokens": self.max_new_tokens,
                "accept_weak_voice": self.accept_weak_voice,
                "molting": MOLTING_VERSION,
            }
        )


@dataclass
class InitResult:
    bundle: Path
    reused: bool
    counts: dict[str, Any] = field(default_factory=dict)
    validity: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class Refusal(ConfigError):
    """The data cannot make a trustworthy bundle; the message says what more is needed."""


def init_bundle(
    target: str | Path,
    opts: InitOptions,
    *,
    overwrite: bool = False,
    progress: Callable[[str], None] = print,
    threshold: float = 8.5,
) -> InitResult:
    t0 = time.perf_counter()
    target = Path(target)
    for src, what in (
        (opts.dataset, "dataset"),
        (opts.card, "persona card"),
        (opts.eval_prompts, "eval prompts"),
    ):
        if src is not None and not Path(src).is_file():
            raise ConfigError(f"{src}: {what} not found. Check the path.")
    card_raw = read_yaml_mapping(opts.card, "persona card")
    card = card_from_dict(card_raw, str(opts.card))
    for src in (opts.dataset, opts.card, opts.eval_prompts):
        if src is not None and (
            same_path(src, target) or Path(src).resolve().is_relative_to(target.resolve())
        ):
            raise OutputError(
                f"{target}: the bundle directory holds the input {src}; choose another directory."
            )
    check_writable_dir(target, "bundle directory")
    key = opts.fingerprint()
    if _up_to_date(target, key):
        progress(f"bundle {target} is up to date with these inputs ({INIT_FILE}); nothing to do")
        return InitResult(target, reused=True, seconds=time.perf_counter() - t0)
    _check_replaceable(target, overwrite)
    new_dirs = missing_dirs(target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    # a name of this run's own: a folder that happens to be called like a staging one is never
    # touched
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.init-", dir=target.parent))
    try:
        stage.chmod(0o755)  # mkdtemp makes it private; the bundle is an ordinary directory
        result = _build(stage, card_raw, card, opts, progress, threshold)
        written = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
        raw = stage / f"{RAW_FILE}{_suffix(opts.dataset)}"
        (stage / INIT_FILE).write_text(
            json_text(
                {
                    "inputs": key,
                    "counts": result.counts,
                    "validity": result.validity,
                    "files": written,
                    "raw_dataset": {"file": raw.name, "sha256": sha256_file(raw)},
                }
            ),
            encoding="utf-8",
        )
        _swap(stage, target)
    except BaseException:
        remove_empty_dirs(new_dirs)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    result.bundle, result.seconds = target, time.perf_counter() - t0
    progress(f"done in {result.seconds:.0f} s: {target}")
    return result


def _up_to_date(target: Path, key: str) -> bool:
    f = target / INIT_FILE
    if not f.is_file():
        return False
    try:
        return read_json(f).get("inputs") == key and (target / "anchors.json").is_file()
    except ConfigError:
        return False


def _check_replaceable(target: Path, overwrite: bool) -> None:
    """Only a bundle this command wrote may be replaced, and only when every file in it is one it
    wrote (init.json lists them): a folder of the user's, or a file added to a bundle, is never
    deleted."""
    if not target.is_dir() or not any(target.iterdir()):
        return
    foreign = _foreign_files(target)
    if foreign is None:
        raise OutputError(
            f"{target}: not a bundle `molting persona init` wrote (no {INIT_FILE}); refusing to "
            "replace what is in it. Choose a new or empty directory."
        )
    if foreign:
        shown = ", ".join(foreign[:3]) + (
            f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        )
        raise OutputError(
            f"{target}: holds files `molting persona init` did not write ({shown}); refusing to "
            "replace them. Move them out of the bundle or choose another directory."
        )
    if not overwrite:
        raise OutputError(
            f"{target}: exists and was built from other inputs; pass --overwrite to rebuild it "
            "(the old bundle stays until the new one is complete) or choose another directory."
        )


def _foreign_files(target: Path) -> list[str] | None:
    """Files under `target` that init.json does not list (None: no readable init.json, or no
    list)."""
    try:
        listed = read_json(target / INIT_FILE).get("files")
    except (ConfigError, AttributeError):
        return None
    if not isinstance(listed, list):
        return None
    known = {*listed, INIT_FILE}
    return sorted(
        rel
        for p in target.rglob("*")
        if p.is_file() and (rel := p.relative_to(target).as_posix()) not in known
    )


def _swap(stage: Path, target: Path) -> None:
    """Put the complete bundle in place; the old one (checked: only files init wrote) goes only
    now."""
    if not target.exists():
        stage.rename(target)
        return
    _check_replaceable(target, overwrite=True)
    trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    target.rename(trash / target.name)
    stage.rename(target)
    shutil.rmtree(trash, ignore_errors=True)


# ---------------------------------------------------------------- the steps


def _build(
    stage: Path, card_raw: dict, card, opts: InitOptions, progress, threshold: float
) -> InitResult:
    progress(f"[1/5] curate {opts.dataset}")
    cur = curate_file(
        opts.dataset,
        stage / "curation" / f"curated{_suffix(opts.dataset)}",
        report=stage / "curation" / "CURATION_REPORT.md",
    )
    s = cur.stats
    progress(f"      {s['total']} → {s['kept']} kept, {s['removed']} removed (audit: curation/)")
    curated = load_dataset(cur.output)
    langs = conversation_languages(curated.conversations, card.languages)
    progress(
        "[2/5] languages: "
        + ", ".join(f"{lg} {sum(v == lg for v in langs.values())}" for lg in card.languages)
    )
    user_eval = load_prompts(opts.eval_prompts, card.languages) if opts.eval_prompts else None
    split = split_conversations(curated.conversations, langs, card.languages, opts, user_eval)
    progress(
        f"[3/5] split by conversation: train {len(split.train)}, calibration "
        f"{len(split.calibration)}, eval {len(split.eval)}"
        + (f" (user-written eval prompts: {len(user_eval)})" if user_eval else "")
        + (
            f"; {split.dropped} dropped as near-duplicates of held-out prompts"
            if split.dropped
            else ""
        )
    )
    cal, ev = (
        [held_out_prompt(c, langs[c.id]) for c in split.calibration],
        user_eval or [held_out_prompt(c, langs[c.id]) for c in split.eval],
    )
    train_generic: list[dict] = []
    if opts.generic_from_base:
        sample = random.Random(opts.seed).sample(
            split.train, min(MAX_TRAIN_BASE_REPLIES, len(split.train))
        )
        train_prompts = [
            held_out_prompt(c, langs[c.id]) for c in sorted(sample, key=lambda c: c.index)
        ]
        progress(
            f"[4/5] negatives: the base model's greedy replies to {len(cal) + len(ev)} held-out "
            f"and {len(train_prompts)} training prompts ({opts.base_model}; cached)"
        )
        cal, ev, train_generic = _with_base_replies(cal, ev, train_prompts, opts)
    else:
        progress("[4/5] negatives: packaged generic set only (--no-base-replies)")
    _write_bundle(stage, card_raw, curated, split, cal, ev, cur, train_generic)
    raw_n = _write_raw_training_set(stage, opts.dataset, split)
    progress("[5/5] fit the scorer and calibrate")
    validity = _calibrate(stage, threshold, progress, opts.accept_weak_voice)
    counts = {
        "curated": s["kept"],
        "rejected": s["removed"],
        "train": len(split.train),
        "raw_train": raw_n,
        "calibration": len(cal),
        "eval": len(ev),
        "dropped_near_duplicates": split.dropped,
        "languages": {lg: sum(v == lg for v in langs.values()) for lg in card.languages},
    }
    return InitResult(stage, reused=False, counts=counts, validity=validity)


def _suffix(path: Path) -> str:
    return ".jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else ".json"


@dataclass
class Split:
    train: list[Conversation]
    calibration: list[Conversation]
    eval: list[Conversation]
    dropped: int = 0
    held_prompts: list[str] = field(
        default_factory=list
    )  # eval + kept calibration prompts: none may be trained on


def split_conversations(
    convs: list[Conversation],
    langs: dict[str, str],
    languages: tuple[str, ...],
    opts: InitOptions,
    user_eval: list[Prompt] | None = None,
) -> Split:
    """Held-out conversations per language (seeded), then decontamination: a training or
    calibration conversation whose user prompt near-duplicates a held-out prompt is dropped."""
    by_lang: dict[str, list[Conversation]] = defaultdict(list)
    for c in convs:
        by_lang[langs[c.id]].append(c)
    _check_sizes(by_lang, languages, opts, user_eval)
    rng = random.Random(opts.seed)
    train, cal, ev = [], [], []
    for lang in languages:
        pool = sorted(by_lang[lang], key=lambda c: c.index)
        rng.shuffle(pool)
        n_cal = _held_out_n(len(pool), opts.calibration_n)
        n_ev = 0 if user_eval else _held_out_n(len(pool), opts.eval_n)
        # a reply that opens with generic filler ("Great question!") is no reference for the
        # voice: its conversation stays training data (curation kept it), the split is unmoved
        usable = [_is_reference(c) for c in pool[: n_cal + n_ev]]
        cal += [c for c, ok in zip(pool[:n_cal], usable) if ok]
        ev += [c for c, ok in zip(pool[n_cal : n_cal + n_ev], usable[n_cal:]) if ok]
        train += [c for c, ok in zip(pool, usable) if not ok] + pool[n_cal + n_ev :]
    _check_held_out(cal, ev, langs, languages, user_eval)
    held_eval = [_last_user(c) for c in ev] + [p.prompt for p in user_eval or []]
    ev_index = NearDuplicates(held_eval)
    kept_cal = [c for c in cal if ev_index.find(_last_user(c)) is None]
    held = NearDuplicates(held_eval + [_last_user(c) for c in kept_cal])
    kept_train = [
        c for c in train if not any(held.find(t.content) for t in c.turns if t.role == "user")
    ]

    def order(cs):
        return sorted(cs, key=lambda c: c.index)

    dropped = len(cal) - len(kept_cal) + len(train) - len(kept_train)
    return Split(
        order(kept_train),
        order(kept_cal),
        order(ev),
        dropped,
        held_eval + [_last_user(c) for c in kept_cal],
    )


def _is_reference(c: Conversation) -> bool:
    """The conversation's last persona reply can stand for the voice: it answers first, with
    no generic-assistant preamble (curation keeps such replies: they are not agent talk)."""
    return directness(c.assistant_turns()[-1][1]).direct


def _check_held_out(
    cal: list[Conversation],
    ev: list[Conversation],
    langs: dict[str, str],
    languages: tuple[str, ...],
    user_eval: list[Prompt] | None,
) -> None:
    """Refuse when leaving out the filler references leaves a held-out split too small."""
    splits = [("calibration", cal)] + ([] if user_eval else [("eval", ev)])
    short = [
        f"{name} {lang}: {n}"
        for name, cs in splits
        for lang in languages
        if (n := sum(langs[c.id] == lang for c in cs)) < MIN_HELD_OUT_PER_LANGUAGE
    ]
    if short:
        raise Refusal(
            f"too few held-out replies in the persona's voice ({', '.join(short)}; need "
            f"{MIN_HELD_OUT_PER_LANGUAGE} each): many replies open with generic filler "
            '("Great question!"). Add more of the persona\'s own direct replies.'
        )


def _held_out_n(n: int, wanted: int | None) -> int:
    if wanted is not None:
        return wanted
    return max(
        MIN_HELD_OUT_PER_LANGUAGE, min(MAX_HELD_OUT_PER_LANGUAGE, round(DEFAULT_HELD_OUT_SHARE * n))
    )


def _check_sizes(
    by_lang: dict[str, list],
    languages: tuple[str, ...],
    opts: InitOptions,
    user_eval: list[Prompt] | None,
) -> None:
    problems = []
    for lang in languages:
        n = len(by_lang.get(lang, []))
        held = _held_out_n(n, opts.calibration_n) + (
            0 if user_eval else _held_out_n(n, opts.eval_n)
        )
        need = MIN_TRAIN_PER_LANGUAGE + held
        if n < need or min(_held_out_n(n, opts.calibration_n), 10**9) < MIN_HELD_OUT_PER_LANGUAGE:
            problems.append(
                f"{lang}: {n} curated conversations, need at least {need} "
                f"({MIN_TRAIN_PER_LANGUAGE} to learn the voice, {held} held out) — add "
                f"{max(need - n, 1)} more"
            )
    if user_eval:
        for lang in languages:
            k = sum(p.lang == lang for p in user_eval)
            if k < MIN_HELD_OUT_PER_LANGUAGE:
                problems.append(
                    f"{lang}: {k} user-written eval prompts, need at least "
                    f"{MIN_HELD_OUT_PER_LANGUAGE}"
                )
    if problems:
        raise Refusal(
            "too little data for a trustworthy metric: "
            + "; ".join(problems)
            + ". Or drop a language from the card's `languages`."
        )


def _last_user(c: Conversation) -> str:
    return next(t.content for t in reversed(c.turns) if t.role == "user")


def held_out_prompt(c: Conversation, lang: str) -> Prompt:
    """The conversation's last persona reply as reference; everything before its user message
    as history (the system turn as `system`)."""
    last = max(i for i, t in enumerate(c.turns) if t.role == "assistant")
    user = max(i for i in range(last) if c.turns[i].role == "user")
    system = c.turns[0].content if c.turns[0].role == "system" else None
    history = tuple((t.role, t.content) for t in c.turns[1 if system is not None else 0 : user])
    return Prompt(
        id=str(c.id),
        lang=lang,
        prompt=c.turns[user].content,
        reference=c.turns[last].content,
        system=system,
        history=history,
    )


def _with_base_replies(
    cal: list[Prompt], ev: list[Prompt], train: list[Prompt], opts: InitOptions
) -> tuple[list[Prompt], list[Prompt], list[dict]]:
    """The base model's greedy replies: a `generic` field on every held-out prompt, and a list of
    generic negatives for the training prompts (one batch, cached like the gate's generations)."""
    gen = Generator({"base": ModelSpec("base", "base")}, opts.base_model, GenerationCache.default())
    try:
        replies = gen.generate(
            "base", cal + ev + train, GenerationConfig(max_new_tokens=opts.max_new_tokens)
        )
    finally:
        gen.close()
    held = [
        replace(p, negatives={**p.negatives, "generic": g.reply}) if g.reply.strip() else p
        for p, g in zip(cal + ev, replies)
    ]
    negatives = [
        {"lang": p.lang, "prompt": p.prompt, "reply": g.reply}
        for p, g in zip(train, replies[len(cal) + len(ev) :])
        if g.reply.strip()
    ]
    return held[: len(cal)], held[len(cal) :], negatives


def _write_bundle(
    stage: Path,
    card_raw: dict,
    curated,
    split: Split,
    cal: list[Prompt],
    ev: list[Prompt],
    cur,
    train_generic: list[dict],
) -> None:
    card = {k: v for k, v in card_raw.items() if k != "files"}
    card["files"] = {
        "dataset": f"dataset{_suffix(curated.path)}",
        "raw_dataset": f"{RAW_FILE}{_suffix(curated.path)}",
    }
    with OutputSet() as out:
        out.add(
            stage / CARD_FILE,
            "# Written by `molting persona init`; edit the card freely, then re-calibrate.\n"
            + yaml.safe_dump(card, allow_unicode=True, sort_keys=False),
            "card",
        )
        out.add(
            stage / "calibration.jsonl",
            "".join(json_text(p.as_dict(), indent=None) for p in cal),
            "calibration",
        )
        out.add(
            stage / "eval_prompts.jsonl",
            "".join(json_text(p.as_dict(), indent=None) for p in ev),
            "eval prompts",
        )
    save_records(
        [to_record(c, curated.schema) for c in split.train],
        stage / card["files"]["dataset"],
        curated.container,
    )
    _write_agent_negatives(stage, cur.rejected)
    if train_generic:
        (stage / "negatives" / "generic.jsonl").write_text(
            "".join(json_text(r, indent=None) for r in train_generic), encoding="utf-8"
        )


def _write_raw_training_set(stage: Path, raw_path: Path, split: Split) -> int:
    """raw_dataset.json: the raw conversations, agent talk included, less every one whose user turn
    is a held-out prompt (or near it) — the training split before curation, so a "trained on the
    raw set" baseline sees no held-out reply. Recorded in the card's files and in init.json."""
    raw = load_dataset(raw_path)
    held = NearDuplicates(split.held_prompts)
    keep = [
        c
        for c in raw.conversations
        if not any(held.find(t.content) for t in c.turns if t.role == "user")
    ]
    save_records(
        [to_record(c, raw.schema) for c in keep],
        stage / f"{RAW_FILE}{_suffix(raw_path)}",
        raw.container,
    )
    return len(keep)


def _write_agent_negatives(stage: Path, rejected: Path) -> None:
    """The rejects' agent-talk turns as negatives/agent.jsonl (real agent talk, the persona's
    own)."""
    rows = []
    for r in read_jsonl(rejected, "rejected file"):
        turns = r["record"].get("conversations") or r["record"].get("messages") or []
        for h in r.get("hits", []):
            t = turns[h["turn"]]
            rows.append(
                {
                    "lang": "pt" if h["lang"] == "pt" else "en",
                    "reply": t.get("value") or t.get("content", ""),
                }
            )
    (stage / "negatives").mkdir(exist_ok=True)
    seen, lines = set(), []
    for row in rows:
        if row["reply"] not in seen:
            seen.add(row["reply"])
            lines.append(json_text(row, indent=None))
    (stage / "negatives" / "agent.jsonl").write_text("".join(lines), encoding="utf-8")


def _calibrate(
    stage: Path, threshold: float, progress, accept_weak_voice: bool = False
) -> dict[str, Any]:
    persona: Persona = load_persona(stage)
    r = calibrate(persona, threshold)
    (stage / "METRICS_CALIBRATION.md").write_text(render(r), encoding="utf-8")
    return judge_validity(r, threshold, progress, accept_weak_voice)


def judge_validity(
    r: CalibrationResult, threshold: float, progress, accept_weak_voice: bool = False
) -> dict[str, Any]:
    """Refuse a bundle whose metric cannot tell the persona from generic replies, or from other
    voices unless `accept_weak_voice` (then say so loudly); else the validity figures for
    init.json."""
    aucs = r.auc["generic"]
    ref_pass = r.pass_rate["reference"]
    voice = {lg: d["auc"] for lg, d in r.discriminant.items()}
    progress(
        "      held-out AUC vs generic: "
        + ", ".join(f"{lg} {v:.3f}" for lg, v in aucs.items())
        + "; vs other voices: "
        + ", ".join(f"{lg} {v:.3f}" for lg, v in voice.items())
        + f"; references reaching {threshold:g}: "
        + ", ".join(f"{lg} {v:.0%}" for lg, v in ref_pass.items() if lg != "all")
    )
    weak = {lg: v for lg, v in aucs.items() if not v >= MIN_AUC}
    if weak:
        detail = ", ".join(f"{lg} {v:.2f}" for lg, v in weak.items())
        raise Refusal(
            "the persona cannot be told apart from generic replies well enough (held-out AUC "
            f"{detail}; needs ≥ {MIN_AUC}): add more of the persona's own conversations in those "
            f"languages (it has {r.train_sizes.get('persona')} replies to learn from), or check "
            "the card's languages."
        )
    weak_voice = {lg: v for lg, v in voice.items() if not v >= MIN_VOICE_AUC}
    if weak_voice:
        detail = ", ".join(f"{lg} {v:.2f}" for lg, v in weak_voice.items())
        if not accept_weak_voice:
            raise Refusal(
                "the persona cannot be told apart from other voices well enough (held-out AUC vs "
                f"voices the scorer never saw {detail}; needs ≥ {MIN_VOICE_AUC}): add more of the "
                "persona's own conversations in those languages, or other people's replies to the "
                "same kind of prompts as negatives/impostor.jsonl; --accept-weak-voice builds the "
                "bundle anyway and its reports say so."
            )
        progress(
            f"!!! THE PERSONA'S VOICE IS NOT TOLD APART FROM OTHER VOICES ({detail}; needs ≥ "
            f"{MIN_VOICE_AUC}): BUILT ANYWAY (--accept-weak-voice); A PASSING GATE DOES NOT PROVE "
            "THIS VOICE"
        )
    return {
        "auc_vs_generic": aucs,
        "auc_vs_agent": r.auc["agent"],
        "reference_pass_rate": ref_pass,
        "auc_vs_other_voices": voice,
        "weak_voice_accepted": sorted(weak_voice),
        "personality": {k: v.get("all") for k, v in r.personality.items()},
    }
