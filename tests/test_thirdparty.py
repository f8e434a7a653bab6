"""Real third-party resource servers (issue 13): auth0's express-oauth2-jwt-bearer 1.10.0 in its three
configurations and node-oidc-provider 9.13.3's UserInfo, each in both Express modes, installed from the npm
registry by ``make node-deps`` and run by :mod:`_thirdparty` — and the probe names each one.

Each server starts once per module (about half a second each). Locally a missing Node.js or package skips
these tests with the reason; with ``CI`` set it fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _thirdparty import (
    AUTH0_CONFIGS,
    NODE_ENVS,
    Auth0Config,
    NodeEnv,
    NodeServer,
    ServerFailed,
    auth0,
    oidc_provider,
    unavailable,
    write_material,
)

from mtlslab.live.client import Observed, send
from mtlslab.live.issuer import LabIssuer
from mtlslab.pki import Identity, Lab
from mtlslab.probe import BringYourOwn, ProbeReport, probe
from mtlslab.scenarios import Request

pytestmark = pytest.mark.live

SEED = "thirdparty-tests"


def _require_node() -> None:
    """Skip when the servers cannot run here — but fail under CI, where they must."""
    reason = unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def lab() -> Lab:
    """The lab whose CA, server and client certificates every server and request uses."""
    return Lab(seed=SEED)


@pytest.fixture(scope="module")
def material(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab's PEM files."""
    return write_material(lab, tmp_path_factory.mktemp("thirdparty-lab"))


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the servers' stdout and stderr go (kept for a failing test)."""
    return tmp_path_factory.mktemp("thirdparty-logs")


@pytest.fixture(scope="module")
def issuer(lab: Lab) -> Iterator[LabIssuer]:
    """The lab issuer the auth0 servers trust (JWKS and metadata over HTTPS on loopback)."""
    _require_node()
    with LabIssuer(lab) as started:
        yield started


