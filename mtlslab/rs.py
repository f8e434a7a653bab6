"""The resource server's decision: :func:`evaluate` a request, get a :class:`Decision`.

Pure, with time injected. :func:`evaluate` is one pipeline of stages, run in spec order; each leaves trace
steps citing its clause, and the first that refuses ends the run with its :class:`~mtlslab.findings.Finding`:

0. **size** — request line and header fields at most :data:`MAX_HEADER_BYTES` (RFC 6585 §5: 431), body at
   most :data:`MAX_BODY_BYTES` (RFC 9110 §15.5.14: 413), refused before anything in them is parsed;
1. **certificate** — from the connection's TLS layer, or an RFC 9440 ``Client-Cert`` header trusted only from
   a configured proxy (RFC 8705 §3, RFC 9440 §2);
2. **token** — RFC 6750 §2.1 header (scheme compared case-insensitively, RFC 9110 §11.1), §2.2 form body,
   §2.3 query; more than one place is refused (RFC 6750 §2);
3. **validation** — a JWT access token per RFC 9068 §4, read and verified by :func:`mtlslab.jose.verify_jws`
   (the issuer's JWKS only, never a key the token names, RFC 8725 §3.10), then ``iss``, ``aud``, ``exp``,
   ``nbf``; or RFC 7662 introspection;
4. **binding** — RFC 8705 §3 (``cnf.x5t#S256`` against the certificate, compared in constant time),
   RFC 9449 §7 (DPoP proof and ``cnf.jkt``), RFC 7800 §3 (what ``cnf`` may hold). A ``cnf`` with several
   methods is checked for every method this server supports;
5. **scope** (RFC 6750 §3.1), and the result.

The stages follow in this order below, then the token endpoint's client authentication and the inspector.

Which HTTP status and error a finding becomes is :mod:`mtlslab.interpretations`' business. A rejected
request is a returned value; ``evaluate`` does not raise on any request it is given. :func:`inspect_token`
judges one token with the same reader and binding stage, so it cannot disagree with the engine.
"""

from __future__ import annotations

import copy
import datetime as dt
import html
import json
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeGuard, cast

from cryptography import x509

from mtlslab.challenge import TOKEN68
from mtlslab.errors import CertificateError, ScenarioError, TokenError
from mtlslab.findings import Finding
from mtlslab.jose import NONCE_PROBLEM, Jwks, check_proof, verify_jws
from mtlslab.pki import (
    LAB_NOW,
    ChainProblem,
    ChainVerdict,
    Identity,
    certificate_der,
    same_thumbprint,
    sha256_b64url,
    validate_client_chain,
)
from mtlslab.scenarios import (
    LAB_DPOP_NONCE,
    Deployment,
    Endpoint,
    Request,
    Topology,
    Validation,
    decode_client_cert,
)
from mtlslab.spec import Step, cite, shorten
from mtlslab.tokens import LAB_AUDIENCE, LAB_ISSUER, decode_unverified

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "BindingCheck",
    "Decision",
    "Jwks",
    "Registration",
    "RsConfig",
    "SignatureCheck",
    "TokenInspection",
    "config_for",
    "evaluate",
    "head_size",
    "inspect_token",
    "size_decision",
]

#: The default limit on the request line and header fields (see :func:`head_size`); the live server's too.
MAX_HEADER_BYTES = 16 * 1024
#: The default limit on the request body; the live server's too.
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class RsConfig:
    """What the resource server trusts and how strict it is."""

    jwks: Jwks
    issuer: str = LAB_ISSUER
    audience: str = LAB_AUDIENCE
    required_scope: str = "read"
    validation: Validation = Validation.JWT
    introspect: Callable[[str], Mapping[str, Any]] | None = field(default=None, compare=False)
    checks_binding: bool = True
    requires_binding: bool = False
    trust_client_cert_header: bool = False
    dpop: bool = True
    mtls_scheme: bool = False
    query_tokens: bool = True
    ignores_unknown_cnf: bool = False
    dpop_nonce: str | None = None  # the nonce this server asks for in DPoP proofs (RFC 9449 §9)
    resource_metadata: str | None = None  # the RFC 9728 metadata URL its challenges name
    origin_validates_chain: bool = False
    roots: tuple[x509.Certificate, ...] = ()  # trust anchors, for a server that validates chains
    endpoint: Endpoint = Endpoint.RESOURCE
    registration: Registration | None = None  # the client a token endpoint authenticates
    issue: Callable[[bytes], str] | None = field(default=None, compare=False)  # mints bound tokens
    leeway: int = 0
    dpop_max_age: int = 300
    max_header_bytes: int = MAX_HEADER_BYTES  # what head_size counts
    max_body_bytes: int = MAX_BODY_BYTES


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    """A client registered at a token endpoint for mutual-TLS client authentication (RFC 8705 §2): by the
    subject DN of a certificate from a trusted CA (``tls_client_auth``, §2.1), or by the thumbprint of the one
    certificate it registered (``self_signed_tls_client_auth``, §2.2)."""

    client_id: str
    subject_dn: str | None = None
    x5t: str | None = None


