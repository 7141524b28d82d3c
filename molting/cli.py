"""`molting` command line: parse, call one library function, print. User mistakes exit non-zero
with one line per problem and no traceback."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from molting.errors import SHORTFALL_EXIT, ConfigError, DatasetError, MoltingError, MoltingWarning

# lazy: each `_run_<name>` imports what it calls, so `molting --help` loads only errors.py (18 ms
# of imports); the lightest library module, io.py, would add 22 ms, the curation patterns 270 ms.

MAX_PROBLEMS_SHOWN = 20  # a broken 10k-line file should not flood the terminal

Handler = Callable[[argparse.Namespace], int]


def _add_curate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "curate", help="drop agent-like examples, keep an audit trail, write the report"
    )
    p.add_argument("input", help="dataset: ShareGPT JSON/JSONL or OpenAI-style messages")
    p.add_argument(
        "-o", "--output", required=True, help="curated dataset path (same format as the input)"
    )
    p.add_argument(
        "--report",
        default=None,
        help="Markdown report path (default: beside OUTPUT, as NAME.report.md)",
    )
    p.add_argument(
        "--rejected", default=None, help="rejected-examples JSONL (default: beside OUTPUT)"
    )
    p.add_argument("--stats", default=None, help="stats JSON (default: beside the report)")
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="worker processes for a large JSON Lines input (default: the cores available; 1 = one "
        "process); the output is the same byte for byte",
    )
    g = p.add_argument_group("rank and hand-pick (the seed plan's manual curation)")
    g.add_argument(
        "--rank",
        action="store_true",
        help="score every kept example with the persona's scorer and "
        "write a review sheet (OUTPUT.review.csv / .md)",
    )
    g.add_argument(
        "--persona",
        default=None,
        metavar="DIR",
        help="persona bundle whose scorer ranks (with --rank)",
    )
    g.add_argument(
        "--top", type=int, default=None, metavar="N", help="keep the N best (with --rank)"
    )
    g.add_argument(
        "--lang-share",
        default=None,
        metavar="en=0.5,pt=0.5",
        help="language shares of the top N (default: the curated set's own)",
    )
    g.add_argument(
        "--picks",
        default=None,
        metavar="SHEET.csv",
        help="apply a reviewed sheet's keep column (with --rank)",
    )
    p.set_defaults(func=_run_curate)


def _run_curate(args: argparse.Namespace) -> int:
    from molting.curate.run import curate_file

    if (args.top or args.picks or args.persona or args.lang_share) and not args.rank:
        raise ConfigError(
            "--persona, --top, --lang-share and --picks work with --rank; add --rank."
        )
    if args.rank:
        from molting.curate.rank import curate_ranked

        if not args.persona:
            raise ConfigError(
                "--rank needs --persona DIR (the bundle whose scorer ranks the examples)."
            )
        s = curate_ranked(
            args.input,
            args.output,
            args.persona,
            top=args.top,
            shares=args.lang_share,
            picks=args.picks,
            report=args.report,
            rejected=args.rejected,
            stats=args.stats,
        )
        print(
            f"curated {s['total']} → {s['kept']} passed the patterns → {s['kept_after_ranking']} "
            f"kept after ranking ({s['ranked_out']} ranked out, {s['hand_dropped']} dropped by "
            f"hand); wrote {', '.join(s['written'])}"
        )
        return 0

    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(
            f"--jobs {args.jobs}: give a number of processes ≥ 1 (1 = curate in this process)."
        )
    result = curate_file(
        args.input,
        args.output,
        report=args.report,
        rejected=args.rejected,
        stats=args.stats,
        jobs=args.jobs,
    )
    s = result.stats
    print(
        f"curated {s['total']} → {s['kept']} kept, {s['removed']} removed "
        f"({s['change_pct']:+.1f}%); wrote {result.output}, {result.rejected}, {result.report}, "
        f"{result.stats_path}"
    )
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="fine-tune a LoRA/QLoRA adapter (multi-GPU: accelerate launch -m molting.cli train …)",
    )
    p.add_argument(
        "--config",
        required=True,
        help="training config YAML (configs/phase5.yaml, configs/cpu.yaml)",
    )
    p.add_argument("--dataset", default=None, help="dataset path (overrides the config)")
    p.add_argument("--output", default=None, help="adapter output directory (overrides output_dir)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (overrides the config)")
    p.add_argument(
        "--model_name", default=None, help="base model: hub id, local path or smollm2-135m"
    )
    p.add_argument(
        "--max_steps",
        type=int,
        default=None,
        help="stop after N optimizer steps (overrides epochs)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --output")
    p.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in --output"
    )
    p.add_argument(
        "--allow-changes",
        action="store_true",
        help=(
            "with --resume: continue although the config or dataset changed (recorded in run.json)"
        ),
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print one example's tokens and labels, then stop"
    )
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    import logging

    from molting.train.config import load_config

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # bitsandbytes warns at import about an optional CPU kernel molting never uses (no CPU 4-bit)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    overrides = {
        "dataset": args.dataset,
        "epochs": args.epochs,
        "base_model": args.model_name,
        "max_steps": args.max_steps,
        "output_dir": args.output,
    }
    cfg = load_config(args.config, overrides)
    if args.dry_run:
        from molting.train.trainer import dry_run

        print(dry_run(cfg))
        return 0
    from molting.train.trainer import train

    if args.allow_changes and not args.resume:
        raise ConfigError("--allow-changes goes with --resume; add --resume.")
    result = train(
        cfg, overwrite=args.overwrite, resume=args.resume, allow_changes=args.allow_changes
    )
    m = result.manifest
    if m["quantization"]["substitution"]:
        print(f"note: {m['quantization']['substitution']} (recorded in run.json)")
    for line in _resume_notes(m.get("resume") or {}):
        print(f"note: {line} (recorded in run.json)")
    print(
        f"trained {m['steps']} steps ({m['quantization']['used']} on {m['device']}), "
        f"train loss {m['final_train_loss']}, best val loss {m['best_val_loss']}, "
        f"{m['tokens_per_second']} tokens/s; wrote {result.output_dir}"
    )
    return 0


def _resume_notes(resume: dict) -> list[str]:
    from molting.train.rundir import describe_changes

    notes = [resume[k] for k in ("skipped", "note") if resume.get(k)]
    if resume.get("changes"):
        notes.append(f"resumed with changed inputs: {describe_changes(resume['changes'])}")
    return notes


def _add_calibrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help=(
            "fit the persona metric's anchors on the calibration split, prove it on the eval split"
        ),
    )
    p.add_argument("--persona", required=True, metavar="DIR", help="persona bundle directory")
    p.add_argument(
        "--report",
        default=None,
        help="Markdown validity report (default DIR/METRICS_CALIBRATION.md)",
    )
    p.add_argument(
        "--criteria",
        default=None,
        help="criteria YAML (the personality threshold the report counts against)",
    )
    p.set_defaults(func=_run_calibrate)


def _run_calibrate(args: argparse.Namespace) -> int:
    from molting.gate.criteria import load_criteria
    from molting.io import OutputSet
    from molting.metrics.calibration import calibrate, report_path_default
    from molting.metrics.report import render
    from molting.persona import load_persona

    persona = load_persona(args.persona)
    report = args.report or report_path_default(persona)
    OutputSet(inputs=list(persona.input_files().values())).claim_all(
        {"report": report, "anchors": persona.anchors_path}
    )
    threshold = load_criteria(persona.criteria_path, args.criteria).personality_min
    r = calibrate(persona, threshold)
    with OutputSet() as out:
        out.add(report, render(r), "report")
    ref, gen = r.personality["reference"], r.personality["generic"]
    aucs = ", ".join(f"{lg} {v:.3f}" for lg, v in r.auc["generic"].items())
    print(
        f"{persona.name}: references {ref['all']:.2f} ({r.pass_rate['reference']['all']:.0%} ≥ "
        f"{threshold:g}), generic {gen['all']:.2f}, AUC vs generic {aucs}; wrote "
        f"{persona.anchors_path} and {report}"
    )
    return 0


def _add_persona(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "persona", help="persona bundles: `molting persona init DIR --dataset RAW --card CARD.yaml`"
    )
    psub = p.add_subparsers(dest="persona_command", required=True)
    q = psub.add_parser("init", help="build a ready persona bundle from a raw dataset and a card")
    q.add_argument("dir", help="the bundle directory to create")
    q.add_argument(
        "--dataset",
        required=True,
        help="the persona's raw chat dataset (ShareGPT JSON/JSONL or messages)",
    )
    q.add_argument(
        "--card",
        required=True,
        help="persona card YAML (name, languages, signature expressions, …)",
    )
    q.add_argument(
        "--eval",
        type=int,
        default=None,
        metavar="N",
        help="held-out eval conversations per language (default 20%%, 6–40)",
    )
    q.add_argument(
        "--calibration",
        type=int,
        default=None,
        metavar="N",
        help="calibration conversations per language (default 20%%, 6–40)",
    )
    q.add_argument(
        "--eval-prompts",
        default=None,
        help="your own eval prompts (JSONL with id, lang, prompt, reference); "
        "they replace the held-out eval split",
    )
    q.add_argument(
        "--base-model",
        default="smollm2-135m",
        help="the base model whose replies are the generic "
        "negatives (default the offline smollm2-135m)",
    )
    q.add_argument(
        "--no-base-replies",
        action="store_true",
        help="skip generating the base model's replies (only the packaged generic set)",
    )
    q.add_argument("--seed", type=int, default=42, help="split seed (recorded in init.json)")
    q.add_argument(
        "--overwrite",
        action="store_true",
        help="rebuild a bundle persona init built from other inputs "
        "(never a folder it did not write)",
    )
    q.add_argument(
        "--accept-weak-voice",
        action="store_true",
        help="build the bundle even when the metric cannot "
        "tell the persona from other voices (recorded in init.json; its reports say so)",
    )
    q.set_defaults(func=_run_persona_init)


def _run_persona_init(args: argparse.Namespace) -> int:
    from molting.gate.criteria import load_criteria
    from molting.persona import load_persona
    from molting.persona_init import InitOptions, init_bundle

    opts = InitOptions(
        dataset=Path(args.dataset),
        card=Path(args.card),
        eval_n=args.eval,
        calibration_n=args.calibration,
        eval_prompts=Path(args.eval_prompts) if args.eval_prompts else None,
        base_model=args.base_model,
        seed=args.seed,
        generic_from_base=not args.no_base_replies,
        accept_weak_voice=args.accept_weak_voice,
    )
    for n, flag in ((args.eval, "--eval"), (args.calibration, "--calibration")):
        if n is not None and n < 1:
            raise ConfigError(f"{flag} must be at least 1, got {n}.")
    init_bundle(args.dir, opts, overwrite=args.overwrite, threshold=load_criteria().personality_min)
    dataset = load_persona(args.dir).dataset
    print(
        f"next: molting train --config configs/phase5.yaml --dataset {dataset} --output "
        f"output/mine; then pytest --pyargs molting.gate --persona {args.dir} --adapter output/mine"
    )
    return 0


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="re-score stored generations (results.json) and rewrite the gate's reports"
    )
    p.add_argument(
        "--persona", required=True, metavar="DIR", help="persona bundle the gate ran with"
    )
    p.add_argument(
        "--results",
        action="append",
        default=None,
        metavar="[NAME=]results.json",
        help="results.json written by the gate (default reports/results.json); repeat with NAME= "
        "to compare several candidates against the same baselines in one table (candidates.md)",
    )
    p.add_argument("--report-dir", default=None, help="where to write (default: beside --results)")
    p.add_argument(
        "--criteria", default=None, help="criteria YAML overriding the defaults and the persona's"
    )
    p.set_defaults(func=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from molting.gate.run import rescore_file

    results = args.results or ["reports/results.json"]
    if len(results) > 1:
        from molting.gate.compare import compare_candidates

        named = {}
        for r in results:
            name, sep, path = r.partition("=")
            if not sep:
                raise ConfigError(
                    f"--results {r!r}: name each run when comparing several, e.g. top100={r}."
                )
            if name in named:
                raise ConfigError(f"--results: the name '{name}' is given twice.")
            named[name] = path
        out, _ = compare_candidates(
            args.persona, named, args.report_dir or "reports", args.criteria
        )
        print(f"wrote {out}")
        return 0
    paths, verdict = rescore_file(
        args.persona, results[0].partition("=")[2] or results[0], args.report_dir, args.criteria
    )
    print(verdict)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate replies to the persona's eval prompts (a --replies file for the gate)",
    )
    p.add_argument("--persona", required=True, metavar="DIR", help="persona bundle directory")
    p.add_argument(
        "models",
        nargs="+",
        metavar="NAME=MODEL",
        help="models to generate with: NAME=adapter dir / model dir / hub id, or 'base'",
    )
    p.add_argument("-o", "--output", required=True, help="replies JSON: {name: {prompt_id: reply}}")
    p.add_argument(
        "--base-model", default=None, help="base model id/path (default: the adapters' own)"
    )
    p.add_argument(
        "--prompts", default=None, help="prompts JSONL (default: the persona's eval prompts)"
    )
    p.add_argument(
        "--max-new-tokens", type=int, default=None, help="generation length cap (default 96)"
    )
    p.add_argument("--batch-size", type=int, default=None, help="generation batch (default 96)")
    p.add_argument(
        "--no-cache", action="store_true", help="regenerate even when cached generations exist"
    )
    p.set_defaults(func=_run_generate)


def _run_generate(args: argparse.Namespace) -> int:
    from molting.gate.generate import GenerationConfig
    from molting.gate.run import check_inputs, generate_all, make_model_generator
    from molting.io import OutputSet, json_text

    named: dict[str, str] = {}
    for m in args.models:
        name, sep, value = m.partition("=")
        name, value = (name, value) if sep else ((m, m) if m == "base" else (Path(m).name or m, m))
        if not name or not value:
            raise ConfigError(f"model {m!r}: expected NAME=MODEL or 'base'.")
        if name in named:
            raise ConfigError(f"model name '{name}' is given twice; name them NAME=MODEL.")
        named[name] = value
    d = GenerationConfig()
    gcfg = GenerationConfig(
        max_new_tokens=args.max_new_tokens or d.max_new_tokens,
        batch_size=args.batch_size or d.batch_size,
    )
    *rest, last = named.items()
    inputs = check_inputs(
        args.persona,
        last[1],
        dict(rest),
        base_model=args.base_model,
        prompts=args.prompts,
        generation=gcfg,
        use_cache=not args.no_cache,
    )
    inputs.specs = {name: inputs.specs["candidate" if name == last[0] else name] for name in named}
    OutputSet(inputs=list(inputs.persona.input_files().values())).claim(args.output, "replies file")
    gen = make_model_generator(inputs)
    try:
        generations, facts = generate_all(gen, inputs)
    finally:
        gen.close()
    data = {name: {g.prompt_id: g.reply for g in gens} for name, gens in generations.items()}
    with OutputSet() as out:
        out.add(args.output, json_text(data), "replies file")
    print(
        f"generated {sum(len(v) for v in data.values())} replies ({facts['cache_hits']} from the "
        f"cache) for {', '.join(data)}; wrote {args.output}"
    )
    return 0


def _add_augment(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "augment",
        help="generate new persona-rich examples with an LLM, each one gated; "
        f"exit {SHORTFALL_EXIT} if fewer than N passed",
    )
    p.add_argument(
        "--persona", required=True, metavar="DIR", help="persona bundle directory (calibrated)"
    )
    p.add_argument("-n", type=int, required=True, help="how many accepted examples to produce")
    p.add_argument(
        "--generator",
        required=True,
        choices=("anthropic", "openai", "local"),
        help="anthropic (ANTHROPIC_API_KEY), openai or an OpenAI-compatible server "
        "(OPENAI_API_KEY, --base-url), or a local causal LM (--model PATH_OR_ID)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="model name (anthropic default: claude-opus-4-5) or local path/hub id",
    )
    p.add_argument(
        "--base-url", default=None, help="API endpoint, e.g. http://localhost:8000/v1 for vLLM"
    )
    p.add_argument(
        "--max-requests",
        type=int,
        default=None,
        help="request budget, retries included (default 2 × N)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed for topics, examples, jitter (and OpenAI's seed)"
    )
    p.add_argument(
        "--lang-share",
        default=None,
        metavar="LANG=W,…",
        help="language weights, e.g. en=1,pt=3 (default: balanced)",
    )
    p.add_argument(
        "--min-personality",
        type=float,
        default=None,
        help="gate threshold, 0–10 (default: the criteria's personality_min)",
    )
    p.add_argument("--max-tokens", type=int, default=600, help="generation cap per request")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per API request")
    p.add_argument(
        "--retry-wait",
        type=float,
        default=1.0,
        help="seconds before the first retry (doubles each retry, jittered, at most 30 s)",
    )
    p.add_argument(
        "-o", "--output", required=True, help="accepted examples, ShareGPT JSON (or .jsonl)"
    )
    p.add_argument(
        "--audit", default=None, help="audit JSONL, one row per request (default OUT.audit.jsonl)"
    )
    p.set_defaults(func=_run_augment)


def _run_augment(args: argparse.Namespace) -> int:
    from molting.augment import AugmentConfig, augment, make_example_generator, summary
    from molting.augment.retry import RetryPolicy
    from molting.persona import load_persona

    config = AugmentConfig(
        n=args.n,
        seed=args.seed,
        max_requests=args.max_requests,
        lang_share=args.lang_share,
        min_personality=args.min_personality,
        retry=RetryPolicy(first_wait_s=args.retry_wait),
    )
    config.check()
    persona = load_persona(args.persona)
    generator = make_example_generator(
        args.generator,
        args.model,
        base_url=args.base_url,
        timeout_s=args.timeout,
        max_tokens=args.max_tokens,
        seed=args.seed,
    )
    try:
        result = augment(
            persona,
            generator,
            config,
            output=args.output,
            audit=args.audit,
            progress=lambda line: print(line, flush=True),
        )
    finally:
        generator.close()
    print(summary(result))
    return SHORTFALL_EXIT if result.short else 0


# Each stage registers its sub-command here; the order is the order in `molting --help`.
REGISTRY: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_curate,
    _add_persona,
    _add_train,
    _add_calibrate,
    _add_generate,
    _add_report,
    _add_augment,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="molting", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for register in REGISTRY:
        register(sub)
    return parser


def _warning_line(show: Callable) -> Callable:
    """warnings.showwarning that prints molting's own warnings as one 'warning:' line."""

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, MoltingWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", MoltingWarning)  # each one once
            warnings.showwarning = _warning_line(warnings.showwarning)
            return args.func(args)
    except DatasetError as err:
        shown = err.problems[:MAX_PROBLEMS_SHOWN]
        for line in shown:
            print(f"error: {line}", file=sys.stderr)
        if len(err.problems) > len(shown):
            print(f"error: … and {len(err.problems) - len(shown)} more problems", file=sys.stderr)
        return err.exit_code
    except MoltingError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
