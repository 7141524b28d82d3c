"""Errors a user can cause. The CLI prints them as one line each and exits non-zero."""

from __future__ import annotations


class MoltingError(Exception):
    """Base class: a problem the user can fix. `exit_code` is what the CLI exits with."""

    exit_code = 1


class DatasetError(MoltingError):
    """The dataset file is unreadable or malformed. Carries every problem found (capped by the
    CLI)."""

    exit_code = 2

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        first = self.problems[0] if self.problems else "invalid dataset"
        more = f" (and {len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
        super().__init__(first + more)


class ConfigError(MoltingError):
    """A config file or flag is invalid."""

    exit_code = 2


class ModelError(MoltingError):
    """A base model or adapter cannot be found or loaded."""

    exit_code = 3


class OutputError(MoltingError):
    """An output path cannot be written (exists, not writable, or is the input)."""

    exit_code = 4


class EvalError(MoltingError):
    """The evaluation cannot run (no adapter, empty prompt set, changed baseline)."""

    exit_code = 5


class MoltingWarning(UserWarning):
    """Not an error: something the user may want to know (the CLI prints it as one 'warning:'
    line)."""


# Not an error: `molting augment` wrote what passed, but fewer examples than asked for.
SHORTFALL_EXIT = 7


class GeneratorError(MoltingError):
    """A text generator cannot be used: SDK missing, API key missing or refused, server
    unreachable."""

    exit_code = 6
