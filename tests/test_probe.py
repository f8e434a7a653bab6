"""mtlslab.probe: a real resource server probed over TLS names the reading it follows (RFC 8705 §3,
RFC 6750 §3.1), says what it skipped and what it sent, and refuses targets off loopback."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import http.server
import io
import itertools
import json
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt
import pytest

from mtlslab.cli import main
from mtlslab.compare import Simulator
from mtlslab.errors import CertificateError, InputError, KeyTypeError
from mtlslab.findings import Finding as F
from mtlslab.interpretations import BUILTINS, Answer, Interpretation, derive
from mtlslab.live import LiveServer, LiveStack, Observed
from mtlslab.live.client import MAX_BODY
from mtlslab.live.issuer import LabIssuer
from mtlslab.live.terminal import write_lab_folder
from mtlslab.pki import Lab
from mtlslab.probe import (
    MAX_REQUESTS,
    PROBES,
    BringYourOwn,
    ProbeReport,
    check_target,
    is_loopback,
    observed_verdict,
    probe,
)
from mtlslab.scenarios import (
    CATALOGUE,
    ClientAuth,
    Deployment,
    Scenario,
    TlsVersion,
    client_request,
    get_scenario,
)
from mtlslab.spec import shorten
from mtlslab.tokens import AuthorizationServer

pytestmark = pytest.mark.live

BYO_ONLY_BOUND_SKIPS = {
    "mismatch",
    "unbound-no-cert",
    "unbound-with-cert",
    "expired",
    "bad-signature",
    "alg-none",
    "hs256-confusion",
    "wrong-audience",
    "wrong-issuer",
    "cnf-unknown-method",
    "dpop-as-bearer",
}


@pytest.fixture(scope="module")
def sim() -> Simulator:
    """One simulator for every probe run here: it makes the predictions and backs the servers under test."""
    return Simulator(seed="mtlslab-probe-tests")


@pytest.fixture(scope="module")
def issuer(sim: Simulator) -> Iterator[LabIssuer]:
    """A lab issuer serving the simulator's authorization server (injected, so the servers trust it)."""
    with LabIssuer(sim.lab, asrv=sim.asrv, now=sim.now) as found:
        yield found


def _stack(sim: Simulator, name: str, **deployment: object) -> LiveStack:
    return LiveStack(
        simulator=sim,
        deployment=Deployment(**deployment),  # type: ignore[arg-type]
        interpretation=BUILTINS[name],
    )


def _probe_lab(sim: Simulator, issuer: LabIssuer, name: str) -> ProbeReport:
    with _stack(sim, name) as stack:
        return probe(
            f"{stack.url}/resource", issuer=issuer, ca=sim.lab.ca, simulator=sim, now=sim.now
        )


