"""`molting augment`: requests built from the bundle, the official SDKs against a local stub server
that speaks both APIs, the quality gate's reason codes, retries and the budget, keys kept secret,
and the local-model path on a tiny random model. Everything offline."""

from __future__ import annotations

import json
import logging
import random
import shutil
import socket
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import CLAUDIO, ROOT
from molting.augment import AugmentConfig, AugmentResult, augment, summary
from molting.augment.checks import REASONS, ParseError, QualityChecks, parse_example
from molting.augment.generators import make_example_generator, redact
from molting.augment.prompts import Planner, language_schedule, topics
from molting.augment.retry import RetryPolicy
from molting.cli import main
from molting.data import load_dataset
from molting.errors import SHORTFALL_EXIT, ConfigError, GeneratorError
from molting.io import read_jsonl, sha256_json
from molting.metrics.fitdata import Pair
from molting.metrics.text import words
from molting.persona import parse_lang_shares

KEY = "sk-test-SECRET-7f3a9c1e"  # a fake key: it must never appear in any output or log
FAST = RetryPolicy(max_attempts=3, first_wait_s=0.0, max_wait_s=0.0)

# Fresh user messages (not in the dataset), paired by the stub with curated replies of the persona.
USERS = {
    "en": [
        "My laptop fan spins like crazy during Docker builds. Normal?",
        "Is it worth learning Rust this year?",
        "How big should a pull request be, roughly?",
        "Do I need an ORM for a tiny Flask app?",
        "What's a sane timeout for HTTP calls between two internal services?",
    ],
    "pt": [
        "Vale a pena aprender Rust esse ano?",
        "Qual o tamanho ideal de um pull request?",
        "Preciso de ORM pra um app Flask pequenininho?",
        "Meu notebook esquenta muito rodando Docker, é normal?",
        "Qual timeout faz sentido entre dois serviços internos?",
    ],
}
GENERIC = {
    "en": (
        "Which database should I pick for a small side project?",
        (
            "Certainly! There are several factors to consider when choosing a database. "
            "It depends on your use case, "
            "your team's experience, and your scalability requirements. I hope this helps!"
        ),
    ),
    "pt": (
        "Qual banco de dados eu uso num projeto pequeno?",
        (
            "Claro! Existem vários fatores a considerar ao escolher um banco de dados. "
            "Depende do seu caso de uso, da "
            "experiência da equipe e dos requisitos de escalabilidade. Espero ter ajudado!"
        ),
    ),
}
AGENT = {
    "en": (
        "My test suite got slow, any idea why?",
        (
            "I'll start by reading your test configuration. "
            "Let me check the fixtures first, then I'll profile it."
        ),
    ),
    "pt": (
        "Meus testes ficaram lentos, alguma ideia?",
        (
            "Vou analisar a configuração dos seus testes. "
            "Primeiro vou verificar as fixtures e depois rodar o profiler."
        ),
    ),
}


# ---------------------------------------------------------------- the stub server


