"""`pytest evals/ --persona DIR …` is the acceptance gate in this repository: the same tests an
installed molting runs with `pytest --pyargs molting.gate` (the plugin is molting's pytest11
entry point; the tests live in molting/gate/test_persona_gate.py)."""

from molting.gate.test_persona_gate import *  # noqa: F401,F403
