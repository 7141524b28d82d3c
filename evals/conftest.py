"""`pytest evals/` is the acceptance gate; the plugin lives in molting.gate.plugin.

pytest finds hooks and fixtures by name in this module, so the plugin's are imported here.
"""

from molting.gate.plugin import (  # noqa: F401  (pytest hooks and the session-scoped `gate` fixture)
    gate,
    pytest_addoption,
    pytest_configure,
    pytest_generate_tests,
    pytest_report_header,
    pytest_sessionfinish,
    pytest_sessionstart,
    pytest_terminal_summary,
)
