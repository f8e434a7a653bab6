"""mtlslab.rs: the resource server's checks, in spec order, each citing its clause in the trace."""

from __future__ import annotations

import ast
import base64
import dataclasses
import datetime as dt
import hashlib
import inspect
import json
import re
import string
import urllib.parse
from collections.abc import Mapping
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mtlslab import jose, pki, rs
from mtlslab.compare import Matrix, Simulator
from mtlslab.findings import Finding
from mtlslab.pki import LAB_NOW, Lab, public_jwk, x5t_s256
from mtlslab.rs import (
    Decision,
    Jwks,
    RsConfig,
    config_for,
    evaluate,
    inspect_token,
)
from mtlslab.scenarios import (
    Deployment,
    Placement,
    ProofChoice,
    Request,
    Topology,
    Validation,
    encode_client_cert,
    get_scenario,
)
from mtlslab.spec import Step
from mtlslab.tokens import (
    LAB_AUDIENCE,
    LAB_ISSUER,
    LAB_RESOURCE,
    TOKEN_VARIANTS,
    AuthorizationServer,
    DPoPKey,
    access_token_hash,
    dpop_proof,
)

F = Finding
RFC_URL = re.compile(r"https://www\.rfc-editor\.org/rfc/rfc\d{4}#section-\d+(\.\d+)*")
HOUR = dt.timedelta(hours=1)


# --------------------------------------------------------------------------------------------------
# Helpers (plain functions; no monkeypatching).


def assert_cites(decision: Decision) -> None:
    """Every trace step names an RFC clause with its rfc-editor.org section link."""
    assert decision.trace, "a decision always has a trace"
    for step in decision.trace:
        assert RFC_URL.fullmatch(step.clause.url), step
        assert step.clause.label.startswith("RFC ")


def decide(request: Request, config: RsConfig, *, now: dt.datetime = LAB_NOW) -> Decision:
    """evaluate(), with the trace's citations checked on every call."""
    decision = evaluate(request, config, now=now)
    assert_cites(decision)
    return decision


def step(decision: Decision, check: str) -> Step:
    """The last trace step for ``check``."""
    found = [s for s in decision.trace if s.check == check]
    assert found, f"no {check!r} step in {decision.explain()}"
    return found[-1]


def clauses(decision: Decision) -> list[str]:
    """The clause labels of the trace, in order."""
    return [s.clause.label for s in decision.trace]


def authorization(value: str, *, cert: bytes | None = None, **changes: Any) -> Request:
    """A GET with one Authorization field and the TLS layer's certificate ``cert``."""
    return Request(headers=(("Authorization", value),), client_cert=cert, **changes)


def with_config(config: RsConfig, **changes: Any) -> RsConfig:
    """A variant of ``config``."""
    return dataclasses.replace(config, **changes)


def realised(sim: Simulator, scenario_id: str, **changes: Any) -> tuple[Request, RsConfig]:
    """A catalogue scenario (with changes) as the application receives it, and its configuration."""
    scenario = get_scenario(scenario_id).with_(**changes)
    exchange = sim.exchange(scenario)
    assert exchange.request is not None
    config = config_for(scenario.deployment, jwks=sim.jwks, introspect=sim.introspect)
    return exchange.request, config


@pytest.fixture(scope="module")
def bound(asrv: AuthorizationServer) -> str:
    """The lab's certificate-bound token."""
    return asrv.mint("bound").value


@pytest.fixture(scope="module")
def unbound(asrv: AuthorizationServer) -> str:
    """A plain bearer token."""
    return asrv.mint("unbound").value


def signed(asrv: AuthorizationServer, **changes: Any) -> str:
    """A token signed by the lab issuer, bound to the lab client, with claim changes (None deletes)."""
    claims = asrv.claims(cnf={"x5t#S256": asrv.lab.client.x5t_s256})
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return asrv.sign(claims)


# --------------------------------------------------------------------------------------------------
# Every decision cites its clauses.


def test_every_catalogue_trace_cites_rfc_sections_by_link(matrix: Matrix) -> None:
    """Each trace step of every cell names a clause whose link is rfc-editor.org/rfc/rfcNNNN#section-X."""
    for cell in matrix.cells.values():
        assert cell.trace
        for s in cell.trace:
            assert RFC_URL.fullmatch(s.clause.url), (cell.scenario, s)


def test_every_finding_but_the_acceptances_and_a_token_issued_refuses_the_request() -> None:
    """``Finding.rejected`` is decided by the finding itself (titles are prose and may change)."""
    assert {f for f in F if not f.rejected} == {
        F.ACCEPTED,
        F.ACCEPTED_ALTHOUGH_BOUND,
        F.TOKEN_ISSUED,
    }


def test_a_decision_explains_itself(rs_config: RsConfig, lab: Lab, bound: str) -> None:
    """explain() is one line per step, then the finding; repr names the finding and the deciding step."""
    decision = decide(authorization(f"Bearer {bound}", cert=lab.client.der), rs_config)
    assert decision.finding is F.ACCEPTED
    lines = decision.explain().splitlines()
    assert len(lines) == len(decision.trace) + 1
    assert lines[-1] == "→ finding: accepted (accepted)"
    assert "[RFC 8705 §3]" in decision.explain()
    assert repr(decision) == f"<Decision accepted: {decision.detail}>"
    assert (decision.subject, decision.client_id, decision.scheme) == (
        "alice",
        "lab-client",
        "bearer",
    )


# --------------------------------------------------------------------------------------------------
# 1. Where the certificate comes from (RFC 8705 §3, RFC 9440 §2 and §4).


def test_the_certificate_comes_from_this_tls_connection(
    rs_config: RsConfig, lab: Lab, bound: str
) -> None:
    """RFC 8705 §3: the TLS layer's certificate is used, and its x5t#S256 is recorded."""
    decision = decide(authorization(f"Bearer {bound}", cert=lab.client.der), rs_config)
    source = step(decision, "client certificate")
    assert (source.passed, source.clause.label) == (True, "RFC 8705 §3")
    assert lab.client.x5t_s256 in source.detail
    assert decision.presented_x5t == decision.expected_x5t == lab.client.x5t_s256
    assert decision.binding == "x5t#S256"
    assert decision.finding is F.ACCEPTED


def test_no_tls_certificate_for_a_bound_token_is_certificate_missing(
    rs_config: RsConfig, bound: str
) -> None:
    """RFC 8705 §3: a bound token and no certificate at all — the case the RFC leaves open."""
    decision = decide(authorization(f"Bearer {bound}"), rs_config)
    assert decision.finding is F.CERTIFICATE_MISSING
    final = decision.trace[-1]
    assert (final.check, final.passed, final.clause.label) == (
        "certificate binding",
        False,
        "RFC 8705 §3",
    )
    assert decision.presented_x5t is None


def test_a_trusted_proxys_client_cert_is_the_certificate(
    rs_config: RsConfig, lab: Lab, bound: str
) -> None:
    """RFC 9440 §2.2: from a trusted proxy, Client-Cert carries the client's certificate."""
    config = with_config(rs_config, trust_client_cert_header=True)
    request = authorization(f"Bearer {bound}", from_proxy=True).with_header(
        "Client-Cert", encode_client_cert(lab.client.der)
    )
    decision = decide(request, config)
    assert decision.finding is F.ACCEPTED
    source = step(decision, "client certificate")
    assert (source.passed, source.clause.label) == (True, "RFC 9440 §2.2")
    assert decision.presented_x5t == lab.client.x5t_s256


def test_an_untrusted_proxys_client_cert_is_ignored(
    rs_config: RsConfig, lab: Lab, bound: str
) -> None:
    """RFC 9440 §4: a backend "MUST only accept" Client-Cert from a trusted proxy; from another it counts
    for nothing (issue 14: §4, not §2.4)."""
    request = authorization(f"Bearer {bound}", from_proxy=True).with_header(
        "Client-Cert", encode_client_cert(lab.client.der)
    )
    decision = decide(request, rs_config)
    assert decision.finding is F.UNTRUSTED_CLIENT_CERT_HEADER
    assert step(decision, "client certificate").clause.label == "RFC 9440 §4"
    assert "came from the proxy" in step(decision, "client certificate").detail
    assert decision.trace[-1].clause.label == "RFC 9440 §4"


def test_a_client_cert_header_on_a_direct_connection_is_ignored(
    rs_config: RsConfig, lab: Lab, bound: str
) -> None:
    """A client-forged Client-Cert is ignored: alone it is untrusted, beside a TLS certificate it loses."""
    forged = ("Client-Cert", encode_client_cert(lab.client.der))
    alone = decide(authorization(f"Bearer {bound}").with_header(*forged), rs_config)
    assert alone.finding is F.UNTRUSTED_CLIENT_CERT_HEADER
    ignored = next(s for s in alone.trace if s.check == "client certificate")
    assert ignored.clause.label == "RFC 9440 §4"
    assert "direct client connection" in ignored.detail
    beside = decide(
        authorization(f"Bearer {bound}", cert=lab.other_client.der).with_header(*forged), rs_config
    )
    assert beside.finding is F.CERTIFICATE_MISMATCH
    assert beside.presented_x5t == lab.other_client.x5t_s256
    honest = decide(
        authorization(f"Bearer {bound}", cert=lab.client.der).with_header(*forged), rs_config
    )
    assert honest.finding is F.ACCEPTED


@pytest.mark.parametrize(
    "values",
    [
        [":not base64!:"],
        ["MIIBkTCB"],
        [":" + base64.b64encode(b"not a certificate").decode() + ":"],
        ["::"],
    ],
    ids=["bad-base64", "not-a-byte-sequence", "not-der", "empty"],
)
def test_a_malformed_client_cert_from_the_trusted_proxy_gives_no_certificate(
    rs_config: RsConfig, bound: str, values: list[str]
) -> None:
    """RFC 8941 §4.2 (RFC 9440's structured-field parsing): a Client-Cert that does not parse is ignored
    as if absent, noted as a failed step, never a crash."""
    config = with_config(rs_config, trust_client_cert_header=True)
    request = authorization(f"Bearer {bound}", from_proxy=True)
    for value in values:
        request = request.with_header("Client-Cert", value)
    decision = decide(request, config)
    assert decision.finding is F.CERTIFICATE_MISSING
    source = step(decision, "client certificate")
    assert (source.passed, source.clause.label) == (False, "RFC 8941 §4.2")
    assert "treated as absent" in source.detail


def test_two_client_cert_fields_from_the_proxy_give_no_certificate(
    rs_config: RsConfig, lab: Lab, bound: str
) -> None:
    """RFC 9440 §2.2: Client-Cert "MUST NOT ... occur multiple times"; two fields do not parse as one byte
    sequence, so the field is treated as absent (RFC 8941 §4.2): neither is used (issue 14: cite §2.2)."""
    config = with_config(rs_config, trust_client_cert_header=True)
    request = (
        authorization(f"Bearer {bound}", from_proxy=True)
        .with_header("Client-Cert", encode_client_cert(lab.client.der))
        .with_header("Client-Cert", encode_client_cert(lab.client.der))
    )
    decision = decide(request, config)
    assert decision.finding is F.CERTIFICATE_MISSING
    source = step(decision, "client certificate")
    assert (source.passed, source.clause.label) == (False, "RFC 9440 §2.2")
    assert "2 Client-Cert fields" in source.detail


def test_a_trusted_proxy_forwarding_nothing_means_no_certificate(
    rs_config: RsConfig, bound: str
) -> None:
    """RFC 9440 §2.4: the absence of Client-Cert from the trusted proxy means no certificate was presented."""
    config = with_config(rs_config, trust_client_cert_header=True)
    decision = decide(authorization(f"Bearer {bound}", from_proxy=True), config)
    assert decision.finding is F.CERTIFICATE_MISSING
    assert step(decision, "client certificate").clause.label == "RFC 9440 §2.4"


# --------------------------------------------------------------------------------------------------
# 2. Where the token travels (RFC 6750 §2).


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(
    rs_config: RsConfig, lab: Lab, bound: str, scheme: str
) -> None:
    """RFC 9110 §11.1: auth-schemes compare case-insensitively; other spellings cite it."""
    decision = decide(authorization(f"{scheme} {bound}", cert=lab.client.der), rs_config)
    assert decision.finding is F.ACCEPTED
    header = step(decision, "Authorization header")
    expected = "RFC 6750 §2.1" if scheme == "Bearer" else "RFC 9110 §11.1"
    assert header.clause.label == expected


