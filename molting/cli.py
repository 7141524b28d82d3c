"""`molting` command line: parse, call one library function, print. User mistakes exit non-zero
with one line per problem and no traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from molting.errors import DatasetError, MoltingError

MAX_PROBLEMS_SHOWN = 20  # a broken 10k-line file should not flood the terminal

Handler = Callable[[argparse.Namespace], int]


def _add_curate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curate", help="drop agent-like examples, keep an audit trail, write the report")
    p.add_argument("input", help="dataset: ShareGPT JSON/JSONL or OpenAI-style messages")
    p.add_argument("-o", "--output", required=True, help="curated dataset path (same format as the input)")
    p.add_argument("--report", default="reports/CURATION_REPORT.md", help="Markdown report path")
    p.add_argument("--rejected", default=None, help="rejected-examples JSONL (default: beside OUTPUT)")
    p.add_argument("--stats", default=None, help="stats JSON (default: beside the report)")
    p.set_defaults(func=_run_curate)


def _run_curate(args: argparse.Namespace) -> int:
    from molting.curate.filter import curate_file

    result = curate_file(args.input, args.output, report=args.report, rejected=args.rejected, stats=args.stats)
    s = result.stats
    print(
        f"curated {s['total']} → {s['kept']} kept, {s['removed']} removed "
        f"({s['change_pct']:+.1f}%); wrote {result.output}, {result.rejected}, {result.report}"
    )
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="fine-tune a LoRA/QLoRA adapter (multi-GPU: accelerate launch -m molting.cli train …)"
    )
    p.add_argument("--config", required=True, help="training config YAML (configs/phase5.yaml, configs/cpu.yaml)")
    p.add_argument("--dataset", default=None, help="dataset path (overrides the config)")
    p.add_argument("--output", default=None, help="adapter output directory (overrides output_dir)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (overrides the config)")
    p.add_argument("--model_name", default=None, help="base model: hub id, local path or smollm2-135m")
    p.add_argument("--max_steps", type=int, default=None, help="stop after N optimizer steps (overrides epochs)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --output")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    p.add_argument("--dry-run", action="store_true", help="print one example's tokens and labels, then stop")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    import logging

    from molting.train.config import load_config

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # bitsandbytes warns at import about an optional CPU kernel molting never uses (no CPU 4-bit)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    overrides = {"dataset": args.dataset, "epochs": args.epochs, "base_model": args.model_name,
                 "max_steps": args.max_steps, "output_dir": args.output}
    cfg = load_config(args.config, overrides)
    if args.dry_run:
        from molting.train.trainer import dry_run

        print(dry_run(cfg))
        return 0
    from molting.train.trainer import train

    result = train(cfg, overwrite=args.overwrite, resume=args.resume)
    m = result.manifest
    if m["quantization"]["substitution"]:
        print(f"note: {m['quantization']['substitution']} (recorded in run.json)")
    print(
        f"trained {m['steps']} steps ({m['quantization']['used']} on {m['device']}), "
        f"train loss {m['final_train_loss']}, best val loss {m['best_val_loss']}, "
        f"{m['tokens_per_second']} tokens/s; wrote {result.output_dir}"
    )
    return 0


def _add_calibrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit the metric anchors on the calibration split, prove them on the eval split")
    p.add_argument("--report", default="reports/METRICS_CALIBRATION.md", help="Markdown report path")
    p.add_argument("--anchors", default=None, help="frozen anchors JSON (default: the one shipped in molting/metrics)")
    p.set_defaults(func=_run_calibrate)


def _run_calibrate(args: argparse.Namespace) -> int:
    from molting.metrics.calibration import calibrate
    from molting.metrics.scorer import ANCHORS_FILE

    r = calibrate(report=args.report, anchors_file=args.anchors or ANCHORS_FILE)
    p = r.personality
    print(
        f"personality (eval means): reference {p['reference']:.2f}, generic {p['generic']:.2f}, "
        f"agent-like {p['agent_like']:.2f}, stuffed {p['stuffed']:.2f}, off-topic {p['off_topic']:.2f}; "
        f"style AUC {r.style_auc:.3f}; PT fluency reference {r.fluency['reference']:.2f}; wrote {args.report}"
    )
    return 0


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="re-score stored generations (results.json) and rewrite the gate's reports")
    p.add_argument("--results", default="reports/results.json", help="results.json written by pytest evals/")
    p.add_argument("--report-dir", default=None, help="where to write (default: beside --results)")
    p.add_argument("--criteria", default=None, help="criteria YAML (default evals/criteria.yaml)")
    p.set_defaults(func=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from molting.gate.run import rescore_file

    paths, verdict = rescore_file(args.results, args.report_dir, args.criteria)
    print(verdict)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


# Each stage registers its sub-command here; the order is the order in `molting --help`.
REGISTRY: list[Callable[[argparse._SubParsersAction], None]] = [_add_curate, _add_train, _add_report, _add_calibrate]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="molting", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for register in REGISTRY:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
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