class Stub:
    """Scripted replies for Anthropic `POST /v1/messages` and OpenAI `POST /v1/chat/completions`.

    `script` holds actions used in order, then `default`: an int is an HTTP error status, a str a
    kind of example ("good", "agent", "wrong_language", "eval_duplicate", "repeat", "generic",
    "invalid_json", "empty"), written in the language the request asks for."""

    def __init__(self, good: dict[str, list[str]], evals: dict[str, str]):
        self.good, self.evals = good, evals
        self.script: list[int | str] = []
        self.default: int | str = 500
        self.seen: list[dict] = []
        self.used: Counter = Counter()
        self.last: dict[str, dict] = {}
        self.lock = threading.Lock()

    def respond(self, path: str, headers: dict, body: dict) -> tuple[int, dict]:
        with self.lock:
            self.seen.append({"path": path, "headers": headers, "body": body})
            action = self.script.pop(0) if self.script else self.default
            if isinstance(action, int):
                return action, {
                    "type": "error",
                    "error": {"type": "api_error", "message": f"scripted {action}"},
                }
            _, text = _prompt_of(path, body)
            lang = "pt" if "Language: Brazilian Portuguese" in text else "en"
            return 200, _completion(path, body, self._example(action, lang, text))

    def _example(self, action: str, lang: str, text: str) -> str:
        other = "en" if lang == "pt" else "pt"
        if action == "invalid_json":
            return "Sure! Here it is: {user: 'hi', reply: 'oops'"
        if action == "empty":
            return json.dumps({"user": USERS[lang][0], "reply": "   "})
        if action == "repeat":
            return json.dumps(self.last[lang], ensure_ascii=False)
        user, reply = {"generic": GENERIC[lang], "agent": AGENT[lang]}.get(action, (None, None))
        if user is None:
            reply = self._good_reply(other if action == "wrong_language" else lang, text)
            user = (
                self.evals[lang]
                if action == "eval_duplicate"
                else USERS[lang][self.used[lang, "user"] % 5]
            )
            self.used[lang, "user"] += 1
        ex = {"user": user, "reply": reply}
        if action == "good":
            self.last[lang] = ex
        return f"```json\n{json.dumps(ex, ensure_ascii=False)}\n```"

    def _good_reply(self, lang: str, text: str) -> str:
        """The next curated reply not shown in this request (a copy of a shown example is
        rejected)."""
        while True:
            reply = self.good[lang][self.used[lang] % len(self.good[lang])]
            self.used[lang] += 1
            if " ".join(reply.split()) not in text:
                return reply


def _prompt_of(path: str, body: dict) -> tuple[str, str]:
    if path.endswith("/messages"):
        return body.get("system", ""), body["messages"][-1]["content"]
    msgs = body["messages"]
    return msgs[0]["content"], msgs[-1]["content"]


