"""Packaging: environment.yml agrees with pyproject.toml, every `__all__` is sorted and complete, py.typed ships."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import mtlslab

ROOT = Path(__file__).resolve().parent.parent
#: Subpackages whose import may fail for want of an optional extra (widgets: ipywidgets; live: the notebook/dev
#: tools). Any other module that fails to import is a failure.
OPTIONAL_SUBPACKAGES = ("mtlslab.widgets", "mtlslab.live")
#: Modules that are not imported here, and why.
NOT_IMPORTED = {"mtlslab.__main__": "running it is its only purpose (it calls main() on import)"}


def _pyproject() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        tomllib = pytest.importorskip(
            "tomli", reason="reading pyproject.toml on Python 3.10 needs tomli"
        )
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)


def _environment() -> dict[str, Any]:
    """environment.yml, read by a tiny line-based reader (the file is simple; no YAML dependency)."""
    data: dict[str, Any] = {"dependencies": [], "pip": []}
    section = None
    for raw in (ROOT / "environment.yml").read_text().splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        text = line.strip()
        if indent == 0:
            key, _, value = text.partition(":")
            section = key
            if value.strip():
                data[key] = value.strip()
            continue
        item = text.removeprefix("- ").strip()
        if section == "dependencies" and item == "pip:":
            data["dependencies"].append("pip:")
            section = "pip"
        elif section == "pip" and indent <= 2:
            section = "dependencies"
            data["dependencies"].append(item)
        elif section in ("dependencies", "pip", "channels"):
            data.setdefault(section, []).append(item)
    return data


# --------------------------------------------------------------------------------------------------
# environment.yml ↔ pyproject.toml


def test_environment_pins_a_python_that_pyproject_allows() -> None:
    """environment.yml pins python to one minor version, at or above pyproject's requires-python."""
    pins = [d for d in _environment()["dependencies"] if re.match(r"^python\s*[=<>]", d)]
    assert len(pins) == 1, pins
    match = re.fullmatch(r"python\s*=\s*(\d+)\.(\d+)(\.\*)?", pins[0])
    assert match, f"python should be pinned to a minor version, got {pins[0]!r}"
    floor = re.fullmatch(r">=\s*(\d+)\.(\d+)", _pyproject()["project"]["requires-python"])
    assert floor, "requires-python is expected to be a plain >= floor"
    pinned = (int(match[1]), int(match[2]))
    assert pinned >= (int(floor[1]), int(floor[2]))


def test_environment_lists_pip_and_installs_this_package_with_the_notebook_extra() -> None:
    """environment.yml lists pip and its pip section installs this package with its notebook extra."""
    env = _environment()
    assert "pip" in env["dependencies"]
    assert "pip:" in env["dependencies"]
    installs = [re.fullmatch(r"(?:-e\s+)?\.\[([\w,\s-]+)\]", item) for item in env["pip"]]
    extras = {extra.strip() for m in installs if m for extra in m[1].split(",")}
    assert "notebook" in extras, env["pip"]
    assert "notebook" in _pyproject()["project"]["optional-dependencies"]
    assert env["name"] == _pyproject()["project"]["name"]


def test_environment_reader_understands_the_file() -> None:
    """The line-based reader sees the sections the checks above rely on (guards the reader itself)."""
    env = _environment()
    assert env["channels"] == ["conda-forge"]
    assert env["pip"], "no pip section found"


def test_version_agrees_with_pyproject() -> None:
    """mtlslab.__version__ is the version pyproject.toml declares."""
    assert mtlslab.__version__ == _pyproject()["project"]["version"]


# --------------------------------------------------------------------------------------------------
# __all__


def _isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps `__all__` in: CONSTANTS, then Classes, then everything else."""
    if len(name) > 1 and name.isupper():
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


def _modules() -> list[str]:
    """Every module of the package, subpackages included (optional ones only if importable)."""
    names: list[str] = []

    def walk(package: types.ModuleType) -> None:
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            if info.name in NOT_IMPORTED:
                continue
            names.append(info.name)
            if info.ispkg:
                try:
                    sub = importlib.import_module(info.name)
                except ImportError:
                    if info.name in OPTIONAL_SUBPACKAGES:
                        continue
                    raise
                walk(sub)

    walk(mtlslab)
    return sorted(names)


def _import(name: str) -> types.ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if name.startswith(OPTIONAL_SUBPACKAGES):
            pytest.skip(f"{name} needs an optional dependency: {exc}")
        raise


def _defined_names(module: types.ModuleType) -> set[str]:
    """Public names a module defines at top level (def, class, assignment), not what it imports."""
    tree = ast.parse(inspect.getsource(module))
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return {n for n in names if not n.startswith("_")}


def test_the_module_walk_finds_the_foundation() -> None:
    """The generic walk below sees at least the foundation modules."""
    assert {"mtlslab.cli", "mtlslab.errors", "mtlslab.pki", "mtlslab.tokens"} <= set(_modules())


@pytest.mark.parametrize("name", ["mtlslab", *_modules()])
def test_all_is_sorted_unique_and_resolvable(name: str) -> None:
    """Every module has an `__all__`, sorted as ruff sorts it, without duplicates, naming only what exists."""
    module = _import(name)
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, list), f"{name} has no __all__ list"
    assert exported == sorted(exported, key=_isort_key), (
        f"{name}.__all__ is not sorted (RUF022 order)"
    )
    assert len(exported) == len(set(exported)), f"{name}.__all__ has duplicates"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what does not exist: {missing}"


@pytest.mark.parametrize("name", _modules())
def test_all_lists_every_public_name_the_module_defines(name: str) -> None:
    """Every public top-level name a module defines is in its `__all__` (imported modules excluded)."""
    module = _import(name)
    defined = {
        n
        for n in _defined_names(module)
        if not isinstance(getattr(module, n, None), types.ModuleType)
    }
    unlisted = sorted(defined - set(getattr(module, "__all__", ())))
    assert not unlisted, f"{name} defines public names missing from __all__: {unlisted}"


def test_package_all_lists_what_it_reexports() -> None:
    """The package re-exports its most used names, and lists every public one it imports in `__all__`."""
    tree = ast.parse(inspect.getsource(mtlslab))
    imported = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mtlslab")
        for alias in node.names
    }
    assert imported <= set(mtlslab.__all__)
    assert "__version__" in mtlslab.__all__


# --------------------------------------------------------------------------------------------------
# Shipping


def test_py_typed_is_shipped() -> None:
    """The package carries py.typed (PEP 561) and the wheel target includes the package directory."""
    assert (Path(mtlslab.__file__).parent / "py.typed").is_file()
    assert _pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["mtlslab"]


def test_console_script_points_at_the_cli() -> None:
    """The `mtlslab` console script resolves to mtlslab.cli.main."""
    target = _pyproject()["project"]["scripts"]["mtlslab"]
    module, _, attribute = target.partition(":")
    from mtlslab.cli import main

    assert getattr(importlib.import_module(module), attribute) is main


def test_python_m_mtlslab_help_works() -> None:
    """`python -m mtlslab --help` exits 0 and lists the foundation subcommands."""
    done = subprocess.run(
        [sys.executable, "-m", "mtlslab", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: mtlslab")
    for command in ("certs", "token", "jwks"):
        assert command in done.stdout
