"""CPU threads for training: the cores this process may use, less those other work keeps busy.

PyTorch's OpenMP threads meet at a barrier after every kernel, and a padding-free step runs
thousands of small kernels. When another process holds one of the cores, a thread of ours waits
for a core at every barrier: on 2 cores with other jobs running, a training step ran 6.7× slower
with 2 threads than with 1 (9.7 vs 64.8 tokens/s). So on a CPU the trainer counts how many cores
other processes kept busy since the last optimizer step (/proc/stat on this process's cores,
minus this process's own CPU time) and runs on the rest: all of them on a quiet machine, fewer
as soon as something else competes, all again when it stops. The choices land in run.json.
(A passive OpenMP wait policy also softens the collapse, 9.7 → 47 tokens/s with 2 threads, but
1 thread did better still, and its cost on a quiet machine could not be measured here.)

    >>> choose_threads(cores=2, others_busy=1.0)
    1
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("molting.train")

PROC_STAT = Path("/proc/stat")
MIN_INTERVAL_S = 1.0  # shorter windows measure the scheduler's jitter, not the load
START_SAMPLE_S = 0.3  # the first look, before training starts: long enough for 30 clock ticks
MAX_RECORDED = 50  # run.json keeps the first changes; a flapping load should not bloat it
# A core counts as free when other work leaves at least this share of it. Erring towards fewer
# threads is cheap: on 2 cores, one thread too few costs at most 2x, one too many cost 3.5-7x
# (a half-time busy loop: 15.3-30.6 tokens/s with 2 threads, 107 with 1).
FREE_CORE_SHARE = 0.75


def choose_threads(cores: int, others_busy: float) -> int:
    """Threads for `cores` usable cores when other processes keep `others_busy` of them busy;
    at least one thread always.

    >>> [choose_threads(2, busy) for busy in (0.0, 0.2, 0.3, 1.0, 3.5)]
    [2, 2, 1, 1, 1]
    """
    free = cores - max(0.0, others_busy)
    return max(1, min(cores, math.floor(free + (1 - FREE_CORE_SHARE))))


def usable_cores(affinity: set[int] | None = None, quota: float | None = None) -> int:
    """The CPUs this process may run on, capped by a cgroup CPU quota (containers' --cpus)."""
    cpus = affinity if affinity is not None else _affinity()
    n = len(cpus) if cpus else (os.cpu_count() or 1)
    quota = quota if quota is not None else cgroup_quota()
    return max(1, min(n, math.ceil(quota))) if quota else n


def _affinity() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return set()


def cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs' worth of time the cgroup allows (cgroup v2 cpu.max or v1 cfs quota); None if
    unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 else None
    except (OSError, ValueError):
        return None


def busy_seconds(stat_text: str, cpus: set[int], tick_hz: float) -> float | None:
    """CPU-seconds the given CPUs spent outside idle and iowait since boot, from /proc/stat text.

    >>> busy_seconds("cpu0 100 0 50 800 10 0 0 0 0 0\\ncpu1 10 0 0 900 0 0 0 0 0 0\\n", {0}, 100.0)
    1.5
    """
    total, seen = 0, False
    for line in stat_text.splitlines():
        name, _, rest = line.partition(" ")
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
            continue
        values = [int(v) for v in rest.split()]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        total += (
            sum(values[:8]) - idle
        )  # user nice system idle iowait irq softirq steal; guest is in user
        seen = True
    return total / tick_hz if seen else None


@dataclass
class ThreadSizer:
    """Sizes torch's intra-op threads to the free cores, re-checked at most every MIN_INTERVAL_S.

    `pinned` (the config's cpu_threads) fixes the count instead: bit-identical reruns need it,
    since the sum order inside a kernel depends on the thread count."""

    pinned: int | None = None
    cores: int = field(default_factory=usable_cores)
    changes: list[dict[str, Any]] = field(default_factory=list)
    _cpus: set[int] = field(default_factory=_affinity)
    _last: tuple[float, float, float] | None = None  # (wall, own CPU s, busy CPU s of our cores)
    _before: int | None = None  # the process's thread count before training, restored by finish()

    def begin(self) -> None:
        """First look at the machine, when the run starts: loading the model is the first window."""
        self._last = self._sample() if self.pinned is None else None

    def start(self) -> int:
        """Size the threads for the first step (when training starts); returns the count."""
        import torch

        self._before = torch.get_num_threads()
        if self.pinned is not None:
            return self._set(self.pinned, step=0, others=None)
        if self._last is None:
            self._last = self._sample()
        if self._last is not None:
            time.sleep(max(0.0, START_SAMPLE_S - (time.perf_counter() - self._last[0])))
        return (
            self.check(step=0, force=True)
            if self._last
            else self._set(torch.get_num_threads(), 0, None)
        )

    def check(self, step: int, force: bool = False) -> int:
        """Re-size after an optimizer step; returns the thread count in use."""
        import torch

        now = self._sample() if self.pinned is None and self._last is not None else None
        if now is None or (not force and now[0] - self._last[0] < MIN_INTERVAL_S):
            return torch.get_num_threads()
        wall, own, busy = (b - a for a, b in zip(self._last, now))
        self._last = now
        others = max(0.0, (busy - own) / wall) if wall > 0 else 0.0
        return self._set(choose_threads(self.cores, others), step, round(others, 2))

    def finish(self) -> None:
        """Give the process back the thread count it had: what runs after training is not ours
        to size."""
        import torch

        if self._before is not None:
            torch.set_num_threads(self._before)

    def summary(self) -> dict[str, Any]:
        return {
            "mode": "pinned" if self.pinned is not None else "auto",
            "usable_cores": self.cores,
            "changes": self.changes[:MAX_RECORDED],
            "n_changes": len(self.changes),
        }

    def _set(self, n: int, step: int, others: float | None) -> int:
        import torch

        if not self.changes or self.changes[-1]["threads"] != n:
            torch.set_num_threads(n)
            self.changes.append({"step": step, "threads": n, "others_busy_cores": others})
            log.info(
                "step %d: other processes busy on %s of %d cores: training on %d thread(s)",
                step,
                "?" if others is None else others,
                self.cores,
                n,
            )
        return n

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            busy = busy_seconds(PROC_STAT.read_text(), self._cpus, os.sysconf("SC_CLK_TCK"))
        except (OSError, ValueError, AttributeError):
            return None
        return None if busy is None else (time.perf_counter(), time.process_time(), busy)