def config_for(
    deployment: Deployment,
    *,
    jwks: Jwks,
    introspect: Callable[[str], Mapping[str, Any]] | None = None,
    issuer: str = LAB_ISSUER,
    audience: str = LAB_AUDIENCE,
    required_scope: str = "read",
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_body_bytes: int = MAX_BODY_BYTES,
    roots: tuple[x509.Certificate, ...] = (),
    registrations: Mapping[Endpoint, Registration] | None = None,
    issue: Callable[[bytes], str] | None = None,
    resource_metadata: str | None = None,
) -> RsConfig:
    """The resource-server configuration a deployment implies (the size limits are the HTTP layer's):
    ``registrations`` are the clients the lab's token endpoints know, ``issue`` mints the token a token
    endpoint hands out, ``resource_metadata`` is the RFC 9728 metadata URL challenges may name."""
    return RsConfig(
        jwks=jwks,
        issuer=issuer,
        audience=audience,
        required_scope=required_scope,
        validation=deployment.validation,
        introspect=introspect,
        checks_binding=deployment.checks_binding,
        requires_binding=deployment.requires_binding,
        trust_client_cert_header=deployment.topology is Topology.PROXY and deployment.proxy_trusted,
        dpop=deployment.dpop,
        mtls_scheme=deployment.mtls_scheme,
        query_tokens=deployment.query_tokens,
        ignores_unknown_cnf=deployment.ignores_unknown_cnf,
        dpop_nonce=LAB_DPOP_NONCE if deployment.dpop_nonce else None,
        resource_metadata=resource_metadata if deployment.resource_metadata else None,
        origin_validates_chain=deployment.origin_validates_chain,
        roots=roots,
        endpoint=deployment.endpoint,
        registration=(registrations or {}).get(deployment.endpoint),
        issue=issue,
        max_header_bytes=max_header_bytes,
        max_body_bytes=max_body_bytes,
    )


def head_size(request: Request) -> int:
    """The size of ``request``'s request line and header fields as :func:`evaluate` measures it: the method,
    the absolute URL (whose authority stands for the Host field) and every field as ``name: value`` CRLF,
    in characters (octets for the latin-1 text the live server decodes). Nothing is parsed."""
    fields = sum(len(name) + len(value) + 4 for name, value in request.headers)
    return len(request.method) + 1 + len(request.url) + fields


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The resource server's finding and the trace that led to it."""

    finding: Finding
    trace: tuple[Step, ...]
    scheme: str | None = None  # lower-case, as the token came ("bearer" for body and query)
    binding: Literal["x5t#S256", "jkt"] | None = None
    expected_x5t: str | None = None
    presented_x5t: str | None = None
    required_scope: str = "read"
    subject: str | None = None
    client_id: str | None = None
    dpop_nonce: str | None = None  # for the client, in a DPoP-Nonce field (RFC 9449 §9)
    resource_metadata: str | None = None  # the RFC 9728 metadata URL the challenge names
    issued_token: str | None = None  # what a token endpoint issued
    #: The configuration fields it was made from: a configuration agreeing on them decides alike.
    consulted: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    @property
    def detail(self) -> str:
        """The detail of the deciding step."""
        return self.trace[-1].detail if self.trace else ""

    def explain(self) -> str:
        """The trace as text, one step a line, then the finding."""
        result = f"→ finding: {self.finding.value} ({self.finding.info.title})"
        return "\n".join([*map(str, self.trace), result])

    def __repr__(self) -> str:
        return f"<Decision {self.finding.value}: {self.detail}>"


def size_decision(config: RsConfig, *, head: int = 0, body: int = 0) -> Decision | None:
    """The decision on sizes alone: ``headers_too_large`` or ``body_too_large`` when ``head`` (as
    :func:`head_size` counts) or ``body`` bytes exceed ``config``'s limits, else ``None``. :func:`evaluate`
    checks this first; a server that stops reading an oversized request (and so has no whole request)
    passes the bytes it counted."""
    run = _Run(request=Request(), config=config, now=LAB_NOW)
    try:
        _check_size(run, head, body)
    except _Stop as stop:
        return run.decision(stop.finding)
    return None


class _Reading:
    """A configuration as one evaluation reads it, every field it consults noted."""

    __slots__ = ("_config", "names")

    def __init__(self, config: RsConfig) -> None:
        self._config = config
        self.names: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        self.names.add(name)
        return getattr(self._config, name)


class _Stop(Exception):
    def __init__(self, finding: Finding) -> None:
        self.finding = finding


@dataclass(slots=True)
class _Run:
    """One evaluation as it goes: the request, the configuration, and what each stage found so far."""

    request: Request
    config: RsConfig
    now: dt.datetime
    steps: list[Step] = field(default_factory=list)
    cert: bytes | None = None
    untrusted_header: bool = False  # a Client-Cert header came that the server must not trust
    presented_x5t: str | None = None
    token: str = ""
    scheme: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    binding: Literal["x5t#S256", "jkt"] | None = None
    expected_x5t: str | None = None
    unchecked: str | None = None  # a server that skips binding: what the check would have found
    issued_token: str | None = None
    reading: _Reading | None = None  # when ``config`` is read through one

    def step(self, check: str, where: str, passed: bool | None, detail: str) -> None:
        self.steps.append(Step(check=check, clause=cite(where), passed=passed, detail=detail))

    def fail(self, finding: Finding, check: str, where: str, detail: str) -> _Stop:
        self.step(check, where, False, detail)
        return _Stop(finding)

    def decision(self, finding: Finding) -> Decision:
        subject, client_id = self.claims.get("sub"), self.claims.get("client_id")
        return Decision(  # its arguments are evaluated in order: consulted, last, sees every read
            finding=finding,
            trace=tuple(self.steps),
            scheme=self.scheme,
            binding=self.binding,
            expected_x5t=self.expected_x5t,
            presented_x5t=self.presented_x5t,
            required_scope=self.config.required_scope,
            subject=subject if isinstance(subject, str) else None,
            client_id=client_id if isinstance(client_id, str) else None,
            dpop_nonce=self.config.dpop_nonce,
            resource_metadata=self.config.resource_metadata,
            issued_token=self.issued_token,
            consulted=frozenset(self.reading.names) if self.reading else frozenset(),
        )


