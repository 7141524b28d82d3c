"""Training precision on the CPU: fp32, or bf16 autocast when asked for (`cpu_precision: bf16`).

Under autocast the LoRA forward and backward matmuls run in bf16 while weights, gradients and
the optimizer stay fp32. bench/bench_bf16.py measured it on a CPU with AMX: 1.49× the tokens
per CPU-second (1.58× on a second run), but the held-out loss moved by twice fp32's
seed-to-seed spread (0.0010 vs 0.0005), so it is not the default. Without AMX or AVX512-BF16
bf16 is emulated and likely slower; the log says so. When it is on, the log says so loudly and
run.json records it, like the fp32-for-4-bit substitution.

    >>> choose_cpu_precision("bf16", ["amx_bf16"], device="cpu", dtype="float32").autocast_bf16
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BF16_FLAGS = (
    "amx_bf16",
    "avx512_bf16",
)  # /proc/cpuinfo flags of CPUs with native bf16 dot products
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class PrecisionChoice:
    autocast_bf16: bool
    reason: str | None  # said loudly in the log and kept in run.json when it is not plain fp32
    cpu_flags: tuple[str, ...] = ()


def bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The bf16 flags this CPU reports, e.g. ['amx_bf16', 'avx512_bf16']; [] off Linux."""
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text()
        except OSError:
            return []
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return [f for f in BF16_FLAGS if f in flags]


def choose_cpu_precision(
    requested: str, flags: list[str], device: str, dtype: str
) -> PrecisionChoice:
    """bf16 autocast or not, for LoRA on fp32 weights. CUDA runs pick their dtype when loading
    (molting.models), and a 4-bit base already computes in bf16: neither is changed here."""
    if device != "cpu" or dtype != "float32" or requested != "bf16":
        return PrecisionChoice(False, None, tuple(flags))
    if not flags:
        return PrecisionChoice(
            True,
            "cpu_precision: bf16 on a CPU without AMX or AVX512-BF16: bf16 autocast "
            "is emulated here and likely slower than fp32",
            (),
        )
    return PrecisionChoice(
        True,
        f"cpu_precision: bf16 (the CPU has {', '.join(flags)}): LoRA forward/backward "
        "under bf16 autocast, weights and optimizer in fp32",
        tuple(flags),
    )