def _completion(path: str, body: dict, text: str) -> dict:
    if path.endswith("/messages"):
        return {
            "id": "msg_stub",
            "type": "message",
            "role": "assistant",
            "model": body["model"] + "-20990101",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 10},
        }
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            if self.path not in ("/v1/messages", "/v1/chat/completions"):
                status, payload = 404, {"error": {"message": f"no route {self.path}"}}
            else:
                status, payload = stub.respond(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            if status == 429:
                self.send_header("retry-after", "0")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:  # keep test output clean
            pass

    return Handler


@pytest.fixture(scope="session")
def good_replies(claudio_scorer) -> dict[str, list[str]]:
    """Short curated replies of the persona per language (the voice the gate must accept)."""
    pairs = claudio_scorer.train.pairs
    return {
        lang: [p.reply for p in pairs if p.lang == lang and 25 <= len(words(p.reply)) <= 70][:12]
        for lang in ("en", "pt")
    }


@pytest.fixture()
def stub(claudio, good_replies, monkeypatch):
    sdk_env(monkeypatch)
    evals = {
        lang: next(p.prompt for p in claudio.eval_prompts() if p.lang == lang)
        for lang in ("en", "pt")
    }
    s = Stub(good_replies, evals)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(s))
    server.timeout = 5
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    s.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield s
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def sdk_env(monkeypatch) -> None:
    """Fake keys; nothing from the machine's own SDK settings."""
    for var in (
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_PROFILE",
        "ANTHROPIC_CONFIG_DIR",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def base_url(kind: str, stub: Stub) -> str:
    return stub.url if kind == "anthropic" else stub.url + "/v1"


def need_sdk(kind: str) -> None:
    pytest.importorskip(
        kind, reason=f"the {kind} SDK is not installed (pip install 'molting[{kind}]')"
    )


def api_generator(kind: str, stub: Stub, **kw):
    need_sdk(kind)
    return make_example_generator(
        kind, "stub-model", base_url=base_url(kind, stub), timeout_s=5, **kw
    )


@pytest.fixture()
def bundle(tmp_path) -> Path:
    """A copy of the Cláudio bundle, so no test can ever write into the fixture."""
    return Path(
        shutil.copytree(
            CLAUDIO, tmp_path / "claudio", ignore=shutil.ignore_patterns("pools", "validation")
        )
    )


@pytest.fixture()
def fast_cli(monkeypatch, claudio_scorer):
    """The CLI with the session's scorer (fitting it takes seconds) and retries without waiting."""
    from molting.metrics import Scorer

    monkeypatch.setattr(Scorer, "load", classmethod(lambda cls, persona, **kw: claudio_scorer))


def all_text(*paths: Path) -> str:
    return "".join(p.read_text(encoding="utf-8") for p in paths if p.exists())


# ---------------------------------------------------------------- a whole run against each API

SCRIPT = [
    "good",
    "agent",
    429,
    "good",
    "wrong_language",
    "eval_duplicate",
    "invalid_json",
    "empty",
    "generic",
    "repeat",
    "good",
]


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_a_run_keeps_gated_examples_and_audits_every_rejection(
    kind, stub, claudio, claudio_scorer, tmp_path, capsys, caplog, llama_tokenizer
):
    caplog.set_level(logging.DEBUG)
    stub.script = list(SCRIPT)
    gen = api_generator(kind, stub, seed=3)
    out, audit = tmp_path / "aug.json", tmp_path / "aug.audit.jsonl"
    lines: list[str] = []
    result = augment(
        claudio,
        gen,
        AugmentConfig(n=3, seed=3, max_requests=20, retry=FAST),
        output=out,
        scorer=claudio_scorer,
        progress=lines.append,
    )
    gen.close()

    assert (result.accepted, result.requests, result.budget_exhausted) == (3, len(SCRIPT), False)
    assert result.rejected == Counter(
        {
            "agent_talk": 1,
            "language": 1,
            "near_duplicate": 2,
            "parse_error": 1,
            "empty": 1,
            "persona_score": 1,
        }
    )
    assert len(lines) == 3 and lines[0].startswith("[1/3] accepted request 0")
    rows = read_jsonl(audit)
    assert {r["reason"] for r in rows if r["status"] == "rejected"} == set(REASONS)
    assert [r["attempts"] for r in rows][:3] == [1, 1, 2]  # the 429 was retried
    dup = [r["detail"]["near_duplicate"]["of"] for r in rows if r["reason"] == "near_duplicate"]
    assert sorted(dup) == ["accepted example", "eval prompt"]
    assert (
        next(r for r in rows if r["reason"] == "language")["detail"]["language"]["turn"] == "reply"
    )
    assert next(r for r in rows if r["reason"] == "parse_error")["raw"].startswith("Sure!")

    records = json.loads(out.read_text(encoding="utf-8"))
    sent = {
        sha256_json(dict(zip(("system", "user"), _prompt_of(s["path"], s["body"]))))
        for s in stub.seen
    }
    fresh = QualityChecks(claudio_scorer, result.min_personality, [])
    for rec in records:
        p = rec["provenance"]
        assert (p["generator"], p["model"], p["seed"]) == (kind, "stub-model", 3)
        assert p["prompt_sha256"] in sent and isinstance(p["request"], int)
        ex, verdict = fresh.check(
            json.dumps(
                {
                    "user": rec["conversations"][0]["value"],
                    "reply": rec["conversations"][1]["value"],
                }
            ),
            p["lang"],
        )
        assert verdict.accepted and verdict.personality >= result.min_personality
        fresh.accept(ex)

    # the key went to the server, and nowhere else
    auth = [
        s["headers"].get("x-api-key") or s["headers"].get("authorization", "") for s in stub.seen
    ]
    assert all(KEY in a for a in auth)
    captured = capsys.readouterr()
    assert KEY not in all_text(out, audit) + captured.out + captured.err + caplog.text + summary(
        result
    )
    assert not any(KEY in json.dumps(r) for r in records)

    # held-out references never reach the generator
    bodies = json.dumps([s["body"] for s in stub.seen], ensure_ascii=False)
    held = claudio.eval_prompts() + claudio.calibration_prompts()
    assert not any(p.reference in bodies for p in held)

    # valid input for the dataset loader and for training
    from molting.train.config import load_config
    from molting.train.trainer import prepare_examples

    assert len(load_dataset(out).conversations) == 3
    cfg = load_config(ROOT / "configs" / "cpu.yaml", {"dataset": str(out), "val_set_size": 0})
    assert len(prepare_examples(cfg, llama_tokenizer).dataset.conversations) == 3


def test_the_same_seed_and_replies_give_identical_outputs(stub, claudio, claudio_scorer, tmp_path):
    texts = []
    for k in range(2):
        stub.script, stub.used, stub.last = list(SCRIPT), Counter(), {}
        gen = api_generator("anthropic", stub)
        augment(
            claudio,
            gen,
            AugmentConfig(n=3, max_requests=20, retry=FAST),
            output=tmp_path / f"{k}.json",
            scorer=claudio_scorer,
        )
        gen.close()
        texts.append(
            (tmp_path / f"{k}.json").read_bytes() + (tmp_path / f"{k}.audit.jsonl").read_bytes()
        )
    assert texts[0] == texts[1]


# ------------------------------------------------------- the CLI: budget, keys, reachability


def test_budget_exhausted_stops_cleanly_and_keeps_what_passed(
    stub, bundle, fast_cli, tmp_path, capsys
):
    need_sdk("openai")
    stub.script, stub.default = ["good"], 500
    out = tmp_path / "aug.json"
    code = main(
        [
            "augment",
            "--persona",
            str(bundle),
            "-n",
            "3",
            "--generator",
            "openai",
            "--model",
            "m",
            "--base-url",
            stub.url + "/v1",
            "--max-requests",
            "6",
            "--retry-wait",
            "0",
            "-o",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == SHORTFALL_EXIT == 7
    assert (
        "the request budget ran out (--max-requests 6)" in captured.out
        and "[1/3] accepted" in captured.out
    )
    assert len(stub.seen) == 6 and len(json.loads(out.read_text(encoding="utf-8"))) == 1
    rows = read_jsonl(tmp_path / "aug.audit.jsonl")
    assert [r["status"] for r in rows] == ["accepted", "failed", "unfinished"]
    assert rows[1]["reason"] == "request_failed" and "500" in rows[1]["error"]
    assert KEY not in captured.out + captured.err + all_text(out, tmp_path / "aug.audit.jsonl")


@pytest.mark.parametrize(
    "kind, var, extra",
    [("anthropic", "ANTHROPIC_API_KEY", []), ("openai", "OPENAI_API_KEY", ["--model", "gpt-x"])],
)
def test_a_missing_key_is_one_clear_error(kind, var, extra, bundle, monkeypatch, tmp_path, capsys):
    need_sdk(kind)
    sdk_env(monkeypatch)
    monkeypatch.delenv(var)
    code = main(
        [
            "augment",
            "--persona",
            str(bundle),
            "-n",
            "2",
            "--generator",
            kind,
            *extra,
            "-o",
            str(tmp_path / "a.json"),
        ]
    )
    err = capsys.readouterr().err
    assert code == GeneratorError.exit_code and err.count("\n") == 1
    assert f"{var} is not set" in err and not list(tmp_path.glob("a*"))


def test_a_base_url_server_needs_no_key(stub, claudio, claudio_scorer, monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY")
    stub.script = ["good"]
    gen = api_generator("openai", stub)
    augment(
        claudio,
        gen,
        AugmentConfig(n=1, retry=FAST),
        output=tmp_path / "a.json",
        scorer=claudio_scorer,
    )
    assert stub.seen[0]["headers"]["authorization"] == "Bearer unused"


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_an_unreachable_server_is_one_clear_error(
    kind, bundle, fast_cli, monkeypatch, tmp_path, capsys
):
    need_sdk(kind)
    sdk_env(monkeypatch)
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}" + ("/v1" if kind == "openai" else "")
    code = main(
        [
            "augment",
            "--persona",
            str(bundle),
            "-n",
            "2",
            "--generator",
            kind,
            "--model",
            "m",
            "--base-url",
            url,
            "--retry-wait",
            "0",
            "--timeout",
            "5",
            "-o",
            str(tmp_path / "a.json"),
        ]
    )
    err = capsys.readouterr().err
    assert code == GeneratorError.exit_code and err.count("\n") == 1
    assert f"cannot reach {url}" in err and "Traceback" not in err and KEY not in err
    assert not list(tmp_path.glob("a*"))


def test_a_refused_key_is_fatal_and_never_echoed(stub, claudio, claudio_scorer, tmp_path):
    stub.script = [401]
    gen = api_generator("anthropic", stub)
    with pytest.raises(GeneratorError, match="refused the API key in ANTHROPIC_API_KEY") as err:
        augment(
            claudio,
            gen,
            AugmentConfig(n=1, retry=FAST),
            output=tmp_path / "a.json",
            scorer=claudio_scorer,
        )
    assert KEY not in str(err.value) and len(stub.seen) == 1 and not list(tmp_path.iterdir())


def test_a_missing_sdk_names_the_pip_command(monkeypatch):
    sdk_env(monkeypatch)
    monkeypatch.setitem(sys.modules, "anthropic", None)  # import anthropic → ImportError
    with pytest.raises(GeneratorError, match=r"pip install 'molting\[anthropic\]'"):
        make_example_generator("anthropic")


def test_the_output_never_overwrites_an_input(bundle, fast_cli, capsys):
    before = (bundle / "dataset_sharegpt.json").read_bytes()
    code = main(
        [
            "augment",
            "--persona",
            str(bundle),
            "-n",
            "1",
            "--generator",
            "local",
            "--model",
            "x",
            "-o",
            str(bundle / "dataset_sharegpt.json"),
        ]
    )
    assert code == 4 and "would overwrite the input" in capsys.readouterr().err
    assert (bundle / "dataset_sharegpt.json").read_bytes() == before


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--generator", "openai"], "needs --model"),
        (["--generator", "local"], "needs --model"),
        (["--generator", "local", "--model", "x", "--max-requests", "1"], "below -n 2"),
        (["--generator", "local", "--model", "x", "--lang-share", "fr=1"], "not supported"),
        (["--generator", "local", "--model", "x", "--lang-share", "en=0"], "positive weight"),
        (["--generator", "local", "--model", "x", "--base-url", "http://x"], "not local"),
    ],
)
def test_bad_flags_are_config_errors(
    argv, message, bundle, fast_cli, monkeypatch, tmp_path, capsys
):
    sdk_env(monkeypatch)
    code = main(
        ["augment", "--persona", str(bundle), "-n", "2", *argv, "-o", str(tmp_path / "a.json")]
    )
    assert code == ConfigError.exit_code and message in capsys.readouterr().err


# ---------------------------------------------------------------- the local model


def test_the_local_model_path_runs_and_audits_every_request(
    tiny_llama_dir, claudio, claudio_scorer, tmp_path
):
    gen = make_example_generator("local", str(tiny_llama_dir), max_tokens=12)
    result = augment(
        claudio,
        gen,
        AugmentConfig(n=2, max_requests=3),
        output=tmp_path / "a.json",
        scorer=claudio_scorer,
    )
    rows = read_jsonl(tmp_path / "a.audit.jsonl")
    assert result.requests == 3 and result.budget_exhausted and result.short
    assert len(rows) == 3 and all(
        r["status"] == "rejected" and r["reason"] in REASONS for r in rows
    )
    assert not (tmp_path / "a.json").exists() and "no dataset written" in summary(result)
    assert isinstance(result, AugmentResult) and gen.base is not None


# ---------------------------------------------------------------- pieces


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"user": "Hi?", "reply": "Oi!"}', ("Hi?", "Oi!")),
        ('Sure!\n```json\n{"user": "Hi?", "reply": "Oi!"}\n```\nEnjoy.', ("Hi?", "Oi!")),
        ('{"note": 1} then {"user": " a ", "reply": "b\nc"}', ("a", "b\nc")),
        (
            '{"user": "line\nbreak", "reply": "raw newline in a string"}',
            ("line\nbreak", "raw newline in a string"),
        ),
    ],
)
def test_the_json_reply_is_parsed_robustly(text, expected):
    ex = parse_example(text)
    assert (ex.user, ex.reply) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("no json here", "no JSON object found"),
        ('{"user": "x"}', "both 'user' and 'reply'"),
        ('{"user": 1, "reply": "x"}', "must be strings"),
        ('{"user": "x", "reply": ', "no JSON object found"),
        ("", "returned no text"),
    ],
)
def test_unparseable_replies_are_parse_errors(text, message):
    with pytest.raises(ParseError, match=message):
        parse_example(text)


