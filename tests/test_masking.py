"""The loss mask, tested directly on two real chat formats (ChatML/SmolLM2 and Phi-3)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from molting.data import Conversation, Turn
from molting.train.loop import PaddedCollator, PaddingFreeCollator, disable_kv_cache
from molting.train.masking import IGNORE, describe, encode, labelled_segments, render, to_messages

ROLE_MARKERS = ("<|im_start|>", "<|user|>", "<|system|>", "<|assistant|>")


def expected_segments(conv: Conversation, end: str, last_end: str) -> list[str]:
    replies = [t.content for t in conv.turns if t.role == "assistant"]
    return [r + end for r in replies[:-1]] + [replies[-1] + last_end]


def test_every_assistant_reply_is_labelled_verbatim_with_its_end_token(arch, conversations):
    _, tok, end, last_end = arch
    for conv in conversations:
        ex = encode(tok, conv, max_seq_length=4096)
        assert labelled_segments(tok, ex) == expected_segments(conv, end, last_end)


def test_all_assistant_turns_are_trained_not_just_the_last(arch, conversations):
    _, tok, _, _ = arch
    conv = conversations[2]  # three assistant turns
    segments = labelled_segments(tok, encode(tok, conv, 4096))
    assert len(segments) == 3


def test_no_user_or_system_token_is_labelled(arch, conversations):
    _, tok, _, _ = arch
    for conv in conversations:
        ex = encode(tok, conv, 4096)
        trained = "".join(labelled_segments(tok, ex))
        for turn in conv.turns:
            if turn.role != "assistant" and turn.content not in {
                t.content for t in conv.turns if t.role == "assistant"
            }:
                assert turn.content not in trained
        assert not any(marker in trained for marker in ROLE_MARKERS)


def test_tokens_are_the_templates_full_rendering(arch, conversations):
    _, tok, _, _ = arch
    for conv in conversations:
        ex = encode(tok, conv, 4096)
        assert tok.decode(ex.input_ids) == render(
            tok, to_messages(conv), add_generation_prompt=False
        )


def test_every_example_keeps_trainable_tokens(arch, conversations):
    _, tok, _, _ = arch
    assert all(encode(tok, conv, 4096).n_trainable > 0 for conv in conversations)


def test_eos_is_trained_although_pad_equals_eos(phi3_tokenizer, conversations):
    tok = phi3_tokenizer
    assert tok.pad_token_id == tok.eos_token_id  # the Phi-3-mini trap (trl #1623)
    ex = encode(tok, conversations[0], 4096)
    assert ex.input_ids[-1] == tok.eos_token_id and ex.labels[-1] == tok.eos_token_id


def test_truncation_keeps_the_prefix_and_is_reported(llama_tokenizer, conversations):
    ex = encode(llama_tokenizer, conversations[2], max_seq_length=20)
    full = encode(llama_tokenizer, conversations[2], max_seq_length=4096)
    assert ex.input_ids == full.input_ids[:20] and ex.labels == full.labels[:20]
    assert ex.truncated and ex.full_length == len(full.input_ids)


def test_describe_marks_trained_tokens(llama_tokenizer, conversations):
    text = describe(llama_tokenizer, encode(llama_tokenizer, conversations[3], 4096))
    assert "+" in text and "'hi'" in text and "masked" in text


reply_text = st.text(alphabet="abcxyz ÁçãéÊ!?.,:\n-", min_size=1, max_size=40).filter(
    lambda s: s.strip()
)
user_text = st.text(alphabet="mnopq ÕÜ?\n", min_size=1, max_size=30)


@st.composite
def chats(draw):
    turns = [Turn("system", draw(user_text))] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(1, 3))):
        turns += [Turn("user", draw(user_text)), Turn("assistant", draw(reply_text))]
    return Conversation(index=0, id="0", turns=tuple(turns))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(conv=chats())
@example(
    conv=Conversation(
        0,
        "0",
        (Turn("user", "q"), Turn("assistant", "a b"), Turn("user", "\n"), Turn("assistant", "x")),
    )
)
def test_property_labels_are_exactly_the_replies(arch, conv):
    """For any chat: one labelled run per reply; each is the reply plus its end token. A run may
    start with whitespace from the template only when the tokenizer fuses it with the reply."""
    _, tok, end, last_end = arch
    ex = encode(tok, conv, 4096)
    segments = labelled_segments(tok, ex)
    expected = expected_segments(conv, end, last_end)
    assert len(segments) == len(expected)
    for got, want in zip(segments, expected):
        assert got.endswith(want) and not got[: len(got) - len(want)].strip()


def test_padding_free_collator_restarts_positions_and_masks_boundaries():
    batch = PaddingFreeCollator()(
        [{"input_ids": [5, 6, 7], "labels": [5, 6, 7]}, {"input_ids": [8, 9], "labels": [8, 9]}]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7, IGNORE, 9]]


def test_segment_bounds_follow_position_restarts():
    from molting.train.attention import segment_bounds

    assert segment_bounds(torch.tensor([[0, 1, 2, 0, 1, 0]])) == [(0, 3), (3, 5), (5, 6)]
    assert segment_bounds(torch.tensor([[0, 1, 2, 3]])) == [(0, 4)]


def test_padded_collator_masks_padding():
    batch = PaddedCollator(pad_token_id=0)(
        [{"input_ids": [5, 6, 7], "labels": [IGNORE, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    )
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7], [8, IGNORE, IGNORE]]


@pytest.mark.parametrize("attention", ["sdpa", "segments"])
@pytest.mark.parametrize("model_dir", ["tiny_llama_dir", "tiny_phi3_dir"])
def test_padding_free_batch_gives_the_same_loss_as_a_padded_batch(
    request, model_dir, attention, conversations
):
    """Examples packed into one row must not attend to each other: with transformers' block-diagonal
    mask (sdpa) and with molting's per-example attention (what training uses)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from molting.train.attention import use_segment_attention

    folder = request.getfixturevalue(model_dir)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    disable_kv_cache(model)  # what training does; with a cache the packed rows leak into each other
    if attention == "segments":
        use_segment_attention(model)
    feats = [
        {"input_ids": ex.input_ids, "labels": [IGNORE] + ex.labels[1:]}
        for ex in (encode(tok, c, 4096) for c in conversations)
    ]
    with torch.no_grad():
        packed = model(**PaddingFreeCollator()(feats)).logits[0]
        padded = model(**PaddedCollator(tok.pad_token_id)(feats)).logits
    start = 0
    for i, f in enumerate(feats):
        n = len(f["input_ids"])
        torch.testing.assert_close(packed[start : start + n], padded[i, :n], atol=1e-4, rtol=1e-4)
        start += n