def test_several_spaces_after_the_scheme_are_allowed(
    rs_config: RsConfig, lab: Lab, bound: str
) -> None:
    """RFC 6750 §2.1: `"Bearer" 1*SP b64token`."""
    decision = decide(authorization(f"Bearer   {bound}", cert=lab.client.der), rs_config)
    assert decision.finding is F.ACCEPTED


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("Bearer", "without a token"),
        ("Bearer ", "without a token"),
        ("Bearer abc def", "not a b64token"),
        ("Bearer abc!def", "not a b64token"),
        ("Bearer ab=cd", "not a b64token"),
        ("bearer é", "not a b64token"),
    ],
)
def test_credentials_that_are_not_a_b64token_are_malformed(
    rs_config: RsConfig, value: str, detail: str
) -> None:
    """RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" ."""
    decision = decide(authorization(value), rs_config)
    assert decision.finding is F.MALFORMED_AUTHORIZATION
    assert detail in decision.detail
    assert decision.trace[-1].clause.label == "RFC 6750 §2.1"


def test_a_b64token_with_trailing_padding_is_well_formed(rs_config: RsConfig) -> None:
    """RFC 6750 §2.1: trailing "=" are part of b64token; the opaque value then fails validation, not syntax."""
    decision = decide(authorization("Bearer abc=="), rs_config)
    assert decision.finding is F.TOKEN_MALFORMED


def test_two_authorization_fields_are_malformed(rs_config: RsConfig, bound: str) -> None:
    """RFC 9110 §5.3: a sender "MUST NOT generate multiple field lines" for a field that is not a list, and
    Authorization holds one credential: two are refused, citing §5.3 (issue 14)."""
    request = authorization(f"Bearer {bound}").with_header("Authorization", f"Bearer {bound}")
    decision = decide(request, rs_config)
    assert decision.finding is F.MALFORMED_AUTHORIZATION
    assert "2 Authorization header fields" in decision.detail
    assert decision.trace[-1].clause.label == "RFC 9110 §5.3"


@pytest.mark.parametrize("value", ["Basic YWxpY2U6c2VjcmV0", "Negotiate abc", "Token x"])
def test_an_unknown_scheme_is_its_own_finding(rs_config: RsConfig, value: str) -> None:
    """RFC 6750 §3.1: "attempted using an unsupported authentication method" — its own finding
    (scheme_unsupported), which real servers answer differently from no token at all (issue 13)."""
    decision = decide(authorization(value), rs_config)
    assert decision.finding is F.SCHEME_UNSUPPORTED
    header = step(decision, "Authorization header")
    assert header.passed is None
    assert "not one this server accepts" in header.detail
    assert decision.scheme is None


def test_a_bare_token_is_a_missing_scheme_and_an_empty_field_no_token(
    rs_config: RsConfig, bound: str
) -> None:
    """RFC 9110 §11.4: credentials begin with an auth-scheme; a value of one word has none (scheme_missing).
    An empty field carries no credentials at all (no_token)."""
    bare = decide(authorization(bound), rs_config)
    assert bare.finding is F.SCHEME_MISSING
    assert step(bare, "Authorization header").clause.label == "RFC 9110 §11.4"
    assert decide(authorization(""), rs_config).finding is F.NO_TOKEN


def test_an_unusable_authorization_field_gives_way_to_a_token_elsewhere(
    rs_config: RsConfig, lab: Lab, bound: str
) -> None:
    """An Authorization field with another scheme holds no token; a token in the query is then the request's
    one method (the control: without it, the scheme is what the server found)."""
    request = dataclasses.replace(
        authorization(f"Basic {bound}", cert=lab.client.der),
        url=f"https://rs.mtlslab.test/resource?access_token={bound}",
    )
    assert decide(request, rs_config).finding is F.ACCEPTED


def test_a_server_that_refuses_query_tokens_says_so(
    rs_config: RsConfig, lab: Lab, bound: str
) -> None:
    """RFC 6750 §2.3 lets a server support the query method or not: one that does not refuses the token
    there (query_token_refused), and still takes the same token in the header."""
    refusing = with_config(rs_config, query_tokens=False)
    query = Request(
        url=f"https://rs.mtlslab.test/resource?access_token={bound}", client_cert=lab.client.der
    )
    decision = decide(query, refusing)
    assert decision.finding is F.QUERY_TOKEN_REFUSED
    assert decision.trace[-1].clause.label == "RFC 6750 §2.3"
    assert decide(query, rs_config).finding is F.ACCEPTED
    assert (
        decide(authorization(f"Bearer {bound}", cert=lab.client.der), refusing).finding
        is F.ACCEPTED
    )


def test_no_authorization_at_all_is_no_token(rs_config: RsConfig) -> None:
    """RFC 6750 §3.1: nothing in the header, form body or query."""
    decision = decide(Request(), rs_config)
    assert decision.finding is F.NO_TOKEN
    assert decision.trace[-1].clause.label == "RFC 6750 §3.1"


def form(token: str, *, method: str = "POST", content_type: str | None = None) -> Request:
    """A request carrying ``token`` in an urlencoded body."""
    headers = (("Content-Type", content_type),) if content_type is not None else ()
    body = urllib.parse.urlencode({"access_token": token}).encode()
    return Request(method=method, headers=headers, body=body)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_the_form_body_is_a_method_for_requests_with_body_semantics(
    rs_config: RsConfig, lab: Lab, bound: str, method: str
) -> None:
    """RFC 6750 §2.2: an urlencoded body with access_token, under a method whose body has semantics."""
    request = dataclasses.replace(
        form(bound, method=method, content_type="application/x-www-form-urlencoded"),
        client_cert=lab.client.der,
    )
    decision = decide(request, rs_config)
    assert decision.finding is F.ACCEPTED
    assert step(decision, "token placement").clause.label == "RFC 6750 §2.2"


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE", "OPTIONS", "post"])
def test_the_form_body_is_not_a_method_for_get_and_bodiless_methods(
    rs_config: RsConfig, bound: str, method: str
) -> None:
    """RFC 6750 §2.2: "the GET method MUST NOT be used"; methods are case-sensitive (RFC 9110 §9.1)."""
    request = form(bound, method=method, content_type="application/x-www-form-urlencoded")
    assert decide(request, rs_config).finding is F.NO_TOKEN


@pytest.mark.parametrize(
    ("content_type", "finding"),
    [
        ("application/x-www-form-urlencoded", F.CERTIFICATE_MISSING),
        ("Application/X-WWW-Form-Urlencoded; charset=utf-8", F.CERTIFICATE_MISSING),
        ("application/json", F.NO_TOKEN),
        ("multipart/form-data; boundary=x", F.NO_TOKEN),
        (None, F.NO_TOKEN),
    ],
)
def test_the_form_body_needs_the_urlencoded_content_type(
    rs_config: RsConfig, bound: str, content_type: str | None, finding: Finding
) -> None:
    """RFC 6750 §2.2: Content-Type application/x-www-form-urlencoded (media types are case-insensitive)."""
    assert decide(form(bound, content_type=content_type), rs_config).finding is finding


def test_the_query_is_a_method(rs_config: RsConfig, lab: Lab, bound: str) -> None:
    """RFC 6750 §2.3: access_token in the URI query."""
    url = f"{LAB_RESOURCE}?{urllib.parse.urlencode({'access_token': bound})}"
    decision = decide(Request(url=url, client_cert=lab.client.der), rs_config)
    assert decision.finding is F.ACCEPTED
    assert step(decision, "token placement").clause.label == "RFC 6750 §2.3"
    assert decision.scheme == "bearer"


def test_an_empty_query_token_is_malformed(rs_config: RsConfig) -> None:
    """An empty access_token parameter is a malformed request, not a missing token."""
    decision = decide(Request(url=f"{LAB_RESOURCE}?access_token="), rs_config)
    assert decision.finding is F.MALFORMED_AUTHORIZATION


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(
            Request(url=f"{LAB_RESOURCE}?access_token=a", headers=(("Authorization", "Bearer a"),)),
            id="header+query",
        ),
        pytest.param(
            dataclasses.replace(
                form("a", content_type="application/x-www-form-urlencoded"),
                headers=(
                    ("Authorization", "Bearer a"),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ),
            ),
            id="header+form",
        ),
        pytest.param(
            dataclasses.replace(
                form("a", content_type="application/x-www-form-urlencoded"),
                url=f"{LAB_RESOURCE}?access_token=a",
            ),
            id="form+query",
        ),
        pytest.param(
            Request(url=f"{LAB_RESOURCE}?access_token=a&access_token=b"), id="query twice"
        ),
    ],
)
def test_more_than_one_method_is_refused(rs_config: RsConfig, request_: Request) -> None:
    """RFC 6750 §2: "Clients MUST NOT use more than one method to transmit the token in each request"."""
    decision = decide(request_, rs_config)
    assert decision.finding is F.MULTIPLE_METHODS
    assert decision.trace[-1].clause.label == "RFC 6750 §2"


def test_schemes_a_server_does_not_support_are_no_token(rs_config: RsConfig, bound: str) -> None:
    """DPoP at a server without DPoP, MTLS at a server without the (hypothetical) MTLS scheme: an
    unsupported scheme (RFC 6750 §3.1)."""
    no_dpop = with_config(rs_config, dpop=False)
    assert decide(authorization(f"DPoP {bound}"), no_dpop).finding is F.SCHEME_UNSUPPORTED
    assert decide(authorization(f"MTLS {bound}"), rs_config).finding is F.SCHEME_UNSUPPORTED


# --------------------------------------------------------------------------------------------------
# 3. The token (RFC 9068 §4, RFC 8725).


@pytest.mark.parametrize(
    ("typ", "finding"),
    [
        ("at+jwt", F.ACCEPTED),
        ("application/at+jwt", F.ACCEPTED),
        ("AT+JWT", F.ACCEPTED),
        ("JWT", F.TOKEN_MALFORMED),
        ("dpop+jwt", F.TOKEN_MALFORMED),
        (None, F.TOKEN_MALFORMED),
    ],
)
def test_typ_must_be_at_jwt(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab, typ: str | None, finding: Finding
) -> None:
    """RFC 9068 §4: the typ header MUST be at+jwt (or application/at+jwt); others are not access tokens."""
    claims = asrv.claims(cnf={"x5t#S256": lab.client.x5t_s256})
    token = asrv.sign(claims, headers={"typ": typ})
    decision = decide(authorization(f"Bearer {token}", cert=lab.client.der), rs_config)
    assert decision.finding is finding


@pytest.mark.parametrize(
    ("variant", "clause"),
    [("alg-none", "RFC 8725 §3.1"), ("hs256-confusion", "RFC 8725 §3.1")],
)
def test_algorithm_confusions_are_bad_signatures(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab, variant: str, clause: str
) -> None:
    """RFC 8725 §3.1: only the issuer key's own algorithm; alg none and HMAC-with-public-key fail."""
    token = asrv.mint(variant).value
    decision = decide(authorization(f"Bearer {token}", cert=lab.client.der), rs_config)
    assert decision.finding is F.BAD_SIGNATURE
    assert decision.trace[-1].clause.label == clause
    assert "refused" in decision.detail


def test_an_unknown_kid_is_a_bad_signature(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab
) -> None:
    """RFC 9068 §4: the key must be one of the issuer's; an unknown kid finds none."""
    token = asrv.sign(asrv.claims(), headers={"kid": "not-in-the-jwks"})
    decision = decide(authorization(f"Bearer {token}", cert=lab.client.der), rs_config)
    assert decision.finding is F.BAD_SIGNATURE
    assert "no key with kid 'not-in-the-jwks'" in decision.detail


def test_a_signature_by_another_key_under_the_issuers_kid_is_bad(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab
) -> None:
    """RFC 9068 §4: the signature must verify with the issuer's key named by kid."""
    token = asrv.mint("bad-signature").value
    decision = decide(authorization(f"Bearer {token}", cert=lab.client.der), rs_config)
    assert decision.finding is F.BAD_SIGNATURE
    assert decision.trace[-1].clause.label == "RFC 9068 §4"
    good = decide(
        authorization(f"Bearer {asrv.mint('bound').value}", cert=lab.client.der), rs_config
    )
    assert good.finding is F.ACCEPTED


