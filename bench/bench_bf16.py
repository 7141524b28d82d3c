"""bf16 autocast on the CPU for LoRA training: as fast as it looks, and does the loss curve hold?

Trains SmolLM2-135M + LoRA (r=16, all linear layers; configs/cpu.yaml's rate and dropout) on the
same fixed batches of the raw fixture, in fp32 and under `torch.autocast("cpu", bfloat16)`, for
several adapter-initialisation seeds, then scores every adapter in fp32 on held-out examples.
"Noise" is what the seed alone does to fp32: bf16 is within noise when, seed by seed, its
held-out loss differs from fp32's by no more than the fp32 seeds differ among themselves, and its
per-step training losses likewise. One thread (pinned) so per-CPU-second speeds compare on a
shared machine. The criterion was fixed before the first full run. Writes the "Training in bf16
on the CPU" section of reports/BENCHMARKS.md.

    python bench/bench_bf16.py                   # ~10 minutes on 2 busy cores
    python bench/bench_bf16.py --steps 4 --seeds 2 --report /tmp/B.md
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchreport import update_section  # noqa: E402

RAW = ROOT / "fixtures" / "claudio" / "dataset_sharegpt.json"
SECTION = "Training in bf16 on the CPU"
BATCH = 4
HELD_OUT = 32  # the fixture's last conversations, never trained on
LR = 1e-3  # configs/cpu.yaml's


def batches(tokenizer, steps: int):
    from molting.data import load_dataset
    from molting.train.loop import PaddingFreeCollator
    from molting.train.masking import encode

    convs = load_dataset(RAW).conversations
    feats = [
        {"input_ids": ex.input_ids, "labels": ex.labels}
        for ex in (encode(tokenizer, c, 512) for c in convs)
    ]
    collate = PaddingFreeCollator()
    train = [collate(feats[i * BATCH : (i + 1) * BATCH]) for i in range(steps)]
    held = [
        collate(feats[len(feats) - HELD_OUT + i : len(feats) - HELD_OUT + i + BATCH])
        for i in range(0, HELD_OUT, BATCH)
    ]
    return train, held


def run(precision: str, seed: int, steps: int) -> dict:
    import torch
    import transformers

    from molting.models import load_base
    from molting.train.attention import choose_attention
    from molting.train.config import build_config
    from molting.train.loop import add_adapter

    base = load_base("smollm2-135m", "none")
    train, held = batches(base.tokenizer, steps)
    transformers.set_seed(seed)
    cfg = build_config({"quantization": "none", "lora_dropout": 0.0})
    model = add_adapter(base.model, cfg, choose_attention("cpu", True, "float32", flash_attn=False))
    model.train()
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=LR, weight_decay=0.0
    )
    autocast = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if precision == "bf16"
        else contextlib.nullcontext
    )
    losses, tokens, cpu = [], 0, 0.0
    for i, batch in enumerate(train):
        started = time.process_time()
        with autocast():
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if i:  # the first step warms up allocators and kernels
            cpu += time.process_time() - started
            tokens += batch["input_ids"].numel()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():  # scored in fp32 whatever the training precision
        held_out = statistics.fmean(model(**b).loss.item() for b in held)
    return {
        "losses": losses,
        "held_out": held_out,
        "tokens_per_cpu_s": tokens / cpu if cpu else None,
    }


def verdict(fp32: dict[int, dict], bf16: dict[int, dict]) -> dict:
    seeds = sorted(fp32)
    held = [fp32[s]["held_out"] for s in seeds]
    noise_held = max(held) - min(held)
    steps = len(fp32[seeds[0]]["losses"])
    noise_steps = statistics.fmean(
        max(fp32[s]["losses"][i] for s in seeds) - min(fp32[s]["losses"][i] for s in seeds)
        for i in range(1, steps)
    )  # step 0 is the same base for every seed
    gap_held = max(abs(bf16[s]["held_out"] - fp32[s]["held_out"]) for s in seeds)
    gap_steps = max(
        statistics.fmean(abs(bf16[s]["losses"][i] - fp32[s]["losses"][i]) for i in range(1, steps))
        for s in seeds
    )
    speed = statistics.median(
        bf16[s]["tokens_per_cpu_s"] / fp32[s]["tokens_per_cpu_s"] for s in seeds
    )
    return {
        "noise_held": noise_held,
        "gap_held": gap_held,
        "noise_steps": noise_steps,
        "gap_steps": gap_steps,
        "speedup": speed,
        "within_noise": gap_held <= noise_held and gap_steps <= noise_steps,
    }


def cpu_flags() -> list[str]:
    from molting.train.precision import bf16_flags

    return bf16_flags()


def section(steps: int, fp32: dict, bf16: dict, v: dict) -> str:
    flags = cpu_flags()
    rows = [
        "| seed | precision | loss step 1 → last | held-out loss (fp32) | tokens per CPU-second |",
        "|---:|---|---|---:|---:|",
    ]
    for s in sorted(fp32):
        for name, r in (("fp32", fp32[s]), ("bf16 autocast", bf16[s])):
            rows.append(
                f"| {s} | {name} | {r['losses'][0]:.3f} → {r['losses'][-1]:.3f} | "
                f"{r['held_out']:.4f} | "
                f"{r['tokens_per_cpu_s']:.1f} |"
            )
    return "\n".join(
        [
            (
                f"`python bench/bench_bf16.py` — {time.strftime('%Y-%m-%d')}, CPU bf16 flags: "
                f"{', '.join(flags) or 'none'}. SmolLM2-135M + LoRA r=16 (all linear layers), "
                f"{steps} steps of "
                f"{BATCH} examples of the raw fixture (the same batches for every run), learning "
                f"rate {LR}, "
                f"no dropout, 1 thread; held-out loss on the last {HELD_OUT} conversations, "
                "scored in fp32."
            ),
            "",
            *rows,
            "",
            (
                f"bf16 autocast: **{v['speedup']:.2f}×** fp32's tokens per CPU-second (median "
                "over seeds). "
                f"Held-out loss bf16 vs fp32, worst seed: {v['gap_held']:.4f} (fp32 seed-to-seed "
                "spread "
                f"{v['noise_held']:.4f}); training loss per step, mean gap {v['gap_steps']:.4f} "
                "(fp32 seed spread "
                f"{v['noise_steps']:.4f}). **{'Within' if v['within_noise'] else 'NOT within'} "
                "the noise of fp32**: "
                + (
                    "bf16 could become the CPU default where the CPU has AMX or AVX512-BF16."
                    if v["within_noise"]
                    else "molting keeps fp32 on the CPU by default; `cpu_precision: bf16` opts in "
                    "(said loudly in the log, recorded in run.json)."
                )
            ),
        ]
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--report", type=Path, default=ROOT / "reports" / "BENCHMARKS.md")
    a = p.parse_args()
    import torch

    torch.set_num_threads(1)
    fp32, bf16 = {}, {}
    for seed in range(42, 42 + a.seeds):
        for name, table in (("fp32", fp32), ("bf16", bf16)):
            table[seed] = run(name, seed, a.steps)
            print(
                f"seed {seed} {name}: held-out {table[seed]['held_out']:.4f}, "
                f"{table[seed]['tokens_per_cpu_s']:.1f} tokens/CPU-s",
                flush=True,
            )
    v = verdict(fp32, bf16)
    update_section(SECTION, section(a.steps, fp32, bf16, v), a.report)
    print(
        f"bf16 {v['speedup']:.2f}x per CPU-s, within noise: {v['within_noise']}; wrote {a.report}"
    )


if __name__ == "__main__":
    main()