def evaluate(request: Request, config: RsConfig, *, now: dt.datetime = LAB_NOW) -> Decision:
    """Decide what the resource server finds for ``request`` at ``now``: every stage in turn, until one
    refuses or all pass. The decision names the configuration fields it was made from."""
    reading = _Reading(config)
    config = cast(RsConfig, reading)
    run = _Run(request=request, config=config, now=now, reading=reading)
    try:
        _check_size(run, head_size(request), len(request.body))
        _certificate(run)
        if config.endpoint is not Endpoint.RESOURCE:
            return run.decision(_client_authentication(run))
        _extract_token(run)
        validate = _introspect if config.validation is Validation.INTROSPECTION else _validate_jwt
        run.claims = validate(run)
        _bind(run, run.claims.get("cnf"), _proof(run) if run.scheme == "dpop" else None)
        _scope(run)
    except _Stop as stop:
        return run.decision(stop.finding)
    if run.unchecked is not None:
        detail = (
            "accepted although the token is sender-constrained and the binding was not checked (a check "
            f"would have found: {run.unchecked}): anyone holding the token can use it"
        )
        run.step("result", "RFC 8705 §3", False, detail)
        return run.decision(Finding.ACCEPTED_ALTHOUGH_BOUND)
    run.step("result", "RFC 8705 §3", True, "every check passed")
    return run.decision(Finding.ACCEPTED)


def _check_size(run: _Run, head: int, body: int) -> None:
    config = run.config
    if head > config.max_header_bytes:
        detail = (
            f"the request line and header fields take {head} bytes, more than this server's limit "
            f"of {config.max_header_bytes}: refused before anything in them is parsed"
        )
        raise run.fail(Finding.HEADERS_TOO_LARGE, "request size", "RFC 6585 §5", detail)
    if body > config.max_body_bytes:
        detail = (
            f"the body takes {body} bytes, more than this server's limit of "
            f"{config.max_body_bytes}: refused before anything in it is parsed"
        )
        raise run.fail(Finding.BODY_TOO_LARGE, "request size", "RFC 9110 §15.5.14", detail)


def _certificate(run: _Run) -> None:
    request = run.request
    headers = request.header_values("Client-Cert")
    trusted = request.from_proxy and run.config.trust_client_cert_header
    if headers and not trusted:
        run.untrusted_header = True
        came = "came from the proxy, but this origin is not configured to trust it: ignored"
        if not request.from_proxy:
            came = (
                "arrived on a direct client connection: only a trusted proxy may set it, so it is "
                "ignored"
            )
        run.step("client certificate", "RFC 9440 §4", None, f"a Client-Cert header {came}")
    if trusted:
        der = _from_proxy(run, headers)
        where, source = "RFC 9440 §2.2", "the trusted proxy's Client-Cert header"
    elif request.from_proxy:
        # A proxy this origin does not trust: it has no certificate of the client at all.
        if not headers:
            detail = (
                "the request came through a proxy; the origin has no TLS client certificate of the "
                "client"
            )
            run.step("client certificate", "RFC 8705 §3", None, detail)
        return
    else:
        der, where, source = request.client_cert, "RFC 8705 §3", "this TLS connection"
        if der is None:
            detail = "no client certificate on this TLS connection"
            run.step("client certificate", where, None, detail)
    if der is not None:  # RFC 8705 §3.1: x5t#S256 of the DER exactly as received, not re-encoded
        run.cert, run.presented_x5t = der, sha256_b64url(der)
        run.step("client certificate", where, True, f"from {source}, x5t#S256 {run.presented_x5t}")


def _from_proxy(run: _Run, headers: list[str]) -> bytes | None:
    """The certificate a trusted proxy forwarded (RFC 9440 §2), if it parses."""
    if not headers:
        detail = "the trusted proxy forwarded no Client-Cert: no client certificate was presented"
        run.step("client certificate", "RFC 9440 §2.4", None, detail)
        return None
    if len(headers) > 1:
        detail = (
            f"{len(headers)} Client-Cert fields where one may come: the value does not parse, so the field "
            "is treated as absent (RFC 8941 §4.2)"
        )
        run.step("client certificate", "RFC 9440 §2.2", False, detail)
        return None
    try:
        der = decode_client_cert(headers[0])
        certificate = x509.load_der_x509_certificate(der)
    except (ScenarioError, ValueError) as exc:
        detail = (
            f"Client-Cert from the proxy does not parse ({shorten(str(exc))}): treated as absent"
        )
        run.step("client certificate", "RFC 8941 §4.2", False, detail)
        return None
    if run.config.origin_validates_chain and not _chain_holds(run, certificate):
        return None
    return der


def _chain_holds(run: _Run, certificate: x509.Certificate) -> bool:
    """An origin that validates the forwarded certificate itself, with the Client-Cert-Chain's intermediates
    (RFC 9440 §2.3). RFC 9440 gives no rule for one that does not validate; this origin ignores it."""
    chain: list[x509.Certificate] = []
    for value in run.request.header_values("Client-Cert-Chain"):
        for item in value.split(","):
            try:
                chain.append(x509.load_der_x509_certificate(decode_client_cert(item)))
            except (ScenarioError, ValueError):
                detail = (
                    "Client-Cert-Chain does not parse: the certificate cannot be validated, so it "
                    "is ignored"
                )
                run.step("client certificate", "RFC 9440 §2.3", False, detail)
                return False
    verdict = _chain_verdict(run, certificate, chain)
    if not verdict.valid:
        detail = (
            f"the forwarded certificate does not validate at the origin ({shorten(verdict.reason)}): RFC 9440 "
            "says nothing of this case; this origin ignores the certificate"
        )
        run.step("client certificate", "RFC 9440 §2.3", False, detail)
        return False
    detail = (
        f"the forwarded certificate validates at the origin ({len(chain)} intermediate(s) from "
        "Client-Cert-Chain)"
    )
    run.step("client certificate", "RFC 9440 §2.3", True, detail)
    return True


