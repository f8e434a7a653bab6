"""mtlslab.compare: the scenarios × interpretations matrix, its questions and its exports."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import html
import io
import json
from collections import Counter

import pytest

from mtlslab import compare, jose, rs, tls
from mtlslab.compare import Cell, Matrix, Simulator
from mtlslab.errors import InterpretationError, ScenarioError
from mtlslab.findings import Finding
from mtlslab.interpretations import BUILTINS, Answer, derive
from mtlslab.pki import Lab
from mtlslab.scenarios import CATALOGUE, ClientAuth, Deployment, Request, Scenario, get_scenario

F = Finding


def test_every_scenario_evaluates_under_every_builtin(matrix: Matrix) -> None:
    """The matrix has one cell per catalogue scenario and built-in, each with a finding and an outcome."""
    assert len(matrix.scenarios) == len(CATALOGUE)
    assert [i.name for i in matrix.interpretations] == list(BUILTINS)
    assert len(matrix.cells) == len(CATALOGUE) * len(BUILTINS)
    for (scenario, interpretation), cell in matrix.cells.items():
        assert (cell.scenario, cell.interpretation) == (scenario, interpretation)
        assert cell.outcome.finding is cell.finding
        assert (cell.outcome.tls_alert is None) is (cell.outcome.status is not None)
    assert repr(matrix) == f"<Matrix {len(CATALOGUE)} scenarios × {len(BUILTINS)} interpretations>"


def test_a_simulator_row_decides_once_per_resource_server_configuration(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulator.row gives exactly the cells cell() gives, in order. Readings that run the same resource server
    share its decision and its trace, so 'success' under all built-ins takes one evaluation per distinct
    configuration — fewer than the number of readings — one signature check, and one validation of the client's
    chain however many ways the readings ask for it."""
    scenario = get_scenario("success")
    fresh = Simulator(sim.lab, asrv=sim.asrv)
    evaluations: list[rs.RsConfig] = []

    def counting(request: Request, config: rs.RsConfig, *, now: dt.datetime) -> rs.Decision:
        evaluations.append(config)
        return rs.evaluate(request, config, now=now)

    monkeypatch.setattr("mtlslab.compare.evaluate", counting)
    jose.verify_jws.cache_clear()
    jose._read_proof.cache_clear()
    tls._chain_verdict.cache_clear()
    row = fresh.row(scenario)
    assert jose.verify_jws.cache_info().misses == 1
    assert tls._chain_verdict.cache_info().misses == 1
    assert len({i.adapt(scenario.deployment).client_auth for i in BUILTINS.values()}) > 1
    assert len(evaluations) == len(set(evaluations)) < len(BUILTINS)
    assert row == tuple(sim.cell(scenario, i) for i in BUILTINS.values())
    traces: dict[object, set[int]] = {}
    for interpretation, cell in zip(BUILTINS.values(), row, strict=True):
        traces.setdefault(interpretation.deployment, set()).add(id(cell.trace))
    assert all(len(ids) == 1 for ids in traces.values())
    assert fresh.row(scenario, [BUILTINS["thread-401"]]) == (
        sim.cell(scenario, BUILTINS["thread-401"]),
    )


def test_rows_columns_and_cells_are_addressable(matrix: Matrix) -> None:
    """row() is in column order, column() in row order, cell() refuses unknown coordinates."""
    assert [c.interpretation for c in matrix.row("mismatch")] == list(BUILTINS)
    assert [c.scenario for c in matrix.column("baseline")] == [s.id for s in CATALOGUE]
    with pytest.raises(ScenarioError) as info:
        matrix.cell("mismatch", "nobody")
    assert info.value.field == "cell"


def test_a_cell_explains_its_trace_and_raw_http(matrix: Matrix) -> None:
    """explain() shows each step with its clause, the finding, the answer and the raw HTTP response."""
    text = matrix.cell("no-cert-optional", "thread-400").explain()
    assert "[RFC 8705 §3]" in text
    assert "→ finding: certificate_missing" in text
    assert "→ thread-400 answers: 400 invalid_request" in text
    assert "HTTP/1.1 400 Bad Request\r\n" in text