def _own(sim: Simulator, **extra: bool) -> BringYourOwn:
    lab = sim.lab
    return BringYourOwn.from_pem(
        token=sim.asrv.mint("bound").value,
        cert=lab.client.cert_chain_pem.bytes(),
        key=lab.client.private_key_pem.bytes(),
        unbound_token=sim.asrv.mint("unbound").value if extra.get("unbound") else None,
        other_cert=lab.other_client.cert_chain_pem.bytes() if extra.get("other") else None,
        other_key=lab.other_client.private_key_pem.bytes() if extra.get("other") else None,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------------------------------
# The battery.


def test_the_battery_is_bounded_and_sends_only_gets(sim: Simulator) -> None:
    """At most MAX_REQUESTS probes with stable, unique ids; every one is a GET (nothing changes state)."""
    assert len(PROBES) <= MAX_REQUESTS <= 40
    assert len({p.id for p in PROBES}) == len(PROBES)
    for item in PROBES:
        token = sim.asrv.mint(item.scenario.token)
        request = client_request(item.scenario.presentation, token, lab=sim.lab)
        assert request.method == "GET", item.id
        assert not request.body, item.id


#: Built-ins no probe tells apart, and why: the battery takes the TLS layer's chain validation as given
#: (it asks optionally, with certificates from the lab CA), and two readings answer everything alike.
ALIKE = {
    ("baseline", "baseline-no-ca"): "differ only where a certificate's chain does not validate",
    ("thread-401", "as-token-endpoint"): "answer every scenario of the catalogue alike",
}


def _wires(sim: Simulator, scenarios: list[Scenario], name: str) -> list[tuple[object, ...]]:
    deployment = Deployment(client_auth=ClientAuth.OPTIONAL, tls_version=TlsVersion.TLS1_3)
    interp = BUILTINS[name]
    return [sim.cell(s.with_(deployment=deployment), interp).outcome.wire() for s in scenarios]


def test_every_pair_of_builtins_is_told_apart_by_some_probe(sim: Simulator) -> None:
    """For any two built-ins, at least one probe's predicted wire outcome differs (else no unique match) —
    but for the pairs of ALIKE, for the reason it gives: one differs only on certificates from outside the
    lab CA, the other nowhere in the whole catalogue."""
    scenarios = [p.scenario for p in PROBES]
    wires = {name: _wires(sim, scenarios, name) for name in BUILTINS}
    alike = {(a, b) for a, b in itertools.combinations(wires, 2) if wires[a] == wires[b]}
    assert alike == set(ALIKE)
    catalogue = list(CATALOGUE)
    apart = [
        s.id
        for s, a, b in zip(
            catalogue,
            _wires(sim, catalogue, "baseline"),
            _wires(sim, catalogue, "baseline-no-ca"),
            strict=True,
        )
        if a != b
    ]
    assert apart
    assert all(get_scenario(i).presentation.certificate.value.endswith("-client") for i in apart)
    assert _wires(sim, catalogue, "thread-401") == _wires(sim, catalogue, "as-token-endpoint")


# --------------------------------------------------------------------------------------------------
# Lab-issuer mode against mtlslab's own server.


@pytest.mark.parametrize("name", list(BUILTINS))
def test_each_builtin_server_is_named_the_unique_closest_match(
    sim: Simulator, issuer: LabIssuer, name: str
) -> None:
    """mtlslab's live server answering as NAME (optional client auth, TLS 1.3) is matched by NAME alone —
    or beside the reading ALIKE pairs it with, said to be alike on every probe — exactly on every probe."""
    report = _probe_lab(sim, issuer, name)
    twins = [other for pair in ALIKE if name in pair for other in pair if other != name]
    assert report.closest == tuple(sorted([name, *twins], key=list(BUILTINS).index))
    assert report.unique == (not twins)
    score = report.score(name)
    assert score.exact == score.verdict == score.probes == len(PROBES)
    assert not report.skipped
    who = name if not twins else " or ".join(report.closest) + " (alike on every probe)"
    assert report.headline == (
        f"answers like {who} on {len(PROBES)} of {len(PROBES)} probes (verdict), "
        f"{len(PROBES)} of {len(PROBES)} exact"
    )
    others = [s for s in report.scores if s.interpretation not in (name, *twins)]
    assert all(s.exact < len(PROBES) for s in others)


@pytest.mark.parametrize(
    ("issuer_kwargs", "why"),
    [({}, "another issuer"), ({"audience": "https://other-rs.example"}, "another audience")],
    ids=["wrong-issuer", "wrong-audience"],
)
def test_a_control_the_server_refuses_makes_the_run_inconclusive(
    sim: Simulator, issuer_kwargs: dict[str, str], why: str
) -> None:
    """Negative control: a server that trusts another issuer (or audience) refuses even the bound token with
    its own certificate; the report is inconclusive, says what to check, names no reading and sends
    nothing more (the mtlslab server it probes answers as keycloak)."""
    other = LabIssuer(
        sim.lab, now=sim.now, **issuer_kwargs
    )  # its own issuer: https://127.0.0.1:PORT
    with other, _stack(sim, "keycloak") as stack:
        report = probe(
            f"{stack.url}/resource", issuer=other, ca=sim.lab.ca, simulator=sim, now=sim.now
        )
    (control,) = report.results
    assert control.verdict == ("401", "invalid_token"), why
    assert report.inconclusive is not None
    assert report.headline.startswith(
        "inconclusive: the control (a bound token with its own certificate) got 401 invalid_token: "
        "check that the server trusts the lab issuer"
    )
    assert "--audience" in report.headline
    assert (report.closest, report.unique) == ((), False)
    assert {s.probe.id for s in report.skipped} == {p.id for p in PROBES[1:]}
    assert {s.reason for s in report.skipped} == {"not sent: the control failed (see the headline)"}
    data = json.loads(report.to_json())
    assert (data["closest"], data["inconclusive"]) == ([], report.inconclusive)
    assert "(closest)" not in report.to_text()


def test_the_hypothetical_reading_that_refuses_the_control_is_still_recognised(
    sim: Simulator, issuer: LabIssuer
) -> None:
    """dpop-analogy refuses a bound token sent as Bearer by design: its exact answer explains the refused
    control, so the run goes on and names it (the rule that keeps a misconfigured server inconclusive is
    that no reading predicts its refusal exactly)."""
    report = _probe_lab(sim, issuer, "dpop-analogy")
    control = report.results[0]
    assert not control.accepted
    assert control.prediction("dpop-analogy").exact
    assert report.inconclusive is None
    assert report.closest == ("dpop-analogy",)


def test_a_wrong_path_is_inconclusive_and_the_cli_exits_3(sim: Simulator, tmp_path: Path) -> None:
    """A URL whose path is not the resource (here the lab issuer's own server: 404) makes the run
    inconclusive, pointing at the path; the command line prints it and exits 3."""
    paths = _write(tmp_path, sim)
    with LabIssuer(sim.lab, now=sim.now) as wrong:
        report = probe(f"{wrong.url}/resource", own=_own(sim), ca=sim.lab.ca, simulator=sim)
        status, out, err = _run(
            "probe",
            f"{wrong.url}/resource",
            *("--ca", paths["ca"], "--cert", paths["cert"], "--key", paths["key"]),
            *("--token", sim.asrv.mint("bound").value),
        )
    assert report.headline == (
        "inconclusive: the control got 404 not_found: check the URL's path (it must name the "
        "protected resource)"
    )
    assert (status, err) == (3, "")
    assert " ".join(out.split()).startswith(f"mtlslab probe of {wrong.url}/resource inconclusive:")


def test_plain_http_on_the_port_is_inconclusive(sim: Simulator) -> None:
    """An https:// URL whose port speaks plain HTTP gets no TLS answer: inconclusive, check the port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/resource"
        report = probe(url, own=_own(sim), ca=sim.lab.ca, simulator=sim, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert report.headline.startswith(
        "inconclusive: the control got no TLS answer (the port speaks something else, plain HTTP "
        "perhaps): check the URL's port"
    ), report.results[0].observed
    assert len(report.results) == 1


def test_a_port_that_never_speaks_is_inconclusive_within_the_timeout(sim: Simulator) -> None:
    """A port that accepts the connection and never answers the handshake: the control ends at the
    request's timeout (not later), and the run is inconclusive."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody reads
        url = f"https://127.0.0.1:{silent.getsockname()[1]}/resource"
        report = probe(url, own=_own(sim), ca=sim.lab.ca, simulator=sim, timeout=1.0)
    (control,) = report.results
    assert (
        control.observed.error
        == "handshake: no answer within 1 s (the limit for the whole request)"
    )
    assert control.observed.elapsed < 3.0
    assert report.headline.startswith(
        "inconclusive: the control got no answer (handshake: no answer"
    )


def test_security_warnings_come_first(sim: Simulator, issuer: LabIssuer) -> None:
    """A server that ignores cnf (auth0's default) is flagged before anything else in every format."""
    report = _probe_lab(sim, issuer, "auth0-default")
    texts = [w.text for w in report.warnings]
    assert "accepted a certificate-bound token without any certificate" in texts
    assert "accepted a certificate-bound token with another client's certificate" in texts
    assert {w.probe for w in report.warnings} >= {"no-cert", "mismatch", "forged-client-cert"}
    lines = report.to_text().splitlines()
    assert lines[3] == "SECURITY WARNINGS"
    assert lines[4].startswith("  ! accepted a certificate-bound token without any certificate")
    assert lines.index("SECURITY WARNINGS") < next(
        i for i, line in enumerate(lines) if line.startswith("probe ")
    )
    assert report.to_markdown().splitlines()[2] == "**Security warnings**"
    assert json.loads(report.to_json())["warnings"][0]["probe"] == "no-cert"


def test_a_caller_interpretation_is_scored_and_a_tie_is_named(
    sim: Simulator, issuer: LabIssuer
) -> None:
    """An interpretation the caller passes is scored beside the built-ins. One that answers every probe as
    keycloak does is named beside it, alike on every probe; readings that tie on both scores while
    predicting other answers (each one error code away from the server's two) are named as tied."""
    twin = derive(BUILTINS["keycloak"], name="my-keycloak")
    expired = derive(BUILTINS["keycloak"], name="x", answers={F.TOKEN_EXPIRED: Answer(error="x")})
    issuer_y = derive(BUILTINS["keycloak"], name="y", answers={F.WRONG_ISSUER: Answer(error="y")})
    both = derive(
        BUILTINS["keycloak"],
        name="z",
        answers={F.TOKEN_EXPIRED: Answer(error="z"), F.WRONG_ISSUER: Answer(error="z")},
    )
    for server, extra, closest, tie, score in (
        ("keycloak", [twin], ("keycloak", "my-keycloak"), "alike on every probe", 21),
        ("z", [expired, issuer_y], ("keycloak", "x", "y"), "tied", 19),
    ):
        interp = both if server == "z" else BUILTINS[server]
        with LiveStack(simulator=sim, deployment=Deployment(), interpretation=interp) as stack:
            report = probe(
                f"{stack.url}/resource",
                issuer=issuer,
                ca=sim.lab.ca,
                simulator=sim,
                now=sim.now,
                interpretations=extra,
            )
        assert report.closest == closest
        assert not report.unique
        who = f"{', '.join(closest[:-1])} or {closest[-1]} ({tie})"
        assert report.headline == (
            f"answers like {who} on {score} of 21 probes (verdict), {score} of 21 exact"
        )


def _fetch(
    issuer: LabIssuer, context: ssl.SSLContext, path: str, body: str | None = None
) -> tuple[int, dict[str, object]]:
    """One HTTPS request to the lab issuer: (status, JSON)."""
    conn = http.client.HTTPSConnection("127.0.0.1", issuer.port, context=context, timeout=5)
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        conn.request("POST" if body else "GET", path, body=body, headers=headers)
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def test_the_lab_issuer_serves_metadata_jwks_and_introspection_over_tls() -> None:
    """RFC 8414 metadata and the JWKS come over HTTPS from the lab CA's server certificate; minted tokens
    carry the loopback issuer and verify with the served keys; introspection knows them. A client that
    does not trust the lab CA cannot connect (negative control)."""
    lab = Lab(seed="probe-issuer")
    trusting = ssl.create_default_context(cadata=lab.ca.cert_pem.text())
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    with LabIssuer(lab, audience="https://api.example") as found:
        assert found.issuer == found.url
        assert found.url.startswith("https://127.0.0.1:")
        status, metadata = _fetch(found, trusting, "/.well-known/oauth-authorization-server")
        assert status == 200
        assert metadata["issuer"] == found.issuer
        assert metadata["jwks_uri"] == found.jwks_url
        assert metadata["tls_client_certificate_bound_access_tokens"] is True
        assert _fetch(found, trusting, "/.well-known/openid-configuration") == (200, metadata)
        status, jwks = _fetch(found, trusting, "/jwks")
        assert (status, jwks) == (200, found.asrv.jwks())
        token = found.asrv.mint("bound", now=now).value
        (key,) = jwt.PyJWKSet.from_dict(jwks).keys
        claims = jwt.decode(
            token, key, algorithms=["ES256"], audience="https://api.example", issuer=found.issuer
        )
        assert claims["cnf"] == {"x5t#S256": lab.client.x5t_s256}
        status, active = _fetch(found, trusting, "/introspect", body=f"token={token}")
        assert (status, active["active"], active["cnf"]) == (200, True, claims["cnf"])
        assert _fetch(found, trusting, "/introspect", body="token=unknown") == (
            200,
            {"active": False},
        )
        assert _fetch(found, trusting, "/nothing")[0] == 404
        with pytest.raises(ssl.SSLCertVerificationError):
            _fetch(found, ssl.create_default_context(), "/jwks")
        assert "GET /jwks" in found.fetched


def test_the_lab_issuer_serves_on_loopback_only() -> None:
    """A lab issuer bound to another address is refused before any socket opens."""
    with pytest.raises(InputError) as caught:
        LabIssuer(Lab(seed="probe-issuer"), host="0.0.0.0")  # noqa: S104 - the point of the test
    assert caught.value.field == "host"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_the_lab_issuer_speaks_tls_1_2_and_1_3(issuer: LabIssuer, version: ssl.TLSVersion) -> None:
    """A server under test fetches the JWKS with whatever TLS it has: the lab issuer's context is not
    pinned to one version (server_context(pin_version=False)), while a resource server's is."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    issuer.lab.ca.configure_trust(ctx)
    ctx.minimum_version = ctx.maximum_version = version
    host, port = "127.0.0.1", int(issuer.url.rsplit(":", 1)[1])
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        assert tls.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]


# --------------------------------------------------------------------------------------------------
# Comparing an answer with a prediction.

_NESTED = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("www", "body", "verdict"),
    [
        ('Bearer realm="x", error="invalid_token"', "", ("401", "invalid_token")),
        (None, '{"error":"invalid_token"}', ("401", "invalid_token")),
        ('Bearer realm="x", DPoP algs="ES256"', '{"error":"invalid_token"}', ("401", "")),
        ("Bearer realm=x=y=", '{"error":"invalid_token"}', ("401", "")),
        (None, _NESTED, ("401", "")),
        (None, '{"error":' * 50_000, ("401", "")),
    ],
    ids=[
        "challenge",
        "json-only",
        "challenge-without-error",
        "unreadable-challenge",
        "nested",
        "deep",
    ],
)
def test_the_verdict_reads_a_json_body_only_without_a_challenge(
    www: str | None, body: str, verdict: tuple[str, str]
) -> None:
    """RFC 6750 §3.1: challenges without an error code mean none, whatever a JSON body says (node-oidc-provider
    sends both); only an answer without any challenge (3scale APIcast) is read for the body's error; a
    body nested beyond the parser's depth has none (no RecursionError)."""
    headers = (("WWW-Authenticate", www),) if www is not None else ()
    observed = Observed(
        status=401, headers=(*headers, ("Content-Type", "application/json")), body=body
    )
    assert observed_verdict(observed) == verdict


def _realm(interp: Interpretation, realm: str | None) -> Interpretation:
    """``interp`` answering with another realm (a real server's own, such as an issuer URL)."""
    return replace(derive(interp, name=f"{interp.name}-elsewhere", realm=realm), kind=interp.kind)


def test_the_exact_score_leaves_the_realm_to_the_server(sim: Simulator, issuer: LabIssuer) -> None:
    """A server answering as node-oidc-provider under its own realm (its issuer URL) matches that reading
    exactly on every probe: the realm's value is the server's, not the reading's. Negative control: the
    same server without any realm does not, and the difference is named."""
    reading = BUILTINS["node-oidc-provider"]
    for realm, exact in (("https://127.0.0.1:4711", True), (None, False)):
        with LiveStack(
            simulator=sim, deployment=Deployment(), interpretation=_realm(reading, realm)
        ) as stack:
            report = probe(
                f"{stack.url}/resource", issuer=issuer, ca=sim.lab.ca, simulator=sim, now=sim.now
            )
        score = report.score("node-oidc-provider")
        assert report.closest == ("node-oidc-provider",)
        assert score.verdict == len(PROBES)
        assert (score.exact == len(PROBES)) is exact, (realm, score)
        if not exact:
            differing = {d for r in report.results for d in r.prediction(reading.name).differences}
            assert differing == {"WWW-Authenticate"}


def test_a_further_field_counts_only_when_some_reading_sends_it(
    sim: Simulator, issuer: LabIssuer
) -> None:
    """A server that adds X-Powered-By to its missing-certificate answer still matches keycloak exactly: no
    reading speaks of that field, it is the server's own. Once a reading that sends it is scored too, the
    field counts: that reading is exact, and keycloak differs by its further fields there."""
    keycloak = BUILTINS["keycloak"]
    missing = keycloak.answer(F.CERTIFICATE_MISSING)
    powered = derive(
        keycloak,
        name="keycloak-powered",
        answers={F.CERTIFICATE_MISSING: replace(missing, headers=(("X-Powered-By", "lab"),))},
    )
    for scored, exact in (([], len(PROBES)), ([powered], None)):
        with LiveStack(simulator=sim, deployment=Deployment(), interpretation=powered) as stack:
            report = probe(
                f"{stack.url}/resource",
                issuer=issuer,
                ca=sim.lab.ca,
                simulator=sim,
                now=sim.now,
                interpretations=scored,
            )
        if exact is not None:
            assert report.score("keycloak").exact == exact
            continue
        assert report.closest == ("keycloak-powered",)
        differing = {r.probe.id: r.prediction("keycloak").differences for r in report.results}
        missing_cert = ("no-cert", "forged-client-cert", "query-no-cert")
        assert {k: v for k, v in differing.items() if v} == dict.fromkeys(
            missing_cert, ("further fields",)
        )


# --------------------------------------------------------------------------------------------------
# Bring your own.


def test_bring_your_own_with_only_a_bound_token_and_its_certificate(sim: Simulator) -> None:
    """With only a bound token and its certificate the battery shrinks, still names the server, and lists
    every skipped probe with its reason."""
    with _stack(sim, "keycloak") as stack:
        report = probe(f"{stack.url}/resource", own=_own(sim), ca=sim.lab.ca, simulator=sim)
    assert report.mode == "bring-your-own"
    assert {s.probe.id for s in report.skipped} == BYO_ONLY_BOUND_SKIPS
    assert len(report.results) + len(report.skipped) == len(PROBES)
    reasons = {s.probe.id: s.reason for s in report.skipped}
    assert "--other-cert" in reasons["mismatch"]
    assert "--unbound-token" in reasons["unbound-no-cert"]
    assert "--lab-issuer" in reasons["alg-none"]
    assert report.closest == ("keycloak",)
    assert report.score("keycloak").exact == len(report.results)
    text = report.to_text()
    assert f"Skipped ({len(BYO_ONLY_BOUND_SKIPS)} probes):" in text
    assert any("assumed valid and bound" in a for a in report.assumptions)


def test_bring_your_own_with_everything_runs_every_non_lab_probe(sim: Simulator) -> None:
    """An unbound token and a second certificate add their probes; only lab-issuer probes are skipped."""
    with _stack(sim, "auth0") as stack:
        report = probe(
            f"{stack.url}/resource",
            own=_own(sim, unbound=True, other=True),
            ca=sim.lab.ca,
            simulator=sim,
        )
    assert {r.probe.id for r in report.results} >= {"mismatch", "unbound-no-cert"}
    assert all(s.probe.needs == ("lab-issuer",) for s in report.skipped)
    assert report.closest == ("auth0",)
    assert report.score("auth0").exact == len(report.results)


def test_bring_your_own_refuses_unusable_material(sim: Simulator) -> None:
    """A token that is not a b64token, a key of another certificate, or half a second identity is
    refused with the field named."""
    lab = sim.lab
    cert, key = lab.client.cert_chain_pem.bytes(), lab.client.private_key_pem.bytes()
    with pytest.raises(InputError) as caught:
        BringYourOwn.from_pem(token="a b\r\nX-Evil: 1", cert=cert, key=key)
    assert caught.value.field == "token"
    with pytest.raises(KeyTypeError) as wrong_key:
        BringYourOwn.from_pem(token="abc", cert=cert, key=lab.other_client.private_key_pem.bytes())
    assert wrong_key.value.field == "key"
    with pytest.raises(CertificateError):
        BringYourOwn.from_pem(token="abc", cert=b"not a certificate", key=key)
    with pytest.raises(InputError) as half:
        BringYourOwn.from_pem(token="abc", cert=cert, key=key, other_cert=cert)
    assert half.value.field == "other_cert"


# --------------------------------------------------------------------------------------------------
# Safety, and what the report says was sent.


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/resource",
        "https://10.0.0.1/resource",
        "https://[2001:db8::1]:8443/resource",
        "https://127.0.0.1.nip.io/resource",
    ],
)
def test_targets_off_loopback_are_refused_without_allow_remote(sim: Simulator, url: str) -> None:
    """A target that is not 127.0.0.0/8, ::1 or localhost is refused before anything is sent."""
    with pytest.raises(InputError) as caught:
        probe(url, own=_own(sim), simulator=sim)
    assert caught.value.field == "url"
    assert "allow_remote" in caught.value.reason
    assert check_target(url, allow_remote=True)[0] in url


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost", True),
        ("128.0.0.1", False),
        ("::2", False),
        ("localhost.example", False),
    ],
)
def test_loopback_is_127_slash_8_ipv6_one_and_localhost(host: str, loopback: bool) -> None:
    """is_loopback accepts exactly 127.0.0.0/8, ::1 and localhost."""
    assert is_loopback(host) is loopback


