"""The README's generated sections (the debate rows, findings, interpretations, tokens) are up to date."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parent.parent / "tools" / "readme.py"


def _load_tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("mtlslab_readme_tool", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_readme_generated_sections_are_fresh() -> None:
    """Regenerating every marked section of README.md changes nothing (run tools/readme.py if it fails)."""
    tool = _load_tool()
    current = tool.README.read_text(encoding="utf-8")
    assert tool.render(current) == current, "README.md is stale: run python tools/readme.py"


def test_readme_has_every_generated_section_and_the_two_commands() -> None:
    """Every generator has its markers in the README, and the quick start is the two make commands."""
    tool = _load_tool()
    text = tool.README.read_text(encoding="utf-8")
    for name in tool.SECTIONS:
        assert f"<!-- generated:{name} -->" in text
        assert f"<!-- end:{name} -->" in text
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = [
        line.split("#")[0].strip() for line in quick.splitlines() if line.startswith("make ")
    ]
    assert commands == ["make lab", "make test"]


def test_every_python_block_in_the_readme_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ```python block of the README runs as shown, in a fresh namespace (files it writes land in a
    temporary folder): a reader who pastes it meets no error."""
    import re

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})  # noqa: S102 - our own README
    saved = json.loads((tmp_path / "forbid-missing.json").read_text())
    assert saved["answers"]["certificate_missing"]["status"] == 403