@pytest.fixture(
    scope="module",
    params=[(config, env) for env in NODE_ENVS for config in AUTH0_CONFIGS],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def auth0_server(
    request: pytest.FixtureRequest, issuer: LabIssuer, material: Path, logs: Path
) -> Iterator[NodeServer]:
    """One auth0 configuration in one Express mode, started once for the module."""
    config, env = request.param
    with auth0(config, issuer=issuer, material=material, node_env=env, log_dir=logs) as server:
        yield server


@pytest.fixture(scope="module", params=NODE_ENVS)
def oidc_server(
    request: pytest.FixtureRequest, lab: Lab, material: Path, logs: Path
) -> Iterator[NodeServer]:
    """node-oidc-provider's UserInfo in one NODE_ENV, started once for the module."""
    _require_node()
    with oidc_provider(lab, material=material, node_env=request.param, log_dir=logs) as server:
        yield server


def _get(lab: Lab, url: str, token: str | None, identity: Identity | None) -> Observed:
    headers = (("Authorization", f"Bearer {token}"),) if token else ()
    return send(Request(url=url, headers=headers), ca=lab.ca, identity=identity)


def _bound(issuer: LabIssuer) -> str:
    """A token bound to the lab client's certificate, minted now (the servers check exp on the wall clock)."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    return issuer.asrv.mint("bound", now=now).value


def test_auth0_serves_a_bound_token_with_its_certificate(
    auth0_server: NodeServer, issuer: LabIssuer, lab: Lab
) -> None:
    """The control: every configuration serves the resource to a bound token sent with its certificate."""
    observed = _get(lab, auth0_server.url, _bound(issuer), lab.client)
    assert observed.status == 200, observed.summary() + auth0_server.logs()
    assert json.loads(observed.body)["client_id"] == "lab-client"


def test_auth0_refuses_a_request_without_a_token(auth0_server: NodeServer, lab: Lab) -> None:
    """Every configuration refuses a request that carries no token at all (401: it enforces something)."""
    observed = _get(lab, auth0_server.url, None, lab.client)
    assert observed.status == 401, observed.summary() + auth0_server.logs()


def test_auth0_with_a_supplier_refuses_a_bound_token_without_a_certificate(
    auth0_server: NodeServer, issuer: LabIssuer, lab: Lab
) -> None:
    """With a certificate supplier the binding is checked: no certificate, no resource; by default (no
    supplier) cnf is ignored and the bound token is served to anyone."""
    observed = _get(lab, auth0_server.url, _bound(issuer), None)
    if "-default-" in auth0_server.name:
        assert observed.status == 200, observed.summary() + auth0_server.logs()
    else:
        assert observed.status is not None, observed.summary() + auth0_server.logs()
        assert observed.status != 200, observed.summary()


def test_oidc_provider_serves_userinfo_to_a_bound_token_with_its_certificate(
    oidc_server: NodeServer, lab: Lab
) -> None:
    """The control: UserInfo answers the provider's own bound token sent with its certificate."""
    observed = _get(lab, oidc_server.url, oidc_server.tokens["bound"], lab.client)
    assert observed.status == 200, observed.summary() + oidc_server.logs()
    assert json.loads(observed.body) == {"sub": "alice"}


def test_oidc_provider_refuses_a_bound_token_without_a_certificate(
    oidc_server: NodeServer, lab: Lab
) -> None:
    """The negative control: the same token without the certificate is refused (401 invalid_token)."""
    observed = _get(lab, oidc_server.url, oidc_server.tokens["bound"], None)
    assert observed.status == 401, observed.summary() + oidc_server.logs()
    assert observed.error_code() == "invalid_token"


def test_a_server_that_does_not_start_is_reported_with_its_logs(
    issuer: LabIssuer, material: Path, logs: Path
) -> None:
    """A server that exits before its ready line raises ServerFailed quoting its stderr (here its usage)."""
    with (
        pytest.raises(ServerFailed, match=r"(?s)exited with 2 before it was ready.*usage: node"),
        auth0("nonsense", issuer=issuer, material=material, node_env="production", log_dir=logs),  # type: ignore[arg-type]
    ):
        pass


def test_a_server_is_stopped_when_its_block_ends(
    issuer: LabIssuer, material: Path, logs: Path, lab: Lab
) -> None:
    """Leaving the ``with`` block stops the server: its port no longer answers."""
    with auth0(
        "default", issuer=issuer, material=material, node_env="production", log_dir=logs
    ) as server:
        assert _get(lab, server.url, None, None).status == 401
    port = int(server.ready["port"])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


# --------------------------------------------------------------------------------------------------
# The probe against the real servers.

#: The reading each auth0 configuration is, and the warnings it earns — true ones: without a supplier cnf
#: is ignored, and with one a cnf naming no method the SDK knows is served as a bearer token.
AUTH0_READINGS: dict[str, tuple[str, set[str]]] = {
    "supplier": ("auth0", {"cnf-unknown-method"}),
    "default": (
        "auth0-default",
        {"no-cert", "mismatch", "forged-client-cert", "query-no-cert", "cnf-unknown-method"},
    ),
    "required": ("auth0-required", set()),
}


def _config(server: NodeServer) -> tuple[str, str]:
    """(configuration, NODE_ENV) of an auth0 server, from its name ``auth0-CONFIG-ENV``."""
    _, config, env = server.name.split("-")
    return config, env


def _no_false_warnings(report: ProbeReport, resource: dict[str, str]) -> None:
    """Every security warning is true: the server really served the resource to that request."""
    for warning in report.warnings:
        result = next(r for r in report.results if r.probe.id == warning.probe)
        assert result.accepted, warning
        served = json.loads(result.observed.body)
        assert {k: served.get(k) for k in resource} == resource, (warning, served)


def test_the_probe_names_each_auth0_configuration(
    auth0_server: NodeServer, issuer: LabIssuer, lab: Lab
) -> None:
    """auth0 with a certificate supplier, without one (the default) and with mtls.required, in both
    Express modes: the probe names its reading alone, agreeing on every verdict; its warnings are the true
    ones and only those. The challenge differs only where the engine has one finding for answers auth0
    words apart (alg none and HS256 are bad signatures here); the body only in development (its error
    page holds the stack)."""
    config, env = _config(auth0_server)
    reading, warnings = AUTH0_READINGS[config]
    report = probe(auth0_server.url, issuer=issuer, ca=lab.ca)
    assert report.closest == (reading,), report.to_text() + auth0_server.logs()
    score = report.score(reading)
    assert score.verdict == score.probes == len(report.results) == 21
    assert {w.probe for w in report.warnings} == warnings
    _no_false_warnings(report, {"resource": "the protected resource", "client_id": "lab-client"})
    differences = {r.probe.id: set(r.prediction(reading).differences) for r in report.results}
    worded = {probe_id for probe_id, found in differences.items() if "WWW-Authenticate" in found}
    assert worded == {"alg-none", "hs256-confusion"}
    others = set().union(*differences.values()) - {"WWW-Authenticate"}
    assert others == (set() if env == "production" else {"body"})


def test_the_probe_names_node_oidc_provider(oidc_server: NodeServer, material: Path) -> None:
    """node-oidc-provider's UserInfo, with its own tokens (bring your own: bound, unbound, a second
    certificate), in both NODE_ENVs: named alone, every probe the same on the wire once the realm — its
    issuer URL, a port chosen at start — is left to it; no warning."""
    own = BringYourOwn.from_pem(
        token=oidc_server.tokens["bound"],
        cert=(material / "client.pem").read_bytes(),
        key=(material / "client.key").read_bytes(),
        unbound_token=oidc_server.tokens["unbound"],
        other_cert=(material / "other.pem").read_bytes(),
        other_key=(material / "other.key").read_bytes(),
    )
    report = probe(oidc_server.url, own=own, ca=material / "ca.pem")
    assert report.closest == ("node-oidc-provider",), report.to_text() + oidc_server.logs()
    score = report.score("node-oidc-provider")
    assert score.verdict == score.exact == score.probes == len(report.results) == 13
    assert oidc_server.ready["issuer"] in report.results[1].observed.header("WWW-Authenticate")
    assert report.warnings == ()


@pytest.mark.parametrize(
    ("path", "audience", "expected"),
    [
        ("/nothing", None, "got 404: check the URL's path"),
        (
            "/resource",
            "https://other-rs.example",
            "got 401 invalid_token: check that the server trusts",
        ),
    ],
    ids=["wrong-path", "wrong-audience"],
)
def test_a_failed_control_at_a_real_server_is_inconclusive(
    issuer: LabIssuer,
    material: Path,
    logs: Path,
    lab: Lab,
    path: str,
    audience: str | None,
    expected: str,
) -> None:
    """Negative controls at auth0 itself: a path that is not the resource (Express's 404) and a server
    that expects another audience refuse the control; the report is inconclusive and names no reading."""
    with auth0(
        "supplier",
        issuer=issuer,
        audience=audience,
        material=material,
        node_env="production",
        log_dir=logs,
    ) as server:
        report = probe(server.url.replace("/resource", path), issuer=issuer, ca=lab.ca)
    assert report.closest == ()
    assert expected in report.headline, report.headline
    assert len(report.results) == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cli_probe(
    config: Auth0Config, env: NodeEnv, *, tmp_path: Path, logs: Path
) -> tuple[int, str, str]:
    """The README's flow: lab files from ``mtlslab certs``'s seed, auth0 started on the lab issuer's URL
    before that issuer exists, then ``mtlslab probe --lab-issuer`` in a real process. Returns the exit
    status, and stdout and stderr with the two ports written as the README writes them (8414, PORT)."""
    seed, port = "demo", _free_port()
    material = write_material(Lab(seed=seed), tmp_path / "lab")
    with auth0(
        config,
        issuer=f"https://127.0.0.1:{port}",
        material=material,
        node_env=env,
        log_dir=logs,
    ) as server:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "mtlslab", "probe", server.url, "--lab-issuer"),
                *("--issuer-port", str(port), "--seed", seed, "--ca", str(material / "ca.pem")),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    ports = {
        f"127.0.0.1:{port}": "127.0.0.1:8414",
        f"127.0.0.1:{server.ready['port']}": "127.0.0.1:PORT",
    }

    def placed(text: str) -> str:
        return re.sub("|".join(map(re.escape, ports)), lambda m: ports[m.group()], text)

    return done.returncode, placed(done.stdout), placed(done.stderr)