def test_unusable_targets_and_modes_are_input_errors(sim: Simulator) -> None:
    """http://, no mode, both modes, an unstarted issuer and a bad TLS version are refused up front."""
    own = _own(sim)
    idle = LabIssuer(sim.lab)
    try:
        cases = [
            (lambda: probe("http://127.0.0.1/resource", own=own), "url"),
            (lambda: probe("https://127.0.0.1/resource"), "mode"),
            (lambda: probe("https://127.0.0.1/r", own=own, tls_version="1.4"), "tls_version"),
            (lambda: probe("https://127.0.0.1/resource", issuer=idle, own=own), "mode"),
            (lambda: probe("https://127.0.0.1/resource", issuer=idle), "issuer"),
        ]
        for call, field in cases:
            with pytest.raises(InputError) as caught:
                call()
            assert caught.value.field == field
    finally:
        idle.close()


def test_a_server_certificate_that_does_not_verify_is_unusable_input(sim: Simulator) -> None:
    """Trusting the wrong CA fails the first request; the whole run is refused, naming ``ca``."""
    with _stack(sim, "baseline") as stack:
        with pytest.raises(InputError) as caught:
            probe(f"{stack.url}/resource", own=_own(sim), ca=Lab(seed="another").ca, simulator=sim)
        assert caught.value.field == "ca"