def _chain_verdict(
    run: _Run, certificate: x509.Certificate, chain: list[x509.Certificate]
) -> ChainVerdict:
    """The chain validated at the server itself against its configured roots (none: not valid)."""
    try:
        return validate_client_chain(
            certificate, roots=run.config.roots, intermediates=chain, at=run.now
        )
    except CertificateError as exc:  # no trust anchors configured
        return ChainVerdict(valid=False, problem=ChainProblem.OTHER, reason=exc.reason)


def _extract_token(run: _Run) -> None:
    request, config = run.request, run.config
    values = request.header_values("Authorization")
    # The Authorization field's token and scheme, or why it holds none this server takes.
    header = _authorization(run, values) if values else None
    found: list[tuple[str, str, str]] = [("header", *header)] if isinstance(header, tuple) else []
    found += [("form body", t, "bearer") for t in _form_tokens(request)]
    found += [("query", t, "bearer") for t in _query_tokens(request.url)]
    if len(found) > 1:
        places = ", ".join(place for place, _, _ in found)
        detail = f"the token travels in more than one place ({places}); a request uses one method"
        raise run.fail(Finding.MULTIPLE_METHODS, "token placement", "RFC 6750 §2", detail)
    if not found:
        if isinstance(header, Finding):
            raise _Stop(header)
        detail = "no access token in the header, the form body or the query"
        raise run.fail(Finding.NO_TOKEN, "token placement", "RFC 6750 §3.1", detail)
    place, run.token, run.scheme = found[0]
    if place != "header":
        where = "RFC 6750 §2.2" if place == "form body" else "RFC 6750 §2.3"
        if place == "query" and not config.query_tokens:
            detail = "the token came in the query, which this server does not accept"
            raise run.fail(Finding.QUERY_TOKEN_REFUSED, "token placement", where, detail)
        run.step("token placement", where, True, f"token in the {place} (a Bearer method)")
        if not run.token:
            detail = f"empty access_token in the {place}"
            raise run.fail(Finding.MALFORMED_AUTHORIZATION, "token placement", where, detail)


def _authorization(run: _Run, values: list[str]) -> tuple[str, str] | Finding:
    """The token and the (lower-case) scheme of the one Authorization field, or why it holds none this
    server takes: no scheme at all, or one it does not accept (recorded in the trace; the request may
    still carry a token elsewhere)."""
    check, malformed = "Authorization header", Finding.MALFORMED_AUTHORIZATION
    if len(values) > 1:
        detail = (
            f"{len(values)} Authorization header fields; the field holds one credential and cannot be "
            "repeated"
        )
        raise run.fail(malformed, check, "RFC 9110 §5.3", detail)
    known = (
        "bearer",
        *(["dpop"] if run.config.dpop else []),
        *(["mtls"] if run.config.mtls_scheme else []),
    )
    value = values[0].strip(" \t")
    scheme, _, credentials = value.partition(" ")
    credentials = credentials.strip(" ")
    if "\t" in scheme and scheme.split("\t", 1)[0].lower() in known:
        detail = (
            "the scheme and the token are separated by a tab; RFC 9110 §11.4 requires one or more "
            "spaces"
        )
        raise run.fail(malformed, check, "RFC 9110 §11.4", detail)
    lowered = scheme.lower()
    if not value:
        run.step(check, "RFC 6750 §3.1", None, "an empty Authorization field: no credentials")
        return Finding.NO_TOKEN
    if lowered not in known:
        if not credentials:
            detail = (
                f"no scheme: the value {shorten(scheme, 24, quote=True)} is one word, where credentials "
                "begin with an auth-scheme; no token the server can take"
            )
            run.step(check, "RFC 9110 §11.4", None, detail)
            return Finding.SCHEME_MISSING
        detail = (
            f"scheme {shorten(scheme, 24, quote=True)} is not one this server accepts ({', '.join(known)}): "
            "no token there"
        )
        run.step(check, "RFC 6750 §3.1", None, detail)
        return Finding.SCHEME_UNSUPPORTED
    if not credentials:
        raise run.fail(malformed, check, "RFC 6750 §2.1", f"scheme {scheme!r} without a token")
    if not TOKEN68.fullmatch(credentials):
        detail = (
            f"the {scheme} credentials are not a b64token (spaces or characters outside "
            "A-Z a-z 0-9 - . _ ~ + /)"
        )
        raise run.fail(malformed, check, "RFC 6750 §2.1", detail)
    exact = scheme in ("Bearer", "DPoP", "MTLS")
    clause = "RFC 9449 §7.1" if lowered == "dpop" else "RFC 6750 §2.1"
    detail = f"scheme {scheme!r}" + ("" if exact else " (schemes are case-insensitive)")
    run.step(check, clause if exact else "RFC 9110 §11.1", True, detail)
    return credentials, lowered


