"""The core's layering (design.md): pure modules, one-way imports, the edges built on top."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import mtlslab

PACKAGE = Path(mtlslab.__file__).parent

#: The core in import order: a module may import only modules of a strictly lower rank.
RANK = {
    "errors": 0,
    "spec": 1,
    "findings": 2,
    "challenge": 2,
    "pki": 3,
    "tokens": 4,
    "tls": 5,
    "scenarios": 6,
    "jose": 7,
    "rs": 8,
    "interpretations": 9,
    "compare": 10,
}
CORE = sorted(RANK)
EDGES = ("mtlslab.live", "mtlslab.widgets", "mtlslab.cli")

#: Never loaded by importing the core: servers, event loops, widgets, the edges.
FORBIDDEN_LOADED = (
    "socketserver",
    "http.server",
    "asyncio",
    "ipywidgets",
    "IPython",
    "OpenSSL",
    "h11",
    *EDGES,
)
#: Never imported by a core module's own code at run time (annotations under TYPE_CHECKING are fine).
FORBIDDEN_IMPORTS = (
    "ssl",
    "socket",
    "socketserver",
    "http.server",
    "http.client",
    "asyncio",
    "selectors",
    "threading",
    "OpenSSL",
    "ipywidgets",
    "IPython",
)


def imports_of(module: str) -> list[tuple[str, bool]]:
    """Every module ``mtlslab.<module>`` imports, with whether the import is under TYPE_CHECKING."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded |= {id(n) for child in node.body for n in ast.walk(child)}
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in guarded) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in guarded))
            if node.module == "mtlslab":
                found += [(f"mtlslab.{alias.name}", id(node) in guarded) for alias in node.names]
    return found


def test_importing_the_core_loads_no_server_loop_widget_or_edge() -> None:
    """In a fresh interpreter, the whole core imports without socket servers, asyncio, widgets or edges."""
    code = (
        "import json, sys\n"
        + "".join(f"import mtlslab.{m}\n" for m in CORE)
        + "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(done.stdout))
    assert {f"mtlslab.{m}" for m in CORE} <= loaded
    bad = sorted(
        name
        for name in loaded
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_LOADED)
    )
    assert bad == []


@pytest.mark.parametrize("module", CORE)
def test_core_modules_import_no_network_or_ui_code_at_run_time(module: str) -> None:
    """No core module imports ssl, socket, servers, threads or widgets itself (pyjwt's own imports aside)."""
    runtime = [name for name, guarded in imports_of(module) if not guarded]
    bad = [n for n in runtime if any(n == f or n.startswith(f + ".") for f in FORBIDDEN_IMPORTS)]
    assert bad == []


@pytest.mark.parametrize("module", CORE)
def test_imports_go_one_way_down_the_chain(module: str) -> None:
    """pki → tokens → scenarios/tls → jose → rs → interpretations → compare: nothing imports a later one."""
    for name, _guarded in imports_of(module):
        if not name.startswith("mtlslab"):
            continue
        assert not name.startswith(EDGES), (module, name)
        target = name.removeprefix("mtlslab").removeprefix(".").split(".")[0]
        if not target:
            continue
        assert target in RANK, f"mtlslab.{module} imports {name}, which is not part of the core"
        assert RANK[target] < RANK[module], f"mtlslab.{module} imports later mtlslab.{target}"


def test_the_package_root_imports_only_the_foundation() -> None:
    """`import mtlslab` pulls in errors, pki and tokens at run time, never the engine's later layers or the
    edges; the engine's front-door names are imported when first used."""
    found = {
        name
        for name, guarded in imports_of("__init__")
        if name.startswith("mtlslab") and not guarded
    }
    assert found <= {"mtlslab.errors", "mtlslab.pki", "mtlslab.tokens"}
    code = (
        "import json, sys\nimport mtlslab\nbefore = sorted(sys.modules)\n"
        "from mtlslab import Simulator, evaluate, BUILTINS, get_scenario, Lab\n"
        "print(json.dumps([before, sorted(sys.modules)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    before, after = json.loads(done.stdout)
    assert "mtlslab.compare" not in before
    assert "mtlslab.rs" not in before
    assert {"mtlslab.compare", "mtlslab.rs", "mtlslab.scenarios"} <= set(after)


def test_the_front_door_names_are_the_modules_own() -> None:
    """Every name the root lists in __all__ resolves, and the engine's are the very objects of their modules."""
    import mtlslab.compare
    import mtlslab.interpretations
    import mtlslab.rs
    import mtlslab.scenarios

    assert all(hasattr(mtlslab, name) for name in mtlslab.__all__)
    assert mtlslab.Simulator is mtlslab.compare.Simulator
    assert mtlslab.evaluate is mtlslab.rs.evaluate
    assert mtlslab.BUILTINS is mtlslab.interpretations.BUILTINS
    assert mtlslab.get_scenario is mtlslab.scenarios.get_scenario
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = mtlslab.nothing
