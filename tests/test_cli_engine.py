"""mtlslab.cli, the engine subcommands: scenarios, interpretations, explain, matrix, evaluate.

To be merged into test_cli.py. Unusable input is exactly one line on stderr and exit status 2.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mtlslab.cli import main
from mtlslab.compare import Matrix
from mtlslab.interpretations import BUILTINS, Interpretation
from mtlslab.pki import Lab
from mtlslab.scenarios import CATALOGUE, scenarios_tagged
from mtlslab.tokens import AuthorizationServer

ENGINE_SEED = "mtlslab-engine-tests"  # the seed of the shared lab in conftest.py


def run(*argv: str) -> tuple[int, str, str]:
    """Call the command line in-process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def refused(*argv: str) -> str:
    """Run a command that must fail on its input: exit 2, nothing on stdout, one line on stderr."""
    status, out, err = run(*argv)
    assert status == 2, (status, out, err)
    assert out == ""
    assert err.endswith("\n")
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, lab: Lab) -> dict[str, Path]:
    """The lab's client certificates as PEM files, and a file that is not a certificate."""
    folder = tmp_path_factory.mktemp("cli-engine")
    paths = {
        "client": lab.client.cert_pem.write_to_path(folder / "client.pem"),
        "other": lab.other_client.cert_pem.write_to_path(folder / "other.pem"),
        "self-signed": lab.self_signed_client.cert_pem.write_to_path(folder / "self-signed.pem"),
    }
    junk = folder / "junk.pem"
    junk.write_text("not a certificate\n")
    paths["junk"] = junk
    return paths


@pytest.fixture(scope="module")
def token(asrv: AuthorizationServer) -> str:
    """The lab's bound token for the tests' seed."""
    return asrv.mint("bound").value


def evaluate_json(*argv: str) -> list[dict[str, object]]:
    """`mtlslab evaluate … --format json` for the tests' seed, parsed."""
    status, out, err = run("evaluate", "--seed", ENGINE_SEED, "--format", "json", *argv)
    assert (status, err) == (0, "")
    cells = json.loads(out)
    assert isinstance(cells, list)
    return cells


