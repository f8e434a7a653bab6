"""mtlslab.scenarios: the Deployment × Presentation × token model, its realisation, and the catalogue."""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from mtlslab.compare import Matrix, Simulator
from mtlslab.errors import ScenarioError, UnknownScenarioError
from mtlslab.findings import Finding
from mtlslab.interpretations import BUILTINS
from mtlslab.pki import LAB_NOW, Lab
from mtlslab.scenarios import (
    CATALOGUE,
    CertChoice,
    ClientAuth,
    Deployment,
    Placement,
    Presentation,
    ProofChoice,
    Request,
    Scenario,
    Scheme,
    TlsVersion,
    Topology,
    Validation,
    decode_client_cert,
    encode_client_cert,
    get_scenario,
    scenarios_tagged,
    through_proxy,
)
from mtlslab.tls import handshake
from mtlslab.tokens import LAB_RESOURCE, DPoPKey, access_token_hash, jwk_thumbprint

#: Ids that appear in exports, mails and notebooks: they may gain company, never disappear.
STABLE_IDS = (
    "no-cert-optional",
    "mismatch",
    "required-unbound-no-cert",
    "proxy-no-cert",
    "forged-client-cert",
    "success",
    "required-no-cert-tls13",
    "required-no-cert-tls12",
    "no-cert-client-auth-none",
    "no-cert-tls12",
    "self-signed-success",
    "proxy-untrusted",
    "proxy-smuggled-header",
    "binding-ignored-no-cert",
    "binding-required-unbound",
    "introspection-no-cert",
    "dpop-token-as-bearer",
    "mtls-scheme-no-cert",
    "unknown-kid",
    "jku-header",
    "x5u-header",
    "jwk-header",
    "x5c-header",
    "jku-header-genuine",
    "cnf-list",
    "cnf-string",
    "cnf-two-methods",
    "cnf-two-methods-dpop",
    "cnf-duplicate-member",
    "duplicate-header-member",
    "huge-token",
    "huge-token-in-form",
    "header-injection",
    "non-ascii-subject",
    "proxy-passes-client-cert",
)

#: The attack catalogue (issue 6): each id, with the finding the RFC baseline must reach.
ATTACKS = {
    "no-cert-optional": Finding.CERTIFICATE_MISSING,
    "mismatch": Finding.CERTIFICATE_MISMATCH,
    "binding-ignored-no-cert": Finding.ACCEPTED_ALTHOUGH_BOUND,
    "binding-ignored-mismatch": Finding.ACCEPTED_ALTHOUGH_BOUND,
    "forged-client-cert": Finding.UNTRUSTED_CLIENT_CERT_HEADER,
    "proxy-smuggled-header": Finding.CERTIFICATE_MISSING,
    "proxy-passes-client-cert": Finding.ACCEPTED,
    "alg-none": Finding.BAD_SIGNATURE,
    "hs256-confusion": Finding.BAD_SIGNATURE,
    "bad-signature": Finding.BAD_SIGNATURE,
    "unknown-kid": Finding.BAD_SIGNATURE,
    "jku-header": Finding.BAD_SIGNATURE,
    "x5u-header": Finding.BAD_SIGNATURE,
    "jwk-header": Finding.BAD_SIGNATURE,
    "x5c-header": Finding.BAD_SIGNATURE,
    "cnf-padded": Finding.CERTIFICATE_MISMATCH,
    "cnf-uppercase": Finding.CERTIFICATE_MISMATCH,
    "cnf-standard-base64": Finding.CERTIFICATE_MISMATCH,
    "cnf-sha1": Finding.CERTIFICATE_MISMATCH,
    "cnf-x5t-sha1": Finding.UNSUPPORTED_CONFIRMATION,
    "cnf-pem-hash": Finding.CERTIFICATE_MISMATCH,
    "cnf-public-key-hash": Finding.CERTIFICATE_MISMATCH,
    "cnf-list": Finding.UNSUPPORTED_CONFIRMATION,
    "cnf-string": Finding.UNSUPPORTED_CONFIRMATION,
    "cnf-two-methods": Finding.DPOP_TOKEN_AS_BEARER,
    "cnf-two-methods-dpop-no-cert": Finding.CERTIFICATE_MISSING,
    "cnf-two-methods-no-proof": Finding.DPOP_PROOF_MISSING,
    "cnf-duplicate-member": Finding.TOKEN_MALFORMED,
    "duplicate-header-member": Finding.TOKEN_MALFORMED,
    "huge-token": Finding.HEADERS_TOO_LARGE,
    "huge-token-in-form": Finding.BODY_TOO_LARGE,
    "header-injection": Finding.UNTRUSTED_CLIENT_CERT_HEADER,
    "non-ascii-subject": Finding.ACCEPTED,
    "dpop-token-as-bearer": Finding.DPOP_TOKEN_AS_BEARER,
    "dpop-proof-wrong-ath": Finding.DPOP_PROOF_INVALID,
    "dpop-proof-other-key": Finding.DPOP_KEY_MISMATCH,
    "binding-ignored-dpop-as-bearer": Finding.DPOP_TOKEN_AS_BEARER,
    "proxy-passes-malformed-client-cert": Finding.CERTIFICATE_MISSING,
}

