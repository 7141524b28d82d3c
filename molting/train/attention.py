"""Segment attention for padding-free training rows: causal attention within each example only.

A padding-free micro-batch is one row of several examples with `position_ids` restarting at 0.
transformers turns that into a block-diagonal mask, but on CPU the SDPA kernel still computes
every query-key pair of the whole row (measured on SmolLM2-135M, 8 examples in a 1,326-token
row: attention was 28% of the forward pass). Running SDPA once per example with `is_causal`
computes the same result on the diagonal blocks only: Σ nᵢ² instead of (Σ nᵢ)².

Anything that is not a packed training row (generation with a KV cache, padded batches, a
single example) goes to transformers' own SDPA unchanged.

That loop is the CPU's answer. On CUDA one varlen kernel does the same work without a Python
loop: FlashAttention over the packed row (transformers' `flash_attention_2`, chosen from
`position_ids`), else SDPA with the block-diagonal mask transformers builds from `position_ids`
(what TRL's padding-free path uses). `choose_attention` picks per device; run.json records it.

    >>> choose_attention("cpu", padding_free=True, dtype="float32", flash_attn=False).implementation
    'molting_segments'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NAME = "molting_segments"
FLASH_DTYPES = ("bfloat16", "float16")  # FlashAttention has no fp32 kernel


@dataclass(frozen=True)
class AttentionChoice:
    implementation: str  # a transformers attn_implementation name, or NAME
    reason: str


def choose_attention(
    device: str, padding_free: bool, dtype: str, flash_attn: bool
) -> AttentionChoice:
    """The attention for training batches on `device` ("cpu" or "cuda") in `dtype`;
    `flash_attn`: whether the flash-attn package can run here (`flash_attn_available`)."""
    if not padding_free:
        return AttentionChoice("sdpa", "padded batches: SDPA with the padding mask")
    if device == "cuda" and flash_attn and dtype in FLASH_DTYPES:
        return AttentionChoice(
            "flash_attention_2",
            "CUDA: varlen FlashAttention over each packed row (one kernel, no cross-example pairs)",
        )
    if device == "cuda":
        why = (
            "flash-attn not installed"
            if not flash_attn
            else f"no FlashAttention kernel for {dtype}"
        )
        return AttentionChoice(
            "sdpa", f"CUDA: SDPA with the block-diagonal mask from position_ids ({why})"
        )
    return AttentionChoice(
        NAME, "CPU: causal SDPA per packed example (only the diagonal blocks are computed)"
    )


def flash_attn_available() -> bool:
    """Whether transformers can run flash_attention_2 here (the package and a CUDA GPU)."""
    from transformers.utils import is_flash_attn_2_available

    return bool(is_flash_attn_2_available())


def segment_bounds(position_ids: Any) -> list[tuple[int, int]]:
    """[(start, end)] of the examples in one packed row: a new one starts where positions restart.

    >>> segment_bounds(torch.tensor([[0, 1, 2, 0, 1]]))
    [(0, 3), (3, 5)]
    """
    import torch

    pos = position_ids[0]
    starts = (torch.nonzero(pos[1:] != pos[:-1] + 1).flatten() + 1).tolist()
    edges = [0, *starts, pos.numel()]
    return list(zip(edges[:-1], edges[1:]))


def segment_attention_forward(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    position_ids = kwargs.get("position_ids")
    packed = (
        position_ids is not None
        and query.shape[0] == 1
        and query.shape[2] == key.shape[2] > 1
        and position_ids.shape[-1] == query.shape[2]
    )
    bounds = segment_bounds(position_ids) if packed else []
    if len(bounds) < 2:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    groups = getattr(module, "num_key_value_groups", 1)
    outs = [
        torch.nn.functional.scaled_dot_product_attention(
            query[:, :, s:e],
            key[:, :, s:e],
            value[:, :, s:e],
            is_causal=True,
            scale=scaling,
            dropout_p=dropout if module.training else 0.0,
            enable_gqa=groups > 1,
        )
        for s, e in bounds
    ]
    return torch.cat(outs, dim=2).transpose(1, 2).contiguous(), None


def register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(NAME, segment_attention_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)  # the fallback path needs SDPA's mask


def use_segment_attention(model: Any) -> None:
    """Switch a loaded model (or PEFT wrapper) to segment attention for padding-free training."""
    register()
    model.set_attn_implementation(NAME)


def use_attention(model: Any, choice: AttentionChoice) -> None:
    """Switch a loaded model to the chosen attention (before the adapter wraps it)."""
    if choice.implementation == NAME:
        use_segment_attention(model)
    else:
        model.set_attn_implementation(choice.implementation)
