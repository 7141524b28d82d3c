"""`make demo`'s own plumbing: the README block that mirrors reports/DEMO.md."""

from __future__ import annotations

from molting.demo import README_BEGIN, README_END, update_readme

DEMO = "# make demo\n\nRun 2026-01-01 on x86_64: **1.0 min**.\n\n## Gate verdict\n\n**FAIL** — 1 of 2.\n"


def test_readme_block_mirrors_the_demo_report_and_is_idempotent(tmp_path):
    demo, readme = tmp_path / "DEMO.md", tmp_path / "README.md"
    demo.write_text(DEMO, encoding="utf-8")
    readme.write_text(f"# x\n\n{README_BEGIN}\nold numbers\n{README_END}\n\n## After\n", encoding="utf-8")
    assert update_readme(demo, readme)
    first = readme.read_text(encoding="utf-8")
    assert "old numbers" not in first and "**1.0 min**" in first and "### Gate verdict" in first
    assert first.endswith(f"{README_END}\n\n## After\n") and "# make demo" not in first
    assert update_readme(demo, readme) and readme.read_text(encoding="utf-8") == first


def test_a_readme_without_markers_is_left_alone(tmp_path):
    demo, readme = tmp_path / "DEMO.md", tmp_path / "README.md"
    demo.write_text(DEMO, encoding="utf-8")
    readme.write_text("# mine\n", encoding="utf-8")
    assert not update_readme(demo, readme) and readme.read_text(encoding="utf-8") == "# mine\n"