def test_requests_are_deterministic_balanced_and_free_of_held_out_text(claudio, claudio_scorer):
    shares = {"en": 0.5, "pt": 0.5}
    plans = [
        Planner(claudio.card, claudio_scorer.train.pairs, seed=seed, shares=shares, count=40)
        for seed in (0, 0, 1)
    ]
    a, b, c = ([p.request(i) for i in range(40)] for p in plans)
    assert [r.sha256 for r in a] == [r.sha256 for r in b] != [r.sha256 for r in c]
    assert Counter(r.lang for r in a) == {"en": 20, "pt": 20} and len({r.topic for r in a}) == 40
    for r in a:
        signature = "Olha só:" if r.lang == "pt" else "Short answer:"
        assert claudio.card.name in r.system and signature in r.system
        assert all(p.lang == r.lang for p in r.examples) and '"reply"' in r.user
    text = json.dumps([[r.system, r.user] for r in a], ensure_ascii=False)
    assert not any(
        p.reference in text or p.prompt in text
        for p in claudio.eval_prompts() + claudio.calibration_prompts()
    )


def test_language_shares_and_schedule():
    assert parse_lang_shares("en=1,pt=3", ("en", "pt")) == {"en": 0.25, "pt": 0.75}
    assert parse_lang_shares("pt-BR=1", ("en", "pt")) == {"pt": 1.0}
    sched = language_schedule({"en": 0.25, "pt": 0.75}, 8)
    assert Counter(sched[:4]) == {"pt": 3, "en": 1} and Counter(sched) == {"pt": 6, "en": 2}


