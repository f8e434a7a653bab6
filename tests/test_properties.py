"""Properties: any scenario, any request, any token — the engine returns a well-formed answer, never raises,
never lets a line break into a response header, refuses oversized and duplicate-member input, and opens no
socket. MTLSLAB_HYPOTHESIS_EXAMPLES raises the example count for a longer run (README)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.parse
from typing import Any

import jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtlslab import jose
from mtlslab import scenarios as scenarios_module
from mtlslab.challenge import parse_www_authenticate
from mtlslab.compare import Simulator
from mtlslab.findings import Finding
from mtlslab.interpretations import BUILTINS, Outcome
from mtlslab.jose import check_proof, verify_jws
from mtlslab.pki import LAB_NOW
from mtlslab.rs import Decision, RsConfig, config_for, evaluate, head_size
from mtlslab.scenarios import (
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
    encode_client_cert,
)
from mtlslab.tls import ALERTS
from mtlslab.tokens import LAB_RESOURCE, TOKEN_VARIANTS, DPoPKey, access_token_hash, dpop_proof

EXAMPLES = int(os.environ.get("MTLSLAB_HYPOTHESIS_EXAMPLES", "300"))
BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RFC_URL = re.compile(r"https://www\.rfc-editor\.org/rfc/rfc\d{4}#section-\d+(\.\d+)*")

# --------------------------------------------------------------------------------------------------
# Strategies.

deployments = st.builds(
    Deployment,
    client_auth=st.sampled_from(list(ClientAuth)),
    tls_version=st.sampled_from(list(TlsVersion)),
    topology=st.sampled_from(list(Topology)),
    proxy_trusted=st.booleans(),
    proxy_strips_client_cert=st.booleans(),
    checks_binding=st.booleans(),
    requires_binding=st.booleans(),
    validation=st.sampled_from(list(Validation)),
    mtls_scheme=st.booleans(),
    dpop=st.booleans(),
)
presentations = st.builds(
    Presentation,
    certificate=st.sampled_from(list(CertChoice)),
    scheme=st.sampled_from(list(Scheme)),
    placement=st.sampled_from(list(Placement)),
    forged_client_cert=st.none() | st.sampled_from(list(CertChoice)),
    dpop_proof=st.sampled_from(list(ProofChoice)),
    raw_authorization=st.none()
    | st.sampled_from(
        [
            "Bearer",
            "Bearer  ",
            "bearer x y",
            "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
            "DPoP",
            "Bearer $token\r\nClient-Cert: $client_cert",
            "DPoP $token\nDPoP: $token\r\nX-Other: 1",
        ]
    ),
)
scenarios = st.builds(
    Scenario,
    id=st.just("arbitrary"),
    title=st.just("an arbitrary scenario"),
    deployment=deployments,
    presentation=presentations,
    token=st.sampled_from(sorted(TOKEN_VARIANTS)),
)

latin1 = st.binary(max_size=64).map(lambda b: b.decode("latin-1"))
texts = st.text(max_size=64) | latin1
header_names = (
    st.sampled_from(["Authorization", "authorization", "DPoP", "Client-Cert", "Content-Type"])
    | texts
)
header_values = texts | st.sampled_from(
    [
        "Bearer ",
        "DPoP a.b.c",
        ":AAAA:",
        "::",
        "application/x-www-form-urlencoded",
        "Bearer eyJhbGciOiJub25lIn0.e30.",
    ]
)
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "get", ""]) | texts
urls = (
    st.sampled_from(
        [
            "https://rs.mtlslab.test/resource",
            "https://rs.mtlslab.test/resource?access_token=a.b.c",
            "https://rs.mtlslab.test/resource?access_token=&access_token=x",
            "http://[::1/resource?access_token=x",
            "https://rs.mtlslab.test:99999/r?access_token=%FF%00",
        ]
    )
    | texts
    | texts.map(lambda t: "https://rs.mtlslab.test/resource?access_token=" + t)
)
bodies = st.binary(max_size=128) | texts.map(lambda t: ("access_token=" + t).encode("utf-8"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


json_values = st.recursive(
    st.none()  # JSON values (RFC 8259): no NaN or Infinity, which the engine refuses as not JSON
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=4,
)
jose_headers = st.fixed_dictionaries(
    {},
    optional={
        "typ": st.sampled_from(["at+jwt", "JWT", "dpop+jwt"]) | json_values,
        "alg": st.sampled_from(["ES256", "none", "HS256", "RS256"]) | json_values,
        "kid": json_values,
        "jwk": json_values,
        "crit": json_values,
        "b64": json_values,
    },
)
claim_sets = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(
        ("iss", "aud", "exp", "nbf", "iat", "sub", "client_id", "jti", "scope", "cnf"), json_values
    ),
)
jwt_shaped = st.builds(
    lambda h, c, sig: ".".join([_b64(json.dumps(h).encode()), _b64(json.dumps(c).encode()), sig]),
    jose_headers,
    claim_sets,
    st.sampled_from(["", "AAAA", "not*base64"]) | st.binary(max_size=64).map(_b64),
)
tokens = st.text(max_size=200) | latin1 | jwt_shaped


# --------------------------------------------------------------------------------------------------
# Checks.


_PARSED: set[str] = set()  # header values already shown to parse (interpretations repeat them)


def assert_well_formed(outcome: Outcome, interpretation: str) -> None:
    """A TLS alert with a registered number, or an HTTP status whose headers parse and hold no CR/LF."""
    if outcome.tls_alert is not None:
        assert outcome.finding is Finding.TLS_REJECTED
        assert ALERTS[outcome.tls_alert.name] == outcome.tls_alert.code
        assert outcome.tls_alert.when in ("handshake", "first_read")
        assert outcome.status is None
        assert outcome.www_authenticate is None
        return
    assert isinstance(outcome.status, int)
    assert 100 <= outcome.status <= 599
    for _name, value in outcome.headers():
        assert not set(value) & {"\r", "\n", "\0"}
    if outcome.www_authenticate is not None:
        if outcome.www_authenticate not in _PARSED:
            assert parse_www_authenticate(outcome.www_authenticate)
            _PARSED.add(outcome.www_authenticate)
    elif outcome.status == 401:
        assert interpretation == "apicast"
    assert isinstance(outcome.body, str)


def assert_decision(decision: Decision) -> None:
    """A finding from the closed set and a trace whose every step cites an RFC section."""
    assert isinstance(decision.finding, Finding)
    assert decision.trace
    for step in decision.trace:
        assert RFC_URL.fullmatch(step.clause.url), step


# --------------------------------------------------------------------------------------------------
# Properties.


@BOUNDED
@given(scenario=scenarios)
def test_any_scenario_evaluates_under_every_builtin(sim: Simulator, scenario: Scenario) -> None:
    """Every combination of the model's enums and any token variant gives every built-in a well-formed answer."""
    for interpretation in BUILTINS.values():
        cell = sim.cell(scenario, interpretation)
        assert cell.finding is cell.outcome.finding
        assert_well_formed(cell.outcome, interpretation.name)
        for step in cell.trace:
            assert RFC_URL.fullmatch(step.clause.url), step


