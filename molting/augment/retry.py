"""Bounded retries with exponential backoff and seeded jitter, under a total request budget.

Every HTTP request counts, retries included: `--max-requests` is what the run may cost. A request
that keeps failing is given up after `max_attempts`; the run then moves on to the next one.

    >>> RetryPolicy(first_wait_s=1.0).wait(2, random.Random(0))   # 1 s · 2² · jitter 1.34
    5.3776874061001925
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from molting.augment.generators import Completion, TransientError
from molting.augment.prompts import Request
from molting.errors import ConfigError, GeneratorError


@dataclass(frozen=True)
class RetryPolicy:
    # one request and three retries: rides out a rate-limit burst, not an outage
    max_attempts: int = 4
    first_wait_s: float = 1.0  # doubles each retry …
    max_wait_s: float = 30.0  # … up to this (also caps a server's Retry-After)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.first_wait_s < 0 or self.max_wait_s < 0:
            raise ConfigError("retry policy: max_attempts ≥ 1 and non-negative waits, please.")

    def wait(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds before retry number `retry` (0-based): first_wait · 2^retry, jittered by a factor
        in [0.5, 1.5) (so clients that failed together do not retry together), at least the server's
        Retry-After, at most max_wait_s."""
        base = self.first_wait_s * (2**retry) * (0.5 + rng.random())
        return min(self.max_wait_s, max(base, retry_after or 0.0))


@dataclass
class Budget:
    """Total requests the run may make, retries included."""

    limit: int
    used: int = 0

    @property
    def left(self) -> int:
        return self.limit - self.used

    def take(self) -> bool:
        if self.used >= self.limit:
            return False
        self.used += 1
        return True


class BudgetExhausted(Exception):
    """The budget ran out before this request got an answer."""

    def __init__(self, attempts: int, last_error: str | None):
        super().__init__("request budget exhausted")
        self.attempts, self.last_error = attempts, last_error


class RequestFailed(Exception):
    """Every attempt of one request failed with a transient error."""

    def __init__(self, attempts: int, last: TransientError):
        super().__init__(str(last))
        self.attempts, self.last = attempts, last


@dataclass
class Caller:
    """Sends requests through a generator with retries, under a budget."""

    generator: object  # has .generate(Request) -> Completion, .answered, .where, .unreachable_hint
    budget: Budget
    policy: RetryPolicy
    seed: int = 0
    sleep: Callable[[float], None] = time.sleep
    waits: list[float] = field(default_factory=list)  # every backoff taken (facts for the summary)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"retry/{self.seed}")  # jitter: reproducible for a given seed

    def call(self, request: Request) -> tuple[Completion, int]:
        """(completion, attempts used). Raises BudgetExhausted, RequestFailed, or GeneratorError
        (fatal)."""
        last: TransientError | None = None
        for attempt in range(self.policy.max_attempts):
            if not self.budget.take():
                self._unreachable(last)
                raise BudgetExhausted(attempt, str(last) if last else None)
            if attempt:
                self._backoff(attempt - 1, last)
            try:
                return self.generator.generate(request), attempt + 1
            except TransientError as err:
                last = err
        self._unreachable(last)
        raise RequestFailed(self.policy.max_attempts, last)

    def _backoff(self, retry: int, last: TransientError | None) -> None:
        wait = self.policy.wait(retry, self.rng, last.retry_after if last else None)
        self.waits.append(wait)
        self.sleep(wait)

    def _unreachable(self, last: TransientError | None) -> None:
        """A server that never answered and refuses connections is a setup problem, not bad luck."""
        if last is not None and last.kind == "connection" and not self.generator.answered:
            raise GeneratorError(
                f"cannot reach {self.generator.where}: {str(last).rstrip('.')}. "
                f"{self.generator.unreachable_hint}"
            )
