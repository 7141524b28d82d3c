"""Generators: who writes the synthetic examples. One call = one request; molting does the retrying.

- `anthropic`: Anthropic's official SDK (Messages API); key from ANTHROPIC_API_KEY.
- `openai`: the official OpenAI SDK against any OpenAI-compatible endpoint (OpenAI, vLLM,
  llama.cpp, Ollama via --base-url); key from OPENAI_API_KEY, optional with --base-url.
- `local`: a transformers causal LM (path, hub id or smollm2-135m) through molting.models, greedy.

The SDKs are optional extras (`pip install 'molting[anthropic]'`). Their own retries are off
(max_retries=0), so every HTTP request is counted against the budget. Keys are read from the
environment only and are never logged, printed or written; error texts pass through `redact`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from molting.augment.prompts import Request
from molting.errors import ConfigError, GeneratorError
from molting.gate.generate import end_of_turn_ids
from molting.models import load_base

KINDS = ("anthropic", "openai", "local")
KEY_VARS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
# The seed plan names Opus; any Messages API model works with --model.
DEFAULT_MODELS = {"anthropic": "claude-opus-4-5"}
PLACEHOLDER_KEY = "unused"  # sent to --base-url servers that check no key (vLLM, llama.cpp, Ollama)
# OpenAI-compatible servers sample, so requests on similar topics still differ; the gate filters
TEMPERATURE = 1.0
MAX_ERROR_CHARS = 300  # a server's error text is quoted, not dumped


@dataclass(frozen=True)
class Completion:
    text: str
    model: str  # the model the server says answered (may resolve an alias), else the one asked for


class TransientError(Exception):
    """A failure worth retrying: rate limit, server error (5xx), connection error or timeout."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.kind, self.retry_after = kind, retry_after


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret replaced, cut to MAX_ERROR_CHARS, on one line."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "…"


def import_sdk(kind: str) -> Any:
    try:
        return importlib.import_module(kind)
    except ImportError:
        raise GeneratorError(
            f"--generator {kind} needs the {kind} SDK, which is not installed. Install with: "
            f"pip install 'molting[{kind}]'  (or: pip install {kind})"
        ) from None


def api_key(kind: str, base_url: str | None) -> str:
    """The key from the environment; a base-URL server may need none (a placeholder is sent)."""
    var = KEY_VARS[kind]
    key = os.environ.get(var, "").strip()
    if key:
        return key
    if kind == "openai" and base_url:
        return PLACEHOLDER_KEY
    hint = " (or pass --base-url for a local OpenAI-compatible server)" if kind == "openai" else ""
    raise GeneratorError(
        f"{var} is not set: export {var}=… with your API key{hint}. "
        "molting reads keys from the environment only."
    )


class APIGenerator:
    """Shared error handling of the two SDKs (their exception classes have the same names)."""

    kind = ""

    def __init__(
        self, model: str, base_url: str | None, timeout_s: float, max_tokens: int, seed: int
    ):
        self.sdk = import_sdk(self.kind)
        self.key = api_key(self.kind, base_url)
        self.model, self.base_url, self.max_tokens, self.seed = model, base_url, max_tokens, seed
        self.answered = (
            False  # did the server ever answer (any status)? Tells "unreachable" from "failing"
        )
        self.client = self._client(timeout_s)

    @property
    def where(self) -> str:
        return self.base_url or f"the {self.kind} API"

    @property
    def unreachable_hint(self) -> str:
        return (
            "Is the server running and --base-url right?"
            if self.base_url
            else "Check the network connection."
        )

    def generate(self, request: Request) -> Completion:
        sdk = self.sdk
        try:
            completion = self._call(request)
        except sdk.APIConnectionError as err:  # includes timeouts
            raise TransientError("connection", self._say(err)) from None
        except sdk.APIStatusError as err:
            self.answered = True
            raise self._status_error(err) from None
        except sdk.APIError as err:  # a 200 the SDK cannot read: the server does not speak this API
            raise GeneratorError(
                f"{self.where} sent a response the {self.kind} SDK cannot read "
                f"(is it a {self.kind}-compatible endpoint?): {self._say(err)}"
            ) from None
        self.answered = True
        return completion

    def _status_error(self, err: Any) -> Exception:
        status, message = err.status_code, self._say(err)
        if status == 429:
            return TransientError("rate_limited", message, _retry_after(err))
        if status >= 500 or status == 408:
            return TransientError("server_error", message, _retry_after(err))
        if status in (401, 403):
            var = KEY_VARS[self.kind]
            return GeneratorError(
                f"{self.where} refused the API key in {var} (HTTP {status}): {message}"
            )
        return GeneratorError(
            f"{self.where} rejected the request (HTTP {status}, model '{self.model}'): {message}"
        )

    def _say(self, err: Exception) -> str:
        return redact(str(err) or type(err).__name__, (self.key,))

    def close(self) -> None:
        self.client.close()