def configs(sim: Simulator) -> list[RsConfig]:
    """Three resource servers: plain; lax and introspecting behind a trusted proxy; MTLS-scheme, no DPoP."""
    base = config_for(Deployment(), jwks=sim.jwks, introspect=sim.introspect)
    return [
        base,
        dataclasses.replace(
            base,
            trust_client_cert_header=True,
            validation=Validation.INTROSPECTION,
            checks_binding=False,
        ),
        dataclasses.replace(base, dpop=False, mtls_scheme=True, requires_binding=True),
    ]


@BOUNDED
@given(
    method=methods,
    url=urls,
    headers=st.lists(st.tuples(header_names, header_values), max_size=6),
    body=bodies,
    cert=st.none() | st.binary(max_size=64) | st.just(b"lab-client"),
    from_proxy=st.booleans(),
)
def test_any_request_is_decided_never_raised(
    sim: Simulator,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes,
    cert: bytes | None,
    from_proxy: bool,
) -> None:
    """Arbitrary header names and values (text and latin-1), bodies, URLs and methods: evaluate returns."""
    der = sim.lab.client.der if cert == b"lab-client" else cert
    request = Request(
        method=method,
        url=url,
        headers=tuple(headers),
        body=body,
        client_cert=der,
        from_proxy=from_proxy,
    )
    for config in configs(sim):
        assert_decision(evaluate(request, config, now=sim.now))


