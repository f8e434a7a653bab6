"""mtlslab.interpretations: readings of the RFCs and real servers' behaviour, as data (spec-notes.md)."""

from __future__ import annotations

import importlib.resources
import json
from typing import Any

import pytest

from mtlslab.challenge import check_rfc6750, parse_www_authenticate
from mtlslab.compare import Matrix, Simulator
from mtlslab.errors import InterpretationError
from mtlslab.findings import Finding
from mtlslab.interpretations import (
    BUILTINS,
    Answer,
    Departure,
    Interpretation,
    Outcome,
    Source,
    derive,
    get_interpretation,
)
from mtlslab.scenarios import CATALOGUE, Validation
from mtlslab.tls import alert_by_name

F = Finding
OBSERVED = [name for name, i in BUILTINS.items() if i.kind == "observed"]

KEYCLOAK_MSG = "Client certificate missing, or its thumbprint and one in the token did NOT match"
SPRING_PREFIX = "An error occurred while attempting to decode the Jwt: "
SPRING_URI = "https://tools.ietf.org/html/rfc6750#section-3.1"
AUTH0_DPOP = 'DPoP algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES256K ES384 ES512 EdDSA"'


def express_page(reason: str) -> str:
    """Express's production error page, as auth0's SDK sends it."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n'
        f"</head>\n<body>\n<pre>{reason}</pre>\n</body>\n</html>\n"
    )


def answer(matrix: Matrix, scenario: str, interpretation: str) -> Outcome:
    """One cell's outcome."""
    return matrix.cell(scenario, interpretation).outcome


def wire(outcome: Outcome) -> tuple[int | None, str | None, str | None, str]:
    """Status, WWW-Authenticate, error and body: what a row of spec-notes.md states."""
    return outcome.status, outcome.www_authenticate, outcome.error, outcome.body


# --------------------------------------------------------------------------------------------------
# One test per row of spec-notes.md's implementation table: (a) mismatch, (b) no certificate, (c).


def test_keycloak_19_0_2(matrix: Matrix) -> None:
    """keycloak/keycloak services/.../endpoints/UserInfoEndpoint.java, .../util/MtlsHoKTokenUtil.java (PR #14237): 401 invalid_token with one message for (a) and (b); cnf ignored without the option."""
    expected = (
        401,
        f'Bearer realm="mtlslab", error="invalid_token", error_description="{KEYCLOAK_MSG}"',
    )
    for scenario in ("mismatch", "no-cert-optional"):
        outcome = answer(matrix, scenario, "keycloak")
        assert wire(outcome) == (*expected, "invalid_token", "")
        assert not outcome.assumed
    assert matrix.cell("binding-ignored-no-cert", "keycloak").finding is F.ACCEPTED_ALTHOUGH_BOUND
    assert answer(matrix, "binding-ignored-no-cert", "keycloak").status == 200


def test_keycloak_before_19_0_2(matrix: Matrix) -> None:
    """keycloak/keycloak UserInfoEndpoint.java, MtlsHoKTokenUtil.java (older history): 401 unauthorized_client — an RFC 6749 code, not an RFC 6750 one — for (a) and (b)."""
    for scenario in ("mismatch", "no-cert-optional"):
        assert wire(answer(matrix, scenario, "keycloak-legacy")) == (
            401,
            'Bearer realm="mtlslab", error="unauthorized_client"',
            "unauthorized_client",
            "",
        )
    departures = " ".join(d.what for d in BUILTINS["keycloak-legacy"].departures)
    assert "unauthorized_client" in departures


def test_spring_security_6_3(matrix: Matrix) -> None:
    """spring-projects/spring-security oauth2/oauth2-jose/.../jwt/X509CertificateThumbprintValidator.java, .../resource/web/BearerTokenAuthenticationEntryPoint.java: 401 invalid_token, no realm, error_uri; unbound tokens pass; behind a proxy without a certificate supplier every bound token is (b)."""
    mismatch = answer(matrix, "mismatch", "spring-security")
    assert wire(mismatch) == (
        401,
        f'Bearer error="invalid_token", error_description="{SPRING_PREFIX}Invalid SHA-256 Thumbprint '
        f'for X509Certificate.", error_uri="{SPRING_URI}"',
        "invalid_token",
        "",
    )
    missing = answer(matrix, "no-cert-optional", "spring-security")
    assert wire(missing) == (
        401,
        f'Bearer error="invalid_token", error_description="{SPRING_PREFIX}Unable to obtain '
        f'X509Certificate from current request.", error_uri="{SPRING_URI}"',
        "invalid_token",
        "",
    )
    assert answer(matrix, "unbound-no-cert", "spring-security").status == 200
    for scenario in ("proxy-success", "proxy-untrusted"):
        assert wire(answer(matrix, scenario, "spring-security")) == wire(missing)


def test_node_oidc_provider_9_13(matrix: Matrix) -> None:
    """panva/node-oidc-provider lib/shared/access_token.js, lib/helpers/errors.js (verified by running it): 401 invalid_token "invalid token provided" with realm=<issuer> and a JSON body, for (a) and (b)."""
    for scenario in ("mismatch", "no-cert-optional"):
        outcome = answer(matrix, scenario, "node-oidc-provider")
        assert wire(outcome) == (
            401,
            'Bearer realm="https://as.mtlslab.test", error="invalid_token", '
            'error_description="invalid token provided"',
            "invalid_token",
            '{"error":"invalid_token","error_description":"invalid token provided"}',
        )
        assert outcome.content_type == "application/json; charset=utf-8"
    assert answer(matrix, "unbound-no-cert", "node-oidc-provider").status == 200