def test_the_report_states_what_was_sent_with_tokens_shortened(
    sim: Simulator, issuer: LabIssuer
) -> None:
    """Each probe's method, URL, headers and certificate are in the report; no token appears whole."""
    report = _probe_lab(sim, issuer, "baseline")
    tokens = [sim.asrv.mint(p.scenario.token, now=sim.now).value for p in PROBES]
    text, markdown, data = report.to_text(), report.to_markdown(), report.to_json()
    for token in filter(None, tokens):
        for rendered in (text, markdown, data):
            assert token not in rendered
    by_id = {r.probe.id: r for r in report.results}
    assert by_id["success"].sent.lines()[1] == f"Authorization: Bearer {shorten(tokens[0], 20)}"
    assert by_id["no-cert"].sent.certificate == "none"
    assert by_id["mismatch"].sent.certificate == "other"
    assert "?access_token=" + shorten(tokens[0], 20) in by_id["token-in-query"].sent.url
    assert [k for k, _ in by_id["forged-client-cert"].sent.headers] == [
        "Authorization",
        "Client-Cert",
    ]
    assert all(r.sent.method == "GET" for r in report.results)
    assert "Requests sent and answers received:" in text


def test_the_text_report_fits_72_columns_and_the_exports_agree(
    sim: Simulator, issuer: LabIssuer
) -> None:
    """Text (full and compact) stays within 72 columns; Markdown and JSON carry the same headline."""
    report = _probe_lab(sim, issuer, "dpop-analogy")
    for text in (report.to_text(), report.to_text(details=False)):
        assert max(len(line) for line in text.splitlines()) <= 72
    compact = report.to_text(details=False)
    assert "Requests sent" not in compact
    assert compact.splitlines()[1] == report.headline
    data = json.loads(report.to_json())
    assert data["format"] == "mtlslab-probe/2"  # /1 had "notes"; /2 says why a run is inconclusive
    assert "notes" not in data
    assert data["inconclusive"] is None
    assert data["closest"] == ["dpop-analogy"]
    assert len(data["probes"]) == len(PROBES)
    assert report.headline in report.to_markdown()
    assert all(f"`{name}`" in report.to_markdown() for name in BUILTINS)
    assert "<table" in report._repr_html_()