def test_the_tls_trace_comes_first_and_the_deployment_is_the_interpretations(
    matrix: Matrix,
) -> None:
    """A cell's trace starts with the TLS step; tls-required runs the scenario with certificates required."""
    cell = matrix.cell("no-cert-optional", "tls-required")
    assert cell.trace[0].check == "TLS client certificate"
    assert cell.deployment is not None
    assert cell.deployment.client_auth is ClientAuth.REQUIRED
    assert len(cell.trace) == 1
    assert (
        matrix.cell("no-cert-optional", "baseline").deployment
        == get_scenario("no-cert-optional").deployment
    )


# --------------------------------------------------------------------------------------------------
# Questions: disagreements, consensus, majority, summary.


def test_disagreements_compare_verdicts_and_strictly_every_byte(matrix: Matrix) -> None:
    """Readings agree on status and error; strict=True also compares descriptions, realms and bodies."""
    same_verdict = matrix.select(
        scenarios=["mismatch", "required-no-cert-tls13"],
        interpretations=["baseline", "thread-401", "keycloak", "spring-security"],
    )
    assert same_verdict.disagreements().scenarios == ()
    assert [s.id for s in same_verdict.disagreements(strict=True).scenarios] == ["mismatch"]
    debate = matrix.disagreements()
    ids = {s.id for s in debate.scenarios}
    assert {"no-cert-optional", "proxy-no-cert", "forged-client-cert"} <= ids
    assert "required-no-cert-tls13" not in ids
    assert debate.interpretations == matrix.interpretations
    assert [s.id for s in debate.scenarios] == [s.id for s in matrix.scenarios if s.id in ids]


def test_differences_name_the_scenarios_where_another_reading_answers_otherwise(
    matrix: Matrix,
) -> None:
    """thread-400 and thread-401 part on the missing certificate and nowhere on the mismatch; every other
    reading is listed, in column order, and the lists are exactly the verdict comparisons."""
    found = matrix.differences("thread-400")
    assert list(found) == [i.name for i in matrix.interpretations if i.name != "thread-400"]
    assert "no-cert-optional" in found["thread-401"]
    assert "mismatch" not in found["thread-401"]
    for other, ids in found.items():
        assert ids == tuple(
            s.id
            for s in matrix.scenarios
            if matrix.cell(s.id, other).outcome.verdict
            != matrix.cell(s.id, "thread-400").outcome.verdict
        )
    pair = matrix.select(interpretations=["baseline", "thread-401"])
    assert pair.differences("baseline") == {
        "thread-401": tuple(s.id for s in pair.disagreements().scenarios)
    }
    with pytest.raises(InterpretationError, match="not in this matrix"):
        matrix.differences("no-such-reading")


def test_consensus_is_the_shared_verdict_or_none(matrix: Matrix) -> None:
    """Every reading aborts the TLS 1.3 handshake alike; nobody agrees on the missing certificate."""
    assert matrix.consensus("required-no-cert-tls13") == ("tls", "certificate_required")
    assert matrix.consensus("required-no-cert-tls12") == ("tls", "handshake_failure")
    assert matrix.consensus("no-cert-optional") is None


def test_the_majority_lets_unspecified_cells_abstain(matrix: Matrix) -> None:
    """On the missing certificate, 401 invalid_token wins (more votes than any other verdict); the
    baseline's unspecified cell abstains."""
    verdict, votes, voters = matrix.majority("no-cert-optional")
    assert verdict == ("401", "invalid_token")
    assert voters == len(BUILTINS) - 2  # the baseline and its no-CA twin abstain
    tally = Counter(
        c.outcome.verdict for c in matrix.row("no-cert-optional") if not c.outcome.unspecified
    )
    assert tally[verdict] == votes
    assert all(n < votes for other, n in tally.items() if other != verdict)
    everyone = matrix.majority("no-cert-optional", exclude_unspecified=False)
    assert everyone[2] == len(BUILTINS)
    only_baseline = matrix.select(interpretations=["baseline"])
    assert only_baseline.majority("no-cert-optional") == (("",), 0, 0)
    assert matrix.majority("success") == (("200", ""), len(BUILTINS) - 1, len(BUILTINS))