@BOUNDED
@given(
    token=tokens,
    scheme=st.sampled_from(["Bearer", "bearer", "DPoP", "MTLS"]),
    cert=st.booleans(),
    extra=st.lists(st.tuples(st.sampled_from(["DPoP", "Client-Cert"]), texts), max_size=2),
)
def test_any_token_in_the_authorization_header_is_decided(
    sim: Simulator, token: str, scheme: str, cert: bool, extra: list[tuple[str, str]]
) -> None:
    """`Authorization: Bearer <anything>` (and the other schemes) never makes evaluate raise."""
    headers: list[tuple[str, Any]] = [("Authorization", f"{scheme} {token}"), *extra]
    if cert:
        headers.append(("Client-Cert", encode_client_cert(sim.lab.client.der)))
    request = Request(
        headers=tuple(headers), client_cert=sim.lab.client.der if cert else None, from_proxy=cert
    )
    decisions = [evaluate(request, config, now=sim.now) for config in configs(sim)]
    for decision in decisions:
        assert_decision(decision)
    for interpretation in BUILTINS.values():
        assert_well_formed(interpretation.respond(decisions[0]), interpretation.name)


# --------------------------------------------------------------------------------------------------
# Hostile input reaches no response header; oversized and duplicate-member input is refused.

hostile = st.text(max_size=48) | st.sampled_from(
    [
        "alice\u2028\r\nX-Injected: 1",
        "\r\n\r\nHTTP/1.1 200 OK\r\n",
        "\x00",
        "\ud800",
        '"},"sub":"admin',
        "<script>",
    ]
)


@BOUNDED
@given(sub=hostile, client_id=hostile)
def test_claims_are_echoed_only_escaped_into_the_body(
    sim: Simulator, sub: str, client_id: str
) -> None:
    """A genuine token whose sub and client_id hold CR, LF, NUL, U+2028 or quotes: every built-in serves it
    with clean headers, and a JSON body gives back exactly those strings (never a broken structure)."""
    claims = sim.asrv.claims(
        subject=sub, client_id=client_id, cnf={"x5t#S256": sim.lab.client.x5t_s256}
    )
    token = sim.asrv.sign(claims)
    request = Request(
        headers=(("Authorization", f"Bearer {token}"),), client_cert=sim.lab.client.der
    )
    decision = evaluate(request, configs(sim)[0], now=sim.now)
    assert decision.finding is Finding.ACCEPTED
    for interpretation in BUILTINS.values():
        outcome = interpretation.respond(decision)
        assert_well_formed(outcome, interpretation.name)
        if outcome.status == 200 and outcome.content_type == "application/json":
            assert not set(outcome.body) & {"\r", "\n", "\0", "\u2028"}
            echoed = json.loads(outcome.body)
            assert (echoed["sub"], echoed["client_id"]) == (sub, client_id)


