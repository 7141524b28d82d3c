"""The gate as a pytest plugin (a `pytest11` entry point: installed with molting, active only
when a collected test uses the `gate` fixture).

    pytest --pyargs molting.gate --persona DIR --adapter output/phase5 --baseline base
    pytest evals/ --persona DIR …            # in the molting repository: the same tests

Every input is checked once, after collection and before any model loads; a problem stops the
run with one line and pytest's usage-error exit code (4). Exit code 1 then means only that the
candidate missed a criterion. Options live in the "molting gate" group; state lives in
`config.stash`; reports are written in `pytest_sessionfinish`, also when tests fail.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from molting.errors import MoltingError
from molting.gate import BLESSED, DEFAULT_ADAPTER

# lazy, here and in the hooks: the plugin loads in every pytest session, the engine imports the
# metric stack (0.5 s), so only a session that runs a gate imports it
if TYPE_CHECKING:
    from molting.gate.records import EvalResults
    from molting.gate.run import Prepared


@dataclass
class GateState:
    active: bool = False
    # inputs checked, scorer loaded, controls scored, blessed baseline read
    prepared: Prepared | None = None
    results: EvalResults | None = None
    written: list[Path] = field(default_factory=list)
    env: dict[str, str | None] = field(default_factory=dict)  # environment variables to restore


STATE = pytest.StashKey[GateState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup(
        "molting gate", "molting persona acceptance gate (used by tests that request `gate`)"
    )
    g.addoption(
        "--persona",
        default=None,
        metavar="DIR",
        help="persona bundle directory (required by the gate)",
    )
    g.addoption(
        "--adapter",
        default=DEFAULT_ADAPTER,
        metavar="MODEL",
        help=f"candidate: adapter dir, merged model dir or hub id (default {DEFAULT_ADAPTER})",
    )
    g.addoption(
        "--baseline",
        action="append",
        default=None,
        metavar="NAME=MODEL",
        help="baseline, repeatable: NAME=adapter dir / model dir / hub id, or 'base' "
        "(the base model without adapter). Default: base",
    )
    g.addoption(
        "--base-model",
        default=None,
        help="base model id/path (default: the one the adapters were trained on)",
    )
    g.addoption(
        "--prompts",
        default=None,
        help="held-out prompts JSONL (default: the persona's eval prompts)",
    )
    g.addoption(
        "--criteria",
        default=None,
        help="criteria YAML overriding the defaults and the persona's criteria.yaml",
    )
    g.addoption(
        "--report-dir", default="reports", help="where comparison.md, results.json and the chart go"
    )
    g.addoption(
        "--max-new-tokens", type=int, default=None, help="generation length cap (default 96)"
    )
    g.addoption(
        "--batch-size",
        type=int,
        default=None,
        help="generation batch, same for every model (default 96)",
    )
    g.addoption(
        "--repetition-penalty",
        type=float,
        default=None,
        help=(
            "same for every model; default 1.0 (none): the metrics see degenerate loops as they are"
        ),
    )
    g.addoption(
        "--device",
        choices=("auto", "cpu"),
        default="auto",
        help="'cpu' hides CUDA GPUs from the run",
    )
    g.addoption(
        "--replies",
        default=None,
        metavar="JSON",
        help="score these replies ({model: {prompt_id: reply}}, from `molting generate`): "
        "no model is loaded",
    )
    g.addoption(
        "--no-cache", action="store_true", help="regenerate even when cached generations exist"
    )
    g.addoption(
        "--update-baseline",
        action="store_true",
        help=f"store the candidate's per-sample scores as the blessed baseline ({BLESSED})",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    """A gate run (one of the gate's options, or `--pyargs molting.gate`) writes its reports and
    nothing else: pytest-benchmark, where installed, would leave an empty .benchmarks/ in the
    user's directory at every run."""
    ours = {name for option in parser.getgroup("molting gate").options for name in option.names()}
    if any(a.split("=", 1)[0] in ours or a.startswith("molting.gate") for a in args):
        early_config.pluginmanager.set_blocked("benchmark")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[STATE] = GateState()
    if config.getoption(
        "--baseline"
    ):  # checked here, not while collecting: one usage-error line, exit 4
        from molting.gate.run import parse_baselines

        try:
            parse_baselines(config.getoption("--baseline"))
        except MoltingError as err:
            raise pytest.UsageError(f"molting gate: {err}") from None


def pytest_unconfigure(config: pytest.Config) -> None:
    st = config.stash.get(STATE, None)
    for key, value in (st.env if st else {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def pytest_collection_finish(session: pytest.Session) -> None:
    """Check every input once, before any model loads — only when a collected test uses the gate."""
    if not any("gate" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    config = session.config
    st = config.stash[STATE]
    st.active = True
    if config.getoption("--device") == "cpu":
        st.env["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES")
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    from molting.gate.run import prepare

    try:
        p = prepare(_options(config))
    except MoltingError as err:
        raise pytest.UsageError(f"molting gate: {err}") from None
    st.prepared = p


def _options(config: pytest.Config) -> Any:
    from molting.gate.run import GateOptions

    get = config.getoption
    return GateOptions(
        persona=get("--persona"),
        adapter=get("--adapter"),
        baselines=get("--baseline"),
        base_model=get("--base-model"),
        prompts=get("--prompts"),
        criteria=get("--criteria"),
        report_dir=get("--report-dir"),
        max_new_tokens=get("--max-new-tokens"),
        batch_size=get("--batch-size"),
        repetition_penalty=get("--repetition-penalty"),
        replies=get("--replies"),
        use_cache=not get("--no-cache"),
        update_baseline=get("--update-baseline"),
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    if not config.getoption("--persona", default=None):
        return []
    from molting.metrics import SCORER_VERSION

    return [
        f"molting gate: persona={config.getoption('--persona')} "
        f"candidate={config.getoption('--adapter')} scorer={SCORER_VERSION}"
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "baseline_name" in metafunc.fixturenames:
        from molting.gate.run import parse_baselines

        names = list(
            parse_baselines(metafunc.config.getoption("--baseline"))
        )  # checked in pytest_configure
        report_dir = Path(metafunc.config.getoption("--report-dir"))
        if (report_dir / BLESSED).is_file() and not metafunc.config.getoption("--update-baseline"):
            names.append("blessed")
        metafunc.parametrize("baseline_name", names)
    if "gate_lang" in metafunc.fixturenames:
        metafunc.parametrize("gate_lang", ["en", "pt"])


@pytest.fixture(scope="session")
def gate(request: pytest.FixtureRequest) -> Any:
    """Generate, score and compare once per session; yield the EvalResults."""
    st = request.config.stash[STATE]
    from molting.gate.engine import run_gate

    t0 = time.perf_counter()
    try:
        results, gen = run_gate(st.prepared)
    except MoltingError as err:
        pytest.exit(f"molting gate could not run: {err}", returncode=pytest.ExitCode.USAGE_ERROR)
    st.results = results
    results.facts["wall_seconds"] = round(time.perf_counter() - t0, 1)
    yield results
    gen.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from molting.gate.blessed import write_blessed
    from molting.gate.report import write_reports

    st = session.config.stash.get(STATE, None)
    if st is None or st.results is None or not st.results.scores:
        return
    try:
        st.written = write_reports(st.results, st.prepared.inputs.report_dir)
        if session.config.getoption("--update-baseline"):
            st.written.append(write_blessed(st.results, st.prepared.inputs.report_dir))
    except MoltingError as err:
        session.config.get_terminal_writer().line(
            f"molting gate: reports not written: {err}", red=True
        )
        session.exitstatus = pytest.ExitCode.USAGE_ERROR


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    st = config.stash.get(STATE, None)
    if st and st.written:
        terminalreporter.write_line(
            f"molting gate: reports written to {', '.join(str(p) for p in st.written)}"
        )
