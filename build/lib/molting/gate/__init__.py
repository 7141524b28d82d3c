"""The persona acceptance gate (a pytest plugin: molting.gate.plugin)."""

BLESSED = "blessed_baseline.json"  # the candidate's stored per-sample scores (--update-baseline)
DEFAULT_ADAPTER = "output/phase5-curated"  # the seed's output path