# --------------------------------------------------------------------------------------------------
# Hostile servers: every answer is data, in bounded memory and time, and no report prints it raw.


def _send_all(conn: ssl.SSLSocket, data: bytes) -> None:
    conn.sendall(data)


def _huge_body(conn: ssl.SSLSocket) -> None:
    """200 with a 1 GiB body, streamed until the client stops reading."""
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n"
    )
    chunk = b"x" * 65536
    for _ in range(1073741824 // len(chunk)):
        conn.sendall(chunk)


def _drip(conn: ssl.SSLSocket) -> None:
    """A valid answer, one byte every 0.2 s: each read gets a byte long before any per-read timeout."""
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}":
        conn.sendall(bytes([byte]))
        time.sleep(0.2)


def _escapes(conn: ssl.SSLSocket) -> None:
    """200 whose challenge, Content-Type and body carry terminal escapes (7-bit and 8-bit CSI, an OSC
    title, a bidirectional override) and HTML."""
    body = "<script>alert(1)</script>\x1b[2J<img src=x onerror=alert(2)>```\n| x |\u202e".encode()
    conn.sendall(
        b'HTTP/1.1 200 OK\r\nWWW-Authenticate: Bearer realm="\x1b[31m<blink>", '
        b'error="\x9b2J\x1b]0;pwned\x07"\r\nContent-Type: text/html\x1b[5m\xe2\x80\xae\r\n'
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )


