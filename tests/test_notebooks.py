"""The notebooks: each runs top to bottom without error in well under 15 s, and is stored without outputs."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
#: The budget for one notebook, kernel start included: a workshop cannot wait longer.
BUDGET_SECONDS = 15.0


def _ids(path: Path) -> str:
    return path.stem


@pytest.mark.notebook
@pytest.mark.parametrize("path", PATHS, ids=_ids)
def test_notebook_runs_without_error_within_budget(path: Path) -> None:
    """The notebook executes in a fresh python3 kernel from notebooks/, with no error, within 15 s."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    stored = path.read_bytes()
    notebook = nbformat.reads(stored.decode("utf-8"), as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    errors = [
        f"cell {index}: {output.get('ename')}: {output.get('evalue')}"
        for index, cell in enumerate(notebook.cells)
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
    assert elapsed <= BUDGET_SECONDS, (
        f"{path.name} took {elapsed:.1f} s (budget {BUDGET_SECONDS:.0f} s)"
    )
    assert path.read_bytes() == stored, "executing must not write the notebook back"


def test_there_is_at_least_one_notebook() -> None:
    """notebooks/ holds the lessons; the parametrized tests above pick up each one."""
    assert PATHS, f"no notebooks in {NOTEBOOKS}"
    assert "01-certificates-and-thumbprints.ipynb" in [p.name for p in PATHS]


@pytest.mark.parametrize("path", PATHS, ids=_ids)
def test_notebook_is_stored_without_outputs_for_python3(path: Path) -> None:
    """Stored notebooks are nbformat 4, kernel python3, every code cell unexecuted (no outputs, no count)."""
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    assert notebook.nbformat == 4
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} has stored outputs"
            assert cell.execution_count is None, f"cell {index} has an execution count"


@pytest.mark.parametrize("path", PATHS, ids=_ids)
def test_notebook_defines_no_library_logic(path: Path) -> None:
    """Notebooks narrate library calls: no function or class is defined in a code cell."""
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        defined = [
            node.name
            for node in ast.walk(ast.parse(cell.source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        ]
        assert not defined, f"cell {index} defines {defined}; put logic in the library"