#: The debate's cases (the issue's list), which open the catalogue.
DEBATE_FIRST = (
    "no-cert-optional",
    "mismatch",
    "required-unbound-no-cert",
    "proxy-no-cert",
    "forged-client-cert",
)


def bearer_token(request: Request) -> str:
    """The token of an `Authorization: <scheme> <token>` header."""
    (value,) = request.header_values("Authorization")
    return value.split(" ", 1)[1]


def proof_claims(proof: str) -> dict[str, object]:
    """A DPoP proof's claims, unverified."""
    return jwt.decode(proof, options={"verify_signature": False})


# --------------------------------------------------------------------------------------------------
# JSON round trips and refusals.


@pytest.mark.parametrize("scenario", CATALOGUE, ids=lambda s: s.id)
def test_every_catalogue_scenario_round_trips_through_json(scenario: Scenario) -> None:
    """to_json → JSON text → from_json gives back an equal scenario."""
    text = json.dumps(scenario.to_json())
    assert Scenario.from_json(json.loads(text)) == scenario


def test_deployment_and_presentation_round_trip_with_every_enum_value() -> None:
    """Each enum value survives to_json/from_json, written as its string value."""
    for mode in ClientAuth:
        dep = Deployment(client_auth=mode, topology=Topology.PROXY, validation=Validation.JWT)
        assert dep.to_json()["client_auth"] == mode.value
        assert Deployment.from_json(dep.to_json()) == dep
    for cert in CertChoice:
        pres = Presentation(certificate=cert, forged_client_cert=cert, dpop_proof=ProofChoice.STALE)
        assert Presentation.from_json(pres.to_json()) == pres
    assert Presentation.from_json({}) == Presentation()
    assert Deployment.from_json({}) == Deployment()


@pytest.mark.parametrize(
    ("load", "data", "field", "unknown"),
    [
        (
            Deployment.from_json,
            {"client_auth": "optional", "colour": "blue"},
            "deployment",
            "colour",
        ),
        (Presentation.from_json, {"shoe_size": 44}, "presentation", "shoe_size"),
        (Scenario.from_json, {"id": "x", "flavour": "vanilla"}, "scenario", "flavour"),
        (Scenario.from_json, {"id": "x", "deployment": {"colour": "blue"}}, "deployment", "colour"),
    ],
)
def test_unknown_fields_are_refused_naming_them(
    load: Callable[[dict[str, Any]], object], data: dict[str, Any], field: str, unknown: str
) -> None:
    """An unknown field is a ScenarioError naming the object and the field."""
    with pytest.raises(ScenarioError) as info:
        load(data)
    assert info.value.field == field
    assert unknown in info.value.reason