def by_name(cells: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    """Cells keyed by interpretation."""
    return {str(c["interpretation"]): c for c in cells}


def test_the_command_line_sees_the_shared_lab(engine_seed: str) -> None:
    """These runs pass the shared lab's seed, so their material equals the fixtures'."""
    assert engine_seed == ENGINE_SEED


# --------------------------------------------------------------------------------------------------
# scenarios, interpretations


def test_scenarios_lists_every_id_with_tags_and_title() -> None:
    """`mtlslab scenarios` prints one line per catalogue scenario: id, [tags], title."""
    status, out, _ = run("scenarios")
    assert status == 0
    lines = out.splitlines()
    assert len(lines) == len(CATALOGUE)
    for scenario, line in zip(CATALOGUE, lines, strict=True):
        assert line.startswith(scenario.id + " ")
        assert f"[{', '.join(scenario.tags)}]" in line
        assert line.endswith(scenario.title)


def test_scenarios_filters_by_tag_and_speaks_json() -> None:
    """--tag keeps scenarios with every tag given; --format json gives each scenario's to_json()."""
    status, out, _ = run("scenarios", "--tag", "debate", "--format", "json")
    assert status == 0
    assert json.loads(out) == [s.to_json() for s in scenarios_tagged("debate")]
    status, out, _ = run("scenarios", "--tag", "proxy", "--tag", "attack")
    assert [line.split()[0] for line in out.splitlines()] == [
        s.id for s in scenarios_tagged("proxy", "attack")
    ]


def test_interpretations_lists_names_kinds_stances_and_sources() -> None:
    """`mtlslab interpretations` names each built-in with its kind, stance, source and departures."""
    status, out, _ = run("interpretations")
    assert status == 0
    for interpretation in BUILTINS.values():
        assert f"{interpretation.name}  ({interpretation.kind})" in out
        assert interpretation.stance in out
        assert f"source: {interpretation.source}" in out
    assert "departs: " in out


def test_interpretations_json_loads_back() -> None:
    """--format json gives each interpretation's table, which from_json loads into an equal one."""
    status, out, _ = run("interpretations", "--format", "json")
    assert status == 0
    loaded = [Interpretation.from_json(item) for item in json.loads(out)]
    assert loaded == list(BUILTINS.values())


# --------------------------------------------------------------------------------------------------
# explain


def test_explain_shows_the_request_the_trace_with_clauses_and_each_raw_answer() -> None:
    """explain: the client's request, each step with its RFC clause, then every reading as raw HTTP."""
    status, out, _ = run("explain", "no-cert-optional", "--seed", ENGINE_SEED)
    assert status == 0
    assert out.startswith("no-cert-optional: ")
    assert "--- request (as the client sends it) ---\nGET /resource HTTP/1.1\n" in out
    assert "[RFC 8446 §4.4.2.4]" in out
    assert "✗ certificate binding [RFC 8705 §3]" in out
    assert "→ finding: certificate_missing" in out
    for name in BUILTINS:
        assert f"\n=== {name}: " in out
    assert (
        "=== baseline: 401 (error code unspecified) [unspecified] ===\nHTTP/1.1 401 Unauthorized\n"
        in out
    )
    assert "=== thread-400: 400 invalid_request ===\nHTTP/1.1 400 Bad Request\n" in out
    assert 'WWW-Authenticate: Bearer realm="mtlslab", error="invalid_request"' in out
    assert "=== tls-required: TLS certificate_required (116) ===\n(no HTTP response: " in out
    assert "as tls-required deploys it" in out
    assert "\r" not in out


def test_explain_with_chosen_interpretations_shows_only_those() -> None:
    """-i NAME (repeatable) limits the answers to those interpretations, in the order given."""
    status, out, _ = run(
        "explain", "mismatch", "-i", "auth0", "-i", "baseline", "--seed", ENGINE_SEED
    )
    assert status == 0
    answers = [line for line in out.splitlines() if line.startswith("=== ")]
    assert answers == ["=== auth0: 401 invalid_token ===", "=== baseline: 401 invalid_token ==="]
    assert out.count("--- trace") == 1  # one trace for both (auth0's header names its deployment)
    assert 'DPoP algs="' in out


# --------------------------------------------------------------------------------------------------
# matrix


def test_matrix_defaults_to_the_72_column_text_table() -> None:
    """matrix: the plain-text table for an Internet-Draft, no line over 72 columns."""
    status, out, _ = run("matrix", "--seed", ENGINE_SEED)
    assert status == 0
    assert max(len(line) for line in out.splitlines()) <= 72
    assert "[1] baseline:" in out


def test_matrix_json_is_the_whole_matrix(matrix: Matrix) -> None:
    """--format json loads into a matrix equal to the library's for the same seed."""
    status, out, _ = run("matrix", "--seed", ENGINE_SEED, "--format", "json")
    assert status == 0
    assert Matrix.from_json(out) == matrix


def test_matrix_markdown_and_csv(matrix: Matrix) -> None:
    """--format markdown has a row per scenario; --format csv a record per cell."""
    status, out, _ = run("matrix", "--seed", ENGINE_SEED, "--format", "markdown")
    assert status == 0
    assert out == matrix.to_markdown()
    status, out, _ = run("matrix", "--seed", ENGINE_SEED, "--format", "csv")
    assert status == 0
    assert len(list(csv.DictReader(io.StringIO(out)))) == len(CATALOGUE) * len(BUILTINS)


def test_matrix_only_disagreements_and_chosen_interpretations(matrix: Matrix) -> None:
    """--only-disagreements keeps the rows where readings differ; -i picks the columns; --strict compares bytes."""
    status, out, _ = run(
        "matrix",
        "--seed",
        ENGINE_SEED,
        "--only-disagreements",
        "-i",
        "thread-400",
        "-i",
        "thread-401",
        "--format",
        "json",
    )
    assert status == 0
    data = json.loads(out)
    expected = matrix.select(interpretations=["thread-400", "thread-401"]).disagreements()
    assert [s["id"] for s in data["scenarios"]] == [s.id for s in expected.scenarios]
    assert "no-cert-optional" in {s["id"] for s in data["scenarios"]}
    assert {i["name"] for i in data["interpretations"]} == {"thread-400", "thread-401"}
    status, out, _ = run(
        "matrix",
        "--seed",
        ENGINE_SEED,
        "--only-disagreements",
        "--strict",
        "-i",
        "baseline",
        "-i",
        "keycloak",
        "--tag",
        "debate",
        "--format",
        "csv",
    )
    assert status == 0
    rows = {r["scenario"] for r in csv.DictReader(io.StringIO(out))}
    assert "mismatch" in rows


# --------------------------------------------------------------------------------------------------
# evaluate


def test_evaluate_a_bound_token_with_its_certificate(files: dict[str, Path], token: str) -> None:
    """evaluate --cert FILE --authorization 'Bearer …': every reading serves the resource."""
    cells = evaluate_json("--cert", str(files["client"]), "--authorization", f"Bearer {token}")
    assert [c["interpretation"] for c in cells] == list(BUILTINS)
    for cell in cells:
        assert {"scenario", "interpretation", "finding", "outcome", "trace"} <= set(cell)
        assert {"tls_alert", "status", "www_authenticate", "error", "body"} <= set(cell["outcome"])  # type: ignore[arg-type]
    named = by_name(cells)
    assert named["baseline"]["finding"] == "accepted"
    assert named["dpop-analogy"]["finding"] == "mtls_token_as_bearer"
    assert named["auth0-default"]["finding"] == "accepted_although_bound"


def test_evaluate_without_or_with_another_certificate(files: dict[str, Path], token: str) -> None:
    """No --cert: certificate_missing; another client's certificate: certificate_mismatch."""
    missing = by_name(evaluate_json("--authorization", f"Bearer {token}", "-i", "thread-400"))
    assert missing["thread-400"]["finding"] == "certificate_missing"
    assert missing["thread-400"]["outcome"]["status"] == 400  # type: ignore[index]
    none = by_name(evaluate_json("--cert", "none", "--authorization", f"Bearer {token}"))
    assert none["baseline"]["finding"] == "certificate_missing"
    other = by_name(
        evaluate_json("--cert", str(files["other"]), "--authorization", f"Bearer {token}")
    )
    assert other["baseline"]["finding"] == "certificate_mismatch"


def test_evaluate_a_forged_client_cert_header(files: dict[str, Path], token: str) -> None:
    """--client-cert-header FILE: directly it is untrusted; through the proxy it is stripped."""
    forged = ("--client-cert-header", str(files["client"]), "--authorization", f"Bearer {token}")
    direct = by_name(evaluate_json(*forged, "-i", "baseline"))
    assert direct["baseline"]["finding"] == "untrusted_client_cert_header"
    proxied = by_name(evaluate_json(*forged, "--via-proxy", "-i", "baseline"))
    assert proxied["baseline"]["finding"] == "certificate_missing"
    trace = proxied["baseline"]["trace"]
    assert any(step["clause"] == "RFC 9440 §2.4" for step in trace)  # type: ignore[attr-defined,index]


def test_evaluate_via_a_trusted_proxy(files: dict[str, Path], token: str) -> None:
    """--via-proxy: the proxy's Client-Cert carries the handshake's certificate (RFC 9440 §2)."""
    cells = by_name(
        evaluate_json(
            "--via-proxy", "--cert", str(files["client"]), "--authorization", f"Bearer {token}"
        )
    )
    assert cells["baseline"]["finding"] == "accepted"
    assert cells["spring-security"]["finding"] == "untrusted_client_cert_header"


def test_evaluate_at_a_server_requiring_certificates(token: str) -> None:
    """--client-auth required without a certificate: a TLS alert, per TLS version."""
    tls13 = by_name(
        evaluate_json("--client-auth", "required", "--authorization", f"Bearer {token}")
    )
    assert tls13["baseline"]["outcome"]["tls_alert"]["name"] == "certificate_required"  # type: ignore[index]
    assert tls13["baseline"]["outcome"]["tls_alert"]["code"] == 116  # type: ignore[index]
    assert tls13["baseline"]["outcome"]["status"] is None  # type: ignore[index]
    tls12 = by_name(
        evaluate_json(
            "--client-auth", "required", "--tls", "1.2", "--authorization", f"Bearer {token}"
        )
    )
    assert tls12["baseline"]["outcome"]["tls_alert"]["code"] == 40  # type: ignore[index]


def test_evaluate_a_self_signed_certificate_at_a_no_ca_server(files: dict[str, Path]) -> None:
    """--client-auth optional-no-ca accepts a self-signed certificate: the binding decides."""
    cells = by_name(
        evaluate_json(
            "--client-auth",
            "optional-no-ca",
            "--cert",
            str(files["self-signed"]),
            "--authorization",
            "Bearer x",
            "-i",
            "baseline",
        )
    )
    assert cells["baseline"]["finding"] == "token_malformed"
    assert cells["baseline"]["trace"][0]["clause"] == "RFC 8705 §6.2"  # type: ignore[index]


def test_evaluate_as_text_shows_the_trace_and_raw_http(files: dict[str, Path], token: str) -> None:
    """The text form shows the trace once per distinct trace, then each reading's raw HTTP."""
    status, out, _ = run(
        "evaluate",
        "--seed",
        ENGINE_SEED,
        "--cert",
        str(files["other"]),
        "--authorization",
        f"Bearer {token}",
        "-i",
        "baseline",
        "-i",
        "keycloak",
    )
    assert status == 0
    assert out.count("--- trace ---") == 1
    assert "✗ certificate binding [RFC 8705 §3]" in out
    assert "=== baseline: 401 invalid_token ===\nHTTP/1.1 401 Unauthorized\n" in out
    assert "=== keycloak: 401 invalid_token ===" in out


# --------------------------------------------------------------------------------------------------
# Unusable input: one line, exit 2.


def test_an_unknown_scenario_suggests_the_nearest_ids() -> None:
    """explain with a typo: one line naming the id and suggesting the nearest ones."""
    err = refused("explain", "mismach")
    assert "unknown scenario id 'mismach'" in err
    assert "did you mean mismatch" in err


def test_an_unknown_interpretation_is_one_line() -> None:
    """-i with an unknown name: one line suggesting the nearest built-in."""
    assert "keycloak" in refused("matrix", "-i", "keycloack")
    assert "unknown interpretation" in refused("explain", "success", "-i", "nobody")
    assert "unknown interpretation" in refused("evaluate", "-i", "nobody")


def test_an_unreadable_cert_is_one_line(files: dict[str, Path], tmp_path: Path) -> None:
    """--cert that is missing, a directory, or not a certificate: one line each."""
    assert "No such file" in refused("evaluate", "--cert", str(tmp_path / "missing.pem"))
    assert str(tmp_path) in refused("evaluate", "--cert", str(tmp_path))
    assert "--cert" in refused("evaluate", "--cert", str(files["junk"]))
    assert "--client-cert-header" in refused("evaluate", "--client-cert-header", str(files["junk"]))
    assert "--client-cert-header" in refused("evaluate", "--client-cert-header")


@pytest.mark.parametrize("value", ["Bearer a\r\nX-Injected: 1", "Bearer a\nb", "Bearer a\0"])
def test_cr_lf_or_nul_in_authorization_is_one_line(value: str) -> None:
    """A header value cannot hold CR, LF or NUL (RFC 9110 §5.5): refused before anything is sent."""
    assert "--authorization" in refused("evaluate", "--authorization", value)


@pytest.mark.parametrize(
    "argv",
    [
        ("matrix", "--format", "xml"),
        ("evaluate", "--client-auth", "sometimes"),
        ("evaluate", "--tls", "1.1"),
        ("explain",),
        ("scenarios", "--format", "yaml"),
    ],
)
def test_usage_errors_are_one_line(argv: tuple[str, ...]) -> None:
    """argparse usage errors are one line on stderr and exit 2, pointing at --help."""
    assert "(see --help)" in refused(*argv)


@pytest.mark.parametrize(
    "command", ["scenarios", "interpretations", "explain", "matrix", "evaluate"]
)
def test_each_engine_command_has_help(command: str) -> None:
    """Every engine subcommand documents itself with --help (exit 0)."""
    status, out, err = run(command, "--help")
    assert (status, err) == (0, "")
    assert out.startswith(f"usage: mtlslab {command}")


def test_python_dash_m_runs_the_engine() -> None:
    """`python -m mtlslab explain` works as a real process, with the same one-line error contract."""
    ok = subprocess.run(
        [sys.executable, "-m", "mtlslab", "explain", "success", "-i", "baseline"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0
    assert "=== baseline: 200 ===" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "mtlslab", "explain", "sucess"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.count("\n") == 1
    assert "success" in bad.stderr


def test_matrix_takes_scenarios_by_id_in_order() -> None:
    """`matrix -s ID -s ID` gives exactly those rows, in that order; an unknown id is one line and status 2."""
    code, out, err = run(
        "matrix", "-s", "mismatch", "-s", "no-cert-optional", "-i", "baseline", "--format", "csv"
    )
    assert (code, err) == (0, "")
    rows = [line.split(",")[0] for line in out.splitlines()[1:]]
    assert rows == ["mismatch", "no-cert-optional"]
    code, out, err = run("matrix", "-s", "no-cert-optionl")
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "no-cert-optional" in err


# --------------------------------------------------------------------------------------------------
# -i FILE.json: an interpretation saved by the editor or derive()


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """thread-401 derived to answer a missing certificate with 403, saved as JSON the way the README does."""
    from mtlslab.findings import Finding
    from mtlslab.interpretations import Answer, derive

    mine = derive(
        BUILTINS["thread-401"],
        name="forbid-missing",
        stance="No certificate is an authorization failure.",
        answers={Finding.CERTIFICATE_MISSING: Answer(status=403, scheme=None)},
    )
    path = tmp_path_factory.mktemp("interpretation") / "forbid-missing.json"
    path.write_text(json.dumps(mine.to_json()))
    return path


def test_evaluate_takes_an_interpretation_from_a_json_file(saved: Path, token: str) -> None:
    """evaluate -i FILE.json answers with the saved reading, next to a built-in named as usual."""
    cells = by_name(
        evaluate_json(
            "--cert",
            "none",
            "--authorization",
            f"Bearer {token}",
            "-i",
            str(saved),
            "-i",
            "thread-401",
        )
    )
    assert list(cells) == ["forbid-missing", "thread-401"]
    assert cells["forbid-missing"]["outcome"]["status"] == 403  # type: ignore[index]
    assert cells["thread-401"]["outcome"]["status"] == 401  # type: ignore[index]


def test_explain_and_matrix_take_an_interpretation_from_a_json_file(saved: Path) -> None:
    """explain and matrix accept -i FILE.json too (a path with a separator, or a bare name ending in .json)."""
    status, out, err = run("explain", "no-cert-optional", "-i", str(saved), "--seed", ENGINE_SEED)
    assert (status, err) == (0, "")
    assert "=== forbid-missing: 403 ===" in out
    status, out, err = run(
        "matrix", "-s", "no-cert-optional", "-s", "mismatch", "-i", str(saved), "--format", "json"
    )
    assert (status, err) == (0, "")
    matrix = Matrix.from_json(out)
    assert [i.name for i in matrix.interpretations] == ["forbid-missing"]
    assert matrix.cell("no-cert-optional", "forbid-missing").outcome.status == 403
    assert matrix.cell("mismatch", "forbid-missing").outcome.status == 401


def test_a_bare_json_name_is_a_file_in_the_current_directory(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-i forbid-missing.json` (no separator) reads that file from the working directory."""
    monkeypatch.chdir(saved.parent)
    status, out, _ = run("explain", "no-cert-optional", "-i", saved.name)
    assert status == 0
    assert "=== forbid-missing: 403 ===" in out


def test_unusable_interpretation_files_are_one_line(saved: Path, tmp_path: Path) -> None:
    """A missing file, a file that is not JSON, a table naming no finding, and two readings of one name:
    one line each; a plain unknown name still suggests the nearest built-in."""
    assert "No such file" in refused("explain", "success", "-i", str(tmp_path / "nothere.json"))
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    assert str(junk) in refused("explain", "success", "-i", str(junk))
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"name": "w", "answers": {"certificate_mising": {"status": 400}}}))
    assert "did you mean certificate_missing" in refused("evaluate", "-i", str(wrong))
    assert "two interpretations are named 'forbid-missing'" in refused(
        "matrix", "-i", str(saved), "-i", str(saved)
    )
    assert "did you mean keycloak" in refused("evaluate", "-i", "keycloack")


def test_probe_refuses_a_file_that_reuses_a_built_in_name(tmp_path: Path) -> None:
    """probe -i scores readings besides the built-ins: a saved table named like a built-in but answering
    otherwise is refused before anything is sent."""
    impostor = tmp_path / "keycloak.json"
    impostor.write_text(json.dumps({"name": "keycloak", "base": "auth0"}))
    err = refused("probe", "https://127.0.0.1:1/", "--lab-issuer", "-i", str(impostor))
    assert "'keycloak' is a built-in's name" in err


# --------------------------------------------------------------------------------------------------
# --tag names a tag the catalogue has; --authorization takes a value starting with '-'


@pytest.mark.parametrize(
    "argv",
    [
        ("scenarios", "--tag", "debat"),
        ("matrix", "--tag", "debate", "--tag", "atack"),
        ("verify", "--tag", "nothing-like-it"),
    ],
)
def test_an_unknown_tag_is_a_usage_error_naming_the_known_ones(argv: tuple[str, ...]) -> None:
    """Wherever --tag is taken, an unknown tag is one line, exit 2, with the nearest and every known tag
    (it used to print nothing and exit 0)."""
    err = refused(*argv)
    wrong = argv[-1]
    assert f"unknown tag {wrong!r}" in err
    assert "known: analogy, attack, binding" in err
    if wrong != "nothing-like-it":
        assert "did you mean" in err


def test_every_known_tag_is_accepted() -> None:
    """Each tag the catalogue uses lists its scenarios."""
    for tag in sorted({t for s in CATALOGUE for t in s.tags}):
        status, out, err = run("scenarios", "--tag", tag)
        assert (status, err) == (0, ""), tag
        assert len(out.splitlines()) == len(scenarios_tagged(tag))


def test_an_authorization_value_starting_with_a_dash_is_evaluated() -> None:
    """`--authorization -x` is taken as the header value (not as an option): the server reads the one word
    '-x', a value without a scheme."""
    cells = by_name(evaluate_json("--authorization", "-x", "-i", "baseline"))
    assert cells["baseline"]["finding"] == "scheme_missing"
    details = [step["detail"] for step in cells["baseline"]["trace"]]  # type: ignore[attr-defined]
    assert any("no scheme: the value '-x' is one word" in d for d in details), details


def test_evaluate_introspects_a_lab_token_minted_in_another_process(files: dict[str, Path]) -> None:
    """Under authlete (introspection), a lab token printed by `mtlslab token` in another process is known to
    the lab authorization server and active: the bound token with its certificate is accepted, not
    'inactive' (issue 14 item 3)."""
    done = subprocess.run(
        [sys.executable, "-m", "mtlslab", "token", "--seed", ENGINE_SEED],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    printed = done.stdout.strip()
    cells = by_name(
        evaluate_json(
            "--cert", str(files["client"]), "--authorization", f"Bearer {printed}", "-i", "authlete"
        )
    )
    assert cells["authlete"]["finding"] == "accepted"