@pytest.mark.parametrize("with_kid", [True, False])
def test_keys_carried_in_the_token_are_never_used(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab, with_kid: bool
) -> None:
    """RFC 8725 §3.10: a token signed by an attacker key whose jwk rides in the header is still bad."""
    attacker = ec.derive_private_key(0xA77AC4E5, ec.SECP256R1())
    header: dict[str, Any] = {"jwk": public_jwk(attacker), "jku": "https://evil.example/jwks"}
    header["x5u"] = "https://evil.example/cert.pem"
    header["x5c"] = [base64.b64encode(lab.client.der).decode()]
    header["typ"] = "at+jwt"
    if with_kid:
        header["kid"] = asrv.kid
    claims = asrv.claims(cnf={"x5t#S256": lab.client.x5t_s256})
    token = jwt.encode(claims, attacker, algorithm="ES256", headers=header)
    assert ("kid" in jwt.get_unverified_header(token)) is with_kid
    decision = decide(authorization(f"Bearer {token}", cert=lab.client.der), rs_config)
    assert decision.finding is F.BAD_SIGNATURE


def test_url_and_key_headers_on_a_genuine_token_are_noted_and_ignored(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab
) -> None:
    """RFC 8725 §3.10: jku/x5u on a genuine token are never fetched; the trace says so."""
    claims = asrv.claims(cnf={"x5t#S256": lab.client.x5t_s256})
    token = asrv.sign(claims, headers={"jku": "https://evil.example/jwks", "x5u": "https://x/"})
    decision = decide(authorization(f"Bearer {token}", cert=lab.client.der), rs_config)
    assert decision.finding is F.ACCEPTED
    note = step(decision, "JOSE header")
    assert (note.passed, note.clause.label) == (None, "RFC 8725 §3.10")
    assert "jku, x5u" in note.detail


@pytest.mark.parametrize("variant", ["malformed-parts", "malformed-base64", "malformed-json"])
def test_tokens_that_are_not_jws_are_malformed(
    rs_config: RsConfig, asrv: AuthorizationServer, variant: str
) -> None:
    """RFC 9068 §4: a token that is not a JWS compact serialisation is malformed."""
    token = asrv.mint(variant).value
    decision = decide(authorization(f"Bearer {token}"), rs_config)
    assert decision.finding is F.TOKEN_MALFORMED


@pytest.mark.parametrize(
    ("changes", "finding", "check"),
    [
        ({"iss": "https://evil-as.mtlslab.test"}, F.WRONG_ISSUER, "iss"),
        ({"iss": None}, F.WRONG_ISSUER, "iss"),
        ({"aud": "https://other-rs.mtlslab.test"}, F.WRONG_AUDIENCE, "aud"),
        ({"aud": ["https://other-rs.mtlslab.test"]}, F.WRONG_AUDIENCE, "aud"),
        ({"aud": ["https://other-rs.mtlslab.test", LAB_AUDIENCE]}, F.ACCEPTED, "result"),
        ({"exp": None}, F.TOKEN_MALFORMED, "exp"),
        ({"exp": "tomorrow"}, F.TOKEN_MALFORMED, "exp"),
        ({"jti": None}, F.TOKEN_MALFORMED, "required claims"),
        ({"sub": None}, F.TOKEN_MALFORMED, "required claims"),
        ({"client_id": None}, F.TOKEN_MALFORMED, "required claims"),
    ],
)
def test_claims_are_checked_as_rfc_9068_says(
    rs_config: RsConfig,
    asrv: AuthorizationServer,
    lab: Lab,
    changes: dict[str, Any],
    finding: Finding,
    check: str,
) -> None:
    """RFC 9068 §4 / §2.2: iss exactly the issuer, aud names this server, exp and the required claims."""
    token = signed(asrv, **changes)
    decision = decide(authorization(f"Bearer {token}", cert=lab.client.der), rs_config)
    assert decision.finding is finding
    assert decision.trace[-1].check == check


def test_expiry_is_judged_at_the_injected_now(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab
) -> None:
    """Time is injected: the same request is accepted before exp and expired at and after exp (RFC 7519 §4.1.4)."""
    request = authorization(f"Bearer {asrv.mint('bound').value}", cert=lab.client.der)
    exp = LAB_NOW + HOUR
    assert decide(request, rs_config, now=LAB_NOW).finding is F.ACCEPTED
    assert decide(request, rs_config, now=exp - dt.timedelta(seconds=1)).finding is F.ACCEPTED
    at_exp = decide(request, rs_config, now=exp)
    assert at_exp.finding is F.TOKEN_EXPIRED
    assert "2026-01-01T01:00:00Z" in at_exp.detail
    leeway = with_config(rs_config, leeway=60)
    assert decide(request, leeway, now=exp + dt.timedelta(seconds=30)).finding is F.ACCEPTED


def test_the_expired_variant_is_expired_at_the_lab_clock_and_valid_earlier(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab
) -> None:
    """The lab's expired token is expired at LAB_NOW and accepted two hours earlier."""
    request = authorization(f"Bearer {asrv.mint('expired').value}", cert=lab.client.der)
    assert decide(request, rs_config).finding is F.TOKEN_EXPIRED
    assert decide(request, rs_config, now=LAB_NOW - 2 * HOUR).finding is F.ACCEPTED


def test_nbf_is_judged_at_the_injected_now(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab
) -> None:
    """RFC 7519 §4.1.5: not valid before nbf; the same request is accepted once nbf has passed."""
    request = authorization(f"Bearer {asrv.mint('not-yet-valid').value}", cert=lab.client.der)
    early = decide(request, rs_config)
    assert early.finding is F.TOKEN_NOT_YET_VALID
    assert early.trace[-1].clause.label == "RFC 7519 §4.1.5"
    assert decide(request, rs_config, now=LAB_NOW + 2 * HOUR).finding is F.ACCEPTED


# --------------------------------------------------------------------------------------------------
# Introspection (RFC 7662 §2.2, RFC 8705 §3.2).


def introspecting(rs_config: RsConfig, answer: Mapping[str, Any] | Exception) -> RsConfig:
    """A configuration whose introspection endpoint always gives ``answer``."""

    def introspect(_token: str) -> Mapping[str, Any]:
        if isinstance(answer, Exception):
            raise answer
        return answer

    return with_config(rs_config, validation=Validation.INTROSPECTION, introspect=introspect)


def active(**extra: Any) -> dict[str, Any]:
    """An active introspection response for the lab resource server."""
    return {"active": True, "aud": LAB_AUDIENCE, "scope": "read", "sub": "alice", **extra}


def test_introspection_carries_cnf(rs_config: RsConfig, lab: Lab) -> None:
    """RFC 8705 §3.2: introspection returns cnf.x5t#S256 and the binding is checked against it."""
    config = introspecting(rs_config, active(cnf={"x5t#S256": lab.client.x5t_s256}))
    good = decide(authorization("Bearer opaque", cert=lab.client.der), config)
    assert good.finding is F.ACCEPTED
    assert step(good, "introspection").clause.label == "RFC 7662 §2.2"
    assert "with cnf" in step(good, "introspection").detail
    other = decide(authorization("Bearer opaque", cert=lab.other_client.der), config)
    assert other.finding is F.CERTIFICATE_MISMATCH
    missing = decide(authorization("Bearer opaque"), config)
    assert missing.finding is F.CERTIFICATE_MISSING


@pytest.mark.parametrize(
    "answer",
    [
        {"active": False},
        {"active": "true"},
        {},
        RuntimeError("connection refused"),
    ],
    ids=["inactive", "active-as-string", "empty", "unreachable"],
)
def test_anything_but_active_true_is_inactive(
    rs_config: RsConfig, answer: Mapping[str, Any] | Exception
) -> None:
    """RFC 7662 §2.2: only `"active": true` makes a token usable; a failing endpoint does not."""
    decision = decide(authorization("Bearer opaque"), introspecting(rs_config, answer))
    assert decision.finding is F.TOKEN_INACTIVE
    assert decision.trace[-1].clause.label == "RFC 7662 §2.2"


def test_introspection_is_asked_afresh_on_every_request(rs_config: RsConfig, lab: Lab) -> None:
    """RFC 7662 §2.2: a token revoked between two identical requests is inactive on the second."""
    state = active(cnf={"x5t#S256": lab.client.x5t_s256})
    config = introspecting(rs_config, state)
    request = authorization("Bearer revocable", cert=lab.client.der)
    assert decide(request, config).finding is F.ACCEPTED
    state["active"] = False
    assert decide(request, config).finding is F.TOKEN_INACTIVE


def test_local_and_introspecting_servers_share_the_stages_before_validation(
    rs_config: RsConfig, lab: Lab
) -> None:
    """Size, certificate and token placement do not depend on how the token is validated: an introspecting
    server's first steps are a local one's, and it asks its endpoint on every request."""
    asked: list[str] = []

    def introspect(token: str) -> Mapping[str, Any]:
        asked.append(token)
        return active(cnf={"x5t#S256": lab.client.x5t_s256})

    request = authorization("Bearer shared-front-stages", cert=lab.client.der)
    config = with_config(rs_config, validation=Validation.INTROSPECTION, introspect=introspect)
    local = decide(request, rs_config)
    first, second = decide(request, config), decide(request, config)
    assert asked == ["shared-front-stages"] * 2
    assert first.finding is second.finding is F.ACCEPTED
    assert local.finding is F.TOKEN_MALFORMED  # not a JWT: the local server stops at stage 3
    assert first.trace[:2] == local.trace[:2]  # certificate, Authorization header


def test_servers_that_differ_only_in_their_endpoint_ask_their_own(
    rs_config: RsConfig, lab: Lab
) -> None:
    """Two resource servers with different introspection endpoints each get their own answer."""
    request = authorization("Bearer same-token", cert=lab.client.der)
    yes = introspecting(rs_config, active())
    no = introspecting(rs_config, {"active": False})
    assert decide(request, yes).finding is F.ACCEPTED
    assert decide(request, no).finding is F.TOKEN_INACTIVE
    assert decide(request, yes).finding is F.ACCEPTED


def test_introspection_without_an_endpoint_is_inactive(rs_config: RsConfig) -> None:
    """No introspection endpoint configured: the token cannot be shown active."""
    config = with_config(rs_config, validation=Validation.INTROSPECTION, introspect=None)
    assert decide(authorization("Bearer opaque"), config).finding is F.TOKEN_INACTIVE


def test_introspection_checks_the_audience(rs_config: RsConfig) -> None:
    """An active token for another audience is a wrong audience."""
    config = introspecting(rs_config, active(aud="https://other-rs.mtlslab.test"))
    assert decide(authorization("Bearer opaque"), config).finding is F.WRONG_AUDIENCE


@pytest.mark.parametrize(
    ("variant", "cert", "finding"),
    [
        ("opaque-bound", "client", F.ACCEPTED),
        ("opaque-bound", None, F.CERTIFICATE_MISSING),
        ("opaque-bound", "other-client", F.CERTIFICATE_MISMATCH),
        ("opaque-unbound", None, F.ACCEPTED),
        ("opaque-inactive", "client", F.TOKEN_INACTIVE),
        ("bound", "client", F.ACCEPTED),
    ],
)
def test_the_lab_authorization_server_introspects_its_tokens(
    sim: Simulator, lab: Lab, variant: str, cert: str | None, finding: Finding
) -> None:
    """The lab AS's RFC 7662 answers drive the decision, JWTs included."""
    config = config_for(
        Deployment(validation=Validation.INTROSPECTION), jwks=sim.jwks, introspect=sim.introspect
    )
    der = lab.identities()[cert].der if cert else None
    token = sim.asrv.mint(variant).value
    assert decide(authorization(f"Bearer {token}", cert=der), config).finding is finding


# --------------------------------------------------------------------------------------------------
# 4. The certificate binding (RFC 8705 §3, §3.1).


def test_a_mismatch_names_both_thumbprints(rs_config: RsConfig, lab: Lab, bound: str) -> None:
    """RFC 8705 §3: the request "MUST be rejected" with 401 invalid_token when the certificates do not match
    — §3, not §3.1, which only defines x5t#S256 (issue 14); the trace shows expected and presented."""
    decision = decide(authorization(f"Bearer {bound}", cert=lab.other_client.der), rs_config)
    assert decision.finding is F.CERTIFICATE_MISMATCH
    final = decision.trace[-1]
    assert final.clause.label == "RFC 8705 §3"
    assert lab.client.x5t_s256 in final.detail
    assert lab.other_client.x5t_s256 in final.detail
    assert (decision.expected_x5t, decision.presented_x5t) == (
        lab.client.x5t_s256,
        lab.other_client.x5t_s256,
    )