#: name → what the server does after reading the request head (each stands for one behaviour of the
#: issue: a 1 GiB answer, a drip, HTTP/0.9, garbage, a close mid-head, 100k fields, a 10 MB field, a
#: JSON body of 100k nested arrays, escape sequences and HTML).
HOSTILE: dict[str, Callable[[ssl.SSLSocket], None]] = {
    "huge-body": _huge_body,
    "drip": _drip,
    "http-0.9": lambda conn: _send_all(conn, b"hello from HTTP/0.9\n"),
    "garbage": lambda conn: _send_all(conn, bytes(range(256)) * 16),
    "close-mid-head": lambda conn: _send_all(
        conn, b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="x"\r\nContent-Ty'
    ),
    "100k-fields": lambda conn: _send_all(
        conn, b"HTTP/1.1 200 OK\r\n" + b"X-N: 1\r\n" * 100_000 + b"Content-Length: 0\r\n\r\n"
    ),
    "10mb-field": lambda conn: _send_all(
        conn, b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 10_000_000 + b"\r\nContent-Length: 0\r\n\r\n"
    ),
    "nested-json": lambda conn: _send_all(
        conn,
        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        % len(_NESTED)
        + _NESTED.encode(),
    ),
    "escapes": _escapes,
}


class _HostileServer:
    """A TLS server on 127.0.0.1 (port 0, the lab's server certificate) that reads each request head and
    answers with one hostile behaviour; it stops when its block ends, and after 120 s in any case."""

    def __init__(self, lab: Lab, answer: Callable[[ssl.SSLSocket], None]) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        lab.server.configure_cert(self.context)
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> _HostileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        self.listener.close()

    def _serve(self) -> None:
        deadline = time.monotonic() + 120
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, raw: socket.socket) -> None:
        with contextlib.suppress(OSError), raw:
            raw.settimeout(10)
            with self.context.wrap_socket(raw, server_side=True) as conn:
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                self.answer(conn)