def test_bad_enum_values_are_refused_naming_the_field_and_the_choices() -> None:
    """client_auth "sometimes" names deployment.client_auth and lists the allowed values."""
    with pytest.raises(ScenarioError) as info:
        Deployment.from_json({"client_auth": "sometimes"})
    assert info.value.field == "deployment.client_auth"
    assert "optional-no-ca" in info.value.reason
    with pytest.raises(ScenarioError) as nested:
        Scenario.from_json({"id": "x", "presentation": {"scheme": "Basic"}})
    assert nested.value.field == "presentation.scheme"
    with pytest.raises(ScenarioError) as expect:
        Scenario.from_json({"id": "x", "expect": "approved"})
    assert expect.value.field == "scenario"
    with pytest.raises(ScenarioError):
        Scenario.from_json({"title": "no id"})


# --------------------------------------------------------------------------------------------------
# Variants.


def test_with_changes_deployment_and_presentation_fields_by_name() -> None:
    """with_(client_auth=…, certificate=…, token=…) changes just those, leaving the original alone."""
    base = get_scenario("success")
    changed = base.with_(
        client_auth=ClientAuth.REQUIRED, certificate=CertChoice.NONE, token="unbound", id="x"
    )
    assert changed.deployment == Deployment(client_auth=ClientAuth.REQUIRED)
    assert changed.presentation == Presentation(certificate=CertChoice.NONE)
    assert (changed.token, changed.id) == ("unbound", "x")
    assert base.deployment == Deployment()
    assert base.token == "bound"


def test_with_takes_whole_dimensions_and_refuses_unknown_names() -> None:
    """with_(deployment=…) replaces the dimension; a misspelt field is a TypeError naming it."""
    proxied = Deployment(topology=Topology.PROXY)
    assert get_scenario("success").with_(deployment=proxied).deployment == proxied
    with pytest.raises(TypeError, match="client_authentication"):
        get_scenario("success").with_(client_authentication=ClientAuth.REQUIRED)


def test_describe_reads_as_one_line() -> None:
    """describe() names the TLS version, client auth, topology, certificate, scheme and token."""
    text = get_scenario("proxy-untrusted").describe()
    assert "\n" not in text
    for part in ("TLS 1.3", "client auth optional", "not trusted", "Bearer in header", "bound"):
        assert part in text


# --------------------------------------------------------------------------------------------------
# Realisation: what the client sends.


@pytest.mark.parametrize("placement", list(Placement))
def test_realize_puts_the_token_where_the_placement_says(
    sim: Simulator, placement: Placement
) -> None:
    """RFC 6750 §2.1 header, §2.2 form body (POST, urlencoded), §2.3 query, or two at once."""
    exchange = sim.exchange(get_scenario("success").with_(placement=placement))
    sent = exchange.client_request
    token = exchange.token.value
    in_header = placement in (
        Placement.HEADER,
        Placement.HEADER_AND_QUERY,
        Placement.HEADER_AND_FORM,
    )
    in_form = placement in (Placement.FORM, Placement.HEADER_AND_FORM)
    in_query = placement in (Placement.QUERY, Placement.HEADER_AND_QUERY)
    assert sent.header_values("Authorization") == ([f"Bearer {token}"] if in_header else [])
    assert sent.method == ("POST" if in_form else "GET")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(sent.url).query)
    assert query.get("access_token") == ([token] if in_query else None)
    if in_form:
        assert sent.header_values("Content-Type") == ["application/x-www-form-urlencoded"]
        assert urllib.parse.parse_qs(sent.body.decode()) == {"access_token": [token]}
    else:
        assert sent.body == b""
        assert sent.header_values("Content-Type") == []