def _query_tokens(url: str) -> list[str]:
    """``access_token`` values in the query of ``url`` (none when the URL cannot be parsed)."""
    try:
        query = urllib.parse.urlsplit(url).query
    except ValueError:
        return []
    return urllib.parse.parse_qs(query, keep_blank_values=True).get("access_token", [])


#: RFC 6750 §2.2: the form body is a token method only for a request method whose body has defined
#: semantics (RFC 9110 §9.3: not GET, HEAD, DELETE, CONNECT, OPTIONS or TRACE).
_FORM_METHODS = ("POST", "PUT", "PATCH")


def _form_tokens(request: Request) -> list[str]:
    content_type = next(iter(request.header_values("Content-Type")), "")
    form = content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"
    if request.method not in _FORM_METHODS or not form or not request.body.isascii():
        return []
    fields = urllib.parse.parse_qs(request.body.decode("ascii"), keep_blank_values=True)
    return fields.get("access_token", [])


def _validate_jwt(run: _Run) -> Mapping[str, Any]:
    verified = verify_jws(run.token, run.config.jwks)
    if verified.pointers:
        detail = (
            f"header carries {', '.join(verified.pointers)}: never fetched nor trusted; keys come only from "
            "the configured JWKS"
        )
        run.step("JOSE header", "RFC 8725 §3.10", None, detail)
    if verified.finding is not None:
        check = "signature" if verified.finding is Finding.BAD_SIGNATURE else "JWT structure"
        raise run.fail(verified.finding, check, verified.clause.label, verified.reason)
    claims = verified.claims
    detail = "typ at+jwt; the signature verifies with the issuer's key"
    run.step("signature", "RFC 9068 §4", True, detail)
    iss, issuer = claims.get("iss"), run.config.issuer
    if iss != issuer:
        detail = f"iss {shorten(iss, 160, quote=True)} is not the trusted issuer {issuer!r}"
        raise run.fail(Finding.WRONG_ISSUER, "iss", "RFC 9068 §4", detail)
    aud = claims.get("aud")
    if run.config.audience not in (aud if isinstance(aud, list) else [aud]):
        detail = f"aud {shorten(aud, 160, quote=True)} does not name {run.config.audience!r}"
        raise run.fail(Finding.WRONG_AUDIENCE, "aud", "RFC 9068 §4", detail)
    now = run.now.timestamp()
    exp = claims.get("exp")
    if not _number(exp):
        detail = "exp is missing or not a number (RFC 9068 §2.2)"
        raise run.fail(Finding.TOKEN_MALFORMED, "exp", "RFC 9068 §4", detail)
    if now >= exp + run.config.leeway:
        detail = f"expired at {_iso(exp)}; now is {_iso(now)}"
        raise run.fail(Finding.TOKEN_EXPIRED, "exp", "RFC 9068 §4", detail)
    nbf = claims.get("nbf")
    if _number(nbf) and now < nbf - run.config.leeway:
        detail = f"valid from {_iso(nbf)}; now is {_iso(now)}"
        raise run.fail(Finding.TOKEN_NOT_YET_VALID, "nbf", "RFC 7519 §4.1.5", detail)
    missing = [c for c in ("sub", "client_id", "iat", "jti") if c not in claims]
    if missing:
        detail = f"missing {', '.join(missing)} (RFC 9068 §2.2)"
        raise run.fail(Finding.TOKEN_MALFORMED, "required claims", "RFC 9068 §4", detail)
    run.step("claims", "RFC 9068 §4", True, f"iss and aud match; valid until {_iso(exp)}")
    return claims


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _iso(epoch: float) -> str:
    """``epoch`` as an RFC 3339 UTC date-time to the second (the epoch itself when it is out of range)."""
    try:
        t = dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return shorten(epoch, 40)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"


def _introspect(run: _Run) -> Mapping[str, Any]:
    introspect, check, where = run.config.introspect, "introspection", "RFC 7662 §2.2"
    if introspect is None:
        raise run.fail(Finding.TOKEN_INACTIVE, check, where, "no introspection endpoint configured")
    try:
        response = introspect(run.token)
    except Exception as exc:
        detail = f"introspection failed ({shorten(str(exc))})"
        raise run.fail(Finding.TOKEN_INACTIVE, check, where, detail) from None
    if not isinstance(response, Mapping) or response.get("active") is not True:
        raise run.fail(Finding.TOKEN_INACTIVE, check, where, "active: false")
    aud = response.get("aud")
    if aud is not None and run.config.audience not in (aud if isinstance(aud, list) else [aud]):
        detail = f"aud {shorten(aud, 160, quote=True)} does not name {run.config.audience!r}"
        raise run.fail(Finding.WRONG_AUDIENCE, "aud", where, detail)
    run.step(check, where, True, "active: true" + (", with cnf" if "cnf" in response else ""))
    return response


def _checked(run: _Run, check: Callable[[_Run], None], what: str) -> None:
    """``check`` run; at a server that does not check certificate binding (RFC 8705 §3), run on a copy
    instead, its trace discarded, and what it would have found noted after ``what``: the request goes on
    (accepted although bound, at the end)."""
    if run.config.checks_binding:
        check(run)
        return
    copy = replace(run, steps=[])
    try:
        check(copy)
        would = "binding holds"
    except _Stop as stop:
        would = stop.finding.value
    run.unchecked = would
    detail = (
        f"{what} but this server does not check certificate binding (would have found: {would})"
    )
    run.step("binding", "RFC 8705 §3", False, detail)