#: Probes one URL in a fresh interpreter and prints, as JSON, its peak RSS (VmHWM), the time the probe
#: took, what the control observed and every report format.
_CHILD = """
import json, resource, sys, time
from pathlib import Path
from typing import Any
from mtlslab.probe import BringYourOwn, probe
url, lab, timeout = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
own = BringYourOwn.from_pem(
    token=(lab / "token").read_text(), cert=(lab / "client.pem").read_bytes(),
    key=(lab / "client.key").read_bytes(),
)
started = time.monotonic()
report = probe(url, own=own, ca=lab / "ca.pem", timeout=timeout)
seconds = time.monotonic() - started
control = report.results[0].observed
formats = {
    "text": report.to_text(), "markdown": report.to_markdown(), "json": report.to_json(),
    "html": report._repr_html_(), "repr": repr(report),
}
def peak_kib():  # this program's own peak (ru_maxrss may keep the forking parent's, from before exec)
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
json.dump({
    "rss_kib": peak_kib(), "seconds": seconds,
    "requests": len(report.results), "headline": report.headline, "formats": formats,
    "control": {"status": control.status, "error": control.error, "truncated": control.truncated,
                "body_length": control.body_length, "kept": len(control.body),
                "elapsed": control.elapsed},
}, sys.stdout, ensure_ascii=True)
"""
#: Each request's time limit in the hostile battery.
_HOSTILE_TIMEOUT = 1.5
#: Raw control characters no report may contain (a newline aside), and the bidirectional overrides.
_RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every hostile server probed once, each in its own interpreter; and the battery's total time."""
    lab = Lab(seed="hostile")
    folder = tmp_path_factory.mktemp("hostile-lab")
    write_lab_folder(lab, folder, every_identity=False)
    (folder / "token").write_text(AuthorizationServer(lab).mint("bound").value)
    started = time.monotonic()
    runs: dict[str, Any] = {}
    for name, answer in HOSTILE.items():
        with _HostileServer(lab, answer) as server:
            done = subprocess.run(
                [
                    *(sys.executable, "-c", _CHILD, f"https://127.0.0.1:{server.port}/r"),
                    *(str(folder), str(_HOSTILE_TIMEOUT)),
                ],
                capture_output=True,
                text=True,
                timeout=100,
                check=False,
            )
        runs[name] = {"returncode": done.returncode, "stderr": done.stderr, "stdout": done.stdout}
    runs["battery seconds"] = time.monotonic() - started
    return runs


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_server_is_data_in_bounded_memory_and_time(
    hostile: dict[str, Any], name: str
) -> None:
    """Against each hostile server the probe ends normally (no traceback, no RecursionError), in less than
    200 MB of memory, each request within its time limit, and the answer is data: cut at the body limit,
    or an error that quotes its first bytes escaped."""
    run = hostile[name]
    assert (run["returncode"], run["stderr"]) == (0, ""), run["stderr"][-2000:]
    found = json.loads(run["stdout"])
    assert found["rss_kib"] < 200 * 1024, found["rss_kib"]
    control = found["control"]
    assert control["elapsed"] < 2 * _HOSTILE_TIMEOUT, control
    expected = {
        "huge-body": "answers like",
        "drip": "inconclusive: the control got no answer (read: no answer within 1.5 s",
        "http-0.9": "inconclusive: the control got no answer (no readable HTTP/1.1 answer: ",
        "garbage": "inconclusive: the control got no answer (no readable HTTP/1.1 answer: ",
        "close-mid-head": "inconclusive: the control got no answer (no readable HTTP/1.1 answer: ",
        "100k-fields": "inconclusive: the control got no answer (no readable HTTP/1.1 answer: a "
        "response head longer than 65536 bytes",
        "10mb-field": "inconclusive: the control got no answer (no readable HTTP/1.1 answer: a "
        "response head longer than 65536 bytes",
        "nested-json": "inconclusive: the control (a bound token with its own certificate) got 401:",
        "escapes": "answers like",
    }[name]
    assert found["headline"].startswith(expected), found["headline"]
    if name == "huge-body":
        assert control["truncated"]
        assert control["body_length"] == 1073741824
        assert control["kept"] == MAX_BODY
        assert found["requests"] > 1  # served: the whole battery ran, each answer cut at the limit
    if name == "garbage":
        assert "it began b'\\x00\\x01\\x02" in control["error"]


@pytest.mark.parametrize("name", list(HOSTILE))
def test_no_report_carries_a_raw_control_character_or_the_servers_html(
    hostile: dict[str, Any], name: str
) -> None:
    """Text, Markdown, JSON, HTML and repr of every hostile run hold no raw control character (ESC,
    8-bit CSI, BEL...) and no bidirectional override; the server's HTML never renders as HTML from the
    Markdown (rendered here by mistune with raw HTML allowed) or the HTML report."""
    mistune = pytest.importorskip("mistune")
    formats = json.loads(hostile[name]["stdout"])["formats"]
    for kind, text in formats.items():
        assert not _RAW_CONTROL.search(text), (kind, _RAW_CONTROL.search(text))
    assert json.loads(formats["json"])["format"] == "mtlslab-probe/2"
    rendered = mistune.create_markdown(escape=False, plugins=["table"])(formats["markdown"])
    for html_report in (rendered, formats["html"]):
        for element in ("<script", "<img", "<blink"):
            assert element not in html_report
    if name == "escapes":
        assert "\\x1b[31m" in formats["text"]
        assert "\\x9b2J" in formats["text"]
        assert (
            "\\\\x1b]0;pwned\\\\x07" in formats["json"]
            or "\\u001b]0;pwned\\u0007" in formats["json"]
        )


def test_the_hostile_battery_takes_under_two_minutes(hostile: dict[str, Any]) -> None:
    """Every hostile server above, each probed in a fresh interpreter, in less than two minutes."""
    assert hostile["battery seconds"] < 120


# --------------------------------------------------------------------------------------------------
# The command line.


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def _write(tmp_path: Path, sim: Simulator) -> dict[str, str]:
    lab = sim.lab
    files = {
        "ca": lab.ca.cert_pem,
        "cert": lab.client.cert_chain_pem,
        "key": lab.client.private_key_pem,
    }
    return {
        name: str(artefact.write_to_path(tmp_path / f"{name}.pem"))
        for name, artefact in files.items()
    }