def test_editing_what_the_inspector_shows_changes_no_later_decision(
    rs_config: RsConfig, lab: Lab, asrv: AuthorizationServer, bound: str
) -> None:
    """The inspector hands out copies: a notebook that edits the claims it was shown (cnf here) cannot
    change what the engine, which remembers each verified token, decides next."""
    request = authorization(f"Bearer {bound}", cert=lab.client.der)
    assert decide(request, rs_config).finding is F.ACCEPTED
    shown = inspect_token(bound, jwks=asrv.jwks(), certificate=lab.client)
    shown.claims["cnf"]["x5t#S256"] = lab.other_client.x5t_s256
    shown.header["alg"] = "none"
    assert decide(request, rs_config).finding is F.ACCEPTED
    assert inspect_token(bound, jwks=asrv.jwks(), certificate=lab.client).binding.holds


def test_the_thumbprint_is_sha256_of_the_der_as_received(
    rs_config: RsConfig, lab: Lab, bound: str
) -> None:
    """RFC 8705 §3.1: base64url (no padding) of SHA-256 over the DER bytes the connection presented."""
    digest = hashlib.sha256(lab.client.der).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    decision = decide(authorization(f"Bearer {bound}", cert=lab.client.der), rs_config)
    assert decision.presented_x5t == x5t_s256(lab.client.der) == expected == lab.client.x5t_s256
    assert "=" not in expected
    assert len(expected) == 43


@pytest.mark.parametrize(
    ("variant", "finding"),
    [
        ("cnf-padded", F.CERTIFICATE_MISMATCH),
        ("cnf-uppercase", F.CERTIFICATE_MISMATCH),
        ("cnf-standard-base64", F.CERTIFICATE_MISMATCH),
        ("cnf-sha1", F.CERTIFICATE_MISMATCH),
        ("cnf-pem-hash", F.CERTIFICATE_MISMATCH),
        ("cnf-public-key-hash", F.CERTIFICATE_MISMATCH),
        ("cnf-x5t-sha1", F.UNSUPPORTED_CONFIRMATION),
        ("cnf-unknown-method", F.UNSUPPORTED_CONFIRMATION),
    ],
)
def test_look_alike_thumbprints_do_not_match(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab, variant: str, finding: Finding
) -> None:
    """RFC 8705 §3.1, §7.2: the comparison is exact — no padding, case, base64 or hash leniency."""
    token = asrv.mint(variant).value
    decision = decide(authorization(f"Bearer {token}", cert=lab.client.der), rs_config)
    assert decision.finding is finding


@pytest.mark.parametrize(
    ("cnf", "finding"),
    [
        ("x5t#S256", F.UNSUPPORTED_CONFIRMATION),
        (["x5t#S256"], F.UNSUPPORTED_CONFIRMATION),
        ({}, F.UNSUPPORTED_CONFIRMATION),
        ({"x5t#S256": 42}, F.CERTIFICATE_MISMATCH),
        ({"x5t#S256": None}, F.CERTIFICATE_MISMATCH),
        ({"x5t#S256": "\udcff"}, F.CERTIFICATE_MISMATCH),
    ],
)
def test_odd_cnf_values_never_pass(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab, cnf: object, finding: Finding
) -> None:
    """RFC 7800 §3.1: cnf is a JSON object holding a method this server checks; anything else fails."""
    claims = asrv.claims()
    claims["cnf"] = cnf
    token = asrv.sign(json.dumps(claims).encode())
    decision = decide(authorization(f"Bearer {token}", cert=lab.client.der), rs_config)
    assert decision.finding is finding


def _calls_in(function: object) -> set[str]:
    """Dotted names of everything ``function`` calls."""
    tree = ast.parse(inspect.getsource(function))  # type: ignore[arg-type]
    return {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}


def test_bindings_are_compared_in_constant_time() -> None:
    """The x5t#S256 and jkt comparisons go through pki.same_thumbprint, which uses compare_digest; none of
    them uses ==."""
    assert rs.same_thumbprint is pki.same_thumbprint
    assert "same_thumbprint" in _calls_in(rs._x5t)
    assert "same_thumbprint" in _calls_in(rs._dpop_key)
    assert "secrets.compare_digest" in _calls_in(pki.same_thumbprint)
    for function in (rs._x5t, rs._dpop_key, pki.same_thumbprint):
        tree = ast.parse(inspect.getsource(function))
        compared = [
            ast.unparse(node)
            for node in ast.walk(tree)
            if isinstance(node, ast.Compare)
            and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops)
        ]
        assert compared == [], compared


def test_a_self_signed_certificate_binds_like_any_other(sim: Simulator) -> None:
    """RFC 8705 §2.2, §6.2: at a no-CA server, the self-signed certificate's thumbprint is the check."""
    request, config = realised(sim, "self-signed-success")
    assert decide(request, config).finding is F.ACCEPTED
    request, config = realised(sim, "self-signed-mismatch")
    assert decide(request, config).finding is F.CERTIFICATE_MISMATCH


# --------------------------------------------------------------------------------------------------
# DPoP (RFC 9449 §4.3, §7).


def test_a_valid_dpop_proof_and_key_are_accepted(sim: Simulator) -> None:
    """RFC 9449 §4.3 and §7.1: the proof checks out and its key is cnf.jkt."""
    request, config = realised(sim, "dpop-success")
    decision = decide(request, config)
    assert decision.finding is F.ACCEPTED
    assert step(decision, "DPoP proof").clause.label == "RFC 9449 §4.3"
    assert step(decision, "DPoP key binding").clause.label == "RFC 9449 §7.1"
    assert decision.binding == "jkt"
    assert decision.scheme == "dpop"


@pytest.mark.parametrize(
    ("choice", "finding", "detail"),
    [
        (ProofChoice.NONE, F.DPOP_PROOF_MISSING, "without a DPoP header"),
        (ProofChoice.TWO_PROOFS, F.DPOP_PROOF_INVALID, "2 DPoP header fields"),
        (ProofChoice.WRONG_ATH, F.DPOP_PROOF_INVALID, "ath"),
        (ProofChoice.WRONG_HTM, F.DPOP_PROOF_INVALID, "htm"),
        (ProofChoice.WRONG_HTU, F.DPOP_PROOF_INVALID, "htu"),
        (ProofChoice.STALE, F.DPOP_PROOF_INVALID, "iat"),
        (ProofChoice.BAD_SIGNATURE, F.DPOP_PROOF_INVALID, "signature"),
        (ProofChoice.OTHER_KEY, F.DPOP_KEY_MISMATCH, "the proof's key is"),
    ],
)
def test_each_broken_proof_fails_its_own_check(
    sim: Simulator, choice: ProofChoice, finding: Finding, detail: str
) -> None:
    """RFC 9449 §4.3 (one proof, signature, htm, htu, iat, ath) and §7.1: the resource server "MUST check
    that a DPoP proof was received" and that its key is cnf.jkt — a missing proof cites §7.1, not §4.3,
    which checks a proof that came (issue 14)."""
    request, config = realised(sim, "dpop-success", dpop_proof=choice)
    decision = decide(request, config)
    assert decision.finding is finding
    assert detail in decision.detail
    by_7_1 = (F.DPOP_KEY_MISMATCH, F.DPOP_PROOF_MISSING)
    expected = "RFC 9449 §7.1" if finding in by_7_1 else "RFC 9449 §4.3"
    assert decision.trace[-1].clause.label == expected


def test_proof_freshness_is_judged_at_the_injected_now(sim: Simulator) -> None:
    """Time is injected: an hour-old proof is stale at LAB_NOW and fresh an hour earlier."""
    request, config = realised(sim, "dpop-success", dpop_proof=ProofChoice.STALE)
    assert decide(request, config).finding is F.DPOP_PROOF_INVALID
    assert decide(request, config, now=LAB_NOW - HOUR).finding is F.ACCEPTED


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed_proof(lab: Lab, header: bytes, claims: bytes) -> str:
    """A compact JWS of these exact header and claims bytes, signed with the lab's DPoP key (ES256)."""
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    signature = jwt.get_algorithm_by_name("ES256").sign(
        signing_input.encode(), DPoPKey.for_lab(lab).private_key
    )
    return f"{signing_input}.{_b64(signature)}"


def proof_claims(token: str) -> dict[str, Any]:
    """The claims of a valid DPoP proof for ``token``: a GET of the lab resource at the lab clock."""
    return {
        "jti": "p-1",
        "htm": "GET",
        "htu": LAB_RESOURCE,
        "iat": int(LAB_NOW.timestamp()),
        "ath": access_token_hash(token),
    }