def _proof(run: _Run) -> str:
    """The DPoP scheme's proof (RFC 9449 §4.3): its key's thumbprint when it is valid for this request."""
    proofs, check = run.request.header_values("DPoP"), "DPoP proof"
    if not proofs:
        detail = "the DPoP scheme was used without a DPoP header"
        raise run.fail(Finding.DPOP_PROOF_MISSING, check, "RFC 9449 §7.1", detail)
    if len(proofs) > 1:
        detail = f"{len(proofs)} DPoP header fields; one is allowed"
        raise run.fail(Finding.DPOP_PROOF_INVALID, check, "RFC 9449 §4.3", detail)
    problem, jkt = check_proof(
        proofs[0],
        method=run.request.method,
        url=run.request.url,
        token=run.token,
        now=run.now,
        max_age=run.config.dpop_max_age,
        nonce=run.config.dpop_nonce,
    )
    if problem is NONCE_PROBLEM:
        detail = (
            "this server asks for its own nonce in DPoP proofs and the proof does not carry it: the answer "
            "gives the nonce in a DPoP-Nonce field"
        )
        raise run.fail(Finding.DPOP_NONCE_REQUIRED, "DPoP nonce", "RFC 9449 §9", detail)
    if problem:
        raise run.fail(Finding.DPOP_PROOF_INVALID, check, "RFC 9449 §4.3", problem)
    run.step(check, "RFC 9449 §4.3", True, f"valid proof for this request, key thumbprint {jkt}")
    return jkt


def _bind(run: _Run, cnf: Any, jkt: str | None) -> None:
    """The confirmation ``cnf`` against what came with the request: the certificate, and under the DPoP
    scheme the proof's key thumbprint ``jkt``. Raises :class:`_Stop` with the binding finding.

    DPoP binding (``cnf.jkt``) is checked by any server that supports DPoP; certificate binding
    (``cnf.x5t#S256``) only by one that checks it (``checks_binding``)."""
    members = cnf.keys() if isinstance(cnf, dict) else ()
    if run.scheme == "dpop":
        assert jkt is not None
        _dpop_key(run, cnf, jkt)
        if "x5t#S256" in members:
            # RFC 7800 §3.1 lets cnf hold several confirmation members; a server checks every one it supports,
            # so a token bound to a DPoP key and a certificate needs both (one stolen secret is not enough).
            detail = (
                "cnf names a certificate as well as the DPoP key: every method this server supports is "
                "checked"
            )
            run.step("confirmation methods", "RFC 7800 §3.1", None, detail)
            _checked(run, lambda r: _x5t(r, cnf["x5t#S256"]), "cnf.x5t#S256 is present")
        return
    unknown = isinstance(cnf, dict) and not cnf.keys() & {"jkt", "x5t#S256"}
    if unknown and run.config.ignores_unknown_cnf:
        names = ", ".join(shorten(n, 40, quote=True) for n in sorted(map(str, cnf))[:8])
        detail = f"cnf names no method this server knows ({names}): taken as unbound"
        run.step("cnf", "RFC 7800 §3.1", None, detail)
        cnf = None
    if cnf is None:
        if run.scheme == "mtls":
            detail = (
                "the MTLS scheme (hypothetical) needs a certificate-bound token; this one has no "
                "cnf"
            )
            raise run.fail(Finding.TOKEN_NOT_BOUND, "binding", "RFC 8705 §3", detail)
        if run.config.requires_binding:
            detail = "this server accepts only sender-constrained tokens; this one has no cnf"
            raise run.fail(Finding.TOKEN_NOT_BOUND, "binding", "RFC 8705 §3", detail)
        introspected = run.config.validation is Validation.INTROSPECTION
        where = "RFC 8705 §3.2" if introspected else "RFC 7800 §3.1"
        run.step("binding", where, None, "no cnf: a plain bearer token")
        return
    if "jkt" in members and run.config.dpop:
        also = (
            " (its cnf names a certificate too; both would be checked)" if "x5t#S256" in cnf else ""
        )
        detail = (
            f"a DPoP-bound token (cnf.jkt) arrived as a {run.scheme} token, not under the DPoP scheme; a "
            f"DPoP-aware server refuses it{also}"
        )
        raise run.fail(Finding.DPOP_TOKEN_AS_BEARER, "scheme", "RFC 9449 §7.2", detail)
    if "x5t#S256" in members:
        if run.scheme == "bearer" and run.config.mtls_scheme:
            detail = (
                "by analogy with RFC 9449 §7.2: a certificate-bound token must use the (hypothetical) "
                "MTLS scheme here"
            )
            raise run.fail(Finding.MTLS_TOKEN_AS_BEARER, "scheme", "RFC 9449 §7.2", detail)
        _checked(run, lambda r: _x5t(r, cnf["x5t#S256"]), "cnf.x5t#S256 is present")
        return
    _checked(run, lambda r: _unsupported(r, cnf), "cnf is present")


def _unsupported(run: _Run, cnf: Any) -> None:
    if isinstance(cnf, dict):
        names = sorted(map(str, cnf))
        members = ", ".join(shorten(n, 40, quote=True) for n in names[:8]) or "none"
        if len(names) > 8:
            members += f" and {len(names) - 8} more"
        detail = f"no confirmation method this server checks (cnf members: {members})"
    else:
        detail = f"cnf is a {type(cnf).__name__}, not a JSON object"
    raise run.fail(Finding.UNSUPPORTED_CONFIRMATION, "cnf", "RFC 7800 §3.1", detail)


