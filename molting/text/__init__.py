"""The text layer under every stage: normalization (`normalize`), the agent-talk patterns
(`patterns`, built from `grammar` by `matcher`, proved ReDoS-safe by `redos`) and Markdown
table cells (`markdown`). Imports nothing of molting's; every stage may import it."""