def test_the_summary_counts_per_interpretation(matrix: Matrix) -> None:
    """One row per interpretation: cells, agreement with the majority, unspecified, assumed, security."""
    rows = {row["interpretation"]: row for row in matrix.summary()}
    assert list(rows) == list(BUILTINS)
    for name, row in rows.items():
        column = matrix.column(name)
        assert row["cells"] == len(CATALOGUE)
        assert row["unspecified"] == sum(c.outcome.unspecified for c in column)
        assert row["assumed"] == sum(c.outcome.assumed for c in column)
        assert sum(row["statuses"].values()) == len(CATALOGUE)
        assert 0 <= row["agrees_with_majority"] <= len(CATALOGUE)
    assert rows["baseline"]["unspecified"] > 0
    assert rows["thread-401"]["unspecified"] == 0
    assert rows["keycloak"]["assumed"] > 0
    assert rows["baseline"]["assumed"] == 0
    assert (
        rows["auth0-default"]["accepted_although_bound"]
        > rows["baseline"]["accepted_although_bound"]
    )
    assert any(key.startswith("TLS ") for key in rows["tls-required"]["statuses"])


def test_let_through_names_who_serves_each_attack(matrix: Matrix) -> None:
    """let_through(): every attack scenario → the interpretations answering 2xx, in column order."""
    through = matrix.let_through()
    assert list(through) == [s.id for s in matrix.scenarios if "attack" in s.tags]
    for scenario_id, names in through.items():
        served = [
            c.interpretation
            for c in matrix.row(scenario_id)
            if c.outcome.status is not None and 200 <= c.outcome.status < 300
        ]
        if "response-splitting" not in get_scenario(scenario_id).tags:
            assert names == served, scenario_id
    assert through["alg-none"] == []  # nobody accepts a forgery
    assert through["huge-token"] == []
    assert through["mismatch"] == ["auth0-default"]  # the SDK's default ignores cnf
    assert "tls-required" not in through["binding-ignored-no-cert"]  # the TLS layer stops it
    assert "baseline" in through["binding-ignored-mismatch"]
    passes = through["proxy-passes-client-cert"]
    assert "baseline" in passes
    assert "spring-security" not in passes  # it trusts no forwarded certificate by default
    assert "tls-required" not in passes
    # any tag works; the DPoP analogy wants its MTLS scheme for bound tokens, so it refuses Bearer
    assert matrix.let_through(tag="control")["success"] == [
        n for n in BUILTINS if n != "dpop-analogy"
    ]


def test_a_response_splitting_attack_gets_through_only_by_splitting_the_answer(
    matrix: Matrix,
) -> None:
    """non-ascii-subject is served by nearly everyone — correctly: it gets through only if a header holds
    CR, LF or NUL, which no built-in lets happen; a forged outcome with one would count."""
    assert matrix.cell("non-ascii-subject", "baseline").outcome.status == 200
    assert matrix.let_through()["non-ascii-subject"] == []
    cell = matrix.cell("non-ascii-subject", "baseline")
    split = dataclasses.replace(
        cell, outcome=dataclasses.replace(cell.outcome, content_type="text/plain\r\nX-Injected: 1")
    )
    forged = Matrix(
        scenarios=(get_scenario("non-ascii-subject"),),
        interpretations=(BUILTINS["baseline"],),
        cells={("non-ascii-subject", "baseline"): split},
    )
    assert forged.let_through() == {"non-ascii-subject": ["baseline"]}


def test_select_by_tags_and_names(matrix: Matrix) -> None:
    """select(tags=…) keeps scenarios with every tag; interpretation names keep their given order."""
    sub = matrix.select(tags=["proxy", "attack"], interpretations=["auth0", "baseline"])
    assert all({"proxy", "attack"} <= set(s.tags) for s in sub.scenarios)
    assert [i.name for i in sub.interpretations] == ["auth0", "baseline"]
    assert len(sub.cells) == len(sub.scenarios) * 2
    with pytest.raises(InterpretationError) as info:
        matrix.select(interpretations=["nobody"])
    assert "nobody" in info.value.reason


# --------------------------------------------------------------------------------------------------
# Exports.