def test_authlete(matrix: Matrix) -> None:
    """authlete/authlete-java-common IntrospectionResponse.java; authlete/java-resource-server PR #9: (b) 401 with the A065304 description and error_uri, comma-separated; (a) 401, text unconfirmed."""
    missing = answer(matrix, "no-cert-optional", "authlete")
    assert wire(missing) == (
        401,
        'Bearer error="invalid_token",error_description="[A065304] The client failed to present a '
        'certificate and the access token is MTLS bound.",error_uri="https://docs.authlete.com/#A065304"',
        "invalid_token",
        "",
    )
    assert not missing.assumed
    mismatch = answer(matrix, "mismatch", "authlete")
    assert mismatch.status == 401
    assert mismatch.assumed, "the (a) text is unconfirmed: it must not pass as observed"
    cell = matrix.cell("introspection-no-cert", "authlete")
    assert cell.deployment is not None
    assert cell.deployment.validation is Validation.INTROSPECTION
    assert wire(cell.outcome) == wire(missing)


def test_auth0_with_a_certificate_supplier(matrix: Matrix) -> None:
    """auth0/node-oauth2-jwt-bearer packages/access-token-jwt/src/mtls-verifier.ts (verified by running it): (a) 401 invalid_token, (b) 400 invalid_request, each followed by a DPoP challenge, Express's HTML body; mtls.required refuses unbound tokens with 401."""
    assert wire(answer(matrix, "mismatch", "auth0")) == (
        401,
        'Bearer realm="api", error="invalid_token", error_description="JWT Access Token confirmation '
        f'mismatch", {AUTH0_DPOP}',
        "invalid_token",
        express_page("Unauthorized"),
    )
    missing = answer(matrix, "no-cert-optional", "auth0")
    assert wire(missing) == (
        400,
        'Bearer realm="api", error="invalid_request", error_description="A client certificate is '
        f'required for this certificate-bound access token", {AUTH0_DPOP}',
        "invalid_request",
        express_page("Bad Request"),
    )
    assert missing.content_type == "text/html; charset=utf-8"
    assert wire(answer(matrix, "binding-required-unbound", "auth0")) == (
        401,
        'Bearer realm="api", error="invalid_token", error_description="JWT Access Token has no '
        f'x5t#S256 confirmation claim", {AUTH0_DPOP}',
        "invalid_token",
        express_page("Unauthorized"),
    )


def test_auth0_without_a_certificate_supplier(matrix: Matrix) -> None:
    """auth0/node-oauth2-jwt-bearer packages/access-token-jwt/src/mtls-verifier.ts (verified by running it): by default cnf is ignored and a bound token is accepted from anyone — (a) and (b) are 200."""
    for scenario in ("mismatch", "no-cert-optional", "binding-ignored-no-cert"):
        cell = matrix.cell(scenario, "auth0-default")
        assert cell.finding is F.ACCEPTED_ALTHOUGH_BOUND
        assert cell.outcome.status == 200
        assert cell.outcome.www_authenticate is None


def test_apicast_oauth_mtls(matrix: Matrix) -> None:
    """3scale/APIcast gateway/src/apicast/policy/oauth_mtls/oauth_mtls.lua: 401, JSON body {"error": "invalid_token"}, no WWW-Authenticate, for (a), (b) and tokens without cnf."""
    for scenario in ("mismatch", "no-cert-optional", "binding-required-unbound", "unbound-no-cert"):
        outcome = answer(matrix, scenario, "apicast")
        assert wire(outcome) == (401, None, "invalid_token", '{"error": "invalid_token"}')
        assert outcome.content_type == "application/json; charset=utf-8"
    departures = " ".join(d.what for d in BUILTINS["apicast"].departures)
    assert "without WWW-Authenticate" in departures


def test_duende_sample(matrix: Matrix) -> None:
    """Duende docs "Validating Proof-of-Possession"; dotnet/aspnetcore CertificateAuthenticationHandler.cs: (a) 401 Bearer challenge; (b) 403 — the certificate handler forbids; acts only when cnf is present."""
    mismatch = answer(matrix, "mismatch", "duende-sample")
    assert wire(mismatch) == (401, 'Bearer error="invalid_token"', "invalid_token", "")
    assert mismatch.assumed, "the error parameter is not shown by the source"
    assert wire(answer(matrix, "no-cert-optional", "duende-sample")) == (403, None, None, "")
    assert answer(matrix, "unbound-no-cert", "duende-sample").status == 200


# --------------------------------------------------------------------------------------------------
# The readings.


def test_the_baseline_marks_the_missing_certificate_unspecified(matrix: Matrix) -> None:
    """RFC 6750 §3: "If the protected resource request included an access token and failed authentication,
    the resource server SHOULD include the error attribute"; RFC 8705 §3 names the code only for a mismatch.
    So the baseline's missing certificate carries an error whose code is marked unspecified — not a bare
    challenge, which says no credentials came (issue 14)."""
    outcome = answer(matrix, "no-cert-optional", "baseline")
    assert wire(outcome) == (
        401,
        'Bearer realm="mtlslab", error="unspecified", error_description="RFC 8705 section 3 names no '
        'error code for a request without a client certificate"',
        "unspecified",
        "",
    )
    assert outcome.unspecified
    assert outcome.summary() == "401 (error code unspecified) [unspecified]"
    assert "RFC 6750 §3" in outcome.note
    assert "RFC 8705 §3" in outcome.note
    mismatch = answer(matrix, "mismatch", "baseline")
    assert wire(mismatch) == (
        401,
        'Bearer realm="mtlslab", error="invalid_token"',
        "invalid_token",
        "",
    )
    assert not mismatch.unspecified


