"""Live mode: real mutual TLS on 127.0.0.1 shows exactly what the simulation says (RFC 8705 §3, RFC 8446
§4.4.2.4, RFC 9440 §2), and the server stays up and bounded whatever it is fed."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import http.client
import http.server
import io
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from mtlslab.cli import main as cli_main
from mtlslab.compare import Simulator
from mtlslab.errors import ScenarioError
from mtlslab.findings import Finding
from mtlslab.interpretations import BUILTINS, derive
from mtlslab.jose import DPOP_ALGS
from mtlslab.live import (
    BuiltinProxy,
    HAProxy,
    Limits,
    LiveRun,
    LiveServer,
    LiveStack,
    Observed,
    Origin,
    client_url,
    curl_command,
    find_haproxy,
    haproxy_config,
    live_limitation,
    run_many,
    run_scenario,
    send,
    verify,
    write_lab_folder,
)
from mtlslab.live.client import CLOSED_WITHOUT_ALERT, client_context
from mtlslab.live.issuer import LabIssuer
from mtlslab.live.server import Listener, is_loopback
from mtlslab.pki import Lab
from mtlslab.probe import probe
from mtlslab.rs import head_size, size_decision
from mtlslab.scenarios import (
    CATALOGUE,
    CertChoice,
    ClientAuth,
    Deployment,
    Request,
    Scenario,
    TlsVersion,
    Topology,
    client_request,
    decode_client_cert,
    get_scenario,
    scenarios_tagged,
)
from mtlslab.tokens import AuthorizationServer

pytestmark = pytest.mark.live

THREE = ("baseline", "thread-400", "thread-401")


def _need_haproxy() -> None:
    if find_haproxy() is None:
        if os.environ.get("CI"):
            pytest.fail("haproxy is required under CI (make system-deps installs it)")
        pytest.skip(
            "haproxy is not installed (sudo make system-deps); under CI this test fails instead"
        )


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is required under CI (make system-deps installs it)")
        pytest.skip(
            f"{tool} is not installed (sudo make system-deps); under CI this test fails instead"
        )
    return path


@pytest.fixture(scope="module")
def live_sim() -> Simulator:
    """One seeded simulator shared by the live tests (its lab and authorization server serve both sides)."""
    return Simulator(seed="mtlslab-live-tests")


#: The catalogue scenarios the lab can run for real, and those it covers by simulation only (HTTP/2).
RUNNABLE = tuple(s for s in CATALOGUE if live_limitation(s) is None)
SIMULATED_ONLY = tuple(s for s in CATALOGUE if live_limitation(s) is not None)


@pytest.fixture(scope="module")
def catalogue_runs(live_sim: Simulator) -> dict[tuple[str, str], LiveRun]:
    """The catalogue run live under the baseline and both readings from the thread, once: every scenario
    the lab can run for real."""
    if find_haproxy() is None and os.environ.get("CI"):
        pytest.fail("haproxy is required under CI (make system-deps installs it)")
    runs = run_many(RUNNABLE, THREE, simulator=live_sim)
    return {(r.scenario.id, r.interpretation): r for r in runs}


@pytest.mark.parametrize("interpretation", THREE)
@pytest.mark.parametrize("scenario_id", [s.id for s in RUNNABLE])
def test_the_wire_shows_what_the_simulation_says(
    catalogue_runs: dict[tuple[str, str], LiveRun], scenario_id: str, interpretation: str
) -> None:
    """Every catalogue scenario the lab can run for real answers byte for byte as simulated."""
    run = catalogue_runs[(scenario_id, interpretation)]
    assert run.agree, run.describe()


def test_http2_scenarios_are_covered_by_simulation_only(
    live_sim: Simulator, catalogue_runs: dict[tuple[str, str], LiveRun]
) -> None:
    """The HTTP/2 scenarios cannot run here (h11 speaks HTTP/1.1): they are the only ones not run, the
    simulation alone covers them (no certificate asked for late, RFC 9113 §9.2.1, §9.2.3), verify lists
    each with its reason and counts no run for it, and run_scenario refuses them rather than run HTTP/1.1
    in their place."""
    assert SIMULATED_ONLY
    assert [s.id for s in SIMULATED_ONLY] == [s.id for s in CATALOGUE if s.deployment.http2]
    assert not {s.id for s in SIMULATED_ONLY} & {sid for sid, _ in catalogue_runs}
    assert len(RUNNABLE) + len(SIMULATED_ONLY) == len(CATALOGUE)
    for scenario in SIMULATED_ONLY:
        cell = live_sim.cell(scenario, BUILTINS["baseline"])
        assert cell.finding is Finding.CERTIFICATE_MISSING, scenario.id
        assert cell.outcome.status == 401
    control = get_scenario("post-handshake-success")
    report = verify([*SIMULATED_ONLY, control], ["baseline"], simulator=live_sim)
    assert [s.id for s, _ in report.skipped] == [s.id for s in SIMULATED_ONLY]
    assert all(reason.startswith("HTTP/2") for _, reason in report.skipped)
    assert [r.scenario.id for r in report.runs] == [control.id]
    assert report.ok
    text = report.text()
    assert text.startswith("live vs simulated: 1/1 agree")
    assert f"not run live: {len(SIMULATED_ONLY)} scenarios (simulated only)" in text
    assert all(f"- {s.id}: HTTP/2" in text for s in SIMULATED_ONLY)
    assert report.to_json()["skipped"] == [
        {"scenario": s.id, "reason": reason} for s, reason in report.skipped
    ]
    assert (report.to_json()["runs"], report.to_json()["agree"]) == (1, 1)
    with pytest.raises(ScenarioError, match="cannot run live: HTTP/2"):
        run_scenario(SIMULATED_ONLY[0], simulator=live_sim)


def test_proxied_scenarios_went_through_haproxy_where_installed(
    catalogue_runs: dict[tuple[str, str], LiveRun],
) -> None:
    """Proxied catalogue scenarios ran through a real HAProxy (the built-in stand-in only where none exists)."""
    proxied = [
        r for r in catalogue_runs.values() if r.scenario.deployment.topology is Topology.PROXY
    ]
    assert proxied
    expected = "haproxy" if find_haproxy() else "builtin"
    assert {r.proxy for r in proxied} == {expected}


def test_the_live_server_records_its_own_finding(
    catalogue_runs: dict[tuple[str, str], LiveRun],
) -> None:
    """The finding a live run reports is the live server's own decision, and equals the simulated one."""
    for run in catalogue_runs.values():
        assert run.finding is run.simulated.finding, run.describe()


# ---- positive controls and their negative controls ------------------------------------------------

_DEPLOYMENTS = {
    "direct-1.3-optional": Deployment(),
    "direct-1.2-optional": Deployment(tls_version=TlsVersion.TLS1_2),
    "direct-1.3-required": Deployment(client_auth=ClientAuth.REQUIRED),
    "direct-1.3-no-ca": Deployment(client_auth=ClientAuth.OPTIONAL_NO_CA),
    "proxy-haproxy": Deployment(topology=Topology.PROXY),
    "proxy-builtin": Deployment(topology=Topology.PROXY),
}


@pytest.mark.parametrize("name", list(_DEPLOYMENTS))
def test_success_and_its_negative_controls(live_sim: Simulator, name: str) -> None:
    """The bound certificate succeeds; a wrong CA, a wrong certificate and no certificate all fail."""
    deployment = _DEPLOYMENTS[name]
    proxy = (
        "builtin" if name == "proxy-builtin" else "haproxy" if name == "proxy-haproxy" else "auto"
    )
    if proxy == "haproxy":
        _need_haproxy()
    base = Scenario(id=f"control-{name}", title="control", deployment=deployment)
    cases = {
        "bound": base,
        "wrong-ca": base.with_(id=f"{base.id}-wrong-ca", certificate=CertChoice.UNTRUSTED_CA),
        "wrong-cert": base.with_(id=f"{base.id}-wrong-cert", certificate=CertChoice.OTHER),
        "no-cert": base.with_(id=f"{base.id}-no-cert", certificate=CertChoice.NONE),
    }
    results = run_many(cases.values(), ["baseline"], simulator=live_sim, proxy=proxy)
    runs = dict(zip(cases, results, strict=True))
    for key, run in runs.items():
        assert run.agree, f"{key}: {run.describe()}"
        if proxy != "auto":
            assert run.proxy == proxy
    assert runs["bound"].observed.status == 200
    assert runs["wrong-cert"].observed.status == 401
    wrong_ca = runs["wrong-ca"].observed
    if deployment.client_auth is ClientAuth.OPTIONAL_NO_CA:
        assert wrong_ca.status == 401  # not validated at TLS; the thumbprint differs
    else:
        assert wrong_ca.tls_alert is not None
        assert wrong_ca.tls_alert.name == "unknown_ca"
    no_cert = runs["no-cert"].observed
    if deployment.client_auth is ClientAuth.REQUIRED:
        assert no_cert.tls_alert is not None
        assert no_cert.tls_alert.name == "certificate_required"
    else:
        assert no_cert.status == 401


def test_tls13_refusal_surfaces_at_the_first_read_tls12_during_the_handshake(
    live_sim: Simulator,
) -> None:
    """RFC 8446 §4.4.2.4: TLS 1.3 clients learn of the refusal at their first read; TLS 1.2 during the handshake."""
    tls13 = run_scenario(get_scenario("required-no-cert-tls13"), simulator=live_sim)
    tls12 = run_scenario(get_scenario("required-no-cert-tls12"), simulator=live_sim)
    assert tls13.observed.tls_alert is not None
    assert (
        tls13.observed.tls_alert.name,
        tls13.observed.tls_alert.code,
        tls13.observed.tls_alert.when,
    ) == ("certificate_required", 116, "first_read")
    assert tls12.observed.tls_alert is not None
    assert (
        tls12.observed.tls_alert.name,
        tls12.observed.tls_alert.code,
        tls12.observed.tls_alert.when,
    ) == ("handshake_failure", 40, "handshake")


def test_tls_required_interpretation_refuses_unbound_clients_at_the_tls_layer(
    live_sim: Simulator,
) -> None:
    """Requiring certificates at the TLS layer shuts out a client with an unbound token and no certificate."""
    scenario = get_scenario("unbound-no-cert")
    assert run_scenario(scenario, "baseline", simulator=live_sim).observed.status == 200
    refused = run_scenario(scenario, "tls-required", simulator=live_sim)
    assert refused.agree
    assert refused.observed.tls_alert is not None
    assert refused.observed.tls_alert.name == "certificate_required"


# ---- every field of the answer on the wire ------------------------------------------------------------


def test_the_wire_reads_back_every_field_an_answer_carries(live_sim: Simulator) -> None:
    """Observed.wire keeps, in order, every response field but the framing, WWW-Authenticate and
    Content-Type: for every built-in answer the catalogue reaches, the fields the server sends read back as
    the simulation's own wire (Cache-Control, DPoP-Nonce included); a field more, or one missing, differs."""
    further = set()
    for interpretation in BUILTINS.values():
        for scenario in CATALOGUE:
            outcome = live_sim.cell(scenario, interpretation).outcome
            if outcome.status is None:
                continue
            sent = [("Server", "x"), ("Date", "now"), *outcome.headers(), ("Connection", "close")]
            observed = Observed(status=outcome.status, headers=tuple(sent), body=outcome.body)
            assert observed.wire() == outcome.wire(), (scenario.id, interpretation.name)
            further.update(name for name, _ in outcome.headers_more)
    assert {"Cache-Control", "DPoP-Nonce"} <= further
    outcome = live_sim.cell(get_scenario("dpop-nonce-required"), BUILTINS["baseline"]).outcome
    fields = tuple(outcome.headers())
    more = Observed(status=outcome.status, headers=(*fields, ("X-More", "1")), body=outcome.body)
    fewer = Observed(
        status=outcome.status,
        headers=tuple(f for f in fields if f[0] != "DPoP-Nonce"),
        body=outcome.body,
    )
    assert more.wire() != outcome.wire()
    assert fewer.wire() != outcome.wire()


