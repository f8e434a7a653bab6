"""benchmarks/run.py: runs to the end and reports each cost as a ratio against its baseline (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mtlslab.compare import Simulator
from mtlslab.interpretations import BUILTINS
from mtlslab.scenarios import get_scenario

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
FOUNDATION = {"ca_and_client", "seeded_lab", "mint_token"}
#: The engine's targets (issue 3), and the rows that say where the cost of the targeted ones comes from.
ENGINE_TARGETS = {"one_scenario_all_interpretations": 1.2, "whole_matrix": 1.5}
ENGINE_BREAKDOWN = {
    "one_scenario_all_interpretations_cold",
    "one_scenario_one_reading",
    "one_scenario_one_configuration",
    "whole_matrix_realised",
}


def test_quick_json_run_reports_positive_ratios() -> None:
    """`run.py --quick --json` completes and reports, per result, positive times and their ratio."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["settings"]["samples"] > 0
    results = {r["name"]: r for r in report["results"]}
    assert set(results) >= FOUNDATION
    for name, result in results.items():
        for key in ("section", "what", "baseline"):
            assert result[key], (name, key)
        for key in ("mtlslab_s", "baseline_s", "ratio"):
            assert result[key] > 0, (name, key)
        assert abs(result["ratio"] - result["mtlslab_s"] / result["baseline_s"]) < 1e-9
    assert results["ca_and_client"]["target"] == 1.0
    assert "trustme" in results["ca_and_client"]["baseline"]
    for name, target in ENGINE_TARGETS.items():
        assert results[name]["target"] == target, name
    for name in ENGINE_BREAKDOWN:
        assert results[name]["section"] == "engine", name
        assert results[name]["target"] is None, name
    # the row names the built-ins that share the baseline's decision for 'success', and the others
    sim = Simulator(seed="benchmark")
    scenario = get_scenario("success")
    decisions = {name: sim.decide(scenario, interp)[1] for name, interp in BUILTINS.items()}
    sharing = [name for name, d in decisions.items() if d is decisions["baseline"]]
    others = len({id(d) for d in decisions.values()}) - 1
    assert 1 < len(sharing) < len(BUILTINS)
    assert others > 0
    what = results["one_scenario_one_configuration"]["what"]
    assert (
        f"the {len(sharing)} built-ins that share the baseline's resource-server configuration"
        in what
    )
    assert (
        f"the other {len(BUILTINS) - len(sharing)} built-ins bring {others} more configurations"
        in what
    )