def test_topics_prefer_words_the_reply_shares_then_rare_ones():
    pairs = [
        Pair("how do I squash git commits", "Run `git rebase -i` and mark them squash.", "en"),
        Pair("how do I undo git commits", "`git reset --soft HEAD~1` keeps your changes.", "en"),
        Pair("how do I squash git commits", "Interactive rebase.", "en"),
    ]
    assert topics(pairs, size=2) == [
        ("squash", "git"),
        ("undo", "git"),
    ]  # the repeat gives no new topic


def test_backoff_grows_is_jittered_by_the_seed_and_bounded():
    policy = RetryPolicy(first_wait_s=1.0, max_wait_s=30.0)
    waits = [policy.wait(k, random.Random(7)) for k in range(8)]
    assert all(0.5 * 2**k <= w < 1.5 * 2**k for k, w in enumerate(waits[:4])) and max(waits) == 30.0
    assert waits == [policy.wait(k, random.Random(7)) for k in range(8)]
    assert (
        policy.wait(0, random.Random(7), retry_after=12.0) == 12.0
        and policy.wait(0, random.Random(7), 99.0) == 30.0
    )


def test_secrets_are_redacted_from_error_texts():
    assert redact(f"bad key {KEY} in\nheader", (KEY,)) == "bad key *** in header"