@pytest.mark.parametrize("proxy", ["direct", "builtin", "haproxy"])
def test_nonce_and_no_store_fields_arrive_as_the_answer_wrote_them(
    live_sim: Simulator, proxy: str
) -> None:
    """DPoP-Nonce (RFC 9449 §9) and the token endpoint's Cache-Control: no-store (RFC 6749 §5.1) reach the
    client as simulated, name case included, directly and through either proxy (HAProxy told to keep the
    case it would lower)."""
    if proxy == "haproxy":
        _need_haproxy()
    chosen = [get_scenario(i) for i in ("dpop-nonce-required", "token-endpoint-no-cert")]
    if proxy != "direct":
        chosen = [s.with_(id=f"{s.id}-proxied", topology=Topology.PROXY) for s in chosen]
    runs = run_many(
        chosen, ["baseline"], simulator=live_sim, proxy="auto" if proxy == "direct" else proxy
    )
    nonce, no_store = runs
    for run in runs:
        assert run.agree, run.describe()
    assert nonce.observed.wire()[-1] == ("DPoP-Nonce", "mtlslab-dpop-nonce-1")
    assert no_store.observed.wire()[-1] == ("Cache-Control", "no-store")


# ---- certificates asked for late: TLS 1.3 post-handshake authentication, TLS 1.2 renegotiation ---------


def test_post_handshake_authentication_asks_once_the_request_has_come(live_sim: Simulator) -> None:
    """RFC 8446 §4.6.2 for real: the server asks nothing in the handshake and, once the request is read,
    asks a client that offered post-handshake authentication, which then presents its certificate (200);
    a client that did not offer it is never asked (the missing certificate's 401: had the server asked in
    the handshake, it would have presented one); an untrusted certificate is refused with unknown_ca at the
    client's first read; no certificate, or TLS 1.2, is answered without one."""
    base = get_scenario("post-handshake-success")
    cases = {
        "offered": base,
        "not-offered": get_scenario("post-handshake-not-offered"),
        "untrusted": base.with_(id="pha-untrusted", certificate=CertChoice.UNTRUSTED_CA),
        "none": base.with_(id="pha-none", certificate=CertChoice.NONE),
        "tls12": base.with_(id="pha-tls12", tls_version=TlsVersion.TLS1_2),
    }
    runs = dict(zip(cases, run_many(cases.values(), ["baseline"], simulator=live_sim), strict=True))
    for key, run in runs.items():
        assert run.agree, f"{key}: {run.describe()}"
    assert runs["offered"].observed.status == 200
    assert runs["not-offered"].observed.status == 401
    assert runs["none"].observed.status == 401
    assert runs["tls12"].observed.status == 401
    alert = runs["untrusted"].observed.tls_alert
    assert alert is not None
    assert (alert.name, alert.when) == ("unknown_ca", "first_read")


def test_renegotiation_asks_once_the_request_has_come(live_sim: Simulator) -> None:
    """RFC 5746 renegotiation for real (TLS 1.2): the certificate presented in the renegotiation is the
    one the engine checks (200); an untrusted one is refused with unknown_ca at the first read, none gets
    401; a client that refuses to renegotiate is refused (handshake_failure at its first read) — had the
    server asked in the handshake, that client would have been answered 200."""
    base = get_scenario("renegotiation-success")
    cases = {
        "bound": base,
        "untrusted": base.with_(id="reneg-untrusted", certificate=CertChoice.UNTRUSTED_CA),
        "none": base.with_(id="reneg-none", certificate=CertChoice.NONE),
        "tls13": base.with_(id="reneg-tls13", tls_version=TlsVersion.TLS1_3),
    }
    runs = dict(zip(cases, run_many(cases.values(), ["baseline"], simulator=live_sim), strict=True))
    for key, run in runs.items():
        assert run.agree, f"{key}: {run.describe()}"
    assert runs["bound"].observed.status == 200
    assert runs["none"].observed.status == 401
    assert runs["tls13"].observed.status == 401  # no renegotiation in TLS 1.3: no certificate
    alert = runs["untrusted"].observed.tls_alert
    assert alert is not None
    assert (alert.name, alert.when) == ("unknown_ca", "first_read")
    with LiveStack(
        simulator=live_sim, deployment=base.deployment, interpretation=BUILTINS["baseline"]
    ) as stack:
        request = client_request(
            base.presentation,
            live_sim.asrv.mint(base.token),
            lab=live_sim.lab,
            resource_url=f"{stack.url}/resource",
        )
        refusing = stack.fresh_context(live_sim.lab.client)
        refusing.options |= ssl.OP_NO_RENEGOTIATION
        observed = send(request, context=refusing)
        assert send(request, context=stack.client_context(live_sim.lab.client)).status == 200
    assert observed.tls_alert is not None, observed.summary()
    assert (observed.tls_alert.name, observed.tls_alert.when) == ("handshake_failure", "first_read")


def test_the_builtin_proxy_asks_late_and_haproxy_is_not_run_for_it(live_sim: Simulator) -> None:
    """Behind the built-in proxy a certificate asked for late reaches the origin as Client-Cert (200; a
    client that did not offer post-handshake authentication is not asked: 401). HAProxy asks in the
    handshake or not at all: its configuration and its constructor refuse such a deployment with the
    reason verify gives for not running it."""
    chosen = [
        get_scenario(i).with_(id=f"{i}-proxied", topology=Topology.PROXY)
        for i in ("post-handshake-success", "post-handshake-not-offered", "renegotiation-success")
    ]
    runs = run_many(chosen, ["baseline"], simulator=live_sim, proxy="builtin")
    assert [r.observed.status for r in runs] == [200, 401, 200]
    assert all(r.agree and r.proxy == "builtin" for r in runs)
    assert live_limitation(chosen[0], "builtin") is None
    reason = live_limitation(chosen[0], "haproxy")
    assert reason is not None
    assert "HAProxy asks for a client certificate in the handshake or not at all" in reason
    with pytest.raises(ScenarioError, match=re.escape(reason)):
        haproxy_config(chosen[0].deployment, port=1, origin_port=2, crt="c", ca="a")
    with pytest.raises(ScenarioError, match=re.escape(reason)):
        HAProxy(lab=live_sim.lab, deployment=chosen[0].deployment, origin_port=2, executable="x")
    report = verify(chosen[:1], ["baseline"], simulator=live_sim, proxy="haproxy")
    assert (report.runs, [s.id for s, _ in report.skipped]) == ((), [chosen[0].id])


def test_a_client_that_never_answers_the_late_request_holds_no_worker_and_is_cut_off(
    live_sim: Simulator,
) -> None:
    """A client that sends its request and never reads, so never answers the post-handshake
    CertificateRequest, waits on the I/O thread, not on a worker: with one worker, a prompt client is
    answered meanwhile; at the connection's deadline the silent one is dropped and its connection closed."""
    scenario = get_scenario("post-handshake-success")
    limits = Limits(connection_timeout=3.0, max_connections=1, drain_timeout=0.1)
    with LiveServer(
        lab=live_sim.lab,
        deployment=scenario.deployment,
        interpretation=BUILTINS["baseline"],
        asrv=live_sim.asrv,
        limits=limits,
    ) as server:
        request, _ = _good_request(live_sim, server)
        context = client_context(
            ca=live_sim.lab.ca, identity=live_sim.lab.client, version=TlsVersion.TLS1_3
        )
        context.post_handshake_auth = True
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as silent,
        ):
            silent.sendall(b"GET /resource HTTP/1.1\r\nHost: localhost\r\n\r\n")  # never reads
            _wait_for(lambda: server.active_connections == 1, 5)
            prompt = send(request, context=context)
            assert prompt.status == 200, prompt.summary()
            assert server.dropped == 0
            _wait_for(lambda: server.dropped == 1, 5)
        _wait_for(lambda: server.active_connections == 0, 5)
    assert (server.served, server.dropped) == (1, 1)


# ---- session resumption ------------------------------------------------------------------------------