def test_cli_probe_bring_your_own_in_a_real_process(sim: Simulator, tmp_path: Path) -> None:
    """`python -m mtlslab probe URL --ca --cert --key --token` probes a live server and prints the report."""
    paths = _write(tmp_path, sim)
    token = sim.asrv.mint("bound").value
    with _stack(sim, "keycloak") as stack:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mtlslab",
                "probe",
                f"{stack.url}/resource",
                "--ca",
                paths["ca"],
                "--cert",
                paths["cert"],
                "--key",
                paths["key"],
                "--token",
                token,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[1].startswith("answers like keycloak on 10 of 10 probes")
    assert token not in done.stdout


def test_cli_probe_lab_issuer_against_a_server_that_trusts_it(tmp_path: Path) -> None:
    """The real flow: a server configured with the loopback issuer and wall-clock time accepts what
    `probe --lab-issuer` mints; the issuer URLs are printed; the report names the server's reading."""
    seed, port = "probe-cli", _free_port()
    lab = Lab(seed=seed)
    trusted = AuthorizationServer(lab, issuer=f"https://127.0.0.1:{port}")
    ca = lab.ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    deployment = Deployment()
    with LiveServer(
        lab=lab,
        deployment=deployment,
        interpretation=BUILTINS["thread-400"],
        asrv=trusted,
        now=None,
    ) as server:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mtlslab",
                "probe",
                f"{server.url}/resource",
                "--lab-issuer",
                "--issuer-port",
                str(port),
                "--seed",
                seed,
                "--ca",
                str(ca),
                "--format",
                "markdown",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert (done.returncode, done.stderr) == (0, "")
    assert f"JWKS      https://127.0.0.1:{port}/jwks" in done.stdout
    assert "answers like thread-400 on 21 of 21 probes (verdict), 21 of 21 exact" in done.stdout


def test_cli_probe_exits_1_on_security_warnings(sim: Simulator, tmp_path: Path) -> None:
    """A server that accepts a bound token without its certificate makes `probe` exit 1 (JSON here)."""
    paths = _write(tmp_path, sim)
    with _stack(sim, "auth0-default") as stack:
        status, out, err = _run(
            "probe",
            f"{stack.url}/resource",
            "--ca",
            paths["ca"],
            "--cert",
            paths["cert"],
            "--key",
            paths["key"],
            "--token",
            sim.asrv.mint("bound").value,
            "--format",
            "json",
        )
    assert (status, err) == (1, "")
    assert json.loads(out)["warnings"][0]["probe"] == "no-cert"


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["https://127.0.0.1:1/r"], "--token"),
        (["https://example.org/r", "--lab-issuer"], "url"),
        (["https://127.0.0.1:1/r", "--lab-issuer", "--cert", "c.pem"], "--cert"),
        (["https://127.0.0.1:1/r", "--token", "abc"], "--cert"),
        (["https://127.0.0.1:1/r", "--lab-issuer", "--token", "abc"], "--token"),
        (["https://127.0.0.1:1/r", "--lab-issuer", "--issuer-port", "0"], "url"),
        (["https://127.0.0.1:1/r", "--tls", "1.4"], "--tls"),
    ],
)
def test_cli_probe_unusable_input_is_one_line_and_status_2(argv: list[str], field: str) -> None:
    """Unusable input — no mode, a remote target, mixed modes, a refused connection — is one line on
    stderr and exit status 2."""
    status, _out, err = _run("probe", *argv)
    assert status == 2
    assert err.count("\n") == 1
    assert field in err


def test_cli_probe_remote_refusal_in_a_real_process() -> None:
    """In a real process too: a remote URL without --allow-remote is one line on stderr, status 2."""
    done = subprocess.run(
        [sys.executable, "-m", "mtlslab", "probe", "https://example.org/", "--lab-issuer"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.count("\n") == 1
    assert "--allow-remote" in done.stderr


def test_serve_and_probe_from_a_terminal(tmp_path: Path) -> None:
    """`serve --issuer … --wall-clock` in one process, `probe --lab-issuer` in another: the report names
    the interpretation `serve` answers with."""
    seed, port = "terminal-flow", _free_port()
    lab_dir = tmp_path / "lab"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mtlslab",
            "serve",
            "--seed",
            seed,
            "--issuer",
            f"https://127.0.0.1:{port}",
            "--wall-clock",
            "--duration",
            "60",
            "-i",
            "spring-security",
            "--lab-dir",
            str(lab_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert "listening on https://127.0.0.1:" in first, first + (
            server.stderr.read() if server.stderr else ""
        )
        url = first.split("listening on ", 1)[1].strip()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mtlslab",
                "probe",
                url,
                "--lab-issuer",
                "--issuer-port",
                str(port),
                "--seed",
                seed,
                "--ca",
                str(lab_dir / "ca.pem"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        server.terminate()
        server.wait(10)
        for stream in (server.stdout, server.stderr):
            if stream is not None:
                stream.close()
    assert (done.returncode, done.stderr) == (0, "")
    flowing = " ".join(done.stdout.split())  # the headline wraps at 72 columns
    assert "answers like spring-security on 21 of 21 probes (verdict), 21 of 21 exact" in flowing


def test_a_report_shows_server_text_through_the_one_shortening_helper() -> None:
    """Issue 16: a probe report shows what a server chose through spec.shorten, so a literal backslash
    sequence cannot pass for the control character it names (the ESC is escaped, the backslash doubled)."""
    from mtlslab._probe_render import visible
    from mtlslab.spec import shorten

    real, forged = "a\x1bb", "a\\x1bb"
    assert visible(real) != visible(forged)
    assert visible(real) == "a\\x1bb" == shorten(real)
    assert visible(forged) == "a\\\\x1bb"
    assert len(visible("x" * 5000, 120)) <= 120