def proof_parts(lab: Lab, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a valid DPoP proof for ``token`` at the lab resource."""
    return {
        "typ": "dpop+jwt",
        "alg": "ES256",
        "jwk": DPoPKey.for_lab(lab).public_jwk,
    }, proof_claims(token)


def proof_with(lab: Lab, token: str, *, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A DPoP proof for ``token`` with header/claim changes (None deletes), re-signed by the lab key."""
    base_header, base_claims = proof_parts(lab, token)
    return signed_proof(
        lab,
        *(
            json.dumps({k: v for k, v in {**base, **changes}.items() if v is not None}).encode()
            for base, changes in ((base_header, header), (base_claims, claims))
        ),
    )


@pytest.mark.parametrize(
    ("header", "claims", "detail"),
    [
        ({}, {}, ""),
        ({"typ": "JWT"}, {}, "not dpop+jwt"),
        ({"alg": "HS256"}, {}, "not an asymmetric algorithm"),
        ({"alg": "none"}, {}, "not an asymmetric algorithm"),
        ({"jwk": None}, {}, "no jwk"),
        ({"jwk": {"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "d": "d"}}, {}, "private"),
        ({}, {"jti": None}, "no jti"),
        ({}, {"iat": None}, "iat"),
        ({}, {"iat": int((LAB_NOW + HOUR).timestamp())}, "iat"),
        ({}, {"ath": None}, "ath"),
        ({}, {"iat": float("nan")}, "NaN is not a JSON number"),
        ({}, {"iat": float("inf")}, "Infinity is not a JSON number"),
        ({}, {"iat": 10**400}, "outside the accepted window"),
    ],
)
def test_proof_headers_and_claims_are_checked(
    sim: Simulator, lab: Lab, header: dict[str, Any], claims: dict[str, Any], detail: str
) -> None:
    """RFC 9449 §4.3: typ dpop+jwt, an asymmetric alg, a public jwk, jti, a fresh iat, and ath."""
    request, config = realised(sim, "dpop-success", dpop_proof=ProofChoice.NONE)
    (value,) = request.header_values("Authorization")
    proof = proof_with(lab, value.split(" ", 1)[1], header=header, claims=claims)
    decision = decide(request.with_header("DPoP", proof), config)
    if not detail:
        assert decision.finding is F.ACCEPTED
        return
    assert decision.finding is F.DPOP_PROOF_INVALID
    assert detail in decision.detail


def test_a_proof_that_is_not_a_jwt_is_invalid(sim: Simulator) -> None:
    """RFC 9449 §4.3: "the DPoP proof is a well-formed JWT"."""
    request, config = realised(sim, "dpop-success", dpop_proof=ProofChoice.NONE)
    decision = decide(request.with_header("DPoP", "not-a-jwt"), config)
    assert decision.finding is F.DPOP_PROOF_INVALID


def _dpop_request(sim: Simulator) -> tuple[Request, RsConfig, str]:
    """The dpop-success request without its proof, its server, and the access token it carries."""
    request, config = realised(sim, "dpop-success", dpop_proof=ProofChoice.NONE)
    (value,) = request.header_values("Authorization")
    return request, config, value.split(" ", 1)[1]


def test_a_proof_is_read_as_strictly_as_an_access_token(sim: Simulator, lab: Lab) -> None:
    """RFC 9449 §4.3 check 2 asks for a well-formed JWT: the proof is read like an access token (RFC 7515
    §7.1), so padding, non-canonical base64url, a member named twice and a kid that is not a string (RFC
    7515 §4.1.4) are refused here too."""
    request, config, token = _dpop_request(sim)
    header, claims = proof_parts(lab, token)
    good = signed_proof(lab, json.dumps(header).encode(), json.dumps(claims).encode())
    assert decide(request.with_header("DPoP", good), config).finding is F.ACCEPTED
    first, second, signature = good.split(".")
    padded = ".".join([first + "=" * (-len(first) % 4 or 4), second, signature])
    # the signature's last character with its 4 unused low bits set (64 bytes are 86 characters): the same
    # bytes, so the same valid signature, in a second spelling
    assert len(signature) == 86
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    last = alphabet[alphabet.index(signature[-1]) | 0b1111]
    non_canonical = ".".join([first, second, signature[:-1] + last])
    assert base64.urlsafe_b64decode(non_canonical.split(".")[2] + "==") == base64.urlsafe_b64decode(
        signature + "=="
    )
    hdr = json.dumps(header)
    twice_in_header = signed_proof(
        lab, (hdr[:-1] + ', "typ": "dpop+jwt"}').encode(), json.dumps(claims).encode()
    )
    body = json.dumps(claims)
    twice_in_claims = signed_proof(lab, hdr.encode(), (body[:-1] + ', "htm": "GET"}').encode())
    with_crit = proof_with(lab, token, header={"crit": ["exp"]}, claims={"exp": 1})
    numeric_kid = proof_with(lab, token, header={"kid": 5}, claims={})
    for proof, detail in (
        (padded, "not unpadded base64url"),
        (non_canonical, "not canonical base64url"),
        (twice_in_header, "'typ' occurs twice in the JOSE header"),
        (twice_in_claims, "'htm' occurs twice in the claims"),
        (with_crit, "understands no critical header extension"),
        (numeric_kid, "kid 5 is not a string (RFC 7515 §4.1.4)"),
    ):
        decision = decide(request.with_header("DPoP", proof), config)
        assert decision.finding is F.DPOP_PROOF_INVALID, proof
        assert detail in decision.detail


def own_proof(private: Any, alg: str, token: str) -> str:
    """A proof for ``token`` signed by ``private`` under ``alg``, carrying ``private``'s own public jwk: the
    signature verifies with the key it names, whatever the curve or size."""
    # Ed448 is not a lab key type, so pki.public_jwk has no case for it
    if isinstance(private, ed448.Ed448PrivateKey):
        raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed448", "x": _b64(raw)}
    else:
        jwk = public_jwk(private)
    jose = {"typ": "dpop+jwt", "alg": alg, "jwk": jwk}
    claims = proof_claims(token)
    signing_input = (
        f"{_b64(json.dumps(jose).encode())}.{_b64(json.dumps(claims).encode())}".encode()
    )
    # ECDSA: raw r||s, each at the key's own size (RFC 7518 §3.4)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        digest = _HASHES.get(alg, hashes.SHA256)()
        r, s_ = decode_dss_signature(private.sign(signing_input, ec.ECDSA(digest)))
        size = (private.curve.key_size + 7) // 8
        signature = r.to_bytes(size, "big") + s_.to_bytes(size, "big")
    elif isinstance(private, rsa.RSAPrivateKey):
        signature = jwt.get_algorithm_by_name(alg).sign(signing_input, private)
    else:  # Ed25519, Ed448
        signature = private.sign(signing_input)
    return f"{signing_input.decode()}.{_b64(signature)}"


_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "ES256": hashes.SHA256,
    "ES384": hashes.SHA384,
    "ES512": hashes.SHA512,
}


@pytest.mark.parametrize(
    ("make", "alg", "detail"),
    [
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ES256", "needs a secp256r1 key"),
        (lambda: ec.generate_private_key(ec.SECP256K1()), "ES256", "needs a secp256r1 key"),
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ES384", "needs a secp384r1 key"),
        (
            lambda: ed25519.Ed25519PrivateKey.generate(),
            "ES256",
            "",
        ),  # not even an EC key (pyjwt says)
        (
            lambda: rsa.generate_private_key(65537, 1024),  # noqa: S505 - the weak key is the point
            "RS256",
            "needs an RSA key of 2048 bits or more, not 1024",
        ),
        (
            lambda: ec.generate_private_key(ec.SECP256R1()),
            "EdDSA",
            "",
        ),  # not an OKP key (pyjwt says)
    ],
)
def test_a_proof_whose_key_is_not_one_its_alg_is_defined_for_is_invalid(
    sim: Simulator, make: Any, alg: str, detail: str
) -> None:
    """RFC 9449 §4.3 checks 5 and 6 with RFC 7518 §3.3-§3.5: each key signs its own proof, so the signature
    would verify; what the alg is defined for is checked first (ES256 is P-256 only, RSA at least 2048 bits,
    EdDSA Ed25519 or Ed448)."""
    request, config, token = _dpop_request(sim)
    proof = own_proof(make(), alg, token)
    decision = decide(request.with_header("DPoP", proof), config)
    assert decision.finding is F.DPOP_PROOF_INVALID
    assert decision.detail.startswith("unusable jwk (")
    if detail:
        assert f"({alg} {detail}" in decision.detail


@pytest.mark.parametrize(
    ("make", "alg"),
    [
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ES384"),
        (lambda: rsa.generate_private_key(65537, 2048), "PS256"),
        (lambda: ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
        (lambda: ec.generate_private_key(ec.SECP521R1()), "ES512"),
        (lambda: ed448.Ed448PrivateKey.generate(), "EdDSA"),
    ],
)
def test_a_proof_from_another_fit_key_is_valid_but_not_the_bound_one(
    sim: Simulator, make: Any, alg: str
) -> None:
    """The control: a P-384, RSA-2048, Ed25519, P-521 or Ed448 key that signs its own proof passes every proof check
    (RFC 9449 §4.3); the token is bound to the lab's DPoP key, so binding then fails (§7.1)."""
    request, config, token = _dpop_request(sim)
    decision = decide(request.with_header("DPoP", own_proof(make(), alg, token)), config)
    assert step(decision, "DPoP proof").passed is True
    assert decision.finding is F.DPOP_KEY_MISMATCH


@pytest.mark.parametrize("typ", ["dpop+jwt", "DPoP+JWT", "application/dpop+jwt"])
def test_a_proof_typ_is_compared_as_any_typ_is(sim: Simulator, lab: Lab, typ: str) -> None:
    """RFC 7515 §4.1.9: typ values compare without regard to case, and "application/" may be left out."""
    request, config, token = _dpop_request(sim)
    proof = proof_with(lab, token, header={"typ": typ}, claims={})
    assert decide(request.with_header("DPoP", proof), config).finding is F.ACCEPTED


def test_a_proof_replayed_inside_its_window_is_accepted_again(sim: Simulator) -> None:
    """RFC 9449 §11.1 bounds a proof's life by its iat window and leaves single-use jti tracking to the
    server; this engine is pure and keeps no jti store, so the same proof passes again anywhere inside
    the window, which reaches dpop_max_age (300 s) either side of iat (README)."""
    request, config = realised(sim, "dpop-success")
    inside = [LAB_NOW + dt.timedelta(seconds=n) for n in (0, 300, -300)]
    assert [rs.evaluate(request, config, now=t).finding for t in inside] == [F.ACCEPTED] * 3
    for seconds in (301, -301):
        late = rs.evaluate(request, config, now=LAB_NOW + dt.timedelta(seconds=seconds))
        assert late.finding is F.DPOP_PROOF_INVALID
        assert "outside the accepted window of 300 s" in late.detail


def test_htu_ignores_query_and_compares_scheme_and_host_case_insensitively(
    sim: Simulator, lab: Lab
) -> None:
    """RFC 9449 §4.3: htu matches the request URI ignoring query and fragment (RFC 3986 §6.2.2.1 case)."""
    request, config = realised(sim, "dpop-success", dpop_proof=ProofChoice.NONE)
    (value,) = request.header_values("Authorization")
    token = value.split(" ", 1)[1]
    proof = dpop_proof(
        DPoPKey.for_lab(lab), htm="GET", htu="HTTPS://RS.MTLSLAB.TEST/resource", access_token=token
    )
    moved = dataclasses.replace(request, url=f"{LAB_RESOURCE}?page=2")
    assert decide(moved.with_header("DPoP", proof), config).finding is F.ACCEPTED
    elsewhere = dataclasses.replace(request, url="https://rs.mtlslab.test/other")
    assert decide(elsewhere.with_header("DPoP", proof), config).finding is F.DPOP_PROOF_INVALID


def test_a_dpop_bound_token_sent_as_bearer_is_refused(sim: Simulator) -> None:
    """RFC 9449 §7.2: a DPoP-aware server refuses a cnf.jkt token under Bearer, in the query too."""
    request, config = realised(sim, "dpop-token-as-bearer")
    decision = decide(request, config)
    assert decision.finding is F.DPOP_TOKEN_AS_BEARER
    assert decision.trace[-1].clause.label == "RFC 9449 §7.2"
    request, config = realised(sim, "dpop-token-as-bearer", placement=Placement.QUERY)
    assert decide(request, config).finding is F.DPOP_TOKEN_AS_BEARER


def test_a_dpop_bound_token_at_a_server_without_dpop_is_unsupported(sim: Simulator) -> None:
    """Without DPoP support, cnf.jkt is a confirmation method the server cannot check (RFC 7800 §3)."""
    request, config = realised(sim, "dpop-token-as-bearer", dpop=False)
    decision = decide(request, config)
    assert decision.finding is F.UNSUPPORTED_CONFIRMATION


@pytest.mark.parametrize("token", ["bound", "unbound"])
def test_a_token_not_bound_to_a_dpop_key_fails_under_the_dpop_scheme(
    sim: Simulator, token: str
) -> None:
    """RFC 9449 §7.1: under DPoP the token must be bound to the proof's key; cert-bound or unbound fails."""
    request, config = realised(sim, "dpop-scheme-cert-bound-token", token=token)
    decision = decide(request, config)
    assert decision.finding is F.DPOP_KEY_MISMATCH
    assert "not DPoP-bound" in decision.detail


# --------------------------------------------------------------------------------------------------
# The hypothetical MTLS scheme (the DPoP analogy).


def test_a_server_with_the_mtls_scheme_refuses_bound_tokens_as_bearer(
    rs_config: RsConfig, lab: Lab, bound: str, unbound: str
) -> None:
    """By analogy with RFC 9449 §7.2: a certificate-bound token must use MTLS there; bearer ones stay Bearer."""
    config = with_config(rs_config, mtls_scheme=True)
    as_bearer = decide(authorization(f"Bearer {bound}", cert=lab.client.der), config)
    assert as_bearer.finding is F.MTLS_TOKEN_AS_BEARER
    assert as_bearer.trace[-1].clause.label == "RFC 9449 §7.2"
    assert decide(authorization(f"MTLS {bound}", cert=lab.client.der), config).finding is F.ACCEPTED
    assert decide(authorization(f"MTLS {bound}"), config).finding is F.CERTIFICATE_MISSING
    assert decide(authorization(f"MTLS {unbound}"), config).finding is F.TOKEN_NOT_BOUND
    assert decide(authorization(f"Bearer {unbound}"), config).finding is F.ACCEPTED


# --------------------------------------------------------------------------------------------------
# Resource-server configuration: checks_binding, requires_binding, scope.


@pytest.mark.parametrize(
    ("cert", "would"),
    [
        (None, "certificate_missing"),
        ("other-client", "certificate_mismatch"),
        ("client", "binding holds"),
    ],
)
def test_an_rs_that_ignores_binding_accepts_although_bound(
    rs_config: RsConfig, lab: Lab, bound: str, cert: str | None, would: str
) -> None:
    """A security finding: cnf unchecked; the decision says what a check would have found."""
    config = with_config(rs_config, checks_binding=False)
    der = lab.identities()[cert].der if cert else None
    decision = decide(authorization(f"Bearer {bound}", cert=der), config)
    assert decision.finding is F.ACCEPTED_ALTHOUGH_BOUND
    assert decision.finding.info.security
    assert would in decision.detail
    assert would in step(decision, "binding").detail
    assert decision.trace[-1].passed is False
    assert decision.trace[-1].clause.label == "RFC 8705 §3"


def test_an_rs_that_ignores_binding_accepts_unbound_tokens_plainly(
    rs_config: RsConfig, unbound: str, sim: Simulator
) -> None:
    """No cnf, nothing ignored: plain acceptance. Not checking certificate binding leaves DPoP alone: a
    DPoP-bound token sent as Bearer is still refused (RFC 9449 §7.2; auth0's default does this, issue 13);
    only a server without DPoP either lets it through, and says what a check would have found."""
    config = with_config(rs_config, checks_binding=False)
    assert decide(authorization(f"Bearer {unbound}"), config).finding is F.ACCEPTED
    request, _ = realised(sim, "dpop-token-as-bearer")
    assert decide(request, config).finding is F.DPOP_TOKEN_AS_BEARER
    decision = decide(request, with_config(config, dpop=False))
    assert decision.finding is F.ACCEPTED_ALTHOUGH_BOUND
    assert "unsupported_confirmation" in decision.detail


def test_requires_binding_refuses_unbound_tokens(
    rs_config: RsConfig, lab: Lab, bound: str, unbound: str
) -> None:
    """A server that accepts only sender-constrained tokens refuses a token without cnf."""
    config = with_config(rs_config, requires_binding=True)
    decision = decide(authorization(f"Bearer {unbound}", cert=lab.client.der), config)
    assert decision.finding is F.TOKEN_NOT_BOUND
    assert decision.trace[-1].clause.label == "RFC 8705 §3"
    assert decide(authorization(f"Bearer {bound}", cert=lab.client.der), config).finding is (
        F.ACCEPTED
    )


@pytest.mark.parametrize(
    ("scope", "required", "finding"),
    [
        ("read", "read", F.ACCEPTED),
        ("profile read write", "read", F.ACCEPTED),
        ("profile", "read", F.INSUFFICIENT_SCOPE),
        ("reader", "read", F.INSUFFICIENT_SCOPE),
        (None, "read", F.INSUFFICIENT_SCOPE),
        ("profile", "", F.ACCEPTED),
    ],
)
def test_scope_is_checked_last(
    rs_config: RsConfig,
    asrv: AuthorizationServer,
    lab: Lab,
    scope: str | None,
    required: str,
    finding: Finding,
) -> None:
    """RFC 6750 §3.1: a valid, correctly bound token without the needed scope is insufficient_scope."""
    token = signed(asrv, scope=scope)
    config = with_config(rs_config, required_scope=required)
    decision = decide(authorization(f"Bearer {token}", cert=lab.client.der), config)
    assert decision.finding is finding
    assert decision.required_scope == required
    if finding is F.INSUFFICIENT_SCOPE:
        assert decision.trace[-1].clause.label == "RFC 6750 §3.1"


def test_binding_is_checked_before_scope(sim: Simulator) -> None:
    """Binding is authentication, scope authorisation: no certificate wins over too little scope."""
    request, config = realised(sim, "insufficient-scope-no-cert")
    assert decide(request, config).finding is F.CERTIFICATE_MISSING


# --------------------------------------------------------------------------------------------------
# The configuration a deployment implies, and robustness.


def test_config_for_follows_the_deployment(jwks: Jwks) -> None:
    """Only a trusted proxy makes Client-Cert trusted; the binding flags and validation carry over."""
    assert not config_for(Deployment(), jwks=jwks).trust_client_cert_header
    proxied = config_for(Deployment(topology=Topology.PROXY), jwks=jwks)
    assert proxied.trust_client_cert_header
    distrusted = config_for(Deployment(topology=Topology.PROXY, proxy_trusted=False), jwks=jwks)
    assert not distrusted.trust_client_cert_header
    odd = config_for(
        Deployment(
            checks_binding=False,
            requires_binding=True,
            validation=Validation.INTROSPECTION,
            mtls_scheme=True,
            dpop=False,
        ),
        jwks=jwks,
    )
    assert (odd.checks_binding, odd.requires_binding, odd.mtls_scheme, odd.dpop) == (
        False,
        True,
        True,
        False,
    )
    assert odd.validation is Validation.INTROSPECTION


def test_jwks_are_equal_by_content_and_find_keys_by_kid(asrv: AuthorizationServer) -> None:
    """Jwks parsed twice are equal and hash alike (so verification can be cached); find() by kid."""
    one, two = Jwks.from_dict(asrv.jwks()), Jwks.from_dict(asrv.jwks())
    assert one == two
    assert hash(one) == hash(two)
    assert one.find(asrv.kid) is not None
    assert one.find(None) is one.keys[0]
    assert one.find("other") is None
    assert asrv.kid in repr(one)


@pytest.mark.parametrize(
    "request_",
    [
        Request(url="http://[::1/resource?access_token=x"),
        Request(url="not a url", headers=(("Authorization", "Bearer a.b.c"),)),
        Request(url="http://[::1/x", headers=(("Authorization", "DPoP a.b.c"), ("DPoP", "x.y.z"))),
        Request(headers=(("Authorization", "Bearer é.ü.ß"),)),
        Request(url=f"{LAB_RESOURCE}?access_token=%C3%A9.%00.%FF"),
        Request(
            method="POST",
            body=b"\xff\xfe",
            headers=(("Content-Type", "application/x-www-form-urlencoded"),),
        ),
        Request(headers=(("Authorization", "Bearer " + "a" * 100_000),)),
    ],
    ids=[
        "bad-ipv6",
        "not-a-url",
        "dpop-bad-url",
        "non-ascii",
        "percent-junk",
        "binary-body",
        "huge",
    ],
)
def test_evaluate_never_raises_on_odd_requests(rs_config: RsConfig, request_: Request) -> None:
    """A rejected request is a returned Decision, whatever it holds (style habit 1)."""
    decision = decide(request_, rs_config)
    assert decision.finding.rejected


def test_a_dpop_proof_against_an_unparsable_request_url_is_invalid(
    sim: Simulator, lab: Lab
) -> None:
    """htu cannot match a request URL that does not parse: the proof is invalid, not a crash."""
    request, config = realised(sim, "dpop-success")
    broken = dataclasses.replace(request, url="https://[::1/resource")
    decision = decide(broken, config)
    assert decision.finding is F.DPOP_PROOF_INVALID
    assert "htu" in decision.detail


def test_signatures_are_verified_once_per_token_and_key_set(asrv: AuthorizationServer) -> None:
    """verify_jws remembers its answer per (token, JWKS): a second evaluation does not verify again."""
    token = signed(asrv, jti="cache-probe")
    keys = Jwks.from_dict(asrv.jwks())
    before = jose.verify_jws.cache_info()
    config = RsConfig(jwks=keys, issuer=LAB_ISSUER)
    evaluate(authorization(f"Bearer {token}"), config)
    evaluate(authorization(f"Bearer {token}", cert=asrv.lab.client.der), config)
    after = jose.verify_jws.cache_info()
    assert after.misses - before.misses == 1
    assert after.hits - before.hits >= 1


def test_servers_with_equal_configuration_but_different_introspection_do_not_share_answers(
    rs_config: RsConfig,
) -> None:
    """Cached stages are keyed by the introspection endpoint too: two authorization servers, two answers."""
    request = Request(headers=(("Authorization", "Bearer opaque-token-shared"),))
    first = with_config(
        rs_config, validation=Validation.INTROSPECTION, introspect=lambda _t: {"active": False}
    )
    second = with_config(
        rs_config,
        validation=Validation.INTROSPECTION,
        introspect=lambda _t: {"active": True, "scope": "read"},
    )
    assert first == second  # equal as configurations: the endpoint is not compared
    assert evaluate(request, first).finding is F.TOKEN_INACTIVE
    assert evaluate(request, second).finding is F.ACCEPTED


# --------------------------------------------------------------------------------------------------
# 0. The size of the request (RFC 6585 §5, RFC 9110 §15.5.14): refused before anything is parsed.


def test_head_size_counts_the_request_line_and_every_field() -> None:
    """head_size: method, URL, and each field as `name: value` CRLF; nothing parsed, any URL measurable."""
    request = Request(method="GET", url="https://x/r", headers=(("A", "bc"), ("DPoP", "")))
    assert rs.head_size(request) == len("GET") + 1 + len("https://x/r") + (1 + 2 + 4) + (4 + 0 + 4)
    assert rs.head_size(Request(url="http://[::1/unparsable")) == 4 + len("http://[::1/unparsable")


@pytest.mark.parametrize(
    ("head_extra", "body", "finding", "clause"),
    [
        (1, 0, F.HEADERS_TOO_LARGE, "RFC 6585 §5"),
        (0, 65 * 1024, F.BODY_TOO_LARGE, "RFC 9110 §15.5.14"),
        (1, 65 * 1024, F.HEADERS_TOO_LARGE, "RFC 6585 §5"),
    ],
)
def test_an_oversized_request_is_refused_first(
    rs_config: RsConfig, lab: Lab, head_extra: int, body: int, finding: Finding, clause: str
) -> None:
    """Over the header limit (by one byte) or the body limit: that finding, as the only trace step, whatever
    else the request holds (here garbage, two Authorization fields and a forged Client-Cert)."""
    base = Request(
        method="POST",
        headers=(
            ("Authorization", "Bearer a.b.c"),
            ("Authorization", "DPoP x"),
            ("Client-Cert", ":AAAA:"),
        ),
        body=b"b" * body,
        client_cert=lab.client.der,
    )
    padding = rs.MAX_HEADER_BYTES - rs.head_size(base) - len("X-Pad") - 4 + head_extra
    request = base.with_header("X-Pad", "p" * padding) if head_extra else base
    decision = decide(request, rs_config)
    assert decision.finding is finding
    assert [s.clause.label for s in decision.trace] == [clause]
    assert str(rs.MAX_HEADER_BYTES if finding is F.HEADERS_TOO_LARGE else rs.MAX_BODY_BYTES) in (
        decision.detail
    )


def test_a_request_exactly_at_the_limits_is_judged_on_its_merits(
    rs_config: RsConfig, lab: Lab, bound: str
) -> None:
    """At exactly MAX_HEADER_BYTES and MAX_BODY_BYTES nothing is refused for size; the token is checked."""
    base = authorization(f"Bearer {bound}", cert=lab.client.der)
    padding = rs.MAX_HEADER_BYTES - rs.head_size(base) - len("X-Pad") - 4
    request = dataclasses.replace(
        base.with_header("X-Pad", "p" * padding), body=b"b" * rs.MAX_BODY_BYTES
    )
    assert rs.head_size(request) == rs.MAX_HEADER_BYTES
    assert decide(request, rs_config).finding is F.ACCEPTED


def test_size_limits_come_from_the_configuration(
    rs_config: RsConfig, jwks: Jwks, lab: Lab, bound: str
) -> None:
    """RsConfig / config_for carry the limits (16 KiB and 64 KiB by default); size_decision uses them too."""
    assert (rs_config.max_header_bytes, rs_config.max_body_bytes) == (16 * 1024, 64 * 1024)
    small = config_for(Deployment(), jwks=jwks, max_header_bytes=512, max_body_bytes=8)
    request = authorization(f"Bearer {bound}", cert=lab.client.der)
    assert decide(request, small).finding is F.HEADERS_TOO_LARGE
    assert decide(request, rs_config).finding is F.ACCEPTED
    assert rs.size_decision(small, head=512, body=8) is None
    too_big = rs.size_decision(small, body=9)
    assert too_big is not None
    assert too_big.finding is F.BODY_TOO_LARGE
    assert_cites(too_big)


def test_the_huge_token_scenarios_are_refused_by_size(sim: Simulator) -> None:
    """A token of over 1 MiB: 431 territory in the header, 413 in the form body — never decoded."""
    request, config = realised(sim, "huge-token")
    assert decide(request, config).finding is F.HEADERS_TOO_LARGE
    request, config = realised(sim, "huge-token-in-form")
    assert decide(request, config).finding is F.BODY_TOO_LARGE
    before = jose.verify_jws.cache_info().misses
    request, config = realised(sim, "huge-token", placement=Placement.QUERY)
    assert decide(request, config).finding is F.HEADERS_TOO_LARGE  # the request line counts
    assert jose.verify_jws.cache_info().misses == before


# --------------------------------------------------------------------------------------------------
# Attacks on the JOSE layer: key-pointing headers, unknown kids, duplicate member names.


@pytest.mark.parametrize("variant", ["jku-header", "x5u-header", "jwk-header", "x5c-header"])
def test_keys_the_token_points_at_are_never_used(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab, variant: str
) -> None:
    """RFC 8725 §3.10: an attacker-signed token with jku/x5u/jwk/x5c is a bad signature, and the trace notes
    that the header was neither fetched nor trusted before the signature step fails."""
    token = asrv.mint(variant).value
    decision = decide(authorization(f"Bearer {token}", cert=lab.client.der), rs_config)
    assert decision.finding is F.BAD_SIGNATURE
    member = variant.split("-")[0]
    note = step(decision, "JOSE header")
    assert (note.clause.label, note.passed) == ("RFC 8725 §3.10", None)
    assert member in note.detail
    assert [s.check for s in decision.trace][-2:] == ["JOSE header", "signature"]


def test_a_genuine_token_with_jku_is_accepted_and_the_header_ignored(sim: Simulator) -> None:
    """The control: jku-header-genuine is signed by the issuer; the jku is noted, never fetched."""
    request, config = realised(sim, "jku-header-genuine")
    decision = decide(request, config)
    assert decision.finding is F.ACCEPTED
    assert "jku" in step(decision, "JOSE header").detail


def test_an_unknown_kid_from_the_catalogue_finds_no_key(
    sim: Simulator, asrv: AuthorizationServer
) -> None:
    """unknown-kid: the attacker's kid is not in the issuer's JWKS (RFC 9068 §4)."""
    request, config = realised(sim, "unknown-kid")
    decision = decide(request, config)
    assert decision.finding is F.BAD_SIGNATURE
    kid = jwt.get_unverified_header(asrv.mint("unknown-kid").value)["kid"]
    assert f"no key with kid {kid!r}" in decision.detail


@pytest.mark.parametrize(
    ("variant", "clause", "member"),
    [
        ("cnf-duplicate-member", "RFC 7519 §4", "cnf"),
        ("duplicate-header-member", "RFC 7515 §4", "alg"),
    ],
)
def test_duplicate_member_names_are_refused(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab, variant: str, clause: str, member: str
) -> None:
    """RFC 7515 §4 / RFC 7519 §4: a name twice in the header or claims is refused after the signature
    verifies — whichever certificate is presented, the attacker's (first cnf) or the victim's (last)."""
    token = asrv.mint(variant).value
    for identity in (lab.other_client, lab.client):
        decision = decide(authorization(f"Bearer {token}", cert=identity.der), rs_config)
        assert decision.finding is F.TOKEN_MALFORMED
        assert decision.trace[-1].clause.label == clause
        assert f"{member!r} occurs twice" in decision.detail


def test_a_duplicate_inside_cnf_is_refused_and_unique_names_pass(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab
) -> None:
    """Duplicates are refused at any depth (two x5t#S256 inside cnf); the same claims without are accepted."""
    claims = asrv.claims()
    text = json.dumps(claims, separators=(",", ":"))[:-1]
    victim, attacker = lab.client.x5t_s256, lab.other_client.x5t_s256
    nested = f'{text},"cnf":{{"x5t#S256":"{attacker}","x5t#S256":"{victim}"}}}}'
    decision = decide(
        authorization(f"Bearer {asrv.sign(nested.encode())}", cert=lab.client.der), rs_config
    )
    assert decision.finding is F.TOKEN_MALFORMED
    assert "'x5t#S256' occurs twice" in decision.detail
    unique = f'{text},"cnf":{{"x5t#S256":"{victim}"}}}}'
    accepted = decide(
        authorization(f"Bearer {asrv.sign(unique.encode())}", cert=lab.client.der), rs_config
    )
    assert accepted.finding is F.ACCEPTED


def _flip_last_bits(segment: str) -> str:
    """The same bytes with the unused low bits of the last base64url character set: not canonical."""
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    spare = {2: 0b1111, 3: 0b11}[len(segment) % 4]
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) | spare]


@pytest.mark.parametrize("part", [0, 1, 2])
def test_a_padded_or_non_canonical_part_is_malformed(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab, part: int
) -> None:
    """RFC 7515 §2 / §7.1: each part is base64url with the trailing '=' omitted, and one value has one
    encoding — a padded part (which pyjwt tolerates) or one whose unused bits are set is refused as
    malformed, never read as the same token; the token as issued is accepted (the control). The token goes in
    the query, where '=' inside it is allowed (in the header, RFC 6750's b64token has '=' only at its end)."""

    def in_query(token: str) -> Request:
        query = urllib.parse.urlencode({"access_token": token})
        return Request(url=f"{LAB_RESOURCE}?{query}", client_cert=lab.client.der)

    # the first jti that leaves spare bits in every part
    token = next(
        t
        for t in (signed(asrv, jti="canonical-" + "x" * n) for n in range(4))
        if all(len(p) % 4 for p in t.split("."))
    )
    parts = token.split(".")
    assert decide(in_query(token), rs_config).finding is F.ACCEPTED
    for changed in (parts[part] + "=" * (-len(parts[part]) % 4), _flip_last_bits(parts[part])):
        variant = ".".join([*parts[:part], changed, *parts[part + 1 :]])
        decision = decide(in_query(variant), rs_config)
        assert decision.finding is F.TOKEN_MALFORMED, changed
        assert "base64url" in decision.detail


def raw_token(asrv: AuthorizationServer, header: Mapping[str, Any], claims_json: str) -> str:
    """An access token of exactly these claims bytes and this header (merged over the issuer's), signed by
    the issuer: what a buggy or hostile signer could produce."""
    jose = {"alg": asrv.alg, "typ": "at+jwt", "kid": asrv.kid, **header}
    signing_input = f"{_b64(json.dumps(jose).encode())}.{_b64(claims_json.encode())}"
    algorithm = jwt.PyJWS().get_algorithm_by_name(asrv.alg)
    return f"{signing_input}.{_b64(algorithm.sign(signing_input.encode(), asrv.signing_key))}"


def test_hostile_values_are_shown_short_in_the_trace(
    sim: Simulator, lab: Lab, rs_config: RsConfig, asrv: AuthorizationServer
) -> None:
    """A value a client or a token chooses appears in a detail shortened (reprlib keeps its start and end,
    text its start and length), so a 4,000-digit iat, a 10,000-character typ, a 1,000-element kid, a jwk
    whose curve name pyjwt repeats in its error, a long iss, aud, scope or thumbprint, or a cnf of 300
    members cannot swell a trace someone quotes."""
    request, config, token = _dpop_request(sim)
    proof = proof_with(lab, token, header={}, claims={"iat": 10**3999})
    iat = decide(request.with_header("DPoP", proof), config)
    assert iat.finding is F.DPOP_PROOF_INVALID
    assert "outside the accepted window" in iat.detail
    assert len(iat.detail) < 200
    long_typ = raw_token(asrv, {"typ": "x" * 10_000}, json.dumps(asrv.claims()))
    typ = decide(authorization(f"Bearer {long_typ}", cert=lab.client.der), rs_config)
    assert typ.finding is F.TOKEN_MALFORMED
    assert len(typ.detail) < 250
    proofs = {
        "kid": proof_with(lab, token, header={"kid": ["k"] * 1000}, claims={}),
        "alg": proof_with(lab, token, header={"alg": "A" * 3000}, claims={}),
        "htu": proof_with(lab, token, header={}, claims={"htu": "https://x/" + "p" * 3000}),
        "jwk": proof_with(
            lab,
            token,
            header={"jwk": {"kty": "EC", "crv": "Y" * 3000, "x": "x", "y": "y"}},
            claims={},
        ),
    }
    for what, hostile in proofs.items():
        shown = decide(request.with_header("DPoP", hostile), config)
        assert shown.finding is F.DPOP_PROOF_INVALID, what
        assert len(shown.detail) < 300, (what, shown.detail[:80])
    nested = {"a" * 100: [["b" * 100] * 4] * 4, "c" * 100: {"d" * 100: ["e" * 100] * 4}}
    for claims in (
        {"iss": "i" * 3000},
        {"iss": nested},  # within reprlib's caps each part, over the total limit all together
        {"aud": ["a" * 50] * 40},
        {"scope": "s" * 3000},
    ):
        signed = raw_token(asrv, {}, json.dumps({**asrv.claims(), **claims}))
        found = decide(authorization(f"Bearer {signed}", cert=lab.client.der), rs_config)
        assert found.finding.rejected
        assert len(found.detail) < 300, (claims.keys(), found.detail[:80])
    thumb = raw_token(asrv, {}, json.dumps(asrv.claims(cnf={"x5t#S256": "T" * 3000})))
    for der in (lab.client.der, None):
        mismatch = decide(authorization(f"Bearer {thumb}", cert=der), rs_config)
        assert mismatch.finding in (F.CERTIFICATE_MISMATCH, F.CERTIFICATE_MISSING)
        assert len(mismatch.detail) < 300
    # no terminal control sequence gets into a trace someone prints
    painted = raw_token(
        asrv, {}, json.dumps(asrv.claims(cnf={"x5t#S256": "\x1b[2J\x1b[31mOWNED\nx"}))
    )
    shown = decide(authorization(f"Bearer {painted}", cert=lab.client.der), rs_config)
    assert shown.finding is F.CERTIFICATE_MISMATCH
    assert "\x1b" not in shown.detail
    assert "\n" not in shown.detail
    assert "\\x1b[2J\\x1b[31mOWNED\\nx" in shown.detail
    # ...nor can the escaped text pass for the character: a literal backslash is escaped too
    literal = raw_token(
        asrv, {}, json.dumps(asrv.claims(cnf={"x5t#S256": "\\x1b[2J\\x1b[31mOWNED\\nx"}))
    )
    spelled = decide(authorization(f"Bearer {literal}", cert=lab.client.der), rs_config)
    assert spelled.detail != shown.detail
    assert "\\\\x1b[2J" in spelled.detail  # the backslash itself, escaped
    # and escaping cannot swell a detail either: 400 invisible tag characters, 10 characters each escaped
    tags = raw_token(asrv, {}, json.dumps(asrv.claims(cnf={"x5t#S256": "\U000e0001" * 400})))
    tagged = decide(authorization(f"Bearer {tags}", cert=lab.client.der), rs_config)
    assert tagged.finding is F.CERTIFICATE_MISMATCH
    assert len(tagged.detail) < 300
    many = {f"m{n:04d}": n for n in range(300)}
    wide_cnf = raw_token(asrv, {}, json.dumps(asrv.claims(cnf=many)))
    cnf = decide(authorization(f"Bearer {wide_cnf}", cert=lab.client.der), rs_config)
    assert cnf.finding is F.UNSUPPORTED_CONFIRMATION
    assert cnf.detail.endswith("'m0007' and 292 more)")


def test_a_number_out_of_range_is_shown_cut_not_misquoted(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab
) -> None:
    """The message for a number beyond a float's range shows its ends and how much is left out: cut without
    a mark, 1 followed by 400 zeros would read as 1e39, which is in range."""
    claims = json.dumps(asrv.claims(cnf={"x5t#S256": lab.client.x5t_s256}))
    huge = "1" + "0" * 400 + ".0"
    token = raw_token(asrv, {}, re.sub(r'"exp": \d+', f'"exp": {huge}', claims))
    decision = decide(authorization(f"Bearer {token}", cert=lab.client.der), rs_config)
    assert decision.finding is F.TOKEN_MALFORMED
    shown = re.search(
        r"the number (1\d*)…\[([\d,]+) characters left out\]…(\d*\.0) is outside", decision.detail
    )
    assert shown is not None, decision.detail
    head, count, tail = shown.groups()
    assert len(head) + int(count.replace(",", "")) + len(tail) == len(huge)


def test_a_fractional_exp_is_a_number_like_any_other(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab
) -> None:
    """The control for the finite-number rule: NumericDate may be fractional (RFC 7519 §2), so exp 1.5 s
    after the lab clock's hour is read and the token accepted."""
    claims = asrv.claims(cnf={"x5t#S256": lab.client.x5t_s256})
    claims["exp"] = claims["exp"] + 0.5
    token = raw_token(asrv, {}, json.dumps(claims))
    decision = decide(authorization(f"Bearer {token}", cert=lab.client.der), rs_config)
    assert decision.finding is F.ACCEPTED


def test_an_algorithm_without_a_key_rule_is_refused() -> None:
    """Fail closed: an algorithm added to the accepted list without a key rule is refused, not waved
    through (today every accepted algorithm has one)."""
    key = ec.generate_private_key(ec.SECP256K1()).public_key()
    assert all("no key rule" not in (jose._unfit_key(alg, key) or "") for alg in jose.DPOP_ALGS)
    assert jose._unfit_key("ES256K", key) == "this server has no key rule for ES256K"


@pytest.mark.parametrize(
    ("header", "number", "reason"),
    [
        ({"kid": 5}, "", "kid 5 is not a string (RFC 7515 §4.1.4)"),
        ({"kid": None}, "", "kid None is not a string (RFC 7515 §4.1.4)"),
        ({}, "NaN", "NaN is not a JSON number (RFC 8259 §6)"),
        ({}, "-Infinity", "-Infinity is not a JSON number (RFC 8259 §6)"),
        ({}, "1e400", "the number 1e400 is outside the range this server reads"),
    ],
)
def test_a_token_with_an_unusable_kid_or_number_is_malformed(
    rs_config: RsConfig,
    asrv: AuthorizationServer,
    lab: Lab,
    header: dict[str, Any],
    number: str,
    reason: str,
) -> None:
    """A kid is a string (RFC 7515 §4.1.4; a null kid is refused too, as pyjwt does), and JSON has no NaN
    or Infinity (RFC 8259 §6): an exp of NaN would never compare as passed, so the token would never
    expire. A number too large for a float is refused rather than read as infinity."""
    claims = json.dumps(asrv.claims(cnf={"x5t#S256": lab.client.x5t_s256}))
    if number:
        claims = re.sub(r'"exp": \d+', f'"exp": {number}', claims)
        assert number in claims
    token = raw_token(asrv, header, claims)
    decision = decide(authorization(f"Bearer {token}", cert=lab.client.der), rs_config)
    assert decision.finding is F.TOKEN_MALFORMED
    assert reason in decision.detail


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"crit": ["b64"], "b64": True}, "crit ['b64']"),
        ({"crit": ["exp"], "exp": 1}, "crit ['exp']"),
        ({"b64": False}, "b64 False"),
        ({"b64": "false"}, "b64 'false'"),
    ],
)
def test_critical_and_unencoded_payload_headers_are_malformed(
    rs_config: RsConfig, asrv: AuthorizationServer, lab: Lab, header: dict[str, Any], reason: str
) -> None:
    """RFC 7515 §4.1.11: a recipient that does not understand an extension listed in crit refuses the JWS,
    and this server understands none (pyjwt accepts crit b64); RFC 7797's b64 has no place in a JWT."""
    claims = asrv.claims(cnf={"x5t#S256": lab.client.x5t_s256})
    payload = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    jose = jwt.utils.base64url_encode(
        json.dumps({"alg": asrv.alg, "typ": "at+jwt", "kid": asrv.kid, **header}).encode()
    ).decode()
    algorithm = jwt.PyJWS().get_algorithm_by_name(asrv.alg)
    signature = algorithm.sign(f"{jose}.{payload}".encode(), asrv.signing_key)
    token = f"{jose}.{payload}.{jwt.utils.base64url_encode(signature).decode()}"
    decision = decide(authorization(f"Bearer {token}", cert=lab.client.der), rs_config)
    assert decision.finding is F.TOKEN_MALFORMED
    assert reason in decision.detail