def _fetch_resource(
    url: str, context: ssl.SSLContext, token: str, session: ssl.SSLSession | None = None
) -> tuple[int, bool, ssl.SSLSession | None]:
    """One GET of ``url`` with ``token``: the status, whether the TLS session was resumed, and the session
    (read after the answer: a TLS 1.3 ticket comes after the handshake)."""
    parts = urllib.parse.urlsplit(url)
    with (
        socket.create_connection((parts.hostname, parts.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost", session=session) as tls,
    ):
        head = f"GET {parts.path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
        tls.sendall(f"{head}Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
        return int(data.split(b" ", 2)[1]), tls.session_reused, tls.session


@pytest.mark.parametrize("version", [TlsVersion.TLS1_3, TlsVersion.TLS1_2])
@pytest.mark.parametrize(
    "mode", [ClientAuth.OPTIONAL, ClientAuth.REQUIRED, ClientAuth.OPTIONAL_NO_CA]
)
def test_a_session_resumes_at_a_server_that_asks_for_certificates(
    live_sim: Simulator, mode: ClientAuth, version: TlsVersion
) -> None:
    """The server context has a session id context, so a client resumes its session (before the fix every
    resumption failed with internal_error); the resumed session carries the certificate of the first
    handshake, so the bound token is still accepted. A new connection without the session is a full
    handshake (negative control)."""
    token = live_sim.asrv.mint("bound").value
    with LiveServer(
        lab=live_sim.lab,
        deployment=Deployment(client_auth=mode, tls_version=version),
        interpretation=BUILTINS["baseline"],
        asrv=live_sim.asrv,
    ) as server:
        context = client_context(ca=live_sim.lab.ca, identity=live_sim.lab.client, version=version)
        url = f"{server.url}/resource"
        first = _fetch_resource(url, context, token)
        resumed = _fetch_resource(url, context, token, session=first[2])
        fresh = _fetch_resource(url, context, token)
    assert first[:2] == (200, False)
    assert resumed[:2] == (200, True)
    assert fresh[:2] == (200, False)


def test_curl_resumes_its_session_at_a_server_that_requires_certificates(
    live_sim: Simulator, tmp_path: Path
) -> None:
    """curl fetching two URLs in one run resumes its TLS 1.3 session on the second connection: both are
    answered (it failed with 'tlsv1 alert internal error' without the session id context); with
    --no-sessionid it makes two full handshakes and is answered too."""
    curl = _need("curl")
    folder = write_lab_folder(live_sim.lab, tmp_path / "lab").path
    token = live_sim.asrv.mint("bound").value
    with LiveServer(
        lab=live_sim.lab,
        deployment=Deployment(client_auth=ClientAuth.REQUIRED),
        interpretation=BUILTINS["baseline"],
        asrv=live_sim.asrv,
    ) as server:
        url = f"https://localhost:{server.port}/resource"
        base = [curl, "--silent", "--show-error", "--tlsv1.3"]
        base += ["--output", "/dev/null", "--output", "/dev/null"]  # one for each URL
        base += ["--cacert", str(folder / "ca.pem"), "--cert", str(folder / "client.pem")]
        base += ["--key", str(folder / "client.key"), "--header", f"Authorization: Bearer {token}"]
        base += ["--write-out", "%{http_code} %{num_connects}\n"]
        outs = [
            subprocess.run(
                [*base, *extra, url, url], capture_output=True, text=True, timeout=30, check=False
            )
            for extra in ([], ["--no-sessionid"])
        ]
    for done in outs:
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout == "200 1\n200 1\n"


def test_a_session_resumed_without_its_certificate_hands_none_to_the_server(
    live_sim: Simulator,
) -> None:
    """RFC 8446 §2.2 for real: a client that set up its session without a certificate and resumes it after
    loading one presents none (the bound token meets the missing certificate's 401), as the runner does
    for resumed-without-certificate; the same client in a new full handshake presents it (200). At a server
    that requires a certificate no such session can exist: the client's attempt is a full handshake with its
    certificate, answered 200 on the wire as in the model."""
    scenario = get_scenario("resumed-without-certificate")
    run = run_scenario(scenario, simulator=live_sim)
    assert run.agree, run.describe()
    assert run.observed.status == 401
    token = live_sim.asrv.mint("bound").value
    with LiveStack(
        simulator=live_sim, deployment=scenario.deployment, interpretation=BUILTINS["baseline"]
    ) as stack:
        context = stack.fresh_context(None)
        url = f"{stack.url}/resource"
        first = _fetch_resource(url, context, token)
        live_sim.lab.client.configure_cert(context)
        resumed = _fetch_resource(url, context, token, session=first[2])
        full = _fetch_resource(url, context, token)
    assert first[:2] == (401, False)
    assert resumed[:2] == (401, True)
    assert full[:2] == (200, False)
    required = scenario.with_(id="resumed-at-required", client_auth=ClientAuth.REQUIRED)
    assert live_limitation(required) is None
    at_required = run_scenario(required, simulator=live_sim)
    assert at_required.agree, at_required.describe()
    assert at_required.observed.status == 200


# ---- the alert at the first read, and a server that never sends it -----------------------------------


@pytest.mark.parametrize("version", [TlsVersion.TLS1_3, TlsVersion.TLS1_2])
def test_a_refusal_without_an_alert_is_seen_as_a_connection_closed_without_one(
    live_sim: Simulator, version: TlsVersion
) -> None:
    """The lab server refuses a certificate with OpenSSL's alert, which the client reads; the same server
    with refusal="close" closes the connection without any alert, and the client reports exactly that
    (CLOSED_WITHOUT_ALERT), not a failure of its own. A valid certificate is answered either way."""
    required = Deployment(client_auth=ClientAuth.REQUIRED, tls_version=version)
    seen: dict[str, list[Observed]] = {}
    for refusal in ("alert", "close"):
        with LiveServer(
            lab=live_sim.lab,
            deployment=required,
            interpretation=BUILTINS["baseline"],
            asrv=live_sim.asrv,
            refusal=refusal,
        ) as server:
            request, _ = _good_request(live_sim, server)
            lab = live_sim.lab
            seen[refusal] = [
                send(request, ca=lab.ca, identity=identity, version=version)
                for identity in (None, lab.untrusted_ca_client, lab.client)
            ]
            assert server.failed_handshakes == 2
    alerted, closed = seen["alert"], seen["close"]
    expected = ("certificate_required" if version is TlsVersion.TLS1_3 else "handshake_failure",)
    assert [o.tls_alert.name if o.tls_alert else None for o in alerted[:2]] == [
        *expected,
        "unknown_ca",
    ]
    for observed in closed[:2]:
        assert observed.tls_alert is None
        assert observed.wire() == ("error", CLOSED_WITHOUT_ALERT)
    assert alerted[2].status == closed[2].status == 200


# ---- RFC 9728 metadata, RFC 9440 Client-Cert-Chain, the lab issuer's token endpoint ------------------


def test_the_resource_server_publishes_rfc_9728_metadata_where_its_challenge_points(
    live_sim: Simulator,
) -> None:
    """With resource_metadata the server serves its RFC 9728 §2 document at the well-known path (§3) of the
    URL its challenge names — the lab resource's, as simulated — and the document names the resource, its
    issuer, certificate-bound tokens, DPoP's algorithms and the Bearer methods it takes. Without it, that
    path is just another request for the resource (negative control)."""
    scenario = get_scenario("resource-metadata-no-cert")
    run = run_scenario(scenario, simulator=live_sim)
    assert run.agree, run.describe()
    challenge = run.observed.header("WWW-Authenticate") or ""
    named = "https://rs.mtlslab.test/.well-known/oauth-protected-resource"
    assert f'resource_metadata="{named}"' in challenge
    lab = live_sim.lab
    documents: dict[bool, Observed] = {}
    for published in (True, False):
        deployment = Deployment(resource_metadata=published, query_tokens=False)
        with LiveServer(
            lab=lab, deployment=deployment, interpretation=BUILTINS["baseline"], asrv=live_sim.asrv
        ) as server:
            path = urllib.parse.urlsplit(named).path
            documents[published] = send(Request(url=f"{server.url}{path}"), ca=lab.ca)
    published, absent = documents[True], documents[False]
    assert (published.status, published.header("Content-Type")) == (200, "application/json")
    assert json.loads(published.body) == {
        "resource": live_sim.asrv.audience,
        "authorization_servers": [live_sim.asrv.issuer],
        "bearer_methods_supported": ["header", "body"],
        "tls_client_certificate_bound_access_tokens": True,
        "dpop_bound_access_tokens_required": False,
        "dpop_signing_alg_values_supported": list(DPOP_ALGS),
    }
    assert absent.status == 401
    assert absent.error_code() is None  # no token: the bare challenge (RFC 6750 §3.1)


@pytest.mark.parametrize("proxy", [BuiltinProxy, HAProxy])
def test_both_proxies_forward_the_intermediates_as_client_cert_chain(
    proxy: type[BuiltinProxy] | type[HAProxy],
) -> None:
    """RFC 9440 §2.3: the intermediate the client sent reaches the origin as Client-Cert-Chain beside its
    Client-Cert, and a Client-Cert-Chain the client wrote itself is stripped; a client that sent no
    intermediate gets none forwarded (negative control)."""
    if proxy is HAProxy:
        _need_haproxy()
    seen: dict[bool, list[str]] = {}
    with _capturing_origin() as origin:
        for intermediate in (True, False):
            lab = Lab(seed="client-cert-chain", intermediate=intermediate)
            identity = lab.client if intermediate else lab.self_signed_client
            deployment = Deployment(topology=Topology.PROXY, client_auth=ClientAuth.OPTIONAL_NO_CA)
            with proxy(lab=lab, deployment=deployment, origin_port=origin.server_address[1]) as p:
                forged = (("Client-Cert-Chain", ":QUJD:"),)
                request = Request(url=f"{p.url}/resource", headers=forged)
                assert send(request, ca=lab.ca, identity=identity).status == 204
            seen[intermediate] = _Capture.chains[-1]
            if intermediate:
                (value,) = seen[intermediate]
                (item,) = value.split(",")
                assert decode_client_cert(item.strip()) == lab.client.chain[0].public_bytes(
                    Encoding.DER
                )
    assert seen[False] == []


@pytest.mark.parametrize("proxy", ["builtin", "haproxy"])
def test_an_origin_that_validates_the_forwarded_certificate_agrees_through_either_proxy(
    live_sim: Simulator, proxy: str
) -> None:
    """proxy-no-ca-origin-validates (an untrusted certificate the proxy passes on, which the origin refuses
    to use), its success control, and a malformed Client-Cert a broken proxy passes through, all answer as
    simulated through the built-in proxy and through HAProxy."""
    if proxy == "haproxy":
        _need_haproxy()
    chosen = [
        get_scenario(i)
        for i in (
            "proxy-no-ca-origin-validates",
            "proxy-no-ca-origin-validates-success",
            "proxy-passes-malformed-client-cert",
        )
    ]
    runs = run_many(chosen, THREE, simulator=live_sim, proxy=proxy)
    for run in runs:
        assert run.agree, run.describe()
        assert run.proxy == proxy
    assert [r.observed.status for r in runs[:6:3]] == [401, 200]


@pytest.mark.parametrize("proxy", ["builtin", "haproxy"])
def test_with_an_intermediate_ca_the_origin_validates_what_the_proxy_forwards_as_simulated(
    proxy: str,
) -> None:
    """RFC 9440 §2.3: in a lab whose client certificate comes from an intermediate CA, the origin can
    validate the forwarded certificate only with the Client-Cert-Chain the proxy adds — and the simulation
    forwards it too, so proxy-no-ca-origin-validates-success is accepted on the wire and in the model; its
    untrusted-certificate twin is refused in both (negative control)."""
    if proxy == "haproxy":
        _need_haproxy()
    sim = Simulator(Lab(seed="intermediate-origin", intermediate=True))
    chosen = [
        get_scenario("proxy-no-ca-origin-validates-success"),
        get_scenario("proxy-no-ca-origin-validates"),
    ]
    runs = run_many(chosen, ["baseline"], simulator=sim, proxy=proxy)
    assert [r.observed.status for r in runs] == [200, 401]
    assert all(r.agree for r in runs), [r.describe() for r in runs]


@pytest.mark.parametrize("identity", ["client", "untrusted_ca_client"])
def test_with_an_intermediate_ca_the_token_endpoint_validates_the_chain_the_client_sent(
    identity: str,
) -> None:
    """RFC 8705 §2.1 in a lab whose client certificate comes from an intermediate CA: the token endpoint
    validates the client's chain with the intermediate it sent, so the lab client gets its token, on the
    wire as in the model; a client of the client's name from another CA is refused in both (control)."""
    sim = Simulator(Lab(seed="intermediate-token", intermediate=True))
    scenario = get_scenario("token-endpoint-success")
    if identity != "client":
        scenario = scenario.with_(id="token-endpoint-rogue", certificate=CertChoice.UNTRUSTED_CA)
    (run,) = run_many([scenario], ["baseline"], simulator=sim)
    assert run.agree, run.describe()
    issued = (run.simulated.finding, run.finding, run.observed.status)
    if identity == "client":
        assert issued == (Finding.TOKEN_ISSUED, Finding.TOKEN_ISSUED, 200)
    else:
        assert Finding.TOKEN_ISSUED not in issued[:2]
        assert run.observed.status != 200


def test_the_lab_issuer_token_endpoint_authenticates_the_lab_client_by_its_certificate(
    live_sim: Simulator,
) -> None:
    """RFC 8705 §2.1 at the lab issuer: the lab client with its certificate gets a token bound to it
    (§3.1), signed by the issuer's key and never cached; no certificate, another valid client's, or one
    with the client's name from another CA is invalid_client (400), as the engine's token endpoint says."""
    lab = live_sim.lab
    body = b"grant_type=client_credentials&client_id=lab-client"
    form = (("Content-Type", "application/x-www-form-urlencoded"),)
    with LabIssuer(lab, now=live_sim.now) as issuer:
        request = Request(method="POST", url=issuer.token_url, headers=form, body=body)
        answers = {
            name: send(request, ca=lab.ca, identity=identity)
            for name, identity in (
                ("client", lab.client),
                ("none", None),
                ("other", lab.other_client),
                ("rogue", lab.untrusted_ca_client),
            )
        }
        assert issuer.metadata()["token_endpoint"] == issuer.token_url
        jwks = issuer.asrv.jwks()
    issued = answers["client"]
    assert (issued.status, issued.header("Cache-Control")) == (200, "no-store")
    token = json.loads(issued.body)
    assert token["token_type"] == "Bearer"
    (key,) = jwt.PyJWKSet.from_dict(jwks).keys
    claims = jwt.decode(
        token["access_token"],
        key,
        algorithms=["ES256"],
        audience=issuer.audience,
        issuer=issuer.issuer,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["cnf"] == {"x5t#S256": lab.client.x5t_s256}
    for name in ("none", "other", "rogue"):
        refused = answers[name]
        assert (refused.status, refused.error_code()) == (400, "invalid_client"), name
        assert refused.header("Cache-Control") == "no-store"
    assert "POST /token" in issuer.fetched


# ---- the proxy --------------------------------------------------------------------------------------


class _Capture(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[list[str]]] = []
    chains: ClassVar[list[list[str]]] = []

    def do_GET(self) -> None:
        _Capture.seen.append(self.headers.get_all("Client-Cert") or [])
        _Capture.chains.append(self.headers.get_all("Client-Cert-Chain") or [])
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@contextlib.contextmanager
def _capturing_origin() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_haproxy_and_the_builtin_proxy_forward_the_same_client_cert(live_sim: Simulator) -> None:
    """Both proxies send RFC 9440 Client-Cert as :base64(DER): and strip the copy the client sent."""
    _need_haproxy()
    lab = live_sim.lab
    deployment = Deployment(topology=Topology.PROXY)
    forged = [("Client-Cert", ":" + "QUJD" + ":")]
    headers_seen: dict[str, list[str]] = {}
    with _capturing_origin() as origin:
        for proxy_cls in (HAProxy, BuiltinProxy):
            _Capture.seen = []
            proxy = proxy_cls(lab=lab, deployment=deployment, origin_port=origin.server_address[1])
            with proxy:
                request = Request(url=f"{proxy.url}/resource", headers=tuple(forged))
                observed = send(request, ca=lab.ca, identity=lab.client)
            assert observed.status == 204, observed.summary()
            headers_seen[proxy.kind] = _Capture.seen[-1]
    assert headers_seen["haproxy"] == headers_seen["builtin"]
    (value,) = headers_seen["haproxy"]
    assert decode_client_cert(value) == lab.client.der


def test_a_proxy_without_a_client_certificate_forwards_no_header(live_sim: Simulator) -> None:
    """RFC 9440 §2: no certificate in the handshake, no Client-Cert at the origin — even if the client sent one."""
    _need_haproxy()
    lab = live_sim.lab
    with _capturing_origin() as origin:
        for proxy_cls in (HAProxy, BuiltinProxy):
            _Capture.seen = []
            with proxy_cls(
                lab=lab,
                deployment=Deployment(topology=Topology.PROXY),
                origin_port=origin.server_address[1],
            ) as proxy:
                request = Request(url=f"{proxy.url}/resource", headers=(("Client-Cert", ":QUJD:"),))
                assert send(request, ca=lab.ca).status == 204
            assert _Capture.seen[-1] == []


# ---- the terminal: curl against `mtlslab serve` -----------------------------------------------------


@pytest.mark.parametrize("host", [None, "127.0.0.2", "::1"])
def test_curl_against_serve_reproduces_success_missing_and_mismatch(
    tmp_path: Path, host: str | None
) -> None:
    """Debian's curl, fed the lines `serve` prints, sees 200, the missing-certificate answer and 401
    invalid_token: on the default loopback address, on an address the lab certificate does not name
    (reached as localhost with --resolve), and on ::1. (A wildcard's lines are client_url's, tested
    without binding every interface.)"""
    curl = _need("curl")
    if host is not None and not _bindable(host):
        pytest.skip(f"this machine cannot listen on {host}")
    folder = tmp_path / "lab"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mtlslab",
            "serve",
            "--seed",
            "curl-test",
            "--lab-dir",
            str(folder),
            "--duration",
            "60",
            "-i",
            "thread-400",
            *(["--host", host] if host is not None else []),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("curl") and sum(x.startswith("curl") for x in lines) == 3:
                break
        text = "".join(lines)
        shown = {None: "127.0.0.1", "::1": "[::1]"}.get(host, host)
        assert f"listening on https://{shown}:" in text, text
        assert "thread-400" in text
        curl_lines = [line for line in lines if line.startswith("curl")]
        assert all(("--resolve" in line) == (host == "127.0.0.2") for line in curl_lines)
        commands = {}
        for label in ("success", "certificate missing", "certificate mismatch"):
            match = re.search(rf"^# {label}\n(curl .*)$", text, re.MULTILINE)
            assert match, text
            commands[label] = shlex.split(match.group(1))
            assert commands[label][0] == "curl"
        results = {}
        for label, args in commands.items():
            done = subprocess.run([curl, *args[1:]], capture_output=True, text=True, timeout=20)
            assert done.returncode == 0, done.stderr
            results[label] = done.stdout
        assert results["success"].startswith("HTTP/1.1 200")
        assert results["certificate missing"].startswith("HTTP/1.1 400")
        assert 'error="invalid_request"' in results["certificate missing"]
        assert results["certificate mismatch"].startswith("HTTP/1.1 401")
        assert 'error="invalid_token"' in results["certificate mismatch"]
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.parametrize(
    ("url", "client", "resolve"),
    [
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443", None),
        ("https://localhost:8443", "https://localhost:8443", None),
        ("https://[::1]:8443", "https://[::1]:8443", None),
        ("https://0.0.0.0:8443", "https://127.0.0.1:8443", None),
        ("https://[::]:8443", "https://[::1]:8443", None),
        ("https://127.0.0.2:8443", "https://localhost:8443", "localhost:8443:127.0.0.2"),
        ("https://192.0.2.7:8443", "https://localhost:8443", "localhost:8443:192.0.2.7"),
        ("https://[2001:db8::1]:8443", "https://localhost:8443", "localhost:8443:[2001:db8::1]"),
        ("https://LOCALHOST:8443", "https://LOCALHOST:8443", None),
        ("https://[::0]:8443", "https://[::1]:8443", None),
        (
            "https://127.0.0.2:8443/resource?x=1",
            "https://localhost:8443/resource?x=1",
            "localhost:8443:127.0.0.2",
        ),
        (
            "https://[fe80::1%25eth0]:8443",
            "https://[fe80::1%25eth0]:8443",
            None,
        ),  # a zone: no --resolve
        ("https://rs.lan:8443", "https://localhost:8443", "localhost:8443:192.0.2.9"),
        ("https://loop.lan:8443", "https://127.0.0.1:8443", None),
        ("https://nowhere.lan:8443", "https://nowhere.lan:8443", None),
        ("https://[::ffff:127.0.0.1]:8443", "https://127.0.0.1:8443", None),
        ("https://[::ffff:192.0.2.7]:8443", "https://localhost:8443", "localhost:8443:192.0.2.7"),
        ("https://192.0.2.7", "https://192.0.2.7", None),  # no port: --resolve needs one
        ("https://0.0.0.0", "https://127.0.0.1", None),
        ("https://192.0.2.7:99999", "https://192.0.2.7:99999", None),  # no such port
        ("https://127.0.0.1:0", "https://127.0.0.1:0", None),  # port 0: none a client can use
        ("https://[::1]:0", "https://[::1]:0", None),
        ("https://0.0.0.0:0", "https://0.0.0.0:0", None),
    ],
)
def test_a_client_reaches_the_server_by_a_name_the_lab_certificate_carries(
    monkeypatch: pytest.MonkeyPatch, url: str, client: str, resolve: str | None
) -> None:
    """The lab server certificate names localhost, 127.0.0.1 and ::1: those are used as they are (a name
    that resolves to one is written as the address), a wildcard listener is reached on loopback, and any
    other address as localhost resolved to it; what curl cannot be told (a zone, a name that does not
    resolve) is left as it is. Names are resolved by a stand-in here, not by DNS."""
    names = {"rs.lan": "192.0.2.9", "loop.lan": "127.0.0.1"}

    def resolve_name(name: str, port: int, **_: object) -> list[tuple[Any, ...]]:
        if name not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[name], port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve_name)
    assert client_url(url) == (client, resolve)


def test_the_bound_address_wins_over_resolving_the_name() -> None:
    """`serve` passes the address its listener bound: the curl lines name where the server is, whatever a
    second lookup of the name would say."""
    assert client_url("https://rs.lan:8443", address="192.0.2.10") == (
        "https://localhost:8443",
        "localhost:8443:192.0.2.10",
    )
    assert client_url("https://rs.lan:8443", address="127.0.0.1") == (
        "https://127.0.0.1:8443",
        None,
    )


def test_serve_on_an_address_the_certificate_does_not_name_warns_without_the_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a specific address other machines can reach, `serve` warns, and its curl lines already carry
    --resolve to that address, so the wildcard's hint about ADDRESS-OF-THIS-MACHINE is not printed. The
    listener is on 127.0.0.2 and told it is not on loopback, so this test listens on loopback only;
    client_url is asked with the address the listener bound."""
    if not _bindable("127.0.0.2"):
        pytest.skip("this machine cannot listen on 127.0.0.2")
    monkeypatch.setattr(LiveStack, "on_loopback", property(lambda _self: False))
    import mtlslab.live as live_module

    asked: list[str | None] = []
    real_client_url = live_module.client_url

    def recording(url: str, *, address: str | None = None) -> tuple[str, str | None]:
        asked.append(address)
        return real_client_url(url, address=address)

    monkeypatch.setattr(live_module, "client_url", recording)
    before = signal.getsignal(signal.SIGINT)
    out = io.StringIO()
    code = cli_main(
        [
            "serve",
            "--seed",
            "hint",
            "--lab-dir",
            str(tmp_path / "lab"),
            "--host",
            "127.0.0.2",
            "--duration",
            "0.1",
        ],
        out=out,
    )
    text = out.getvalue()
    assert code == 0
    assert signal.getsignal(signal.SIGINT) is before  # run in-process, serve gives Ctrl-C back
    assert "WARNING: listening on 127.0.0.2, not on loopback" in text
    assert "ADDRESS-OF-THIS-MACHINE" not in text
    assert "--resolve localhost:" in text
    assert ":127.0.0.2 " in text
    assert asked == ["127.0.0.2"]


def _serve_here(tmp_path: Path, *extra: str) -> list[str]:
    """`serve` on 127.0.0.1 for a moment, in this process: its output lines."""
    out = io.StringIO()
    args = ["serve", "--seed", "hint", "--lab-dir", str(tmp_path / "lab"), "--duration", "0.1"]
    assert cli_main([*args, *extra], out=out) == 0
    return out.getvalue().splitlines()


def test_serve_beyond_loopback_warns_then_says_how_another_machine_reaches_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On every interface the printed lines are for this machine: right after the address comes the
    WARNING, then how another machine reaches the server (localhost, with --resolve to this machine's
    address); where client_url leaves a zoned address, no hint can help, and none is printed. The listener
    is on 127.0.0.1, told it is not on loopback, so that no test listens on every interface."""
    monkeypatch.setattr(LiveStack, "on_loopback", property(lambda _self: False))
    lines = _serve_here(tmp_path)
    port = re.search(r"listening on https://127\.0\.0\.1:(\d+)/resource$", lines[0])
    assert port is not None
    assert (
        lines[1] == "WARNING: listening on 127.0.0.1, not on loopback: other machines can reach it"
    )
    assert lines[2] == (
        "  from another machine: the lab certificate names only localhost, 127.0.0.1 and ::1, so use "
        f"https://localhost:{port.group(1)} with curl --resolve "
        f"localhost:{port.group(1)}:ADDRESS-OF-THIS-MACHINE"
    )
    import mtlslab.live as live_module

    zoned = "https://[fe80::1%25eth0]:8443"
    monkeypatch.setattr(live_module, "client_url", lambda _url, **_: (zoned, None))
    text = "\n".join(_serve_here(tmp_path))
    assert "WARNING: listening on 127.0.0.1" in text
    assert "ADDRESS-OF-THIS-MACHINE" not in text
    assert f"{zoned}/resource" in text


@pytest.mark.parametrize("kept", [None, signal.SIG_IGN])
def test_serve_leaves_a_handler_it_could_not_restore_or_an_ignored_signal_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kept: Any
) -> None:
    """Ctrl-C stops `serve` through its own handler, put back afterwards; but a SIGINT handler installed
    outside Python (it reads as None and could not be put back) and an ignored SIGINT (a background job)
    stay as they are. SIGTERM is taken and given back."""
    real_get, real_set = signal.getsignal, signal.signal
    replaced: list[int] = []

    def reading(signum: int) -> Any:
        return kept if signum == signal.SIGINT else real_get(signum)

    def setting(signum: int, handler: Any) -> Any:
        replaced.append(signum)
        return real_set(signum, handler)

    monkeypatch.setattr(signal, "getsignal", reading)
    monkeypatch.setattr(signal, "signal", setting)
    _serve_here(tmp_path)
    assert signal.SIGINT not in replaced
    assert replaced.count(signal.SIGTERM) == 2  # installed, then restored


def test_curl_command_matches_the_scenario(live_sim: Simulator, tmp_path: Path) -> None:
    """The curl equivalent carries the scenario's certificate, headers, TLS version and URL; the huge token's
    command comes shortened, after a note that it cannot run as printed."""
    scenario = get_scenario("no-cert-tls12")
    command = curl_command(
        scenario, url="https://127.0.0.1:8443", lab=live_sim.lab, asrv=live_sim.asrv, folder="lab"
    )
    args = shlex.split(command)
    assert "--cert" not in args
    assert args[args.index("--tls-max") + 1] == "1.2"
    assert args[-1] == "https://127.0.0.1:8443/resource"
    assert any(a.startswith("Authorization: Bearer ey") for a in args)
    with_cert = shlex.split(
        curl_command(get_scenario("mismatch"), url="https://x", lab=live_sim.lab, folder="lab")
    )
    assert with_cert[with_cert.index("--cert") + 1] == "lab/other-client.pem"
    huge = curl_command(get_scenario("huge-token"), url="https://x", lab=live_sim.lab, folder="lab")
    note, command_line = huge.split("\n")
    assert note.startswith("# NOT RUNNABLE AS SHOWN")
    assert "characters left out" in command_line
    assert len(command_line) < 4096
    assert "\n" not in command
    folder = write_lab_folder(live_sim.lab, tmp_path / "lab").path
    assert (folder / "other-client.pem").exists()
    assert (folder / "other-client.key").stat().st_mode & 0o777 == 0o600


# ---- faults ---------------------------------------------------------------------------------------


def _threads_and_fds() -> tuple[int, int]:
    return threading.active_count(), len(os.listdir("/proc/self/fd"))


def _direct_server(
    sim: Simulator, reading: str = "baseline", *, limits: Limits | None = None
) -> LiveServer:
    """A live server for a direct connection (the default deployment) answering as ``reading``."""
    return LiveServer(
        lab=sim.lab,
        deployment=Deployment(),
        interpretation=BUILTINS[reading],
        asrv=sim.asrv,
        limits=limits,
    )


def _good_request(sim: Simulator, server: LiveServer) -> tuple[Request, Scenario]:
    scenario = get_scenario("success")
    token = sim.asrv.mint(scenario.token)
    return client_request(
        scenario.presentation, token, lab=sim.lab, resource_url=f"{server.url}/resource"
    ), scenario


def _assert_still_serves(sim: Simulator, server: LiveServer) -> None:
    request, _ = _good_request(sim, server)
    observed = send(request, ca=sim.lab.ca, identity=sim.lab.client)
    assert observed.status == 200, observed.summary()


def _settle(before: tuple[int, int], timeout: float = 5.0) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    now = _threads_and_fds()
    while now != before and time.monotonic() < deadline:
        time.sleep(0.05)
        now = _threads_and_fds()
    return now


def test_garbage_aborted_handshakes_and_silent_clients_leave_the_server_up(
    live_sim: Simulator,
) -> None:
    """Garbage bytes, a handshake cut off midway and a client that says nothing: dropped, server still serves."""
    before = _threads_and_fds()
    limits = Limits(connection_timeout=0.5, drain_timeout=0.2)
    with _direct_server(live_sim, limits=limits) as server:
        for payload in (b"\x00" * 64, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(4096)):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(payload)
                sock.settimeout(5)
                with contextlib.suppress(OSError):
                    sock.recv(1024)
        # a real ClientHello, then hang up in the middle of the handshake
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        ctx = ssl.create_default_context(cafile=None)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        half = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        with contextlib.suppress(ssl.SSLWantReadError):
            half.do_handshake()
        raw.sendall(outgoing.read())
        raw.close()
        # silent clients: connect and send nothing
        silent = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(3)]
        started = time.monotonic()
        for sock in silent:
            sock.settimeout(5)
            assert sock.recv(1) == b""  # the server hangs up on us after its connection timeout
            sock.close()
        assert time.monotonic() - started < 3
        _assert_still_serves(live_sim, server)
        assert server.failed_handshakes >= 4
    assert _settle(before) == before


def test_eight_concurrent_clients_times_one_hundred_requests(live_sim: Simulator) -> None:
    """8 clients × 100 requests, mixed certificates: every answer right, no thread or descriptor leaked."""
    before = _threads_and_fds()
    cases = {
        CertChoice.CLIENT: 200,
        CertChoice.OTHER: 401,
        CertChoice.NONE: 401,
        CertChoice.UNTRUSTED_CA: "unknown_ca",
    }
    with _direct_server(live_sim, "thread-401") as server:
        token = live_sim.asrv.mint("bound")
        contexts = {}
        from mtlslab.live.client import client_context

        for choice in cases:
            contexts[choice] = client_context(
                ca=live_sim.lab.ca,
                identity=choice.identity(live_sim.lab),
                version=TlsVersion.TLS1_3,
            )
        base = client_request(
            get_scenario("success").presentation,
            token,
            lab=live_sim.lab,
            resource_url=f"{server.url}/resource",
        )

        def client(worker: int) -> list[str]:
            wrong = []
            choices = list(cases)
            for i in range(100):
                choice = choices[(worker + i) % len(choices)]
                observed: Observed = send(
                    base, ca=live_sim.lab.ca, context=contexts[choice], timeout=10
                )
                expected = cases[choice]
                got: object = observed.tls_alert.name if observed.tls_alert else observed.status
                if got != expected:
                    wrong.append(f"{choice.value}: expected {expected}, got {observed.summary()}")
            return wrong

        with ThreadPoolExecutor(max_workers=8) as pool:
            failures = [w for ws in pool.map(client, range(8)) for w in ws]
        assert failures == []
        assert server.served >= 600
    assert _settle(before) == before


def test_limits_header_and_body_size_are_enforced(live_sim: Simulator) -> None:
    """A header block over the limit gets 431, a body over the limit 413; the server keeps serving."""
    limits = Limits(max_header_bytes=2048, max_body_bytes=1024)
    with _direct_server(live_sim, limits=limits) as server:
        request, _ = _good_request(live_sim, server)
        big_header = Request(url=request.url, headers=(*request.headers, ("X-Padding", "a" * 4096)))
        assert send(big_header, ca=live_sim.lab.ca, identity=live_sim.lab.client).status == 431
        big_body = Request(
            method="POST",
            url=request.url,
            headers=(("Content-Type", "text/plain"),),
            body=b"b" * 4096,
        )
        assert send(big_body, ca=live_sim.lab.ca, identity=live_sim.lab.client).status == 413
        _assert_still_serves(live_sim, server)


class _BrokenIssuer(AuthorizationServer):
    """An authorization server whose key set cannot be read."""

    def jwks(self) -> Any:
        raise RuntimeError("setup failed")


@pytest.mark.parametrize(
    ("which", "what"),
    [
        ("server", "context"),
        ("server", "issuer"),
        ("origin", "issuer"),
        ("proxy", "context"),
        ("lab-issuer", "context"),
        ("lab-issuer", "issuer"),
    ],
)
def test_a_listener_whose_setup_fails_leaves_no_socket_open(
    live_sim: Simulator, monkeypatch: pytest.MonkeyPatch, which: str, what: str
) -> None:
    """A constructor that fails (a TLS context or an authorization server that cannot be made, injected
    here) leaves no socket open: it was closed, or never bound. The garbage collector is not relied on."""
    import mtlslab.live.issuer as issuer_module
    import mtlslab.live.proxy as proxy_module
    import mtlslab.live.server as server_module

    bound: list[socket.socket] = []
    create_server = socket.create_server

    def recording(*args: Any, **kwargs: Any) -> socket.socket:
        sock = create_server(*args, **kwargs)
        bound.append(sock)
        return sock

    def failing(*_args: object, **_kwargs: object) -> object:
        raise RuntimeError("setup failed")

    monkeypatch.setattr(socket, "create_server", recording)
    if what == "context":
        for module in (server_module, proxy_module, issuer_module):
            monkeypatch.setattr(module, "server_context", failing)
    else:
        monkeypatch.setattr(issuer_module, "AuthorizationServer", failing)
    lab = live_sim.lab
    broken = _BrokenIssuer(lab) if what == "issuer" else None
    baseline = BUILTINS["baseline"]
    make: dict[str, Callable[[], object]] = {
        "server": lambda: LiveServer(
            lab=lab, deployment=Deployment(), interpretation=baseline, asrv=broken
        ),
        "origin": lambda: Origin(
            lab=lab, deployment=Deployment(), interpretation=baseline, asrv=broken
        ),
        "proxy": lambda: BuiltinProxy(lab=lab, deployment=Deployment(), origin_port=1),
        "lab-issuer": lambda: LabIssuer(lab),
    }
    with pytest.raises(RuntimeError, match="setup failed"):
        make[which]()
    assert [sock.fileno() for sock in bound] == [-1] * len(bound)  # every one closed
    # only the lab issuer's authorization server needs the URL, so fails after the bind; the rest before
    assert bool(bound) == ((which, what) == ("lab-issuer", "issuer"))


def test_the_server_binds_loopback_unless_told_otherwise(live_sim: Simulator) -> None:
    """127.0.0.1 and port 0 by default; the stack says so."""
    with LiveStack(
        simulator=live_sim, deployment=Deployment(), interpretation=BUILTINS["baseline"]
    ) as stack:
        assert stack.server.host == "127.0.0.1"
        assert stack.server.on_loopback
        assert stack.url.startswith("https://127.0.0.1:")
        assert stack.server.port != 0


def _bindable(host: str) -> bool:
    """Whether this machine can listen on ``host`` (macOS has only 127.0.0.1 of 127/8; IPv6 may be off)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.create_server((host.strip("[]"), 0), family=family):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("host", ["127.0.0.2", "localhost", "::1", "[::1]"])
def test_a_listener_knows_any_loopback_address_is_loopback(host: str) -> None:
    """Loopback is judged by the address bound (127.0.0.0/8, ::1), the same rule the probe applies to a
    target, not by the spelling of the host; an IPv6 address is bound as IPv6 and bracketed in the URL.
    The answer stays after the listener is closed."""
    if not _bindable(host):
        pytest.skip(f"this machine cannot listen on {host}")
    listener = Listener(host=host)
    try:
        assert listener.on_loopback
        assert is_loopback(host)
        if ":" in host:
            assert listener.url == f"https://[::1]:{listener.port}"
    finally:
        listener.close()
    assert listener.on_loopback


def test_an_empty_host_is_every_interface_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """`socket` reads an empty host as every IPv4 interface: the listener asks for 0.0.0.0 and names it so
    in its URL (https://:PORT is no URL), and, bound there, says it is not on loopback. The request is
    recorded and 127.0.0.1 bound in its place (reporting 0.0.0.0): no test listens on every interface."""
    asked: list[str] = []

    class Everywhere(socket.socket):
        """Bound to 127.0.0.1, but says what a wildcard bind would."""

        def getsockname(self) -> Any:
            return ("0.0.0.0", super().getsockname()[1])  # noqa: S104

    def recording(address: tuple[str, int], **kwargs: Any) -> socket.socket:
        asked.append(address[0])
        sock = Everywhere(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        return sock

    monkeypatch.setattr(socket, "create_server", recording)
    listener = Listener(host="")
    try:
        assert asked == ["0.0.0.0"]  # noqa: S104 - what the empty host means
        assert listener.url == f"https://0.0.0.0:{listener.port}"
        assert not listener.on_loopback  # judged by the address bound
    finally:
        listener.close()


def test_the_server_answers_over_ipv6_loopback(live_sim: Simulator) -> None:
    """`serve --host ::1`: bound as IPv6, and the lab server certificate names ::1, so a client that checks
    the address against it (as curl does) completes the handshake; the answer is the simulated one."""
    if not _bindable("::1"):
        pytest.skip("this machine cannot listen on ::1")
    exchange = live_sim.exchange(get_scenario("success"))
    with LiveServer(
        lab=live_sim.lab, deployment=Deployment(), interpretation=BUILTINS["baseline"], host="::1"
    ) as server:
        request = dataclasses.replace(exchange.client_request, url=f"{server.url}/resource")
        observed = send(
            request, ca=live_sim.lab.ca, identity=live_sim.lab.client, server_hostname="::1"
        )
        wrong_ca = send(
            request, ca=live_sim.lab.rogue_ca, identity=live_sim.lab.client, server_hostname="::1"
        )
    assert observed.status == 200
    assert wrong_ca.status is None
    assert "certificate verify failed" in (wrong_ca.error or "")


def test_live_findings_for_tls_rejections(live_sim: Simulator) -> None:
    """A handshake the server refuses is reported as tls_rejected, as in the matrix."""
    run = run_scenario(get_scenario("untrusted-ca-cert"), simulator=live_sim)
    assert run.finding is Finding.TLS_REJECTED
    assert run.outcome().tls_alert == run.simulated.tls_alert


def test_live_runs_render_simulated_and_observed_side_by_side(live_sim: Simulator) -> None:
    """A live run shows both answers in a notebook, escaped; a report lists every run."""
    run = run_scenario(get_scenario("no-cert-optional"), "thread-400", simulator=live_sim)
    page = run._repr_html_()
    assert "simulated" in page
    assert "observed on the wire" in page
    assert "agrees" in page
    assert "error=&quot;invalid_request&quot;" in page  # escaped
    report = verify([get_scenario("success")], ["baseline"], simulator=live_sim)
    assert "1/1 agree" in report._repr_html_()


# ---- hostile clients: the attack catalogue's HTTP-layer cases, limits, slow and greedy clients ------


def test_an_early_answer_is_read_even_when_the_write_fails(live_sim: Simulator) -> None:
    """A 1 MiB request answered early by a server that does not drain: the client's write breaks, and it
    still reads the 431 / 413 the engine chose (not a broken pipe)."""
    no_drain = Limits(
        drain_timeout=0.0
    )  # close at once: the rest of the client's write hits a closed socket
    with _direct_server(live_sim, limits=no_drain) as server:
        for scenario_id, status in (("huge-token", 431), ("huge-token-in-form", 413)):
            scenario = get_scenario(scenario_id)
            request = client_request(
                scenario.presentation,
                live_sim.asrv.mint(scenario.token),
                lab=live_sim.lab,
                resource_url=f"{server.url}/resource",
            )
            simulated = live_sim.cell(scenario, BUILTINS["baseline"]).outcome
            for _ in range(5):
                observed = send(request, ca=live_sim.lab.ca, identity=live_sim.lab.client)
                assert observed.status == status, observed.summary()
                assert observed.wire() == simulated.wire()
        _assert_still_serves(live_sim, server)


def test_the_size_answers_are_the_engines_under_any_limits(live_sim: Simulator) -> None:
    """Limits flow into the engine: a smaller header limit gives the simulation's headers_too_large answer,
    a request just under it is served, and the finding recorded is the engine's."""
    limits = Limits(max_header_bytes=4096, max_body_bytes=1024)
    with _direct_server(live_sim, "thread-401", limits=limits) as server:
        assert (server.config.max_header_bytes, server.config.max_body_bytes) == (4096, 1024)
        request, _ = _good_request(live_sim, server)
        room = 4096 - head_size(request) - len("X-Padding") - 4
        fits = request.with_header("X-Padding", "p" * room)
        over = request.with_header("X-Padding", "p" * (room + 1))
        assert head_size(fits) == 4096
        assert send(fits, ca=live_sim.lab.ca, identity=live_sim.lab.client).status == 200
        observed = send(over, ca=live_sim.lab.ca, identity=live_sim.lab.client)
        expected = BUILTINS["thread-401"].respond(size_decision(server.config, head=4097))
        assert observed.wire() == expected.wire()
        assert server.last_finding is Finding.HEADERS_TOO_LARGE
        assert observed.body == "request header fields too large\n"


def _slowed(server: Listener, seconds: float) -> list[float]:
    """Make ``server``'s answers take ``seconds`` longer (a slow engine or origin, injected); returns the
    list each computed answer's start is recorded in."""
    answer = server._answer
    started: list[float] = []

    def slow(incoming: Any, **kwargs: Any) -> bytes:
        started.append(time.monotonic())
        time.sleep(seconds)
        return answer(incoming, **kwargs)

    server._answer = slow  # type: ignore[method-assign]
    return started


def test_complete_requests_beyond_the_workers_wait_for_one_and_are_served(
    live_sim: Simulator,
) -> None:
    """max_connections=1 and answers that take 0.3 s: two requests sent together are answered one after
    the other by the one worker; a silent client connected before them holds no worker meanwhile."""
    limits = Limits(max_connections=1, connection_timeout=3.0, drain_timeout=0.1)
    with _direct_server(live_sim, limits=limits) as server:
        started = _slowed(server, 0.3)
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        request, _ = _good_request(live_sim, server)
        begin = time.monotonic()

        def client(_: int) -> tuple[int | None, float]:
            observed = send(request, ca=live_sim.lab.ca, identity=live_sim.lab.client)
            return observed.status, time.monotonic() - begin

        with ThreadPoolExecutor(2) as pool:
            answers = sorted(pool.map(client, range(2)), key=lambda a: a[1])
        silent.close()
    assert [status for status, _ in answers] == [200, 200]
    assert started[1] - started[0] >= 0.25  # the second waited for the worker (0.3 s)
    assert answers[1][1] < limits.connection_timeout


def test_a_request_still_waiting_for_a_worker_at_its_deadline_is_dropped(
    live_sim: Simulator,
) -> None:
    """max_connections=1, a 0.5 s deadline and answers that take 1.5 s: both clients are cut off unanswered
    at their deadline, long before the first answer is ready (then discarded); the second request never
    gets the worker, so only one answer was ever computed."""
    limits = Limits(max_connections=1, connection_timeout=0.5, drain_timeout=0.1)
    with _direct_server(live_sim, limits=limits) as server:
        started = _slowed(server, 1.5)
        request, _ = _good_request(live_sim, server)

        def client(_: int) -> tuple[Observed, float]:
            begin = time.monotonic()
            observed = send(request, ca=live_sim.lab.ca, identity=live_sim.lab.client)
            return observed, time.monotonic() - begin

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(client, range(2)))
    # closed: the worker has finished
    assert len(started) == 1
    assert (server.served, server.dropped) == (0, 2)
    for observed, took in answers:
        assert observed.status is None, observed.summary()
        assert took < 1.2, took  # the deadline, not the 1.5 s answer


def _client_hello() -> bytes:
    """The first flight of a real TLS client (its ClientHello): what a handshake slowloris trickles."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    outgoing = ssl.MemoryBIO()
    half = ctx.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        half.do_handshake()
    return outgoing.read()


#: A request head that never ends: what a request slowloris trickles.
_ENDLESS_HEAD = b"GET /resource HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"s" * 4096


@contextlib.contextmanager
def _drippers(
    port: int,
    count: int,
    payload: bytes,
    *,
    context: ssl.SSLContext | None = None,
    interval: float = 1.0,
) -> Iterator[list[object]]:
    """``count`` clients that each send ``payload`` one byte every ``interval`` seconds (after a complete
    TLS handshake with ``context``, when given) until the block ends or the server cuts them off. Yields
    the list each client is put in once connected (and handshaken), and is removed from when cut off."""
    stop = threading.Event()
    connected: list[object] = []

    def drip(n: int) -> None:
        with contextlib.suppress(OSError), contextlib.ExitStack() as stack:
            conn = stack.enter_context(socket.create_connection(("127.0.0.1", port), 10))
            if context is not None:
                conn = stack.enter_context(context.wrap_socket(conn, server_hostname="localhost"))
            connected.append(n)
            try:
                for i in range(len(payload)):
                    conn.sendall(payload[i : i + 1])
                    if stop.wait(interval):
                        return
            finally:
                connected.remove(n)

    with ThreadPoolExecutor(count) as pool:
        for n in range(count):
            pool.submit(drip, n)
        try:
            yield connected
        finally:
            stop.set()


def _wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("stage", ["handshake", "request head"])
def test_two_hundred_slow_clients_leave_a_prompt_client_served_within_its_deadline(
    live_sim: Simulator, stage: str
) -> None:
    """200 clients trickle their TLS handshake, or (handshake done) their request head, one byte a second:
    none holds a worker, so a client with a real certificate is answered within its connection deadline
    (5 s) while all 200 are still connected. Afterwards no thread or descriptor is left."""
    before = _threads_and_fds()
    limits = Limits()
    with _direct_server(live_sim, limits=limits) as server:
        anonymous = client_context(ca=live_sim.lab.ca, identity=None, version=TlsVersion.TLS1_3)
        payload, context = (
            (_client_hello(), None) if stage == "handshake" else (_ENDLESS_HEAD, anonymous)
        )
        with _drippers(server.port, 200, payload, context=context) as connected:
            _wait_for(lambda: len(connected) == 200 and server.active_connections >= 200, 20)
            held = len(connected), server.active_connections
            request, _ = _good_request(live_sim, server)
            observed = send(
                request,
                ca=live_sim.lab.ca,
                identity=live_sim.lab.client,
                timeout=limits.connection_timeout + 1,
            )
            still = len(connected)
        assert observed.status == 200, observed.summary()
        assert observed.elapsed < limits.connection_timeout, observed.elapsed
        assert held[0] == 200, (
            held
        )  # all of them connected (and handshaken), and held by the server
        assert held[1] >= 200, held
        assert still == 200  # the attack went on throughout
    assert _settle(before) == before


@pytest.mark.parametrize("kind", ["lab issuer", "built-in proxy", "origin"])
def test_every_listener_answers_past_slow_clients(live_sim: Simulator, kind: str) -> None:
    """The lab issuer (16 workers), the built-in proxy and the origin behind it (64 each) are the same
    listener: 100 clients trickling their handshake (to the origin: their request head) leave a prompt
    request answered."""
    lab = live_sim.lab
    stack = LiveStack(
        simulator=live_sim,
        deployment=get_scenario("proxy-success").deployment,
        interpretation=BUILTINS["baseline"],
        proxy="builtin",
    )
    with stack, LabIssuer(lab, asrv=live_sim.asrv, now=live_sim.now) as issuer:
        listener = {"lab issuer": issuer, "built-in proxy": stack.proxy, "origin": stack.server}[
            kind
        ]
        assert isinstance(listener, Listener)
        payload = _ENDLESS_HEAD if kind == "origin" else _client_hello()
        with _drippers(listener.port, 100, payload) as connected:
            _wait_for(lambda: len(connected) == 100 and listener.active_connections >= 100, 20)
            held = len(connected)
            if kind == "origin":
                with contextlib.closing(
                    http.client.HTTPConnection("127.0.0.1", listener.port, timeout=5)
                ) as plain:
                    plain.request("GET", "/resource")
                    status: int | None = plain.getresponse().status
            elif kind == "lab issuer":
                trusting = ssl.create_default_context(cadata=lab.ca.cert_pem.text())
                with contextlib.closing(
                    http.client.HTTPSConnection(
                        "127.0.0.1", listener.port, context=trusting, timeout=5
                    )
                ) as tls:
                    tls.request("GET", "/jwks")
                    status = tls.getresponse().status
            else:
                exchange = live_sim.exchange(get_scenario("proxy-success"))
                request = dataclasses.replace(exchange.client_request, url=f"{stack.url}/resource")
                status = send(request, context=stack.client_context(lab.client)).status
            still = len(connected)
    assert status == (401 if kind == "origin" else 200)  # the origin: no token, the engine's 401
    assert (held, still) == (100, 100)


def test_a_full_listener_makes_room_by_dropping_its_oldest_waiting_client(
    live_sim: Simulator,
) -> None:
    """max_pending=4: four silent clients fill the listener; a fifth, with a real certificate, is served,
    the oldest silent client having been dropped to make room, while the three newer ones stay connected."""
    limits = Limits(max_pending=4)
    with _direct_server(live_sim, limits=limits) as server:
        silent = []
        for _ in range(4):
            silent.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
            _wait_for(lambda: server.active_connections == len(silent), 5)
        _assert_still_serves(live_sim, server)
        assert silent[0].recv(1) == b""  # dropped: the server hung up
        for sock in silent[1:]:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):  # still open, nothing said
                sock.recv(1)
        for sock in silent:
            sock.close()


def test_a_listener_holds_at_most_a_quarter_of_the_descriptor_limit() -> None:
    """Under `ulimit -n 1024` a listener holds at most 256 connections, however many max_pending allows, so
    a flood cannot take the process's last descriptors; a smaller max_pending is kept as it is."""
    script = (
        "import resource\n"
        "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))\n"
        "from mtlslab.live.server import Limits, Listener\n"
        "for limits in (Limits(), Limits(max_pending=100)):\n"
        "    listener = Listener(limits=limits)\n"
        "    print(listener._max_pending)\n"
        "    listener.close()\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["256", "100"]


@pytest.mark.parametrize("stage", ["handshake", "request head"])
def test_a_slowloris_client_is_cut_off_at_the_connection_timeout(
    live_sim: Simulator, stage: str
) -> None:
    """A client that trickles its handshake, or its request, one byte every 0.2 s gets no answer and is cut
    off once connection_timeout has passed (plus the bounded drain); the server keeps serving."""
    limits = Limits(connection_timeout=1.0, drain_timeout=0.2)
    with _direct_server(live_sim, limits=limits) as server:
        request, _ = _good_request(live_sim, server)
        from mtlslab.live.client import _encode

        ctx = client_context(
            ca=live_sim.lab.ca, identity=live_sim.lab.client, version=TlsVersion.TLS1_3
        )
        started = time.monotonic()
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        conn = raw if stage == "handshake" else ctx.wrap_socket(raw, server_hostname="localhost")
        payload = _client_hello() if stage == "handshake" else _encode(request)
        with conn:
            sent = 0
            answer = b""
            while sent < len(payload) and time.monotonic() - started < 5:
                try:
                    conn.sendall(payload[sent : sent + 1])
                except OSError:
                    break
                sent += 1
                readable, _, _ = select.select([conn], [], [], 0.2)
                if readable:
                    with contextlib.suppress(OSError):
                        answer = conn.recv(4096)
                    break
            elapsed = time.monotonic() - started
        assert sent < len(payload)  # cut off before it had said everything
        assert not answer.startswith(b"HTTP/")
        assert 1.0 <= elapsed < 2.0, elapsed
        assert server.dropped >= 1
        _assert_still_serves(live_sim, server)


def test_non_ascii_subject_leaves_the_header_section_intact_on_the_wire(
    live_sim: Simulator,
) -> None:
    """The subject's U+2028, CR LF and 'X-Injected' line travel only escaped inside the JSON body."""
    run = run_scenario(get_scenario("non-ascii-subject"), simulator=live_sim)
    assert run.agree, run.describe()
    observed = run.observed
    assert observed.status == 200
    assert observed.header("X-Injected") is None
    assert [k.lower() for k, _ in observed.headers] == [
        "content-type",
        "content-length",
        "connection",
    ]
    assert not set(observed.body) & {"\r", "\n", "\u2028"}
    assert json.loads(observed.body)["sub"] == "alice\u2028\r\nX-Injected: 1"


def test_the_live_server_stays_up_through_the_whole_attack_catalogue(live_sim: Simulator) -> None:
    """Every attack scenario, live, leaves a server that still serves the positive control."""
    with _direct_server(live_sim) as server:
        for scenario in scenarios_tagged("attack"):
            if scenario.deployment.topology is Topology.PROXY:
                continue  # the proxied ones run through HAProxy in the catalogue test
            request = client_request(
                scenario.presentation,
                live_sim.asrv.mint(scenario.token),
                lab=live_sim.lab,
                resource_url=f"{server.url}/resource",
            )
            identity = scenario.presentation.certificate.identity(live_sim.lab)
            observed = send(request, ca=live_sim.lab.ca, identity=identity)
            assert observed.status is not None or observed.tls_alert is not None, scenario.id
        _assert_still_serves(live_sim, server)


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.2", "::1", "[::1]"],
)
def test_serve_on_any_loopback_address_prints_no_warning(tmp_path: Path, host: str) -> None:
    """The default loopback bind prints no WARNING line, and neither does another address of 127.0.0.0/8
    (all of it is loopback) or ::1. (The warning itself, and the hint after it, are tested in-process
    with the listener told it is not on loopback, so that no test listens on every interface.)"""
    if not _bindable(host):
        pytest.skip(f"this machine cannot listen on {host}")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mtlslab",
            "serve",
            "--seed",
            "bind-test",
            "--lab-dir",
            str(tmp_path / "lab"),
            "--host",
            host,
            "--duration",
            "0.3",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    warnings = [line for line in lines if line.startswith("WARNING:")]
    bare = host.strip("[]")
    shown = f"[{bare}]" if ":" in bare else bare
    assert [line for line in lines if f"listening on https://{shown}:" in line]
    assert warnings == []


@pytest.mark.parametrize("proxy", ["haproxy", "builtin"])
def test_a_proxy_that_does_not_strip_client_cert_lets_the_thief_in(
    live_sim: Simulator, proxy: str
) -> None:
    """proxy-passes-client-cert over both proxies: the client's own Client-Cert reaches the trusting origin
    and the stolen token is served, as simulated; the stripping proxy's twin finds no certificate."""
    if proxy == "haproxy":
        _need_haproxy()
    broken = run_scenario(get_scenario("proxy-passes-client-cert"), simulator=live_sim, proxy=proxy)
    assert broken.agree, broken.describe()
    assert (broken.proxy, broken.observed.status, broken.finding) == (proxy, 200, Finding.ACCEPTED)
    strips = get_scenario("proxy-passes-client-cert").with_(proxy_strips_client_cert=True)
    fixed = run_scenario(strips, simulator=live_sim, proxy=proxy)
    assert fixed.agree, fixed.describe()
    assert fixed.finding is Finding.CERTIFICATE_MISSING


@pytest.mark.parametrize("proxy", ["haproxy", "builtin"])
@pytest.mark.parametrize("host", ["127.0.0.2", "::1"])
def test_behind_a_proxy_the_proxy_listens_where_the_stack_is_told(
    live_sim: Simulator, proxy: str, host: str
) -> None:
    """A proxied stack asked for another host binds its proxy there (what clients reach); the origin stays
    on 127.0.0.1. The scenario then runs through it as simulated, and the stack reports loopback."""
    if proxy == "haproxy":
        _need_haproxy()
    if not _bindable(host):
        pytest.skip(f"this machine cannot listen on {host}")
    scenario = get_scenario("proxy-success")
    exchange = live_sim.exchange(scenario)
    with LiveStack(
        simulator=live_sim,
        deployment=scenario.deployment,
        interpretation=BUILTINS["baseline"],
        proxy=proxy,
        host=host,
    ) as stack:
        shown = f"[{host}]" if ":" in host else host
        assert stack.url.startswith(f"https://{shown}:")
        assert stack.server.url.startswith("http://127.0.0.1:")
        assert stack.on_loopback
        request = dataclasses.replace(exchange.client_request, url=f"{stack.url}/resource")
        observed = send(request, context=stack.client_context(live_sim.lab.client))
        no_cert = send(request, context=stack.client_context(None))
    assert observed.status == 200
    assert no_cert.status == 401  # the control: without the certificate the bound token fails


def test_haproxy_on_a_port_another_process_holds_fails_at_once(live_sim: Simulator) -> None:
    """A fixed port already taken (by a plain listener, then by a first haproxy) fails at once with the
    system's reason, before any haproxy starts or any file (the server's private key among them) is
    written; the first haproxy goes on answering."""
    _need_haproxy()
    deployment = get_scenario("proxy-success").deployment
    with socket.create_server(("127.0.0.1", 0)) as holder:
        taken = HAProxy(
            lab=live_sim.lab, deployment=deployment, origin_port=1, port=holder.getsockname()[1]
        )
        with pytest.raises(OSError, match="in use") as failed, taken:
            pass
        assert failed.value.errno == errno.EADDRINUSE
        assert (taken._proc, taken._dir) == (None, None)
    with (
        _capturing_origin() as origin,
        HAProxy(
            lab=live_sim.lab, deployment=deployment, origin_port=origin.server_address[1]
        ) as first,
    ):
        second = HAProxy(lab=live_sim.lab, deployment=deployment, origin_port=1, port=first.port)
        with pytest.raises(OSError, match="in use"), second:
            pass
        assert (second._proc, second._dir) == (None, None)
        request = Request(url=f"{first.url}/resource")
        assert send(request, ca=live_sim.lab.ca).status == 204  # first's origin answers


def _fake_haproxy(live_sim: Simulator, tmp_path: Path, script: str) -> HAProxy:
    """An HAProxy whose executable is the shell ``script``, with a start timeout of 0.5 s."""
    fake = tmp_path / "fake-haproxy"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    return HAProxy(
        lab=live_sim.lab,
        deployment=get_scenario("proxy-success").deployment,
        origin_port=1,
        executable=str(fake),
        start_timeout=0.5,
    )


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ("echo \"[ALERT] config : unknown keyword 'x'\"; exit 1", "haproxy exited with status 1"),
        ("echo 'starting'; exec sleep 30", "not ready after 0.5 s"),
    ],
)
def test_a_haproxy_that_does_not_come_up_fails_with_its_log_and_leaves_nothing(
    live_sim: Simulator, tmp_path: Path, script: str, reason: str
) -> None:
    """A haproxy that exits at once, or runs but never answers (a shell script stands in for it), is
    started once: the error says why and carries haproxy's own log; its process, its socket and its folder
    (the server's private key was there) are gone, though __exit__ never ran."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to find the stand-in's process")
    proxy = _fake_haproxy(live_sim, tmp_path, f"echo $$ > {tmp_path / 'pid'}\n{script}")
    with pytest.raises(RuntimeError, match=re.escape(reason)) as failed, proxy:
        pass
    assert f"did not start on https://127.0.0.1:{proxy.port}" in str(failed.value)
    assert ("unknown keyword 'x'" if "ALERT" in script else "starting") in str(failed.value)
    assert proxy._proc is None
    assert proxy._socket is not None
    assert proxy._socket.fileno() == -1
    assert proxy._dir is not None
    assert not Path(proxy._dir.name).exists()
    assert not _alive(int((tmp_path / "pid").read_text()))


def test_a_stack_whose_proxy_cannot_start_leaves_nothing_behind(
    live_sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LiveStack.start interrupted by Ctrl-C while haproxy starts (after it runs): the interruption
    reaches the caller of a `with` block, whose __exit__ never runs; haproxy is stopped, its files are
    removed, its socket and the origin are closed."""
    _need_haproxy()
    made: list[HAProxy] = []
    launch = HAProxy._launch

    def interrupted(self: HAProxy, fd: int) -> str:
        made.append(self)
        launch(self, fd)
        raise KeyboardInterrupt  # Ctrl-C: not an Exception

    monkeypatch.setattr(HAProxy, "_launch", interrupted)
    stack = LiveStack(
        simulator=live_sim,
        deployment=get_scenario("proxy-success").deployment,
        interpretation=BUILTINS["baseline"],
        proxy="haproxy",
    )
    with pytest.raises(KeyboardInterrupt), stack:
        pass
    (proxy,) = made
    assert proxy._proc is None
    assert proxy._dir is not None
    assert not Path(proxy._dir.name).exists()
    assert proxy._socket is not None
    assert proxy._socket.fileno() == -1
    assert stack.server._listener.fileno() == -1