class AnthropicGenerator(APIGenerator):
    kind = "anthropic"

    def _client(self, timeout_s: float) -> Any:
        return self.sdk.Anthropic(
            api_key=self.key, base_url=self.base_url, timeout=timeout_s, max_retries=0
        )

    def _call(self, request: Request) -> Completion:
        # no sampling parameters: this SDK's Messages API takes none (the model's default sampling
        # varies replies)
        msg = self.client.messages.create(
            model=self.model,
            max_tokens=self.max_tokens,
            system=request.system,
            messages=[{"role": "user", "content": request.user}],
        )
        text = "".join(
            getattr(b, "text", "") for b in msg.content if getattr(b, "type", "") == "text"
        )
        return Completion(text, getattr(msg, "model", None) or self.model)


class OpenAIGenerator(APIGenerator):
    kind = "openai"

    def _client(self, timeout_s: float) -> Any:
        return self.sdk.OpenAI(
            api_key=self.key, base_url=self.base_url, timeout=timeout_s, max_retries=0
        )

    def _call(self, request: Request) -> Completion:
        # `seed` makes sampling repeatable where the server supports it (OpenAI best-effort, vLLM,
        # llama.cpp)
        resp = self.client.chat.completions.create(
            model=self.model,
            messages=request.messages(),
            max_tokens=self.max_tokens,
            temperature=TEMPERATURE,
            seed=self.seed + request.index,
        )
        text = (resp.choices[0].message.content or "") if resp.choices else ""
        return Completion(text, getattr(resp, "model", None) or self.model)


def _retry_after(err: Any) -> float | None:
    """The server's Retry-After in seconds, if it sent one as a number."""
    try:
        return max(0.0, float(err.response.headers.get("retry-after")))
    except (AttributeError, TypeError, ValueError):
        return None


class LocalGenerator:
    """A local causal LM, greedy (deterministic). The model loads on the first request."""

    kind = "local"
    answered = True  # nothing to reach
    where, unreachable_hint = "the local model", ""

    def __init__(self, model: str, max_tokens: int):
        self.model, self.max_tokens = model, max_tokens
        self.base: Any = None

    def generate(self, request: Request) -> Completion:
        import torch

        if self.base is None:
            # full precision (bf16 on a GPU): a generator's quality is the point; the gate uses
            # 4-bit
            self.base = load_base(self.model, "none", for_training=False)
            if torch.cuda.is_available():
                self.base.model.to("cuda")
            self.base.model.eval()
        model, tok = self.base.model, self.base.tokenizer
        text = tok.apply_chat_template(
            request.messages(), tokenize=False, add_generation_prompt=True
        )
        enc = tok([text], return_tensors="pt", add_special_tokens=False).to(model.device)
        stop = end_of_turn_ids(tok)
        with torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=self.max_tokens,
                do_sample=False,
                eos_token_id=stop,
                pad_token_id=tok.pad_token_id,
                temperature=None,
                top_p=None,
                top_k=None,
            )
        ids = out[0, enc["input_ids"].shape[1] :].tolist()
        n = next((k for k, t in enumerate(ids) if t in stop), len(ids))
        return Completion(tok.decode(ids[:n], skip_special_tokens=True).strip(), self.model)

    def close(self) -> None:
        self.base = None


def make_example_generator(
    kind: str,
    model: str | None = None,
    *,
    base_url: str | None = None,
    timeout_s: float = 120.0,
    max_tokens: int = 600,
    seed: int = 0,
) -> APIGenerator | LocalGenerator:
    """The generator for `--generator KIND`; checks the SDK and the key now, before any work."""
    if kind not in KINDS:
        raise ConfigError(f"unknown generator {kind!r}; choose one of {', '.join(KINDS)}.")
    model = model or DEFAULT_MODELS.get(kind)
    if not model:
        what = (
            "a local model path or hub id"
            if kind == "local"
            else "the model name the server serves"
        )
        raise ConfigError(f"--generator {kind} needs --model ({what}).")
    if kind == "local":
        if base_url:
            raise ConfigError("--base-url is for the anthropic and openai generators, not local.")
        return LocalGenerator(model, max_tokens)
    cls = AnthropicGenerator if kind == "anthropic" else OpenAIGenerator
    return cls(model, base_url, timeout_s, max_tokens, seed)