def test_the_baseline_follows_rfc_6750_where_it_speaks(matrix: Matrix) -> None:
    """RFC 6750 §3.1: no token → no error code; malformed → 400 invalid_request; scope → 403 with scope."""
    assert wire(answer(matrix, "no-token", "baseline")) == (401, 'Bearer realm="mtlslab"', None, "")
    assert answer(matrix, "malformed-authorization", "baseline").verdict == (
        "400",
        "invalid_request",
    )
    assert answer(matrix, "token-in-header-and-query", "baseline").verdict == (
        "400",
        "invalid_request",
    )
    scope = answer(matrix, "insufficient-scope", "baseline")
    assert wire(scope) == (
        403,
        'Bearer realm="mtlslab", scope="read", error="insufficient_scope"',
        "insufficient_scope",
        "",
    )
    assert not any(
        answer(matrix, s.id, "baseline").unspecified
        for s in CATALOGUE
        if s.expect
        not in (
            F.CERTIFICATE_MISSING,
            F.UNTRUSTED_CLIENT_CERT_HEADER,
        )
    )


def test_the_baseline_answers_dpop_as_rfc_9449_does(matrix: Matrix) -> None:
    """RFC 9449 §7.1: invalid_dpop_proof under the DPoP scheme, with algs — "a space-delimited list of the
    JWS alg ... values" the server accepts, so every one of them (issue 14); its own example for a
    key-binding failure; §7.2 refuses a DPoP-bound token sent as Bearer."""
    algs = 'algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA"'
    assert wire(answer(matrix, "dpop-proof-missing", "baseline"))[:3] == (
        401,
        f'DPoP error="invalid_dpop_proof", {algs}',
        "invalid_dpop_proof",
    )
    assert answer(matrix, "dpop-proof-other-key", "baseline").www_authenticate == (
        f'DPoP error="invalid_token", error_description="Invalid DPoP key binding", {algs}'
    )
    as_bearer = answer(matrix, "dpop-token-as-bearer", "baseline")
    assert (
        as_bearer.www_authenticate == f'Bearer realm="mtlslab", error="invalid_token", DPoP {algs}'
    )


@pytest.mark.parametrize(
    ("scenario", "finding"),
    [("expired-token", "token_expired"), ("wrong-audience", "wrong_audience")],
)
def test_a_dpop_request_that_fails_a_token_check_gets_a_dpop_challenge(
    matrix: Matrix, sim: Simulator, scenario: str, finding: str
) -> None:
    """RFC 9449 §7.1: a DPoP request answered with a challenge gets the DPoP scheme (with algs), not Bearer
    (issue 14); the same request under Bearer keeps its Bearer challenge (the control)."""
    from mtlslab.scenarios import ProofChoice, Scheme, get_scenario

    dpop = get_scenario(scenario).with_(scheme=Scheme.DPOP, dpop_proof=ProofChoice.VALID)
    cell = sim.cell(dpop, BUILTINS["baseline"])
    assert cell.finding.value == finding, cell.explain()
    assert cell.outcome.www_authenticate is not None
    assert cell.outcome.www_authenticate.startswith("DPoP realm=")
    assert "algs=" in cell.outcome.www_authenticate
    bearer = answer(matrix, scenario, "baseline").www_authenticate
    assert bearer is not None
    assert bearer.startswith("Bearer realm=")


@pytest.mark.parametrize(
    ("name", "status", "error"),
    [("thread-400", 400, "invalid_request"), ("thread-401", 401, "invalid_token")],
)
def test_the_threads_two_readings(matrix: Matrix, name: str, status: int, error: str) -> None:
    """Telegin: missing certificate → 400 invalid_request; Richer: → 401 invalid_token (OAuth WG, 2021)."""
    expected = (status, f'Bearer realm="mtlslab", error="{error}"', error, "")
    for scenario in ("no-cert-optional", "proxy-no-cert", "forged-client-cert", "no-cert-tls12"):
        assert wire(answer(matrix, scenario, name)) == expected
    assert answer(matrix, "mismatch", name).verdict == ("401", "invalid_token")
    assert BUILTINS[name].source.url.startswith("https://mailarchive.ietf.org/arch/msg/oauth/")
    assert BUILTINS[name].kind == "reading"


def test_the_dpop_analogy_is_hypothetical_and_says_so(matrix: Matrix) -> None:
    """A dedicated MTLS scheme and error code (unregistered): missing → MTLS invalid_client_certificate."""
    analogy = BUILTINS["dpop-analogy"]
    assert analogy.kind == "hypothetical"
    assert analogy.source.kind == "hypothetical"
    assert any("hypothetical" in d.what for d in analogy.departures)
    assert wire(answer(matrix, "mtls-scheme-no-cert", "dpop-analogy")) == (
        401,
        'MTLS realm="mtlslab", error="invalid_client_certificate"',
        "invalid_client_certificate",
        "",
    )
    assert matrix.cell("success", "dpop-analogy").finding is F.MTLS_TOKEN_AS_BEARER
    assert answer(matrix, "success", "dpop-analogy").www_authenticate == (
        'Bearer realm="mtlslab", error="invalid_token", MTLS'
    )
    assert answer(matrix, "mtls-scheme", "dpop-analogy").status == 200


def test_requiring_certificates_at_the_tls_layer_answers_with_alerts(matrix: Matrix) -> None:
    """RFC 8446 §4.4.2.4: no HTTP answer at all, and unbound clients without a certificate are shut out."""
    for scenario, name, code in (
        ("no-cert-optional", "certificate_required", 116),
        ("no-cert-tls12", "handshake_failure", 40),
        ("unbound-no-cert", "certificate_required", 116),
    ):
        outcome = answer(matrix, scenario, "tls-required")
        assert outcome.tls_alert is not None
        assert (outcome.tls_alert.name, outcome.tls_alert.code) == (name, code)
        assert outcome.status is None
        assert outcome.www_authenticate is None
    assert answer(matrix, "success", "tls-required").status == 200
    assert answer(matrix, "self-signed-success", "tls-required").status == 200
    assert answer(matrix, "unbound-no-cert", "baseline").status == 200


def _stated(name: str) -> set[Finding]:
    """The findings a built-in's own entry in mtlslab/data/interpretations.json answers."""
    text = (
        importlib.resources.files("mtlslab")
        .joinpath("data/interpretations.json")
        .read_text("utf-8")
    )
    entry = next(e for e in json.loads(text) if e["name"] == name)
    return {Finding(key) for key in entry["answers"]}


