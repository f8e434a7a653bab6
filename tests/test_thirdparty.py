"""Real third-party resource servers (issue 13): auth0's express-oauth2-jwt-bearer 1.10.0 in its three
configurations and node-oidc-provider 9.13.3's UserInfo, each in both Express modes, installed from the npm
registry by ``make node-deps`` and run by :mod:`_thirdparty`.

Each server starts once per module (about half a second each). Locally a missing Node.js or package skips
these tests with the reason; with ``CI`` set it fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from _thirdparty import (
    AUTH0_CONFIGS,
    NODE_ENVS,
    NodeServer,
    ServerFailed,
    auth0,
    oidc_provider,
    unavailable,
    write_material,
)

from mtlslab.live.client import Observed, send
from mtlslab.pki import Identity, Lab
from mtlslab.probe import LabIssuer
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