def test_the_text_table_fits_72_columns(matrix: Matrix) -> None:
    """The Internet-Draft table: no line wider than 72 columns, every scenario and column listed."""
    text = matrix.to_text()
    assert max(len(line) for line in text.splitlines()) <= 72
    for scenario in CATALOGUE:
        label = scenario.id if len(scenario.id) <= 28 else scenario.id[:27] + "~"
        assert any(line.startswith(label) for line in text.splitlines())
    for n, name in enumerate(BUILTINS, start=1):
        assert f"[{n}] {name}:" in text
    assert "TLS 116" in text
    assert (
        "401 ??*" in text
    )  # the baseline's missing certificate: an error whose code is unspecified
    assert "401 IT+" in text  # the DPoP analogy's Bearer rows, marked (issue 14)
    narrow = matrix.select(scenarios=["mismatch"]).to_text(width=60)
    assert max(len(line) for line in narrow.splitlines()) <= 60


def test_the_markdown_table_has_a_row_per_scenario(matrix: Matrix) -> None:
    """Markdown: a header, a rule, one row per scenario with one cell per interpretation, then a legend."""
    lines = matrix.to_markdown().splitlines()
    assert lines[0].startswith("| scenario | `baseline` |")
    assert lines[1] == "|---|" + "---|" * len(BUILTINS)
    rows = [line for line in lines[2:] if line.startswith("| `")]
    assert len(rows) == len(CATALOGUE)
    for scenario, row in zip(CATALOGUE, rows, strict=True):
        assert row.startswith(f"| `{scenario.id}` — ")
        assert row.count(" | ") == len(BUILTINS)
    assert "*(unspecified)*" in matrix.to_markdown()
    assert "Sources:" in lines[-1]
    assert "Sources:" not in matrix.to_markdown(legend=False)


def test_the_csv_has_one_record_per_cell(matrix: Matrix) -> None:
    """CSV (long format) parses with the csv module: a header and one record per cell, bodies quoted."""
    records = list(csv.DictReader(io.StringIO(matrix.to_csv())))
    assert len(records) == len(matrix.cells)
    first = records[0]
    assert list(first) == [
        "scenario",
        "interpretation",
        "finding",
        "tls_alert",
        "tls_alert_code",
        "status",
        "error",
        "www_authenticate",
        "content_type",
        "body",
        "unspecified",
        "assumed",
    ]
    for record in records:
        cell = matrix.cell(record["scenario"], record["interpretation"])
        assert record["finding"] == cell.finding.value
        assert record["body"] == cell.outcome.body
        assert record["www_authenticate"] == (cell.outcome.www_authenticate or "")
        if cell.outcome.tls_alert:
            assert int(record["tls_alert_code"]) == cell.outcome.tls_alert.code
        else:
            assert int(record["status"]) == cell.outcome.status


def test_the_json_round_trips_to_an_equal_matrix(matrix: Matrix) -> None:
    """to_json → from_json gives an equal matrix; a changed cell makes it unequal."""
    loaded = Matrix.from_json(matrix.to_json())
    assert loaded == matrix
    assert loaded.to_json() == matrix.to_json()
    data = json.loads(matrix.to_json())
    data["cells"][0]["outcome"]["status"] = 599
    assert Matrix.from_json(json.dumps(data)) != matrix
    with pytest.raises(ScenarioError) as info:
        Matrix.from_json('{"scenarios": []}')
    assert info.value.field == "matrix"


def test_the_json_has_the_documented_shape(matrix: Matrix) -> None:
    """scenarios {id, tags, description}, interpretations {name, stance, source}, cells {…, outcome}."""
    data = json.loads(matrix.to_json())
    assert [s["id"] for s in data["scenarios"]] == [s.id for s in CATALOGUE]
    for scenario in data["scenarios"]:
        assert {"id", "tags", "description"} <= set(scenario)
        assert isinstance(scenario["tags"], list)
    for interpretation in data["interpretations"]:
        assert {"name", "stance", "source"} <= set(interpretation)
        assert {"kind", "citation", "url"} <= set(interpretation["source"])
    assert len(data["cells"]) == len(matrix.cells)
    for cell in data["cells"]:
        assert {"scenario", "interpretation", "finding", "outcome"} <= set(cell)
        outcome = cell["outcome"]
        assert {"tls_alert", "status", "www_authenticate", "error", "body"} <= set(outcome)
        alert = outcome["tls_alert"]
        if alert is None:
            assert isinstance(outcome["status"], int)
        else:
            assert {"name", "code"} <= set(alert)
            assert outcome["status"] is None
    tls = next(c for c in data["cells"] if c["scenario"] == "required-no-cert-tls13")
    assert tls["outcome"]["tls_alert"]["name"] == "certificate_required"
    assert tls["outcome"]["tls_alert"]["code"] == 116