@pytest.mark.parametrize("name", OBSERVED)
def test_an_observed_servers_unshown_cells_are_assumed(name: str) -> None:
    """A finding the source does not show (the entry does not answer it) is inherited from the baseline and
    marked assumed, never observed."""
    interpretation = BUILTINS[name]
    own = {F.TLS_REJECTED, F.ACCEPTED, F.ACCEPTED_ALTHOUGH_BOUND} | _stated(name)
    for finding in set(Finding) - own:
        got = interpretation.answer(finding)
        assert got.assumed, (name, finding)
        assert not got.unspecified
    for finding in (F.NO_TOKEN, F.TOKEN_EXPIRED, F.INSUFFICIENT_SCOPE):
        base = BUILTINS["baseline"].answer(finding)
        assert (interpretation.answer(finding).status, interpretation.answer(finding).error) == (
            base.status,
            base.error,
        )


def test_the_builtins_are_the_documented_set() -> None:
    """The baseline (and its no-CA twin, RFC 8705 §6.2), the two readings and the token endpoint's precedent,
    the analogy, TLS-required and the observed servers, in that order."""
    assert list(BUILTINS) == [
        "baseline",
        "baseline-no-ca",
        "thread-400",
        "thread-401",
        "as-token-endpoint",
        "dpop-analogy",
        "tls-required",
        "keycloak",
        "keycloak-legacy",
        "spring-security",
        "node-oidc-provider",
        "authlete",
        "auth0",
        "auth0-default",
        "auth0-required",
        "apicast",
        "duende-sample",
    ]
    for interpretation in BUILTINS.values():
        assert interpretation.stance
        assert interpretation.source.citation
        assert interpretation.title


def test_get_interpretation_suggests_the_nearest_name() -> None:
    """An unknown name is an InterpretationError naming the nearest built-in."""
    assert get_interpretation("keycloak") is BUILTINS["keycloak"]
    with pytest.raises(InterpretationError) as info:
        get_interpretation("keycloack")
    assert info.value.field == "interpretation"
    assert "keycloak" in info.value.reason


# --------------------------------------------------------------------------------------------------
# Every emitted challenge parses and obeys RFC 6750 §3.

BARE_BEARER = "params: a Bearer challenge MUST have one or more auth-param values"


def test_every_www_authenticate_parses_and_obeys_the_character_rules(matrix: Matrix) -> None:
    """Every catalogue scenario × built-in: the header parses (RFC 9110 §11.6.1) and breaks no §3 rule."""
    bare: set[str] = set()
    for cell in matrix.cells.values():
        header = cell.outcome.www_authenticate
        if header is None:
            continue
        challenges = parse_www_authenticate(header)
        assert challenges, cell
        for challenge in challenges:
            for violation in check_rfc6750(challenge):
                assert violation.startswith(BARE_BEARER), (
                    cell.scenario,
                    cell.interpretation,
                    violation,
                )
                bare.add(cell.interpretation)
    realmless = {name for name, i in BUILTINS.items() if i.realm is None}
    assert bare <= realmless
    assert bare, "Spring's bare `Bearer` for a request without a token should show up"


def test_every_401_carries_a_challenge_unless_the_departure_is_stated(matrix: Matrix) -> None:
    """RFC 9110 §15.5.2: a 401 has WWW-Authenticate; only APIcast, which states the departure, omits it."""
    without = {
        c.interpretation
        for c in matrix.cells.values()
        if c.outcome.status == 401 and c.outcome.www_authenticate is None
    }
    assert without == {"apicast"}


def test_no_header_holds_cr_or_lf(matrix: Matrix) -> None:
    """Header injection is impossible: no emitted header value holds CR, LF or NUL (RFC 9110 §5.5)."""
    for cell in matrix.cells.values():
        for _name, value in cell.outcome.headers() if cell.outcome.status else []:
            assert not set(value) & {"\r", "\n", "\0"}, cell


# --------------------------------------------------------------------------------------------------
# Responding.


@pytest.mark.parametrize(
    ("scenario", "status", "body"),
    [
        ("huge-token", 431, "request header fields too large\n"),
        ("huge-token-in-form", 413, "request body too large\n"),
    ],
)
def test_every_builtin_answers_an_oversized_request_alike(
    matrix: Matrix, scenario: str, status: int, body: str
) -> None:
    """The HTTP layer's size answer (RFC 6585 §5, RFC 9110 §15.5.14) is the same bytes under every reading:
    the status, no challenge, text/plain and the body the live server sends; observed servers mark it assumed."""
    wires = set()
    for name, interpretation in BUILTINS.items():
        outcome = answer(matrix, scenario, name)
        assert (outcome.status, outcome.www_authenticate, outcome.content_type, outcome.body) == (
            status,
            None,
            "text/plain",
            body,
        ), name
        assert outcome.assumed is (interpretation.kind == "observed")
        wires.add(outcome.wire())
    assert len(wires) == 1


def test_respond_turns_a_tls_alert_into_an_alert_outcome() -> None:
    """The TLS layer answers: the outcome is the alert, with no status and no headers."""
    alert = alert_by_name("certificate_required", "first_read")
    outcome = BUILTINS["baseline"].respond(None, tls_alert=alert)
    assert outcome.finding is F.TLS_REJECTED
    assert (outcome.tls_alert, outcome.status) == (alert, None)
    assert outcome.verdict == ("tls", "certificate_required")
    assert outcome.summary() == "TLS certificate_required (116)"
    assert outcome.http_text().startswith("(no HTTP response: ")
    assert outcome.wire() == ("tls", "certificate_required", 116, "first_read")
    with pytest.raises(InterpretationError):
        BUILTINS["baseline"].respond(None)