# --------------------------------------------------------------------------------------------------
# A cnf with two confirmation methods: every method the server supports is checked.


@pytest.mark.parametrize(
    ("changes", "finding"),
    [
        ({}, F.DPOP_TOKEN_AS_BEARER),
        ({"scheme": "DPoP"}, F.ACCEPTED),
        ({"scheme": "DPoP", "certificate": "none"}, F.CERTIFICATE_MISSING),
        ({"scheme": "DPoP", "certificate": "other-client"}, F.CERTIFICATE_MISMATCH),
        ({"scheme": "DPoP", "dpop_proof": "none"}, F.DPOP_PROOF_MISSING),
        ({"scheme": "DPoP", "dpop_proof": "other-key"}, F.DPOP_KEY_MISMATCH),
        ({"scheme": "DPoP", "dpop_proof": "wrong-ath"}, F.DPOP_PROOF_INVALID),
        ({"placement": "query"}, F.DPOP_TOKEN_AS_BEARER),
        ({"dpop": False}, F.ACCEPTED),
        ({"dpop": False, "certificate": "none"}, F.CERTIFICATE_MISSING),
        ({"checks_binding": False, "certificate": "none"}, F.DPOP_TOKEN_AS_BEARER),
        (
            {"checks_binding": False, "scheme": "DPoP", "certificate": "none"},
            F.ACCEPTED_ALTHOUGH_BOUND,
        ),
        (
            {"checks_binding": False, "dpop": False, "certificate": "none"},
            F.ACCEPTED_ALTHOUGH_BOUND,
        ),
    ],
)
def test_a_token_bound_to_a_certificate_and_a_dpop_key_needs_both(
    sim: Simulator, changes: dict[str, Any], finding: Finding
) -> None:
    """cnf with x5t#S256 and jkt (RFC 7800 §3.1): under Bearer it is a DPoP token sent as Bearer (RFC 9449
    §7.2); under DPoP it needs a valid proof with the bound key and the bound certificate; a server without
    DPoP checks the certificate, the one method it supports."""
    from mtlslab.scenarios import CertChoice, Scheme

    enums = {
        "scheme": Scheme,
        "certificate": CertChoice,
        "dpop_proof": ProofChoice,
        "placement": Placement,
    }
    typed = {k: enums[k](v) if k in enums else v for k, v in changes.items()}
    request, config = realised(sim, "cnf-two-methods", **typed)
    decision = decide(request, config)
    assert decision.finding is finding, decision.explain()
    if finding is F.ACCEPTED and typed.get("scheme") is not None:
        assert step(decision, "DPoP key binding").passed is True
        assert step(decision, "certificate binding").passed is True
        assert step(decision, "confirmation methods").clause.label == "RFC 7800 §3.1"
    if finding is F.ACCEPTED_ALTHOUGH_BOUND:  # the certificate, unchecked, would have been missing
        assert "certificate_missing" in decision.detail