@pytest.mark.parametrize(
    ("scheme", "prefix"),
    [
        (Scheme.BEARER, "Bearer "),
        (Scheme.BEARER_LOWER, "bearer "),
        (Scheme.DPOP, "DPoP "),
        (Scheme.MTLS, "MTLS "),
        (Scheme.NONE, ""),
    ],
)
def test_realize_writes_the_scheme_as_given(sim: Simulator, scheme: Scheme, prefix: str) -> None:
    """The Authorization value is `<scheme> <token>`, or the bare token for Scheme.NONE."""
    exchange = sim.exchange(get_scenario("success").with_(scheme=scheme))
    assert exchange.client_request.header_values("Authorization") == [prefix + exchange.token.value]


def test_raw_authorization_is_sent_verbatim_and_no_token_means_no_header(sim: Simulator) -> None:
    """raw_authorization replaces scheme + token exactly; token "none" sends no Authorization."""
    raw = sim.exchange(get_scenario("malformed-authorization")).client_request
    assert raw.header_values("Authorization") == ["Bearer"]
    bare = sim.exchange(get_scenario("no-token")).client_request
    assert bare.headers == ()
    assert bare.url == LAB_RESOURCE


def test_raw_authorization_fills_in_the_token_and_the_client_certificate(
    sim: Simulator, lab: Lab
) -> None:
    """$token and $client_cert (the lab client's RFC 9440 value) are filled in; other text is verbatim."""
    scenario = get_scenario("success").with_(raw_authorization="Bearer $token $other")
    exchange = sim.exchange(scenario)
    assert exchange.client_request.header_values("Authorization") == [
        f"Bearer {exchange.token.value} $other"
    ]
    cert = sim.exchange(scenario.with_(raw_authorization="X $client_cert")).client_request
    assert cert.header_values("Authorization") == [f"X {encode_client_cert(lab.client.der)}"]


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_a_line_break_in_raw_authorization_makes_separate_header_fields(
    sim: Simulator, lab: Lab, newline: str
) -> None:
    """On the wire a CR LF (or a bare LF, RFC 9112 §2.2) ends a field: what follows is a field of its own."""
    scenario = get_scenario("header-injection").with_(
        raw_authorization=f"Bearer $token{newline}Client-Cert:  $client_cert {newline}X-Two: 2"
    )
    request = sim.exchange(scenario).client_request
    token = sim.exchange(scenario).token.value
    assert request.headers == (
        ("Authorization", f"Bearer {token}"),
        ("Client-Cert", encode_client_cert(lab.client.der)),
        ("X-Two", "2"),
    )
    assert all(not set(v) & {"\r", "\n"} for _, v in request.headers)
    assert "CR LF" in get_scenario("header-injection").description


@pytest.mark.parametrize(
    "raw", ["Bearer x\r\nnot a field", "Bearer x\r\n\r\nbody", "Bearer x\n folded"]
)
def test_a_line_that_is_not_a_header_field_is_refused_naming_the_field(
    sim: Simulator, raw: str
) -> None:
    """After a line break only `name: value` can follow; otherwise ScenarioError names raw_authorization."""
    with pytest.raises(ScenarioError) as info:
        sim.exchange(get_scenario("success").with_(raw_authorization=raw))
    assert "presentation.raw_authorization" in str(info.value)


def test_proof_auto_is_a_valid_proof_only_under_the_dpop_scheme(sim: Simulator, lab: Lab) -> None:
    """ProofChoice.AUTO: a proof with the DPoP scheme (RFC 9449 §4.2), none with Bearer."""
    dpop = sim.exchange(get_scenario("dpop-success"))
    (proof,) = dpop.client_request.header_values("DPoP")
    claims = proof_claims(proof)
    assert claims["htm"] == "GET"
    assert claims["htu"] == LAB_RESOURCE
    assert claims["ath"] == access_token_hash(dpop.token.value)
    assert claims["iat"] == int(LAB_NOW.timestamp())
    header = jwt.get_unverified_header(proof)
    assert header["typ"] == "dpop+jwt"
    assert jwk_thumbprint(header["jwk"]) == DPoPKey.for_lab(lab).jkt
    assert sim.exchange(get_scenario("success")).client_request.header_values("DPoP") == []