def test_an_outcome_renders_as_raw_http_and_round_trips_through_json(matrix: Matrix) -> None:
    """http_text is a status line, WWW-Authenticate, Content-Type, Content-Length and body; JSON reloads."""
    outcome = answer(matrix, "mismatch", "node-oidc-provider")
    text = outcome.http_text()
    assert text.startswith("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=")
    assert f"Content-Length: {len(outcome.body)}\r\n\r\n{outcome.body}" in text
    assert Outcome.from_json(outcome.finding, json.loads(json.dumps(outcome.to_json()))) == outcome
    accepted = answer(matrix, "success", "baseline")
    assert json.loads(accepted.body) == {
        "resource": "the protected resource",
        "sub": "alice",
        "client_id": "lab-client",
    }


# --------------------------------------------------------------------------------------------------
# Deriving, saving and loading.


def test_derive_overrides_a_few_findings_and_keeps_the_rest(matrix: Matrix, sim: Simulator) -> None:
    """derive(base, answers=…) changes only those findings; every other answer equals the base's."""
    base = BUILTINS["thread-401"]
    mine = derive(
        base,
        name="mine",
        stance="403 for a missing certificate",
        answers={F.CERTIFICATE_MISSING: Answer(status=403, scheme=None)},
        departures=(Departure(what="403", reason="forbid, as Duende"),),
    )
    assert (mine.kind, mine.base, mine.realm) == ("custom", "thread-401", base.realm)
    assert mine.answer(F.CERTIFICATE_MISSING).status == 403
    table, base_table = dict(mine.answers), dict(base.answers)
    for finding in set(Finding) - {F.CERTIFICATE_MISSING}:
        assert table[finding] == base_table[finding]
    # an alias follows its target: the ignored Client-Cert header is answered like no certificate
    assert mine.answer(F.UNTRUSTED_CLIENT_CERT_HEADER).status == 403
    assert mine.departures[-1].what == "403"
    assert mine != base
    cells = sim.matrix(CATALOGUE, [base, mine])
    differing = {s.id for s in cells.disagreements().scenarios}
    assert "no-cert-optional" in differing
    assert "mismatch" not in differing


def test_derive_can_change_realm_and_deployment() -> None:
    """A derived reading may drop the realm and deploy differently (e.g. require client certificates)."""
    mine = derive(
        BUILTINS["baseline"], name="strict", realm=None, deployment={"requires_binding": True}
    )
    assert mine.realm is None
    assert dict(mine.deployment) == {"requires_binding": True}
    with pytest.raises(InterpretationError) as info:
        derive(BUILTINS["baseline"], name="odd", deployment={"colour": "blue"})
    assert info.value.field == "odd.deployment"


def test_readings_that_share_an_answer_each_send_it_under_their_own_realm(sim: Simulator) -> None:
    """RFC 6750 §3: an answer a reading inherits is sent with that reading's realm (or none), not its
    base's, though both hold the very same answer."""
    base = BUILTINS["baseline"]
    no_token = next(s for s in CATALOGUE if s.id == "no-token")
    for realm, header in (
        ("mtlslab", 'Bearer realm="mtlslab"'),
        ("x", 'Bearer realm="x"'),
        (None, "Bearer"),
    ):
        mine = derive(base, name="realm", realm=realm)
        assert mine.answer(F.NO_TOKEN) is base.answer(F.NO_TOKEN)
        assert sim.cell(no_token, mine).outcome.www_authenticate == header


def test_an_answer_made_in_python_with_lists_is_sent(sim: Simulator) -> None:
    """Lists given in Python (a notebook's derive) are an answer's tuples: the reading sends them."""
    answer = Answer(error="invalid_token", params=[["foo", "bar"]], headers=[("X-Why", "$error")])
    assert answer == Answer(
        error="invalid_token", params=(("foo", "bar"),), headers=(("X-Why", "$error"),)
    )
    assert Answer(same_as="no_token").same_as is F.NO_TOKEN  # type: ignore[arg-type]
    mine = derive(BUILTINS["baseline"], name="lists", answers={F.NO_TOKEN: answer})
    outcome = sim.cell(next(s for s in CATALOGUE if s.id == "no-token"), mine).outcome
    assert outcome.www_authenticate == 'Bearer realm="mtlslab", error="invalid_token", foo="bar"'
    assert ("X-Why", "invalid_token") in outcome.headers_more


@pytest.mark.parametrize(
    ("values", "field", "reason"),
    [
        ({"status": 999}, "status", "HTTP status"),
        ({"status": "401"}, "status", "HTTP status"),
        ({"realm": "yes"}, "realm", "true or false"),
        ({"params": [("algs",)]}, "params", "pairs"),
        ({"headers": [("DPoP-Nonce", "a\nb")]}, "headers", "printable ASCII"),
        ({"content_type": "text/plain\r\nSet-Cookie: a=b"}, "content_type", "no CR, LF"),
        ({"same_as": "not_a_finding"}, "same_as", "not a finding"),
    ],
)
def test_an_answer_made_in_python_is_read_as_one_from_json(
    values: dict[str, Any], field: str, reason: str
) -> None:
    """An answer made in Python is checked as its JSON would be, when it is made: a bad value is an
    InterpretationError naming the field, never a header the reading would send."""
    with pytest.raises(InterpretationError) as info:
        Answer(**values)
    assert info.value.field == field
    assert reason in info.value.reason


def test_field_names_are_the_further_fields_a_reading_sends(matrix: Matrix) -> None:
    """field_names() covers every further field a built-in's cell sends, and names exactly those a
    reading's answers hold (one it adds included)."""
    for name, interp in BUILTINS.items():
        sent = {field for c in matrix.column(name) for field, _ in c.outcome.headers_more}
        assert sent <= interp.field_names(), name
    why = Answer(error="invalid_token", headers=(("X-Why", "$error"),))
    mine = derive(BUILTINS["baseline"], name="why", answers={F.NO_TOKEN: why})
    assert BUILTINS["baseline"].field_names() == {"Cache-Control", "DPoP-Nonce"}
    assert mine.field_names() == {"Cache-Control", "DPoP-Nonce", "X-Why"}