# --------------------------------------------------------------------------------------------------
# Smuggled and passed-through Client-Cert headers.


def test_a_client_cert_smuggled_after_crlf_is_an_untrusted_header(sim: Simulator) -> None:
    """header-injection: two fields on the wire; a Client-Cert on a direct connection is ignored (RFC 9440
    §4: accepted only from a trusted proxy)."""
    request, config = realised(sim, "header-injection")
    assert len(request.header_values("Authorization")) == 1
    assert len(request.header_values("Client-Cert")) == 1
    decision = decide(request, config)
    assert decision.finding is F.UNTRUSTED_CLIENT_CERT_HEADER
    ignored = next(s for s in decision.trace if s.check == "client certificate")
    assert ignored.clause.label == "RFC 9440 §4"
    assert "ignored" in ignored.detail


def test_a_proxy_that_passes_client_cert_through_lets_a_thief_in(sim: Simulator) -> None:
    """proxy-passes-client-cert: the origin trusts the proxy, the proxy trusts the client — accepted; the same
    request through a proxy that strips (RFC 9440 §2) finds no certificate."""
    request, config = realised(sim, "proxy-passes-client-cert")
    assert decide(request, config).finding is F.ACCEPTED
    request, config = realised(sim, "proxy-passes-client-cert", proxy_strips_client_cert=True)
    assert decide(request, config).finding is F.CERTIFICATE_MISSING