@pytest.mark.parametrize("choice", list(ProofChoice))
def test_each_proof_choice_breaks_exactly_what_it_names(
    sim: Simulator, lab: Lab, choice: ProofChoice
) -> None:
    """Each DPoP proof variant differs from a valid proof in the one claim, key or count it names."""
    scenario = get_scenario("dpop-success").with_(dpop_proof=choice)
    exchange = sim.exchange(scenario)
    proofs = exchange.client_request.header_values("DPoP")
    if choice is ProofChoice.NONE:
        assert proofs == []
        return
    if choice is ProofChoice.TWO_PROOFS:
        assert len(proofs) == 2
        return
    (proof,) = proofs
    claims = proof_claims(proof)
    jwk = jwt.get_unverified_header(proof)["jwk"]
    valid_ath = access_token_hash(exchange.token.value)
    assert (claims["ath"] == valid_ath) is (choice is not ProofChoice.WRONG_ATH)
    assert (claims["htm"] == "GET") is (choice is not ProofChoice.WRONG_HTM)
    assert (claims["htu"] == LAB_RESOURCE) is (choice is not ProofChoice.WRONG_HTU)
    fresh = claims["iat"] == int(LAB_NOW.timestamp())
    assert fresh is (choice is not ProofChoice.STALE)
    own_key = jwk_thumbprint(jwk) == DPoPKey.for_lab(lab).jkt
    assert own_key is (choice is not ProofChoice.OTHER_KEY)
    key = jwt.PyJWK(jwk, algorithm="ES256")
    verifies = True
    try:
        jwt.decode(proof, key=key, algorithms=["ES256"], options={"verify_iat": False})
    except jwt.InvalidSignatureError:
        verifies = False
    assert verifies is (choice is not ProofChoice.BAD_SIGNATURE)


def test_a_form_placement_proof_names_post(sim: Simulator) -> None:
    """The proof's htm follows the request method: POST when the token travels in the form body."""
    scenario = get_scenario("dpop-success").with_(placement=Placement.FORM)
    (proof,) = sim.exchange(scenario).client_request.header_values("DPoP")
    assert proof_claims(proof)["htm"] == "POST"


def test_a_forged_client_cert_is_sent_by_the_client_itself(sim: Simulator, lab: Lab) -> None:
    """forged_client_cert adds an RFC 9440 Client-Cert carrying the victim's certificate."""
    exchange = sim.exchange(get_scenario("forged-client-cert"))
    (value,) = exchange.client_request.header_values("Client-Cert")
    assert decode_client_cert(value) == lab.client.der
    assert exchange.request is not None
    assert exchange.request.client_cert is None
    assert exchange.request.header_values("Client-Cert") == [value]
    assert not exchange.request.from_proxy


def test_a_direct_request_carries_the_handshake_certificate(sim: Simulator, lab: Lab) -> None:
    """Directly, the application gets the TLS layer's certificate DER, no header."""
    exchange = sim.exchange(get_scenario("success"))
    assert exchange.request is not None
    assert exchange.request.client_cert == lab.client.der
    assert exchange.identity == lab.client
    assert not exchange.via_proxy


def test_an_aborted_handshake_leaves_no_request(sim: Simulator) -> None:
    """When TLS aborts, nothing reaches the application."""
    exchange = sim.exchange(get_scenario("required-no-cert-tls13"))
    assert exchange.request is None
    assert exchange.tls.alert is not None


def test_an_unknown_token_variant_cannot_be_realised(sim: Simulator) -> None:
    """A scenario naming a token variant the lab does not have is a ScenarioError on "token"."""
    with pytest.raises(ScenarioError) as info:
        sim.exchange(get_scenario("success").with_(token="golden-ticket"))
    assert info.value.field == "token"