@pytest.mark.parametrize("name", list(BUILTINS))
def test_every_builtin_round_trips_through_json(name: str) -> None:
    """to_json → JSON text → from_json gives back an equal interpretation, answers, flags and all."""
    interpretation = BUILTINS[name]
    text = json.dumps(interpretation.to_json())
    loaded = Interpretation.from_json(text)
    assert loaded == interpretation
    assert all(loaded.answer(f) == interpretation.answer(f) for f in Finding)
    assert loaded.deployment == interpretation.deployment


def test_a_derived_interpretation_round_trips_even_from_a_custom_base() -> None:
    """A reading derived from a derived one saves every answer, so it loads without its base."""
    first = derive(BUILTINS["baseline"], name="first")
    second = derive(first, name="second", answers={F.NO_TOKEN: Answer(status=400)})
    assert Interpretation.from_json(second.to_json()) == second


def test_a_partial_table_inherits_from_its_base() -> None:
    """from_json with a few answers takes the rest from `base` (default baseline); observed ones are assumed."""
    data: dict[str, Any] = {
        "name": "partial",
        "base": "thread-400",
        "answers": {"certificate_mismatch": {"status": 418, "scheme": None}},
    }
    loaded = Interpretation.from_json(data)
    assert loaded.answer(F.CERTIFICATE_MISMATCH).status == 418
    assert loaded.answer(F.CERTIFICATE_MISSING) == BUILTINS["thread-400"].answer(
        F.CERTIFICATE_MISSING
    )
    assert loaded.kind == "custom"
    assert loaded.source == Source(kind="user", citation="user-defined")
    default = Interpretation.from_json({"name": "bare"})
    assert all(default.answer(f) == BUILTINS["baseline"].answer(f) for f in Finding)
    observed = Interpretation.from_json({**data, "kind": "observed"})
    assert observed.answer(F.NO_TOKEN).assumed
    assert not observed.answer(F.CERTIFICATE_MISMATCH).assumed


@pytest.mark.parametrize(
    ("answers", "field", "reason"),
    [
        ({"no_token": {"status": 999}}, "bad.answers.no_token.status", "999"),
        ({"no_token": {"status": "401"}}, "bad.answers.no_token.status", "HTTP status"),
        ({"no_token": {"status": True}}, "bad.answers.no_token.status", "HTTP status"),
        (
            {"certificate_missing": {"description": 'say "no"'}},
            "bad.answers.certificate_missing",
            "RFC 6750 §3",
        ),
        (
            {"certificate_missing": {"description": "a\r\nSet-Cookie: x=1"}},
            "bad.answers.certificate_missing",
            "U+000D",
        ),
        (
            {"certificate_missing": {"description": "line\nbreak"}},
            "bad.answers.certificate_missing",
            "U+000A",
        ),
        (
            {"certificate_missing": {"error": "bad\\code"}},
            "bad.answers.certificate_missing",
            "RFC 6750 §3",
        ),
        (
            {"certificate_missing": {"error_uri": "https://x/ y"}},
            "bad.answers.certificate_missing",
            "error_uri",
        ),
        ({"certificate_mising": {"status": 401}}, "bad.answers", "certificate_missing"),
        ({"no_token": {"colour": "red"}}, "bad.answers.no_token", "colour"),
        ({"no_token": {"tls_alert": True, "status": None}}, "bad.answers.no_token", "tls_rejected"),
        ({"tls_rejected": {"status": 401}}, "bad.answers.tls_rejected", "tls_alert"),
        ({"accepted": {"status": 200, "body": "$nope"}}, "bad.answers.accepted.body", "nope"),
        (
            {"no_token": {"same_as": "not_a_finding"}},
            "bad.answers.no_token.same_as",
            "not a finding",
        ),
        (
            {
                "no_token": {"same_as": "scheme_missing"}
            },  # and the baseline's scheme_missing is same_as no_token
            "bad.answers.no_token",
            "same_as",
        ),
        ({"no_token": "401"}, "bad.answers.no_token", "object"),
    ],
)
def test_invalid_tables_are_refused_naming_the_field(
    answers: dict[str, Any], field: str, reason: str
) -> None:
    """An unusable table is an InterpretationError naming the field and why — never a bad header."""
    with pytest.raises(InterpretationError) as info:
        Interpretation.from_json({"name": "bad", "answers": answers})
    assert info.value.field == field
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("{not json", "json"),
        ("[1, 2]", "json"),
        ({"answers": {}}, "name"),
        ({"name": "bad", "answers": []}, "bad.answers"),
        ({"name": "bad", "deployment": {"colour": "blue"}}, "bad.deployment"),
        ({"name": "bad", "deployment": {"client_auth": "sometimes"}}, "bad.deployment"),
        ({"name": "bad", "base": "thread-40"}, "bad.base"),
        ({"name": "bad", "realm": "a\rb"}, "bad.answers.no_token"),
    ],
)
def test_invalid_documents_are_refused_naming_the_field(data: Any, field: str) -> None:
    """Not JSON, no name, answers not an object, an unknown deployment field or base: named errors."""
    with pytest.raises(InterpretationError) as info:
        Interpretation.from_json(data)
    assert info.value.field == field


def test_a_table_missing_a_finding_is_refused() -> None:
    """Every finding needs an answer: a table without `accepted` names the missing finding."""
    answers = tuple((f, a) for f, a in BUILTINS["baseline"].answers if f is not F.ACCEPTED)
    with pytest.raises(InterpretationError) as info:
        Interpretation(
            name="holey",
            title="holey",
            stance="",
            source=Source(kind="user", citation="test"),
            kind="custom",
            answers=answers,
        )
    assert info.value.field == "holey.answers"
    assert "accepted" in info.value.reason