@BOUNDED
@given(
    name=st.sampled_from(["Authorization", "DPoP", "Client-Cert", "X-Anything"]),
    value=hostile | latin1,
    where=st.sampled_from(["alone", "after-token"]),
)
def test_no_response_header_ever_holds_cr_lf_or_nul(
    sim: Simulator, name: str, value: str, where: str
) -> None:
    """CR, LF or NUL in any request header value, under every server and every built-in: no emitted header
    value carries one, and every WWW-Authenticate parses (interpretations never echo input into headers)."""
    bound = sim.asrv.mint("bound").value
    headers = [(name, value)]
    if where == "after-token":
        headers.insert(0, ("Authorization", f"Bearer {bound}"))
    request = Request(headers=tuple(headers), client_cert=sim.lab.client.der)
    for config in configs(sim):
        decision = evaluate(request, config, now=sim.now)
        assert_decision(decision)
        for interpretation in BUILTINS.values():
            assert_well_formed(interpretation.respond(decision), interpretation.name)


@BOUNDED
@given(
    headers=st.lists(st.tuples(header_names, st.text(max_size=300)), max_size=4),
    url=urls,
    body=st.binary(max_size=400),
)
def test_size_limits_hold_exactly_and_come_first(
    sim: Simulator, headers: list[tuple[str, str]], url: str, body: bytes
) -> None:
    """headers_too_large exactly when head_size exceeds the limit, else body_too_large exactly when the body
    does — whatever the request holds; within both limits, the size is never the finding."""
    config = dataclasses.replace(configs(sim)[0], max_header_bytes=400, max_body_bytes=200)
    request = Request(method="POST", url=url, headers=tuple(headers), body=body)
    decision = evaluate(request, config, now=sim.now)
    assert_decision(decision)
    if head_size(request) > 400:
        assert decision.finding is Finding.HEADERS_TOO_LARGE
        assert len(decision.trace) == 1
    elif len(body) > 200:
        assert decision.finding is Finding.BODY_TOO_LARGE
        assert len(decision.trace) == 1
    else:
        assert decision.finding not in (Finding.HEADERS_TOO_LARGE, Finding.BODY_TOO_LARGE)


@BOUNDED
@given(
    claims=claim_sets,
    name=st.sampled_from(["cnf", "sub", "iss", "aud", "exp", "x5t#S256"]) | st.text(max_size=6),
    value=json_values,
    first=st.booleans(),
)
def test_a_duplicate_member_name_is_never_accepted(
    sim: Simulator, claims: dict[str, Any], name: str, value: Any, first: bool
) -> None:
    """RFC 7519 §4: an AS-signed payload naming any member twice — first or last, at the top or inside cnf —
    is token_malformed, whatever else the claims say."""
    good = sim.asrv.claims(cnf={"x5t#S256": sim.lab.client.x5t_s256})
    good.update(claims)
    body = json.dumps(good, separators=(",", ":"))
    member = f"{json.dumps(name)}:{json.dumps(value)}"
    if name == "x5t#S256":  # inside an object: cnf with two thumbprints
        body = body[:-1] + ',"cnf":{' + member + "," + member + "}}"
    elif first:
        body = "{" + member + "," + body[1:-1] + "," + member + "}"
    else:
        body = body[:-1] + "," + member + "," + member + "}"
    token = sim.asrv.sign(body.encode())
    request = Request(
        headers=(("Authorization", f"Bearer {token}"),), client_cert=sim.lab.client.der
    )
    decision = evaluate(request, configs(sim)[0], now=sim.now)
    assert decision.finding is Finding.TOKEN_MALFORMED
    assert "twice" in decision.detail


# --------------------------------------------------------------------------------------------------
# Nothing in the core opens a socket or reads a URL — proved with audit hooks, not monkeypatching.

_AUDIT = textwrap.dedent(
    """
    import json, socket, sys
    events = []
    NETWORK = ("socket.", "urllib.", "http.client.", "ftplib.", "smtplib.", "webbrowser.")
    sys.addaudithook(lambda event, _args: events.append(event) if event.startswith(NETWORK) else None)
    from mtlslab.compare import Simulator
    from mtlslab.scenarios import scenarios_tagged
    matrix = Simulator(seed="audit").matrix(scenarios_tagged("attack"))
    cells = len(matrix.cells)
    quiet = list(events)
    socket.socket().close()  # the positive control: the hook does see a socket
    print(json.dumps({"cells": cells, "during": quiet, "control": events[len(quiet):]}))
    """
)


