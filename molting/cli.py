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
    from molting.curate import curate_file

    result = curate_file(args.input, args.output, report=args.report, rejected=args.rejected, stats=args.stats)
    s = result.stats
    print(
        f"curated {s['total']} → {s['kept']} kept, {s['removed']} removed "
        f"({s['change_pct']:+.1f}%); wrote {result.output}, {result.rejected}, {result.report}"
    )
    return 0


# Each stage registers its sub-command here; the order is the order in `molting --help`.
REGISTRY: list[Callable[[argparse._SubParsersAction], None]] = [_add_curate]


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