def _dpop_key(run: _Run, cnf: Any, jkt: str) -> None:
    run.binding = "jkt"
    expected = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(expected, str):
        detail = "the DPoP scheme was used but the token is not DPoP-bound (no cnf.jkt)"
        raise run.fail(Finding.DPOP_KEY_MISMATCH, "DPoP key binding", "RFC 9449 §7.1", detail)
    if not same_thumbprint(expected, jkt):
        detail = f"the token is bound to jkt {shorten(expected)}, the proof's key is {jkt}"
        raise run.fail(Finding.DPOP_KEY_MISMATCH, "DPoP key binding", "RFC 9449 §7.1", detail)
    run.step("DPoP key binding", "RFC 9449 §7.1", True, f"cnf.jkt matches the proof's key ({jkt})")


def _x5t(run: _Run, expected: Any) -> None:
    check = "certificate binding"
    run.binding = "x5t#S256"
    run.expected_x5t = expected if isinstance(expected, str) else json.dumps(expected)
    presented = run.presented_x5t  # set with run.cert
    if presented is None:
        if run.untrusted_header:
            detail = (
                "the token is certificate-bound and the only certificate came in an untrusted "
                "Client-Cert header"
            )
            raise run.fail(Finding.UNTRUSTED_CLIENT_CERT_HEADER, check, "RFC 9440 §4", detail)
        detail = (
            f"the token is bound to x5t#S256 {shorten(run.expected_x5t)} but no client certificate was "
            "presented"
        )
        raise run.fail(Finding.CERTIFICATE_MISSING, check, "RFC 8705 §3", detail)
    if not same_thumbprint(expected, presented):
        detail = (
            f"expected x5t#S256 {shorten(run.expected_x5t)}, presented {presented} (exact, constant-time "
            "comparison)"
        )
        introspected = run.config.validation is Validation.INTROSPECTION
        clause = "RFC 8705 §3.2" if introspected else "RFC 8705 §3"
        raise run.fail(Finding.CERTIFICATE_MISMATCH, check, clause, detail)
    detail = f"x5t#S256 matches the presented certificate ({presented})"
    run.step(check, "RFC 8705 §3", True, detail)


def _client_authentication(run: _Run) -> Finding:
    """At a token endpoint: the client is the one registered, and the certificate on the connection is the
    one its registration names (RFC 8705 §2.1 or §2.2); then a token bound to it is issued."""
    registration, check = run.config.registration, "client authentication"
    body = run.request.body.decode("ascii", "replace")
    client_id = urllib.parse.parse_qs(body, keep_blank_values=True).get("client_id", [""])[0]
    if registration is None or client_id != registration.client_id:
        detail = (
            f"no client {shorten(client_id, 40, quote=True)} is registered for mutual-TLS client "
            "authentication here"
        )
        raise run.fail(Finding.CLIENT_CERTIFICATE_MISMATCH, "client", "RFC 8705 §2", detail)
    if run.cert is None:
        detail = (
            f"client {client_id!r} presented no certificate: invalid_client, as for one that does not match "
            "(RFC 8705 §2 treats both alike)"
        )
        raise run.fail(Finding.CLIENT_CERTIFICATE_MISSING, check, "RFC 8705 §2", detail)
    certificate = x509.load_der_x509_certificate(run.cert)
    if registration.x5t is not None:
        holds = same_thumbprint(registration.x5t, run.presented_x5t or "")
        clause, what = "RFC 8705 §2.2", f"the registered certificate (x5t#S256 {registration.x5t})"
    else:
        # RFC 8705 §2.1: a tls_client_auth client's chain is validated, with the intermediates it sent
        # (the TLS layer has done so unless it accepts any certificate; the server does it again).
        subject = certificate.subject.rfc4514_string()
        sent = [x509.load_der_x509_certificate(der) for der in run.request.client_chain]
        holds = subject == registration.subject_dn and _chain_verdict(run, certificate, sent).valid
        clause, what = "RFC 8705 §2.1", f"subject {registration.subject_dn!r} from a trusted CA"
    if not holds:
        detail = f"the certificate presented is not {what}: invalid_client"
        raise run.fail(Finding.CLIENT_CERTIFICATE_MISMATCH, check, clause, detail)
    run.step(check, clause, True, f"the certificate presented is {what}")
    if run.config.issue is None:
        detail = "this endpoint has no authorization server to issue tokens"
        raise run.fail(Finding.CLIENT_CERTIFICATE_MISMATCH, "token", "RFC 8705 §2", detail)
    run.issued_token = run.config.issue(run.cert)
    detail = f"a token bound to the certificate (cnf.x5t#S256 {run.presented_x5t}) is issued"
    run.step("token", "RFC 8705 §3.1", True, detail)
    return Finding.TOKEN_ISSUED


def _scope(run: _Run) -> None:
    required = run.config.required_scope
    if not required:
        return
    scope = run.claims.get("scope")
    granted = scope.split(" ") if isinstance(scope, str) else []
    if required not in granted:
        grants = shorten(scope, 160, quote=True)
        detail = f"the resource needs scope {required!r}; the token grants {grants}"
        raise run.fail(Finding.INSUFFICIENT_SCOPE, "scope", "RFC 6750 §3.1", detail)
    run.step("scope", "RFC 6750 §3.1", True, f"scope {required!r} granted")