def test_an_interpretation_renders_as_html_with_escaping() -> None:
    """_repr_html_ lists every finding and escapes what the user wrote."""
    mine = derive(BUILTINS["baseline"], name="<script>", stance="a & b")
    page = mine._repr_html_()
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "a &amp; b" in page
    assert all(f.value in page for f in Finding)


# --------------------------------------------------------------------------------------------------
# Issue 15 (items 3, 9) and issue 16 (one loader, one inheritance rule).


def test_a_derived_reading_drops_the_departures_of_the_answers_it_changes() -> None:
    """derive() keeps only the base's departures about what it leaves alone: a reading that answers the
    missing certificate with 403 no longer says "→ 401 invalid_token" (issue 15 item 3)."""
    base = BUILTINS["thread-401"]
    assert any("401 invalid_token" in d.what for d in base.departures)
    mine = derive(
        base, name="forbid", answers={F.CERTIFICATE_MISSING: Answer(status=403, scheme=None)}
    )
    assert mine.answer(F.CERTIFICATE_MISSING).status == 403
    assert not any("401 invalid_token" in d.what for d in mine.departures)
    saved = Interpretation.from_json(json.dumps(mine.to_json()))
    assert not any("401 invalid_token" in d.what for d in saved.departures)
    # the control: a departure about something not changed stays
    kept = derive(BUILTINS["dpop-analogy"], name="kept", answers={F.NO_TOKEN: Answer(status=401)})
    assert [d.what for d in kept.departures] == [
        d.what for d in BUILTINS["dpop-analogy"].departures
    ]
    # and one about a deployment field set anew goes
    changed = derive(
        BUILTINS["tls-required"], name="optional", deployment={"client_auth": "optional"}
    )
    assert not any("client_auth" in d.about for d in changed.departures)


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        (
            '{"name": "x", "answers": {"no_token": {"content_type": "text/plain\\r\\nSet-Cookie: a=b"}}}',
            "x.answers.no_token.content_type",
            "no CR, LF",
        ),
        ('{"name": "x", "name": "y"}', "json", "occurs twice"),
        ('{"name": "x", "answers": {"no_token": {"status": 401, "status": 403}}}', "json", "twice"),
        ("[" * 100_000 + "]" * 100_000, "json", "nested too deep"),
        (
            '{"name": "x", "answers": {"no_token": {"status": ' + "9" * 5000 + "}}}",
            "json",
            "not JSON",
        ),
        (
            '{"name": "x", "answers": {"no_token": {"status": 1e400}}}',
            "x.answers.no_token.status",
            "HTTP status",
        ),
        (
            '{"name": "x", "answers": {"no_token": {"scheme": 7}}}',
            "x.answers.no_token.scheme",
            "string",
        ),
        (
            '{"name": "x", "answers": {"no_token": {"realm": "yes"}}}',
            "x.answers.no_token.realm",
            "true or false",
        ),
        (
            '{"name": "x", "answers": {"no_token": {"params": "algs"}}}',
            "x.answers.no_token.params",
            "pairs",
        ),
        (
            '{"name": "x", "departures": [{"what": 1, "reason": "r"}]}',
            "x.departures[0].what",
            "string",
        ),
        ('{"name": "x", "source": "rfc"}', "x.source", "JSON object"),
        ('{"name": "x", "kind": "real"}', "x.kind", "not one of"),
        ('{"name": "x", "deployment": {"checks_binding": "no"}}', "x.deployment", "true or false"),
        (
            '{"name": "x", "answers": {"no_token": {"headers": [["DPoP-Nonce", "a\\nb"]]}}}',
            "x.answers.no_token.headers",
            "printable ASCII",
        ),
    ],
)
def test_a_hostile_file_is_an_interpretation_error_naming_the_field(
    text: str, field: str, reason: str
) -> None:
    """Whatever a file holds — CR/LF in a header value, a name twice, nesting or numbers beyond reason, a
    field of the wrong type — loading it raises InterpretationError naming the field, never another
    exception, and never yields a reading that would emit a header line of its own (issue 15 item 9)."""
    with pytest.raises(InterpretationError) as info:
        Interpretation.from_json(text)
    assert info.value.field == field
    assert reason in info.value.reason


def test_a_content_type_that_could_split_a_response_never_reaches_the_wire(sim: Simulator) -> None:
    """The simulated HTTP and the live server never differ on a header line: a reading that could only be
    sent by splitting a field is refused at load (RFC 9110 §5.5), so no Set-Cookie line can appear."""
    with pytest.raises(InterpretationError):
        derive(
            BUILTINS["baseline"],
            name="split",
            answers={F.NO_TOKEN: Answer(status=401, content_type="text/plain\r\nSet-Cookie: a=b")},
        )


def test_one_inheritance_rule_for_built_ins_and_user_files() -> None:
    """A user's observed server inherits exactly as a built-in observed server does: the TLS alert and the
    acceptances are never assumed, every other inherited answer is assumed and no longer unspecified
    (issue 16: built-ins and user files share the loader and the rule)."""
    mine = Interpretation.from_json(
        {
            "name": "my-server",
            "kind": "observed",
            "answers": {"certificate_mismatch": {"error": "invalid_token"}},
        }
    )
    keycloak = BUILTINS["keycloak"]
    for finding in (F.TLS_REJECTED, F.ACCEPTED, F.ACCEPTED_ALTHOUGH_BOUND):
        assert not mine.answer(finding).assumed
        assert not keycloak.answer(finding).assumed
    for finding in (F.NO_TOKEN, F.TOKEN_EXPIRED, F.UNTRUSTED_CLIENT_CERT_HEADER):
        assert mine.answer(finding).assumed
        assert keycloak.answer(finding).assumed
    assert mine.answer(F.CERTIFICATE_MISSING).assumed
    assert not mine.answer(F.CERTIFICATE_MISSING).unspecified
    assert not mine.answer(F.CERTIFICATE_MISMATCH).assumed