def test_auth0_without_a_supplier_is_flagged_and_the_cli_exits_1(
    tmp_path: Path, logs: Path
) -> None:
    """`mtlslab probe --lab-issuer` against auth0's default (no certificate supplier): the report opens with
    the true warning — a certificate-bound token served without any certificate — and the exit status is
    1 (auth0-default's reading named)."""
    _require_node()
    status, out, err = _cli_probe("default", "production", tmp_path=tmp_path, logs=logs)
    assert (status, err) == (1, ""), out
    lines = out.split("\n\n", 1)[1].splitlines()
    assert lines[1].startswith("answers like auth0-default on 21 of 21 probes (verdict)")
    assert lines[3:5] == [
        "SECURITY WARNINGS",
        "  ! accepted a certificate-bound token without any certificate (no-cert)",
    ]


README = Path(__file__).resolve().parent.parent / "README.md"
_CAPTURED = re.compile(
    r"<!-- captured:probe-auth0 -->\n.*?```text\n(.*?)```\n<!-- end:probe-auth0 -->", re.DOTALL
)


def test_the_readme_shows_what_the_probe_prints_against_auth0_today(
    tmp_path: Path, logs: Path
) -> None:
    """The README's report against auth0 (with a certificate supplier, Express in production) is what the
    command it shows prints today, up to the setup details: run the command, and compare."""
    _require_node()
    found = _CAPTURED.search(README.read_text(encoding="utf-8"))
    assert found, "README.md has no captured:probe-auth0 section"
    status, out, err = _cli_probe("supplier", "production", tmp_path=tmp_path, logs=logs)
    assert (status, err) == (1, "")
    printed = out.split("\nSetup: ", 1)[0]
    assert found.group(1) == printed, (
        "README.md's probe report is stale; it should read:\n" + printed
    )