def test_a_cell_round_trips_with_its_trace(matrix: Matrix) -> None:
    """Cell.to_json/from_json keep the finding, the outcome and each step with its clause."""
    cell = matrix.cell("mismatch", "spring-security")
    loaded = Cell.from_json(json.loads(json.dumps(cell.to_json())))
    assert (loaded.finding, loaded.outcome) == (cell.finding, cell.outcome)
    assert [(s.check, s.clause.label, s.clause.url, s.passed) for s in loaded.trace] == [
        (s.check, s.clause.label, s.clause.url, s.passed) for s in cell.trace
    ]
    assert loaded.trace == cell.trace  # each clause the table's own, title and all


def test_the_html_is_a_plain_table_escaped_and_marked(sim: Simulator) -> None:
    """_repr_html_ is a plain table (the colours are the widgets'), escapes scenario titles and
    interpretation names, and marks an answer the RFCs leave unspecified with '*'."""
    evil = get_scenario("no-cert-optional").with_(id="evil", title="<script>alert(1)</script>")
    mine = derive(
        BUILTINS["baseline"],
        name="<img src=x onerror=alert(1)>",
        answers={F.CERTIFICATE_MISSING: Answer(status=403, scheme=None)},
    )
    matrix = sim.matrix([evil], [BUILTINS["thread-400"], mine, BUILTINS["baseline"]])
    page = matrix._repr_html_()
    assert "<script>" not in page
    assert "<img" not in page
    assert "&lt;script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "background" not in page
    assert "<table" in page
    assert matrix.cell("evil", "baseline").outcome.unspecified
    assert f"{html.escape(matrix.cell('evil', 'baseline').outcome.summary())}*</td>" in page
    assert f"{html.escape(matrix.cell('evil', 'thread-400').outcome.summary())}</td>" in page


# --------------------------------------------------------------------------------------------------
# Cost: signatures once per token.


def test_a_lab_with_an_intermediate_ca_gets_the_same_findings_everywhere() -> None:
    """Whether the client certificates come from the root or from an intermediate CA (which the client
    sends along) changes no cell's finding: every check that validates a chain gets the intermediates."""
    plain = Simulator(Lab(seed="intermediate-twin")).matrix()
    deeper = Simulator(Lab(seed="intermediate-twin", intermediate=True)).matrix()
    differing = [
        (c.scenario, c.interpretation, c.finding, deeper.cell(c.scenario, c.interpretation).finding)
        for c in plain.cells.values()
        if c.finding is not deeper.cell(c.scenario, c.interpretation).finding
    ]
    assert differing == []