#: Starts a proxied LiveStack behind haproxy, says where haproxy's folder is, and waits to be killed.
_STACK_SCRIPT = """
import time
from mtlslab.compare import Simulator
from mtlslab.interpretations import BUILTINS
from mtlslab.live import LiveStack
from mtlslab.scenarios import get_scenario
stack = LiveStack(
    simulator=Simulator(seed="lifetime"),
    deployment=get_scenario("proxy-success").deployment,
    interpretation=BUILTINS["baseline"],
    proxy="haproxy",
).start()
print(stack.proxy._dir.name, flush=True)
time.sleep(60)
"""


def _mentioning(text: str) -> list[str]:
    """The command lines of the running processes that mention ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if any(text.encode() in arg for arg in argv):
                    found.append(b" ".join(argv).decode(errors="replace"))
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_haproxy_never_outlives_the_process_that_started_it(signum: int) -> None:
    """A script that started a LiveStack behind haproxy is killed (SIGTERM with its default action, or
    SIGKILL: no Python cleanup runs): within 5 s no process of haproxy's remains, nor its folder with the
    server's private key. While the script ran, haproxy did."""
    _need_haproxy()
    if not Path("/proc/self/cmdline").exists():
        pytest.skip("needs /proc to find haproxy's processes")
    with subprocess.Popen(
        [sys.executable, "-c", _STACK_SCRIPT], stdout=subprocess.PIPE, text=True
    ) as script:
        try:
            assert script.stdout is not None
            folder = script.stdout.readline().strip()
            assert folder
            running = _mentioning(folder)
            script.send_signal(signum)
            script.wait(10)
        finally:
            script.kill()
    assert [argv for argv in running if argv.startswith(f"{find_haproxy()} -db ")]
    deadline = time.monotonic() + 5
    while (_mentioning(folder) or Path(folder).exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _mentioning(folder) == []
    assert not Path(folder).exists()


def test_where_a_local_client_reaches_a_listener() -> None:
    """A wildcard listener is reached on loopback; any other host as itself."""
    from mtlslab.live.proxy import _reachable

    assert [_reachable(h) for h in ("0.0.0.0", "::", "::0", "", "127.0.0.2", "::1")] == [  # noqa: S104
        "127.0.0.1",
        "::1",
        "::1",
        "127.0.0.1",
        "127.0.0.2",
        "::1",
    ]


def test_haproxy_says_whether_it_is_on_loopback_and_writes_ipv6_bind_lines(
    live_sim: Simulator,
) -> None:
    """Nothing is bound here: the constructor binds nothing and writes nothing. On 0.0.0.0 haproxy is not
    on loopback (the negative control for LiveStack.on_loopback); an IPv6 address goes into the bind line
    with its port after the last colon, which haproxy -c accepts; HAProxy.start's own config binds the
    socket it inherits."""
    deployment = get_scenario("proxy-success").deployment
    wide = HAProxy(
        lab=live_sim.lab,
        deployment=deployment,
        origin_port=1,
        host="0.0.0.0",  # noqa: S104 - nothing is bound: start() is never called
        executable=sys.executable,
    )
    local = HAProxy(
        lab=live_sim.lab,
        deployment=deployment,
        origin_port=1,
        host="[::1]",
        executable=sys.executable,
    )
    try:
        assert not wide.on_loopback
        assert local.on_loopback
        assert local.host == "::1"
    finally:
        wide.close()
        local.close()
    config = haproxy_config(
        deployment, port=8443, origin_port=8080, crt="/x.pem", ca="/ca.pem", host="::1"
    )
    assert "    bind ::1:8443 ssl crt /x.pem" in config
    assert "    noreuseport" in config
    wildcard = haproxy_config(
        deployment, port=8443, origin_port=8080, crt="/x.pem", ca="/ca.pem", host="::"
    )
    assert "    bind :::8443 v4v6 ssl crt /x.pem" in wildcard  # IPv4 too, as the Python listener
    inherited = haproxy_config(
        deployment, port=8443, origin_port=8080, crt="/x.pem", ca="/ca.pem", host="::", fd=7
    )
    assert (
        "    bind fd@7 ssl crt /x.pem" in inherited
    )  # the socket HAProxy.start binds and hands over
    executable = find_haproxy()
    if executable is not None:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "x.pem").write_bytes(
                live_sim.lab.server.cert_chain_pem.bytes()
                + live_sim.lab.server.private_key_pem.bytes()
            )
            live_sim.lab.ca.cert_pem.write_to_path(folder / "ca.pem")
            cfg = folder / "h.cfg"
            cfg.write_text(
                haproxy_config(
                    deployment,
                    port=8443,
                    origin_port=8080,
                    crt=str(folder / "x.pem"),
                    ca=str(folder / "ca.pem"),
                    host="::1",
                )
            )
            checked = subprocess.run(
                [executable, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=20
            )
            assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(("host", "dualstack"), [("::", True), ("::0", True), ("::1", False)])
def test_an_ipv6_wildcard_listener_asks_for_ipv4_too(
    monkeypatch: pytest.MonkeyPatch, host: str, dualstack: bool
) -> None:
    """`--host ::` (any spelling of the IPv6 wildcard) is every interface, IPv4 included where one socket
    can serve both; ::1 is IPv6 loopback only. The request is recorded, and ::1 bound in its place, so no
    test listens on every interface."""
    if not _bindable("::1"):
        pytest.skip("this machine cannot listen on ::1")
    asked: list[dict[str, Any]] = []
    create_server = socket.create_server

    def recording(address: tuple[str, int], **kwargs: Any) -> socket.socket:
        asked.append({"host": address[0], **kwargs})
        return create_server(("::1", 0), family=socket.AF_INET6)

    monkeypatch.setattr(socket, "create_server", recording)
    Listener(host=host).close()
    (call,) = asked
    assert call["family"] == socket.AF_INET6
    assert call["dualstack_ipv6"] == (dualstack and socket.has_dualstack_ipv6())


def test_serve_in_a_thread_runs_and_closes_its_server(tmp_path: Path) -> None:
    """Signal handlers belong to the main thread: `serve` run from another thread leaves them alone, runs,
    and closes its server when done (the port refuses connections afterwards)."""
    import threading

    out = io.StringIO()
    result: list[int | BaseException] = []
    args = ["serve", "--seed", "thread", "--lab-dir", str(tmp_path / "lab"), "--duration", "0.2"]

    def run() -> None:
        try:
            result.append(cli_main(args, out=out))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(20)
    assert not thread.is_alive()
    assert result == [0]
    found = re.search(r"listening on https://127\.0\.0\.1:(\d+)/", out.getvalue())
    assert found is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(found.group(1))), timeout=2).close()