def test_the_built_ins_are_data_loaded_by_the_users_loader() -> None:
    """Each built-in is an entry of mtlslab/data/interpretations.json, and loading that entry with
    Interpretation.from_json gives the built-in itself: adding a server is a data diff."""
    import importlib.resources

    text = (
        importlib.resources.files("mtlslab")
        .joinpath("data/interpretations.json")
        .read_text("utf-8")
    )
    entries = json.loads(text)
    assert [e["name"] for e in entries] == list(BUILTINS)
    known: dict[str, Interpretation] = {}
    for entry in entries:
        known[entry["name"]] = Interpretation.from_json(entry, known=known)
        assert known[entry["name"]] == BUILTINS[entry["name"]]


# --------------------------------------------------------------------------------------------------
# Issue 14: the readings the review asked for.


def test_every_reading_that_sends_a_bare_bearer_says_it_departs_from_rfc_6750(
    matrix: Matrix,
) -> None:
    """RFC 6750 §3: "This scheme MUST be followed by one or more auth-param values". A reading that answers
    any catalogue request with a bare `WWW-Authenticate: Bearer` lists that as a departure; the others do not
    send one (issue 14 item 8)."""
    senders = set()
    for cell in matrix.cells.values():
        header = cell.outcome.www_authenticate
        if header and any(
            c.scheme.lower() == "bearer" and not c.params for c in parse_www_authenticate(header)
        ):
            senders.add(cell.interpretation)
    assert senders >= {"spring-security", "authlete", "duende-sample"}
    for name, interpretation in BUILTINS.items():
        says = any("bare WWW-Authenticate: Bearer" in d.what for d in interpretation.departures)
        assert says is (name in senders), name


def test_the_no_ca_baseline_stands_beside_the_baseline(matrix: Matrix) -> None:
    """RFC 8705 §6.2: a resource server may accept certificates without validating their chain. The baseline
    validates, as a deployment choice it states; baseline-no-ca answers the same findings at a server that
    does not, so a certificate from another CA reaches the binding check (issue 14 item 9)."""
    baseline = BUILTINS["baseline"]
    assert any("RFC 8705 §6.2" in d.reason for d in baseline.departures)
    assert answer(matrix, "untrusted-ca-cert", "baseline").tls_alert == alert_by_name(
        "unknown_ca", "first_read"
    )
    assert answer(matrix, "untrusted-ca-cert", "baseline-no-ca").verdict == ("401", "invalid_token")
    assert answer(matrix, "success", "baseline-no-ca").status == 200
    assert BUILTINS["baseline-no-ca"].source.url.endswith("#section-6.2")


def test_the_token_endpoint_precedent_answers_missing_like_mismatched(matrix: Matrix) -> None:
    """RFC 8705 §2: "If no certificate is presented, or that which is presented doesn't match" — both
    invalid_client at the token endpoint. The reading "as the token endpoint does" carries that over to the
    resource: no certificate is answered exactly as a mismatch (issue 14)."""
    reading = BUILTINS["as-token-endpoint"]
    assert reading.source.url == "https://www.rfc-editor.org/rfc/rfc8705#section-2"
    missing = answer(matrix, "no-cert-optional", "as-token-endpoint")
    assert missing.wire()[1:] == answer(matrix, "mismatch", "as-token-endpoint").wire()[1:]
    for scenario in ("token-endpoint-no-cert", "token-endpoint-other-cert"):
        cell = matrix.cell(scenario, "baseline")
        assert cell.outcome.verdict == ("400", "invalid_client")
        assert cell.trace[-1].clause.label in ("RFC 8705 §2", "RFC 8705 §2.1")
    assert matrix.cell("token-endpoint-success", "baseline").outcome.status == 200


def test_an_expired_bound_certificate_still_binds_where_no_chain_is_validated(
    matrix: Matrix,
) -> None:
    """RFC 8705 §6.2: a resource server may skip chain validation — and with it the certificate's dates. A
    year-long token bound to a certificate that has since expired still matches its thumbprint there, and the
    trace says the dates went unchecked; RFC 8705 §6.3 leaves expiry to the token's lifetime. A validating
    server refuses the same certificate in the handshake (issue 14)."""
    cell = matrix.cell("bound-cert-expired-no-ca", "baseline")
    assert cell.outcome.status == 200
    tls_step = cell.trace[0]
    assert tls_step.clause.label == "RFC 8705 §6.2"
    assert (
        "its dates unchecked: valid 2024-01-01 to 2025-06-30, not at 2026-01-01" in tls_step.detail
    )
    validating = answer(matrix, "bound-cert-expired-no-ca", "tls-required")
    assert (
        validating.status == 200
    )  # tls-required asks for a certificate, as deployed: still no chain check
    assert matrix.cell("expired-cert", "baseline").outcome.tls_alert == alert_by_name(
        "certificate_expired", "first_read"
    )


def test_a_renewed_certificate_breaks_the_binding_even_with_the_same_key(matrix: Matrix) -> None:
    """RFC 8705 §3.1: x5t#S256 is the hash of the whole certificate, so renewing it — same key, same subject —
    leaves the client's token bound to the old one; RFC 8705 §6.3: it needs a new token. The server answers a
    mismatch (RFC 8705 §3), which DPoP's key thumbprint would not have caused."""
    from mtlslab.scenarios import get_scenario

    scenario = get_scenario("bound-cert-rotated-no-ca")
    token = matrix.cell(scenario.id, "baseline")
    assert token.finding is Finding.CERTIFICATE_MISMATCH
    assert token.outcome.verdict == ("401", "invalid_token")
    assert token.trace[-1].clause.label == "RFC 8705 §3"
    assert "RFC 8705 §6.3" in scenario.description