def test_htu_is_compared_after_rfc_3986_normalisation(sim: Simulator, lab: Lab) -> None:
    """RFC 9449 §4.3 check 9 with RFC 3986 §6.2.2/§6.2.3: a default port and percent-encoding case don't matter."""
    request, config = realised(sim, "dpop-success", dpop_proof=ProofChoice.NONE)
    (value,) = request.header_values("Authorization")
    token = value.split(" ", 1)[1]
    key = DPoPKey.for_lab(lab)
    for htu in ("https://rs.mtlslab.test:443/resource", "https://rs.mtlslab.test/%72esource"):
        proof = dpop_proof(key, htm="GET", htu=htu, access_token=token)
        assert decide(request.with_header("DPoP", proof), config).finding is F.ACCEPTED, htu
    other_port = dpop_proof(
        key, htm="GET", htu="https://rs.mtlslab.test:8443/resource", access_token=token
    )
    assert decide(request.with_header("DPoP", other_port), config).finding is F.DPOP_PROOF_INVALID


def test_a_tab_between_scheme_and_token_is_a_malformed_authorization(rs_config: RsConfig) -> None:
    """RFC 9110 §11.4: the scheme and the credentials are separated by spaces; a tab is malformed."""
    decision = decide(authorization("Bearer\tabc.def.ghi"), rs_config)
    assert decision.finding is F.MALFORMED_AUTHORIZATION
    assert decision.trace[-1].clause.label == "RFC 9110 §11.4"


# --------------------------------------------------------------------------------------------------
# The inspector and the engine: one reader, one binding stage (issue 16).

_REFUSED_AT_THE_SIGNATURE = {F.TOKEN_MALFORMED, F.BAD_SIGNATURE}
_BINDING_FINDINGS = {
    F.CERTIFICATE_MISSING,
    F.CERTIFICATE_MISMATCH,
    F.DPOP_TOKEN_AS_BEARER,
    F.UNSUPPORTED_CONFIRMATION,
    F.UNTRUSTED_CLIENT_CERT_HEADER,
}


@pytest.mark.parametrize("certificate", ["client", "other-client", None])
@pytest.mark.parametrize("variant", sorted(v for v, r in TOKEN_VARIANTS.items() if r.kind == "jwt"))
def test_the_inspector_and_the_engine_agree_on_every_token_variant(
    sim: Simulator, rs_config: RsConfig, variant: str, certificate: str | None
) -> None:
    """For every JWT the lab mints, presented as Bearer with the client's, another or no certificate:
    where the engine refuses the token at its reading or signature, the inspector says the signature is not
    valid, for the same finding; where the engine decides the binding, the inspector's binding verdict is the
    engine's (holds exactly when the engine goes past binding). Before, the inspector read cnf-duplicate-member
    as bound and cnf-two-methods as holding, where the engine refused both."""
    token = sim.asrv.mint(variant).value
    identity = sim.lab.identities()[certificate] if certificate else None
    decision = decide(
        authorization(f"Bearer {token}", cert=identity.der if identity else None), rs_config
    )
    inspection = inspect_token(token, jwks=sim.asrv.jwks(), certificate=identity)
    verified = jose.verify_jws(token, rs_config.jwks)
    assert inspection.signature.valid is (verified.finding is None)
    if decision.finding in _REFUSED_AT_THE_SIGNATURE and verified.finding is not None:
        assert inspection.signature.finding is decision.finding
        assert inspection.binding.holds is None
        return
    if decision.finding in _BINDING_FINDINGS:
        if decision.finding is F.CERTIFICATE_MISSING:  # nothing was given to compare
            assert inspection.binding.holds is None
        else:
            assert inspection.binding.holds is False
        assert inspection.binding.finding is decision.finding, (inspection, decision)
    elif decision.finding in (F.ACCEPTED, F.INSUFFICIENT_SCOPE):
        assert inspection.binding.holds is not False
        assert inspection.binding.finding is None


def test_the_two_former_contradictions_are_now_one_verdict(sim: Simulator) -> None:
    """cnf-duplicate-member: token_malformed for both (the inspector said signature and binding ok);
    cnf-two-methods as Bearer: dpop_token_as_bearer for both (the inspector said the binding holds)."""
    jwks = sim.asrv.jwks()
    duplicate = inspect_token(
        sim.asrv.mint("cnf-duplicate-member").value, jwks=jwks, certificate=sim.lab.client
    )
    assert not duplicate.signature.valid
    assert duplicate.signature.finding is F.TOKEN_MALFORMED
    two = inspect_token(
        sim.asrv.mint("cnf-two-methods").value, jwks=jwks, certificate=sim.lab.client
    )
    assert two.binding.holds is False
    assert two.binding.finding is F.DPOP_TOKEN_AS_BEARER


def test_a_flood_of_distinct_tokens_and_proofs_keeps_the_memos_bounded(sim: Simulator) -> None:
    """A server on a room network meets whatever tokens and DPoP proofs clients make up: the verification
    memos hold at most jose._REMEMBERED of each, however many arrive, and still refuse every one."""
    for i in range(jose._REMEMBERED + 100):
        assert jose.verify_jws(f"e30.e30.{i}", sim.jwks).finding is not None
        problem, _, _ = jose._read_proof(f"e30.e30.{i}")
        assert problem
    assert jose.verify_jws.cache_info().currsize <= jose._REMEMBERED
    assert jose._read_proof.cache_info().currsize <= jose._REMEMBERED