def test_send_needs_a_ca_to_trust_or_a_ready_context() -> None:
    """Without ca= or context= the client would trust nothing: a TypeError before any connection."""
    with pytest.raises(TypeError, match="ca="):
        send(Request(url="https://127.0.0.1:9/resource"))


def test_the_probe_scores_an_answers_further_fields_as_part_of_the_wire(
    live_sim: Simulator,
) -> None:
    """A server that adds Cache-Control: no-store to its missing-certificate answer is matched exactly
    only by the reading that sends it; keycloak, which sends the same status and challenge without it,
    still matches the verdict and names the further fields as the difference."""
    keycloak = BUILTINS["keycloak"]
    missing = keycloak.answer(Finding.CERTIFICATE_MISSING)
    no_store = derive(
        keycloak,
        name="keycloak-no-store",
        answers={
            Finding.CERTIFICATE_MISSING: dataclasses.replace(
                missing, headers=(("Cache-Control", "no-store"),)
            )
        },
    )
    with (
        LabIssuer(live_sim.lab, asrv=live_sim.asrv, now=live_sim.now) as issuer,
        LiveStack(simulator=live_sim, deployment=Deployment(), interpretation=no_store) as stack,
    ):
        report = probe(
            f"{stack.url}/resource",
            issuer=issuer,
            ca=live_sim.lab.ca,
            simulator=live_sim,
            now=live_sim.now,
            interpretations=[no_store],
        )
    assert report.score("keycloak-no-store").exact == len(report.results)
    assert report.score("keycloak").verdict == len(report.results)
    assert report.score("keycloak").exact < len(report.results)
    differing = [
        r.prediction("keycloak").differences
        for r in report.results
        if not r.prediction("keycloak").exact
    ]
    assert differing
    assert all(d == ("further fields",) for d in differing)