def test_the_attack_matrix_opens_no_socket_and_fetches_no_url() -> None:
    """The attack scenarios (jku/x5u URLs included) under every built-in, in a fresh interpreter with an audit
    hook on socket.*, urllib.*, http.client.*: no event at all — while a socket made afterwards is seen."""
    done = subprocess.run(
        [sys.executable, "-c", _AUDIT], capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["cells"] >= 30 * len(BUILTINS)
    assert report["during"] == []
    assert "socket.__new__" in report["control"]


# --------------------------------------------------------------------------------------------------
# The engine reads a compact JWS itself (once, strictly) and verifies with pyjwt's algorithm objects:
# whatever pyjwt's own decode refuses, it refuses too.


def _one_reading(raw: bytes) -> dict[str, Any] | None:
    """``raw`` as a JSON object naming no member twice at any depth, else None (the test's own reader)."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            raise ValueError("a member name occurs twice")
        return dict(pairs)

    try:
        value = json.loads(raw, object_pairs_hook=unique)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _b64url_decoded(segment: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except ValueError:
        return None


header_members = st.dictionaries(
    st.sampled_from(["crit", "b64", "kid", "typ", "alg", "jku", "x5c", "zip"]),
    st.none()
    | st.booleans()
    | st.integers(-2, 2)
    | st.sampled_from(["at+jwt", "JWT", "b64", "ES256", "none", "HS256"])
    | st.lists(st.sampled_from(["b64", "exp", ""]), max_size=2),
    max_size=3,
)
payloads = (
    st.just("claims")
    | st.binary(max_size=24)
    | st.sampled_from([b'{"sub":"a","sub":"b"}', b"[]", b'{"cnf":{"x5t#S256":"a","x5t#S256":"b"}}'])
)
edits = st.none() | st.tuples(
    st.integers(0, 4096),
    st.sampled_from(["A", "_", "-", "=", ".", "+", "/", " ", "é", "\x00"]),
    st.sampled_from(["replace", "insert", "delete"]),
)


@BOUNDED
@given(
    segment=st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=12
    )
)
def test_a_segment_is_canonical_exactly_when_it_is_its_bytes_own_encoding(segment: str) -> None:
    """RFC 7515 §2 base64url, read strictly: a segment is accepted exactly when decoding and encoding again
    gives it back (the definition), though the reader looks only at the last character's unused bits."""
    if len(segment) % 4 == 1:
        return  # never a whole number of bytes; refused on length
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    canonical = base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == segment
    try:
        read = jose._b64url_part(segment, "payload")
    except ValueError:
        assert not canonical, segment
    else:
        assert canonical, segment
        assert read == raw


@BOUNDED
@given(
    changes=st.dictionaries(
        st.sampled_from(
            ["iss", "aud", "exp", "nbf", "iat", "sub", "client_id", "scope", "cnf", "jti"]
        ),
        json_values
        | st.integers(min_value=10**300, max_value=10**400)
        | st.just(1e308)
        | st.fixed_dictionaries({"x5t#S256": json_values}),
        max_size=3,
    )
)
def test_a_signed_access_token_with_any_claim_values_is_decided_never_raised(
    sim: Simulator, changes: dict[str, Any]
) -> None:
    """What the issuer signs is trusted for its signature, not its shape: claims with any JSON values (huge
    integers, floats near the limit, objects where strings belong) are decided under every configuration,
    with the bound certificate and without; evaluate never raises."""
    claims = {**sim.asrv.claims(cnf={"x5t#S256": sim.lab.client.x5t_s256}), **changes}
    token = sim.asrv.sign(claims)
    for der in (sim.lab.client.der, None):
        request = Request(headers=(("Authorization", f"Bearer {token}"),), client_cert=der)
        for n, config in enumerate(configs(sim)):
            decision = evaluate(request, config, now=sim.now)
            assert_decision(decision)
            if not changes and der is not None and n == 0:
                assert decision.finding is Finding.ACCEPTED  # the control: the plain server accepts


@BOUNDED
@given(
    changes=st.dictionaries(
        st.sampled_from(["jti", "htm", "htu", "iat", "ath", "nbf", "exp"]),
        json_values | st.integers(min_value=10**300, max_value=10**400) | st.just(1e308),
        max_size=3,
    )
)
def test_a_signed_proof_with_any_claim_values_never_raises(
    sim: Simulator, changes: dict[str, Any]
) -> None:
    """Claims a valid signature vouches for can still hold anything JSON can (huge integers, floats near the
    limit, lists where strings belong): the proof check answers with a problem or a thumbprint, never an
    exception, so the engine stays total (RFC 9449 §4.3)."""
    lab_key = DPoPKey.for_lab(sim.lab)
    token = "an-access-token"
    proof = dpop_proof(
        lab_key, htm="GET", htu=LAB_RESOURCE, access_token=token, claim_overrides=changes
    )
    problem, jkt = check_proof(
        proof, method="GET", url=LAB_RESOURCE, token=token, now=LAB_NOW, max_age=300
    )
    assert isinstance(problem, str)
    assert (problem == "") == (jkt == lab_key.jkt)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _corrupted(jws: str, edit: tuple[int, str, str] | None, padded: int | None) -> str:
    """``jws`` with one character replaced, inserted or deleted (``edit``), then part ``padded`` given the
    '=' padding base64url leaves out (RFC 7515 §2)."""
    if edit is not None:
        at, char, how = edit
        at %= len(jws)
        jws = {
            "replace": jws[:at] + char + jws[at + 1 :],
            "insert": jws[:at] + char + jws[at:],
            "delete": jws[:at] + jws[at + 1 :],
        }[how]
    if padded is not None and jws.count(".") == 2:
        parts = jws.split(".")
        parts[padded] += "=" * (-len(parts[padded]) % 4 or 4)
        jws = ".".join(parts)
    return jws


@BOUNDED
@given(
    header=header_members,
    payload=payloads,
    edit=edits,
    padded=st.sampled_from([None, 0, 1, 2]),
)
def test_the_jws_reader_accepts_only_what_pyjwt_accepts(
    sim: Simulator,
    header: dict[str, Any],
    payload: str | bytes,
    edit: tuple[int, str, str] | None,
    padded: int | None,
) -> None:
    """Signed tokens with odd header members and payloads, then one character replaced, inserted or deleted,
    or a part padded with '=': when the engine accepts the signature, pyjwt's decode accepts the token and
    reads the same claims; when pyjwt accepts one that is unpadded, typ at+jwt, without crit or b64, naming
    the issuer's key, whose header and claims name no member twice, the engine accepts it too."""
    claims = sim.asrv.claims() if payload == "claims" else payload
    assert not isinstance(claims, str)
    try:
        token = sim.asrv.sign(claims, headers=header)
    except (TypeError, ValueError, KeyError, NotImplementedError, jwt.PyJWTError):
        return  # pyjwt will not even make this one
    token = _corrupted(token, edit, padded)
    key = sim.jwks.keys[0]
    verified = verify_jws.__wrapped__(token, sim.jwks)
    try:
        decoded = jwt.PyJWS().decode_complete(token, key=key, algorithms=[key.algorithm_name])
    except jwt.PyJWTError:
        decoded = None
    if verified.finding is None:
        assert decoded is not None, token
        assert verified.claims == json.loads(decoded["payload"])
        return
    if decoded is None or "=" in token:
        return
    read_header = _one_reading(_b64url_decoded(token.split(".")[0]) or b"")
    if (
        read_header is not None
        and str(read_header.get("typ")).lower() == "at+jwt"
        and "crit" not in read_header
        and "b64" not in read_header
        and read_header.get("kid") == key.key_id
        and _one_reading(decoded["payload"]) is not None
    ):
        raise AssertionError(f"pyjwt accepts what the engine refuses ({verified.reason}): {token}")


proof_headers = st.dictionaries(
    st.sampled_from(["crit", "b64", "kid", "typ", "alg", "zip"]),
    st.none()
    | st.booleans()
    | st.integers(-2, 2)
    | st.sampled_from(["dpop+jwt", "JWT", "b64", "ES256", "none"])
    | st.lists(st.sampled_from(["b64", "exp", ""]), max_size=2),
    max_size=2,
)
proof_payloads = (
    st.just("claims")
    | st.binary(max_size=24)
    | st.sampled_from([b'{"jti":"a","jti":"b"}', b"[]", b'{"htm":"GET","htm":"GET"}'])
)


@BOUNDED
@given(
    header=proof_headers,
    payload=proof_payloads,
    edit=edits,
    padded=st.sampled_from([None, 0, 1, 2]),
)
def test_the_dpop_proof_reader_accepts_only_what_pyjwt_accepts(
    sim: Simulator,
    header: dict[str, Any],
    payload: str | bytes,
    edit: tuple[int, str, str] | None,
    padded: int | None,
) -> None:
    """DPoP proofs (RFC 9449 §4.3) are read by the engine's own strict reader, as access tokens are. The
    proofs are encoded by hand, so headers pyjwt would not write (a numeric kid, say) occur too, and signed
    by the lab's DPoP key, whose jwk they carry. When the engine finds a proof valid, pyjwt's JWS decode
    accepts it and reads the same claims; when pyjwt accepts one that is unpadded, names no member twice,
    has no crit or b64, says typ dpop+jwt and carries the valid claims, the engine finds it valid too."""
    lab_key = DPoPKey.for_lab(sim.lab)
    token = "an-access-token"
    valid_claims = {
        "jti": "p-1",
        "htm": "GET",
        "htu": LAB_RESOURCE,
        "iat": int(LAB_NOW.timestamp()),
        "ath": access_token_hash(token),
    }
    raw = json.dumps(valid_claims).encode() if payload == "claims" else payload
    assert isinstance(raw, bytes)
    proof_header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": lab_key.public_jwk, **header}
    signing_input = f"{_b64url(json.dumps(proof_header).encode())}.{_b64url(raw)}"
    signature = jwt.get_algorithm_by_name("ES256").sign(signing_input.encode(), lab_key.private_key)
    proof = _corrupted(f"{signing_input}.{_b64url(signature)}", edit, padded)
    problem, jkt = check_proof(
        proof, method="GET", url=LAB_RESOURCE, token=token, now=LAB_NOW, max_age=300
    )
    try:
        decoded = jwt.PyJWS().decode_complete(
            proof, key=jwt.PyJWK(lab_key.public_jwk, algorithm="ES256"), algorithms=["ES256"]
        )
    except jwt.PyJWTError:
        decoded = None
    if not problem:
        assert decoded is not None, proof
        assert _one_reading(decoded["payload"]) == valid_claims
        assert jkt == lab_key.jkt
        return
    if decoded is None or "=" in proof:
        return
    read = _one_reading(_b64url_decoded(proof.split(".")[0]) or b"")
    if (
        read is not None
        and read.get("jwk") == lab_key.public_jwk
        and str(read.get("typ")).lower() in ("dpop+jwt", "application/dpop+jwt")
        and "crit" not in read
        and "b64" not in read
        and _one_reading(decoded["payload"]) == valid_claims
    ):
        raise AssertionError(f"pyjwt accepts what the engine refuses ({problem}): {proof}")


@BOUNDED
@given(value=st.text(max_size=64) | st.text(alphabet="AZaz09_-.~", max_size=64))
def test_the_access_token_field_is_form_urlencoded(value: str) -> None:
    """The query and form field a client sends is exactly urlencode's, also on the fast path that leaves a
    token of unreserved characters as it is (RFC 6750 §2.2, §2.3)."""
    assert scenarios_module._access_token_bytes(value).decode("ascii") == urllib.parse.urlencode(
        {"access_token": value}
    )