@dataclass(frozen=True, slots=True, kw_only=True)
class SignatureCheck:
    """Whether the engine reads the token and its signature verifies, and why not."""

    valid: bool
    reason: str
    finding: Finding | None = None  # the engine's finding when it refuses the token here


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingCheck:
    """What the token is bound to and whether what was presented matches, as the engine's binding stage
    judges it (``holds`` is None when there was nothing to compare, or the token was not read)."""

    method: Literal["x5t#S256", "jkt", "none", "unsupported"]
    expected: str | None
    presented: str | None
    holds: bool | None
    reason: str
    finding: Finding | None = None  # the engine's finding when the binding stage refuses


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenInspection:
    """A decoded token: header, claims, signature check and binding check, as data."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    signature: SignatureCheck
    binding: BindingCheck

    def __repr__(self) -> str:
        check = self.signature
        signature = "signature valid" if check.valid else f"signature INVALID ({check.reason})"
        binding = {True: "holds", False: "fails", None: "not judged"}[self.binding.holds]
        why = f": {self.binding.finding.value}" if self.binding.finding is not None else ""
        return (
            f"<TokenInspection {self.header.get('alg')} {signature}; binding {self.binding.method} "
            f"{binding}{why}>"
        )

    def _repr_html_(self) -> str:
        colour = {True: "#1b7f3b", False: "#b00020", None: "#555"}
        ok, bind = colour[self.signature.valid], colour[self.binding.holds]
        pre = "<pre style='background:#f6f6f6;padding:4px;margin:2px 0'>"
        return (
            "<div style='border:1px solid #ccc;border-radius:4px;padding:6px'>"
            f"<div><b>header</b></div>{pre}{html.escape(json.dumps(dict(self.header), indent=2))}</pre>"
            f"<div><b>claims</b></div>{pre}{html.escape(json.dumps(dict(self.claims), indent=2))}</pre>"
            f"<div style='color:{ok}'>signature: {html.escape(self.signature.reason)}</div>"
            f"<div style='color:{bind}'>binding ({html.escape(self.binding.method)}): "
            f"{html.escape(self.binding.reason)}</div></div>"
        )


def inspect_token(
    token: str,
    *,
    jwks: Mapping[str, Any],
    certificate: Identity | bytes | str | None = None,
    dpop_jkt: str | None = None,
) -> TokenInspection:
    """Read ``token`` as the engine does and judge its signature against ``jwks`` and its binding against
    ``certificate`` (an identity, PEM or DER; as if presented on the TLS connection) or a DPoP proof key's
    thumbprint ``dpop_jkt`` (as if the token came under the DPoP scheme with a valid proof). Issuer,
    audience, expiry and scope are not judged here; :func:`evaluate` judges whole requests."""
    try:
        keys = Jwks.from_dict(jwks)
    except Exception as exc:  # pyjwt's and cryptography's errors for an unusable key set
        raise TokenError("jwks", str(exc)) from None
    verified = verify_jws(token, keys)
    finding = verified.finding
    signature = SignatureCheck(valid=finding is None, reason=verified.reason, finding=finding)
    if finding is None:
        # Copies: the memo's header and claims are the engine's, and a notebook may edit what it is shown.
        header, claims = copy.deepcopy(verified.header), copy.deepcopy(verified.claims)
        binding = _judge_binding(claims.get("cnf"), certificate, dpop_jkt, keys)
    else:
        try:  # for display only: what the token says, if it has the shape of a JWT at all
            header, claims = decode_unverified(token)
        except TokenError:
            raise TokenError("token", f"not a JWT the engine can read: {verified.reason}") from None
        binding = BindingCheck(
            method="unsupported" if "cnf" in claims else "none",
            expected=None,
            presented=None,
            holds=None,
            reason=f"not judged: the engine stops at {finding.value}",
        )
    return TokenInspection(header=header, claims=claims, signature=signature, binding=binding)


def _judge_binding(
    cnf: Any, certificate: Identity | bytes | str | None, jkt: str | None, keys: Jwks
) -> BindingCheck:
    """The engine's binding stage on ``cnf``, with ``certificate`` on the connection and, when ``jkt`` is
    given, the DPoP scheme with a valid proof by that key."""
    der = None
    if certificate is not None:
        der = certificate.der if isinstance(certificate, Identity) else certificate_der(certificate)
    run = _Run(request=Request(client_cert=der), config=RsConfig(jwks=keys), now=LAB_NOW)
    _certificate(run)
    run.scheme = "dpop" if jkt is not None else "bearer"
    method: Literal["x5t#S256", "jkt", "none", "unsupported"] = "unsupported"
    if cnf is None:
        method = "none"
    elif isinstance(cnf, dict) and ("jkt" in cnf or "x5t#S256" in cnf):
        method = "jkt" if "jkt" in cnf else "x5t#S256"
    finding: Finding | None = None
    try:
        _bind(run, cnf, jkt)
    except _Stop as stop:
        finding = stop.finding
    # What was compared: by the check that refused (the certificate's, when cnf names a DPoP key
    # and a certificate), or by the method of a token that passed.
    if (method if finding is None else run.binding) == "x5t#S256":
        expected, presented = run.expected_x5t, run.presented_x5t
    else:
        member = cnf.get("jkt") if isinstance(cnf, dict) else None
        expected, presented = None if member is None else str(member), jkt
    step = run.steps[-1]
    found = f"{step.detail} [{step.clause.label}]"
    holds: bool | None = None
    if finding is Finding.CERTIFICATE_MISSING:
        reason = f"nothing given to compare: {finding.info.title}: {found}"
    elif finding is not None:
        holds, reason = False, f"{finding.info.title}: {found}"
    elif cnf is None:
        reason = "unbound (no cnf claim)"
    else:
        holds, reason = True, f"{'key ' if method == 'jkt' else ''}thumbprints match: {found}"
    return BindingCheck(
        method=method,
        expected=expected,
        presented=presented,
        holds=holds,
        reason=reason,
        finding=finding,
    )