# --------------------------------------------------------------------------------------------------
# The proxy (RFC 9440 §2).


def test_through_proxy_strips_the_clients_client_cert_and_adds_the_handshakes(lab: Lab) -> None:
    """RFC 9440 §2: the proxy removes any Client-Cert it received and sets its own from the handshake."""
    sent = Request(headers=(("client-cert", encode_client_cert(lab.other_client.der)),))
    tls = handshake(
        client_auth=ClientAuth.OPTIONAL,
        version=TlsVersion.TLS1_3,
        presented=lab.client,
        roots=[lab.ca.certificate],
    )
    forwarded = through_proxy(sent, tls)
    assert forwarded.header_values("Client-Cert") == [encode_client_cert(lab.client.der)]
    assert forwarded.from_proxy
    assert forwarded.client_cert is None


def test_through_proxy_without_a_certificate_forwards_no_client_cert(lab: Lab) -> None:
    """RFC 9440 §2: absence of the header means no certificate; a smuggled one is gone."""
    sent = Request(headers=(("Client-Cert", encode_client_cert(lab.client.der)),))
    tls = handshake(
        client_auth=ClientAuth.OPTIONAL,
        version=TlsVersion.TLS1_3,
        presented=None,
        roots=[lab.ca.certificate],
    )
    assert through_proxy(sent, tls).header_values("Client-Cert") == []
    broken = through_proxy(sent, tls, strips=False)
    assert broken.header_values("Client-Cert") == [encode_client_cert(lab.client.der)]


def test_a_proxied_scenario_reaches_the_origin_with_a_client_cert_header(
    sim: Simulator, lab: Lab
) -> None:
    """A proxy scenario's origin request has the handshake's certificate as Client-Cert and no TLS one."""
    exchange = sim.exchange(get_scenario("proxy-success"))
    assert exchange.via_proxy
    assert exchange.request is not None
    (value,) = exchange.request.header_values("Client-Cert")
    assert decode_client_cert(value) == lab.client.der
    smuggled = sim.exchange(get_scenario("proxy-smuggled-header"))
    assert smuggled.client_request.header_values("Client-Cert")
    assert smuggled.request is not None
    assert smuggled.request.header_values("Client-Cert") == []


# --------------------------------------------------------------------------------------------------
# Client-Cert encoding (RFC 9440 §2.2).


def test_client_cert_is_a_structured_field_byte_sequence(lab: Lab) -> None:
    """encode_client_cert gives `:base64(DER):` and decode_client_cert reverses it (whitespace ignored)."""
    value = encode_client_cert(lab.client.der)
    assert value == ":" + base64.b64encode(lab.client.der).decode() + ":"
    assert re.fullmatch(r":[A-Za-z0-9+/]+=*:", value)
    assert decode_client_cert(value) == lab.client.der
    assert decode_client_cert(f"  {value} ") == lab.client.der


@pytest.mark.parametrize(
    "value",
    ["", ":", "abc", ":abc", "abc:", "MIIB:", ":not base64!:", ":YWJj$:", "<cert>"],
)
def test_malformed_client_cert_values_are_refused(value: str) -> None:
    """Anything but `:base64:` is a ScenarioError on Client-Cert citing RFC 9440."""
    with pytest.raises(ScenarioError) as info:
        decode_client_cert(value)
    assert info.value.field == "Client-Cert"


# --------------------------------------------------------------------------------------------------
# Requests.


def test_request_headers_are_looked_up_case_insensitively() -> None:
    """header_values, without and with_header treat field names case-insensitively (RFC 9110 §5.1)."""
    request = Request(headers=(("authorization", "a"), ("X-Other", "b"), ("AUTHORIZATION", "c")))
    assert request.header_values("Authorization") == ["a", "c"]
    assert request.without("Authorization").headers == (("X-Other", "b"),)
    assert request.with_header("DPoP", "p").header_values("dpop") == ["p"]