def test_the_simulators_exchanges_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each scenario is realised once, and the simulator keeps the latest 1,024 (the explorer composes a
    new scenario for every value typed): a scenario let go is realised again when met again."""
    made: list[Scenario] = []

    def realize(scenario: Scenario, *_: object, **__: object) -> object:
        made.append(scenario)
        return scenario

    monkeypatch.setattr(compare, "realize", realize)
    fresh = Simulator(seed="mtlslab-compare-bound")
    base = get_scenario("success")
    many = [base.with_(id=f"s{i}") for i in range(1030)]
    for scenario in [*many, many[-1]]:
        fresh.exchange(scenario)
    assert len(made) == 1030
    assert list(fresh._exchanges) == many[6:]
    fresh.exchange(many[0])
    assert len(made) == 1031


def test_signatures_are_verified_once_per_token_across_the_matrix() -> None:
    """Across the whole matrix, JWS verification runs at most once per distinct token string."""
    fresh = Simulator(seed="mtlslab-compare-cache-probe")
    before = jose.verify_jws.cache_info()
    full = fresh.matrix()
    after = jose.verify_jws.cache_info()
    tokens = {
        fresh.exchange(s, i).token.value for s in full.scenarios for i in full.interpretations
    }
    misses = after.misses - before.misses
    assert 0 < misses <= len(tokens)
    assert after.hits - before.hits > 0


def test_decisions_are_shared_between_interpretations_with_one_deployment(sim: Simulator) -> None:
    """In a row, interpretations that deploy a scenario alike share one decision and its trace; a scenario
    is realised once."""
    scenario = get_scenario("mismatch")
    names = ("baseline", "keycloak", "dpop-analogy")
    baseline, keycloak, analogy = sim.row(scenario, [BUILTINS[n] for n in names])
    assert baseline.trace is keycloak.trace
    assert analogy.trace is not baseline.trace
    assert sim.exchange(scenario) is sim.exchange(scenario)


def test_an_edited_reading_with_the_same_name_is_not_served_from_the_cache(sim: Simulator) -> None:
    """The simulator keys its caches by what an interpretation changes, not by its name."""
    from mtlslab.interpretations import BUILTINS, derive
    from mtlslab.scenarios import get_scenario

    scenario = get_scenario("no-cert-optional")
    lax = derive(BUILTINS["baseline"], name="edited")
    strict = derive(
        BUILTINS["baseline"], name="edited", deployment={"client_auth": "required-as-deployed"}
    )
    assert sim.cell(scenario, lax).outcome.status == 401
    assert sim.cell(scenario, strict).outcome.tls_alert is not None


def test_the_metadata_url_keeps_the_resources_path(sim: Simulator) -> None:
    """RFC 9728 §3.1: the well-known segment goes between the host and the resource identifier's path, so a
    resource with a path has its metadata under that path; the lab's audience has none (the control)."""
    from mtlslab.compare import lab_configs
    from mtlslab.scenarios import Deployment
    from mtlslab.tokens import AuthorizationServer

    deployment = Deployment(resource_metadata=True)
    plain = lab_configs(sim.lab, sim.asrv)(deployment).resource_metadata
    assert plain == "https://rs.mtlslab.test/.well-known/oauth-protected-resource"
    pathed = AuthorizationServer(sim.lab, audience="https://api.example.test/tenant/a/")
    assert lab_configs(sim.lab, pathed)(deployment).resource_metadata == (
        "https://api.example.test/.well-known/oauth-protected-resource/tenant/a"
    )


def test_a_dpop_row_reads_its_proof_once(sim: Simulator) -> None:
    """RFC 9449 §4.3 checks 2-7 depend on the proof alone: a row whose readings evaluate the same DPoP proof
    many times reads and verifies it once, and the cells say what a fresh simulator says."""
    scenario = get_scenario("dpop-success")
    fresh = Simulator(sim.lab, asrv=sim.asrv)
    jose._read_proof.cache_clear()
    row = fresh.row(scenario)
    assert jose._read_proof.cache_info().misses == 1
    assert jose._read_proof.cache_info().hits >= 1
    assert row == tuple(sim.cell(scenario, i) for i in BUILTINS.values())


def test_readings_share_a_decision_only_where_it_was_made_from_fields_they_agree_on(
    sim: Simulator,
) -> None:
    """A decision names the configuration fields it was made from, and a row shares it with every reading
    whose server agrees on those fields: across the whole catalogue the row gives exactly the cells each
    reading gives alone, while the servers that differ only in a field nobody consulted (a query-token
    rule for a request without one) evaluate once."""
    for scenario in CATALOGUE:
        assert sim.row(scenario) == tuple(sim.cell(scenario, i) for i in BUILTINS.values())
    success = sim.exchange(get_scenario("success"))
    assert success.request is not None
    strict = sim.config(Deployment(query_tokens=False))
    decision = rs.evaluate(success.request, sim.config(Deployment()), now=sim.now)
    assert "query_tokens" not in decision.consulted
    assert {"jwks", "checks_binding", "required_scope", "dpop_nonce", "resource_metadata"} <= (
        decision.consulted
    )
    assert rs.evaluate(success.request, strict, now=sim.now) == decision