def test_request_renders_as_http_text() -> None:
    """http_text is the request line, Host, the fields, Content-Length and the body."""
    request = Request(
        method="POST",
        url="https://rs.mtlslab.test/resource?x=1",
        headers=(("Content-Type", "application/x-www-form-urlencoded"),),
        body=b"access_token=t",
    )
    assert request.target == "/resource?x=1"
    assert request.host == "rs.mtlslab.test"
    assert request.http_text() == (
        "POST /resource?x=1 HTTP/1.1\r\nHost: rs.mtlslab.test\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 14\r\n\r\n"
        "access_token=t"
    )


# --------------------------------------------------------------------------------------------------
# The catalogue.


def test_the_catalogue_has_at_least_forty_scenarios_with_unique_stable_ids() -> None:
    """≥ 40 scenarios; ids are unique lower-case slugs; the ids already published are all still there."""
    ids = [s.id for s in CATALOGUE]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i) for i in ids)
    assert set(STABLE_IDS) <= set(ids)
    assert all(s.title and s.tags and s.expect is not None for s in CATALOGUE)


def test_the_debate_comes_first() -> None:
    """The catalogue opens with the issue's debate cases, then more debate rows, then the rest."""
    assert tuple(s.id for s in CATALOGUE[: len(DEBATE_FIRST)]) == DEBATE_FIRST
    assert all("debate" in s.tags for s in CATALOGUE[:10])
    assert scenarios_tagged("debate")[: len(DEBATE_FIRST)] == CATALOGUE[: len(DEBATE_FIRST)]


def test_every_scenarios_expect_is_the_baseline_finding(matrix: Matrix) -> None:
    """Each scenario documents the finding the RFC baseline reaches, and it is the one reached."""
    wrong = {
        s.id: (s.expect, matrix.cell(s.id, "baseline").finding)
        for s in CATALOGUE
        if matrix.cell(s.id, "baseline").finding is not s.expect
    }
    assert wrong == {}


def test_the_catalogue_reaches_every_finding(matrix: Matrix) -> None:
    """Under at least one built-in interpretation, every finding occurs somewhere in the catalogue."""
    reached = {cell.finding for cell in matrix.cells.values()}
    assert set(Finding) - reached == set()
    assert {s.expect for s in CATALOGUE} >= set(Finding) - {Finding.MTLS_TOKEN_AS_BEARER}


def test_the_catalogue_covers_every_deployment_mode() -> None:
    """Every client auth mode, both TLS versions, topologies, trust, binding, validation."""
    deployments = [s.deployment for s in CATALOGUE]
    assert {d.client_auth for d in deployments} == set(ClientAuth)
    assert {d.tls_version for d in deployments} == set(TlsVersion)
    assert {d.topology for d in deployments} == set(Topology)
    proxied = [d for d in deployments if d.topology is Topology.PROXY]
    assert {d.proxy_trusted for d in proxied} == {True, False}
    assert {d.checks_binding for d in deployments} == {True, False}
    assert {d.requires_binding for d in deployments} == {True, False}
    assert {d.validation for d in deployments} == set(Validation)


def test_the_catalogue_covers_every_presentation_variant() -> None:
    """Every certificate, scheme and placement, a forged Client-Cert, and the DPoP proofs that matter."""
    presentations = [s.presentation for s in CATALOGUE]
    assert {p.certificate for p in presentations} == set(CertChoice)
    assert {p.scheme for p in presentations} == set(Scheme)
    assert {p.placement for p in presentations} == set(Placement)
    assert any(p.forged_client_cert is not None for p in presentations)
    assert any(p.raw_authorization is not None for p in presentations)
    # every proof a client can send with the DPoP scheme (AUTO sends a valid one with it)
    proofs = {
        ProofChoice.VALID if p.dpop_proof is ProofChoice.AUTO else p.dpop_proof
        for p in presentations
        if p.scheme is Scheme.DPOP
    }
    assert proofs == set(ProofChoice) - {ProofChoice.AUTO}


def test_the_catalogue_is_evaluable_under_every_builtin(matrix: Matrix) -> None:
    """Every catalogue scenario has a cell under every built-in interpretation."""
    assert len(matrix.cells) == len(CATALOGUE) * len(BUILTINS)


def test_get_scenario_finds_by_id_and_suggests_near_ids_for_a_typo() -> None:
    """get_scenario("mismach") raises UnknownScenarioError suggesting "mismatch"."""
    assert get_scenario("mismatch").id == "mismatch"
    with pytest.raises(UnknownScenarioError) as info:
        get_scenario("mismach")
    assert "mismatch" in info.value.suggestions
    assert info.value.field == "scenario"
    assert "did you mean" in str(info.value)
    with pytest.raises(UnknownScenarioError) as nothing:
        get_scenario("zzzzzzzzzzzz")
    assert nothing.value.suggestions == ()


def test_the_attack_catalogue_has_every_attack_with_its_finding(matrix: Matrix) -> None:
    """Each attack of issue 6 is a catalogue scenario tagged attack, with a description, and its expect is
    the finding the baseline reaches; every attack-tagged scenario is one of them."""
    tagged = {s.id: s for s in scenarios_tagged("attack")}
    assert set(tagged) == set(ATTACKS)
    for scenario_id, finding in ATTACKS.items():
        scenario = tagged[scenario_id]
        assert scenario.expect is finding, scenario_id
        assert matrix.cell(scenario_id, "baseline").finding is finding, scenario_id
        assert len(scenario.description) > 40, scenario_id
    assert set(ATTACKS) <= {s.id for s in CATALOGUE}


def test_scenarios_tagged_needs_every_tag() -> None:
    """scenarios_tagged("proxy", "attack") keeps only scenarios with both tags."""
    both = scenarios_tagged("proxy", "attack")
    assert both
    assert all({"proxy", "attack"} <= set(s.tags) for s in both)
    assert scenarios_tagged("no-such-tag") == ()


def test_client_cert_without_padding_or_with_parameters_is_read(lab: Lab) -> None:
    """RFC 8941 §4.2.7: missing '=' padding is tolerated; §3.3.5: parameters after the value are ignored."""
    value = encode_client_cert(lab.client.der)
    unpadded = value[:-1].rstrip("=") + ":"
    assert decode_client_cert(unpadded) == lab.client.der
    assert decode_client_cert(value + ";source=proxy") == lab.client.der
    with pytest.raises(ScenarioError):
        decode_client_cert(value + "junk")


def test_relative_client_auth_values_keep_what_they_do_not_change() -> None:
    """required-as-deployed keeps the deployment's chain validation; no-ca-as-deployed keeps whether and
    when it asks: a server that never asks, or asks late, is left as it is."""
    from mtlslab.scenarios import Relative

    required, no_ca = Relative.REQUIRED_AS_DEPLOYED, Relative.NO_CA_AS_DEPLOYED
    assert required.applied_to(ClientAuth.OPTIONAL) is ClientAuth.REQUIRED
    assert required.applied_to(ClientAuth.OPTIONAL_NO_CA) is ClientAuth.REQUIRED_NO_CA
    assert required.applied_to(ClientAuth.NONE) is ClientAuth.REQUIRED
    assert no_ca.applied_to(ClientAuth.OPTIONAL) is ClientAuth.OPTIONAL_NO_CA
    assert no_ca.applied_to(ClientAuth.REQUIRED) is ClientAuth.REQUIRED_NO_CA
    assert no_ca.applied_to(ClientAuth.NONE) is ClientAuth.NONE
    assert no_ca.applied_to(ClientAuth.POST_HANDSHAKE) is ClientAuth.POST_HANDSHAKE
    assert Deployment().overridden({"client_auth": no_ca}).client_auth is ClientAuth.OPTIONAL_NO_CA
