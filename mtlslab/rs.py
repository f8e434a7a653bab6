"""The resource server's decision: :func:`evaluate` a request, get a :class:`Decision`.

Pure, with time injected. The checks run in spec order and each leaves a trace step citing its clause:

1. where the client certificate comes from — the connection's TLS layer, or an RFC 9440 ``Client-Cert``
   header, trusted only from a configured proxy (RFC 8705 §3, RFC 9440 §2);
2. where the token travels — RFC 6750 §2.1 header (scheme compared case-insensitively, RFC 9110 §11.1),
   §2.2 form body, §2.3 query; more than one place is refused (RFC 6750 §2);
3. the token itself — a JWT access token per RFC 9068 §4 (``typ``, signature with the issuer's JWKS only —
   never ``jku``/``x5u``/``jwk``/``x5c`` from the token, RFC 8725 §3.10 — then ``iss``, ``aud``, ``exp``,
   ``nbf``), or RFC 7662 introspection;
4. the binding — RFC 8705 §3 (``cnf.x5t#S256`` against the certificate, compared in constant time),
   RFC 9449 §7 (DPoP proof and ``cnf.jkt``), RFC 7800 §3 (what ``cnf`` may hold);
5. scope (RFC 6750 §3.1), and the result.

The outcome is one :class:`~mtlslab.findings.Finding`. Which HTTP status and error it becomes is the
business of :mod:`mtlslab.interpretations`, never of this module. A rejected request is a returned value;
``evaluate`` does not raise on any request it is given.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import jwt
import jwt.utils
from cryptography import x509

from mtlslab.errors import ScenarioError
from mtlslab.findings import Finding
from mtlslab.pki import LAB_NOW
from mtlslab.scenarios import (
    Deployment,
    Request,
    Topology,
    Validation,
    decode_client_cert,
)
from mtlslab.spec import Step, clause
from mtlslab.tokens import LAB_AUDIENCE, LAB_ISSUER, access_token_hash, jwk_thumbprint

__all__ = [
    "Decision",
    "Jwks",
    "RsConfig",
    "config_for",
    "evaluate",
    "thumbprint_of_der",
]

# ---- clauses cited by the checks -----------------------------------------------------------------
_C_8705_3 = clause(8705, "3", "Mutual-TLS Client Certificate-Bound Access Tokens")
_C_8705_31 = clause(8705, "3.1", "JWT Certificate Thumbprint Confirmation Method")
_C_8705_32 = clause(8705, "3.2", "Confirmation Method for Token Introspection")
_C_9440_2 = clause(9440, "2", "HTTP Header Fields and Processing Rules")
_C_9440_4 = clause(9440, "4", "Security Considerations")
_C_6750_2 = clause(6750, "2", "Authenticated Requests")
_C_6750_21 = clause(6750, "2.1", "Authorization Request Header Field")
_C_6750_22 = clause(6750, "2.2", "Form-Encoded Body Parameter")
_C_6750_23 = clause(6750, "2.3", "URI Query Parameter")
_C_6750_31 = clause(6750, "3.1", "Error Codes")
_C_9110_111 = clause(9110, "11.1", "Authentication Scheme")
_C_9068_4 = clause(9068, "4", "Validating JWT Access Tokens")
_C_8725_31 = clause(8725, "3.1", "Perform Algorithm Verification")
_C_8725_310 = clause(8725, "3.10", "Do Not Trust Received Claims")
_C_7519_415 = clause(7519, "4.1.5", '"nbf" (Not Before) Claim')
_C_7662_22 = clause(7662, "2.2", "Introspection Response")
_C_7800_31 = clause(7800, "3.1", "Confirmation Claim")
_C_9449_43 = clause(9449, "4.3", "Checking DPoP Proofs")
_C_9449_71 = clause(9449, "7.1", "The DPoP Authentication Scheme")
_C_9449_72 = clause(9449, "7.2", "Compatibility with the Bearer Authentication Scheme")

_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1 b64token
_TYP_AT_JWT = ("at+jwt", "application/at+jwt")
_URL_BEARING_HEADERS = ("jku", "x5u", "jwk", "x5c")
_DPOP_ALGS = (
    "ES256",
    "ES384",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
    "RS256",
    "RS384",
    "RS512",
    "EdDSA",
)


def thumbprint_of_der(der: bytes) -> str:
    """RFC 8705 §3.1 ``x5t#S256`` of DER bytes exactly as received (no re-encoding)."""
    return jwt.utils.base64url_encode(hashlib.sha256(der).digest()).decode("ascii")


@dataclass(frozen=True, slots=True, eq=False)
class Jwks:
    """The issuer's public keys, parsed once (hashable, so verification results can be cached)."""

    keys: tuple[jwt.PyJWK, ...]
    source: str

    @classmethod
    def from_dict(cls, jwks: Mapping[str, Any]) -> Jwks:
        """Parse a JWK Set (RFC 7517 §5)."""
        keyset = jwt.PyJWKSet.from_dict(dict(jwks))
        return cls(keys=tuple(keyset.keys), source=json.dumps(jwks, sort_keys=True))

    def find(self, kid: object) -> jwt.PyJWK | None:
        """The key with ``kid`` (or the only key when the token names none)."""
        if kid is None:
            return self.keys[0] if len(self.keys) == 1 else None
        return next((k for k in self.keys if k.key_id == kid), None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Jwks) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"<Jwks {len(self.keys)} key(s): {', '.join(str(k.key_id) for k in self.keys)}>"


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
    leeway: int = 0
    dpop_max_age: int = 300
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        values = tuple(getattr(self, f.name) for f in fields(self) if f.compare)
        object.__setattr__(self, "_hash", hash(values))

    def __hash__(self) -> int:  # a cache key on every evaluation: hash once
        return self._hash


def config_for(
    deployment: Deployment,
    *,
    jwks: Jwks,
    introspect: Callable[[str], Mapping[str, Any]] | None = None,
    issuer: str = LAB_ISSUER,
    audience: str = LAB_AUDIENCE,
    required_scope: str = "read",
) -> RsConfig:
    """The resource-server configuration a deployment implies."""
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
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The resource server's finding and the trace that led to it."""

    finding: Finding
    trace: tuple[Step, ...]
    scheme: str | None = (
        None  # the scheme the token came with, lower-case ("bearer" for body/query); None: no token
    )
    binding: Literal["x5t#S256", "jkt"] | None = None
    expected_x5t: str | None = None
    presented_x5t: str | None = None
    required_scope: str = "read"
    subject: str | None = None
    client_id: str | None = None

    @property
    def detail(self) -> str:
        """The detail of the deciding step."""
        return self.trace[-1].detail if self.trace else ""

    def explain(self) -> str:
        """The trace as text, one step a line, then the finding."""
        lines = [str(step) for step in self.trace]
        lines.append(f"→ finding: {self.finding.value} ({self.finding.info.title})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Decision {self.finding.value}: {self.detail}>"


class _Stop(Exception):
    def __init__(self, finding: Finding) -> None:
        self.finding = finding


@dataclass(slots=True)
class _Run:
    request: Request
    config: RsConfig
    now: dt.datetime
    steps: list[Step] = field(default_factory=list)
    scheme: str | None = None
    binding: Literal["x5t#S256", "jkt"] | None = None
    expected_x5t: str | None = None
    presented_x5t: str | None = None
    subject: str | None = None
    client_id: str | None = None

    def step(self, check: str, where: Any, passed: bool | None, detail: str) -> None:
        self.steps.append(Step(check=check, clause=where, passed=passed, detail=detail))

    def fail(self, finding: Finding, check: str, where: Any, detail: str) -> _Stop:
        self.step(check, where, False, detail)
        return _Stop(finding)


@functools.lru_cache(maxsize=256)
def _neutral(config: RsConfig, mtls_relevant: bool) -> RsConfig:
    """``config`` without its binding policy and scope: what the first three stages depend on.

    Accepting the (hypothetical) MTLS scheme changes those stages only for a request that uses it.
    """
    return replace(
        config,
        checks_binding=True,
        requires_binding=False,
        required_scope="",
        mtls_scheme=config.mtls_scheme and mtls_relevant,
    )


def _uses_mtls_scheme(request: Request) -> bool:
    return any(
        value.strip(" \t").partition(" ")[0].lower() == "mtls"
        for value in request.header_values("Authorization")
    )


@dataclass(frozen=True, slots=True)
class _Prefix:
    """Where the first three stages (certificate, token, validation) ended, shared between servers that
    differ only in their binding policy or required scope."""

    steps: tuple[Step, ...]
    stop: Finding | None
    cert: bytes | None = None
    untrusted: bool = False
    token: str = ""
    scheme: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    presented_x5t: str | None = None


@functools.lru_cache(maxsize=4096)
def _prefix(
    request: Request,
    config: RsConfig,
    introspect: Callable[[str], Mapping[str, Any]] | None,
    now: dt.datetime,
) -> _Prefix:
    """Stages 1-3 for ``request``; ``config`` carries no binding policy, ``introspect`` is part of the key."""
    # RsConfig.introspect does not take part in equality, so the cached _neutral(config) may carry
    # another server's callable: use the one that is part of this cache key.
    config = replace(config, introspect=introspect)
    run = _Run(request=request, config=config, now=now)
    try:
        cert, untrusted = _certificate(run)
        token, scheme = _extract_token(run)
        run.scheme = scheme
        claims = _validate(run, token)
    except _Stop as stop:
        return _Prefix(
            steps=tuple(run.steps),
            stop=stop.finding,
            scheme=run.scheme,
            presented_x5t=run.presented_x5t,
        )
    return _Prefix(
        steps=tuple(run.steps),
        stop=None,
        cert=cert,
        untrusted=untrusted,
        token=token,
        scheme=scheme,
        claims=claims,
        presented_x5t=run.presented_x5t,
    )


def evaluate(request: Request, config: RsConfig, *, now: dt.datetime = LAB_NOW) -> Decision:
    """Decide what the resource server finds for ``request`` at ``now``."""
    # Introspection asks the authorization server, whose answer can change (RFC 7662 §2.2: revoked
    # tokens become inactive): never reuse it; only local JWT validation is a pure function.
    stages = _prefix if config.validation is Validation.JWT else _prefix.__wrapped__
    neutral = _neutral(config, config.mtls_scheme and _uses_mtls_scheme(request))
    prefix = stages(request, neutral, config.introspect, now)
    run = _Run(
        request=request,
        config=config,
        now=now,
        steps=list(prefix.steps),
        scheme=prefix.scheme,
        presented_x5t=prefix.presented_x5t,
    )
    if prefix.stop is not None:
        finding = prefix.stop
    else:
        try:
            finding = _finish(run, prefix)
        except _Stop as stop:
            finding = stop.finding
    return Decision(
        finding=finding,
        trace=tuple(run.steps),
        scheme=run.scheme,
        binding=run.binding,
        expected_x5t=run.expected_x5t,
        presented_x5t=run.presented_x5t,
        required_scope=config.required_scope,
        subject=run.subject,
        client_id=run.client_id,
    )


def _finish(run: _Run, prefix: _Prefix) -> Finding:
    """Stages 4 and 5: binding and scope, per the server's policy."""
    cert, untrusted_header, token, claims = (
        prefix.cert,
        prefix.untrusted,
        prefix.token,
        prefix.claims,
    )
    subject = claims.get("sub")
    client_id = claims.get("client_id")
    run.subject = subject if isinstance(subject, str) else None
    run.client_id = client_id if isinstance(client_id, str) else None
    would = _binding(run, token, claims, cert, untrusted_header)
    _scope(run, claims)
    if would is not None:
        run.step(
            "result",
            _C_8705_3,
            False,
            "accepted although the token is sender-constrained and the binding "
            f"was not checked (a check would have found: {would}): anyone holding the token can "
            "use it",
        )
        return Finding.ACCEPTED_ALTHOUGH_BOUND
    run.step("result", _C_6750_31, True, "every check passed")
    return Finding.ACCEPTED


# ---- 1. the certificate ---------------------------------------------------------------------------


def _certificate(run: _Run) -> tuple[bytes | None, bool]:
    request, config = run.request, run.config
    headers = request.header_values("Client-Cert")
    if request.from_proxy:
        if not config.trust_client_cert_header:
            if headers:
                run.step(
                    "client certificate",
                    _C_9440_4,
                    None,
                    "a Client-Cert header came from the proxy, but this origin is not configured to trust it: ignored",
                )
                return None, True
            run.step(
                "client certificate",
                _C_8705_3,
                None,
                "the request came through a proxy; the origin has no TLS client certificate of the client",
            )
            return None, False
        if not headers:
            run.step(
                "client certificate",
                _C_9440_2,
                None,
                "the trusted proxy forwarded no Client-Cert: no client certificate was presented",
            )
            return None, False
        if len(headers) > 1:
            run.step(
                "client certificate",
                _C_9440_2,
                False,
                "more than one Client-Cert header: none is used",
            )
            return None, False
        try:
            der = decode_client_cert(headers[0])
            x509.load_der_x509_certificate(der)
        except (ScenarioError, ValueError) as exc:
            run.step(
                "client certificate",
                _C_9440_2,
                False,
                f"Client-Cert from the proxy is unusable ({exc}): none is used",
            )
            return None, False
        run.presented_x5t = thumbprint_of_der(der)
        run.step(
            "client certificate",
            _C_9440_2,
            True,
            f"from the trusted proxy's Client-Cert header, x5t#S256 {run.presented_x5t}",
        )
        return der, False
    untrusted = bool(headers)
    if untrusted:
        run.step(
            "client certificate",
            _C_9440_4,
            None,
            "a Client-Cert header arrived on a direct client connection: only a trusted proxy may set it, so "
            "it is ignored",
        )
    if request.client_cert is None:
        run.step(
            "client certificate", _C_8705_3, None, "no client certificate on this TLS connection"
        )
        return None, untrusted
    run.presented_x5t = thumbprint_of_der(request.client_cert)
    run.step(
        "client certificate",
        _C_8705_3,
        True,
        f"from this TLS connection, x5t#S256 {run.presented_x5t}",
    )
    return request.client_cert, untrusted


# ---- 2. the token -----------------------------------------------------------------------------------


def _schemes(config: RsConfig) -> tuple[str, ...]:
    known = ["bearer"]
    if config.dpop:
        known.append("dpop")
    if config.mtls_scheme:
        known.append("mtls")
    return tuple(known)


def _extract_token(run: _Run) -> tuple[str, str | None]:
    request = run.request
    known = _schemes(run.config)
    found: list[tuple[str, str, str | None]] = []  # (place, token, scheme)
    values = request.header_values("Authorization")
    if len(values) > 1:
        raise run.fail(
            Finding.MALFORMED_AUTHORIZATION,
            "Authorization header",
            _C_6750_21,
            f"{len(values)} Authorization header fields; one is allowed",
        )
    if values:
        value = values[0].strip(" \t")
        scheme, _, credentials = value.partition(" ")
        credentials = credentials.strip(" ")
        lowered = scheme.lower()
        if lowered in known:
            if not credentials:
                raise run.fail(
                    Finding.MALFORMED_AUTHORIZATION,
                    "Authorization header",
                    _C_6750_21,
                    f"scheme {scheme!r} without a token",
                )
            if not _B64TOKEN.fullmatch(credentials):
                raise run.fail(
                    Finding.MALFORMED_AUTHORIZATION,
                    "Authorization header",
                    _C_6750_21,
                    f"the {scheme} credentials are not a b64token (spaces or characters outside "
                    "A-Z a-z 0-9 - . _ ~ + /)",
                )
            how = "" if scheme in ("Bearer", "DPoP", "MTLS") else " (schemes are case-insensitive)"
            run.step(
                "Authorization header",
                _C_9110_111 if how else _C_6750_21,
                True,
                f"scheme {scheme!r}{how}",
            )
            found.append(("header", credentials, lowered))
        else:
            shown = scheme if len(scheme) <= 24 else scheme[:20] + "…"
            run.step(
                "Authorization header",
                _C_6750_21,
                None,
                f"scheme {shown!r} is not one this server accepts ({', '.join(known)}): no token there",
            )
    form_tokens = _form_tokens(request)
    found += [("form body", t, None) for t in form_tokens]
    query_tokens = urllib.parse.parse_qs(_query(request.url), keep_blank_values=True).get(
        "access_token", []
    )
    found += [("query", t, None) for t in query_tokens]
    if len(found) > 1:
        places = ", ".join(place for place, _, _ in found)
        raise run.fail(
            Finding.MULTIPLE_METHODS,
            "token placement",
            _C_6750_2,
            f"the token travels in more than one place ({places}); a request uses one method",
        )
    if not found:
        raise run.fail(
            Finding.NO_TOKEN,
            "token placement",
            _C_6750_31,
            "no access token in the header, the form body or the query",
        )
    place, token, found_scheme = found[0]
    if place != "header":
        where = _C_6750_22 if place == "form body" else _C_6750_23
        run.step("token placement", where, True, f"token in the {place} (a Bearer method)")
        if not token:
            raise run.fail(
                Finding.MALFORMED_AUTHORIZATION,
                "token placement",
                where,
                f"empty access_token in the {place}",
            )
    return token, found_scheme or "bearer"


def _query(url: str) -> str:
    """The query of ``url``; empty when the URL cannot be parsed (``evaluate`` never raises)."""
    try:
        return urllib.parse.urlsplit(url).query
    except ValueError:
        return ""


#: RFC 6750 §2.2: the form body is a token method only for a request method whose body has defined
#: semantics (RFC 9110 §9.3: not GET, HEAD, DELETE, CONNECT, OPTIONS or TRACE).
_FORM_METHODS = ("POST", "PUT", "PATCH")


def _form_tokens(request: Request) -> list[str]:
    if request.method not in _FORM_METHODS or not request.body:
        return []
    content_type = next(iter(request.header_values("Content-Type")), "")
    if content_type.split(";", 1)[0].strip().lower() != "application/x-www-form-urlencoded":
        return []
    try:
        text = request.body.decode("ascii")
    except UnicodeDecodeError:
        return []
    return urllib.parse.parse_qs(text, keep_blank_values=True).get("access_token", [])


# ---- 3. validation ------------------------------------------------------------------------------------


def _header_of(token: str) -> dict[str, Any] | None:
    """The JOSE header, only to choose the key; pyjwt then parses and verifies the whole token.

    (pyjwt's own get_unverified_header would decode and check all three parts a second time.)
    """
    try:
        header = json.loads(jwt.utils.base64url_decode(token.split(".", 1)[0]))
    except (ValueError, TypeError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    return header if isinstance(header, dict) else None


@functools.lru_cache(maxsize=4096)
def _verify_jws(token: str, jwks: Jwks) -> tuple[str, dict[str, Any] | str, tuple[str, ...]]:
    """Signature verification, once per (token, key set): ``("ok", claims, ignored header names)`` or
    ``(finding value, reason, ())``. The header names are those that point at keys (never used)."""
    header = _header_of(token)
    if header is None:
        return Finding.TOKEN_MALFORMED.value, "the JOSE header is not base64url-encoded JSON", ()
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _TYP_AT_JWT:
        return (
            Finding.TOKEN_MALFORMED.value,
            f"typ is {typ!r}, not at+jwt: not a JWT access token",
            (),
        )
    alg = header.get("alg")
    key = jwks.find(header.get("kid"))
    if key is None:
        return (
            Finding.BAD_SIGNATURE.value,
            f"no key with kid {header.get('kid')!r} in the issuer's JWKS",
            (),
        )
    if alg != key.algorithm_name:
        return (
            Finding.BAD_SIGNATURE.value,
            f"alg {alg!r} is refused: the issuer's key {key.key_id} is {key.algorithm_name} (alg none "
            "and HMAC with a public key are the classic confusions)",
            (),
        )
    try:
        decoded = jwt.api_jwt.PyJWT().decode_complete(
            token,
            key=key,
            algorithms=[key.algorithm_name],
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_jti": False,
                "verify_sub": False,
            },
        )
    except jwt.InvalidSignatureError:
        return (
            Finding.BAD_SIGNATURE.value,
            f"the signature does not verify with key {key.key_id}",
            (),
        )
    except jwt.PyJWTError as exc:
        return Finding.TOKEN_MALFORMED.value, f"not a well-formed JWT ({exc})", ()
    payload = decoded["payload"]
    if not isinstance(payload, dict):
        return Finding.TOKEN_MALFORMED.value, "the claims are not a JSON object", ()
    return "ok", payload, tuple(name for name in _URL_BEARING_HEADERS if name in header)


def _validate(run: _Run, token: str) -> Mapping[str, Any]:
    if run.config.validation is Validation.INTROSPECTION:
        return _introspect(run, token)
    return _validate_jwt(run, token)


def _validate_jwt(run: _Run, token: str) -> Mapping[str, Any]:
    if token.count(".") != 2:
        raise run.fail(
            Finding.TOKEN_MALFORMED,
            "JWT structure",
            _C_9068_4,
            f"{token.count('.') + 1} dot-separated part(s); a JWS has 3",
        )
    outcome, result, ignored = _verify_jws(token, run.config.jwks)
    if outcome != "ok":
        assert isinstance(result, str)
        where = _C_8725_31 if "alg" in result else _C_9068_4
        raise run.fail(
            Finding(outcome),
            "signature" if outcome == Finding.BAD_SIGNATURE.value else "JWT structure",
            where,
            result,
        )
    assert isinstance(result, dict)
    claims = result
    if ignored:
        run.step(
            "JOSE header",
            _C_8725_310,
            None,
            f"header carries {', '.join(ignored)}: never fetched nor trusted; keys come only from the "
            "configured JWKS",
        )
    run.step(
        "signature", _C_9068_4, True, "typ at+jwt; the signature verifies with the issuer's key"
    )
    iss = claims.get("iss")
    if iss != run.config.issuer:
        raise run.fail(
            Finding.WRONG_ISSUER,
            "iss",
            _C_9068_4,
            f"iss {iss!r} is not the trusted issuer {run.config.issuer!r}",
        )
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if run.config.audience not in audiences:
        raise run.fail(
            Finding.WRONG_AUDIENCE,
            "aud",
            _C_9068_4,
            f"aud {aud!r} does not name {run.config.audience!r}",
        )
    now = run.now.timestamp()
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise run.fail(
            Finding.TOKEN_MALFORMED,
            "exp",
            _C_9068_4,
            "exp is missing or not a number (RFC 9068 §2.2)",
        )
    if now >= exp + run.config.leeway:
        raise run.fail(
            Finding.TOKEN_EXPIRED, "exp", _C_9068_4, f"expired at {_iso(exp)}; now is {_iso(now)}"
        )
    nbf = claims.get("nbf")
    if (
        isinstance(nbf, (int, float))
        and not isinstance(nbf, bool)
        and now < nbf - run.config.leeway
    ):
        raise run.fail(
            Finding.TOKEN_NOT_YET_VALID,
            "nbf",
            _C_7519_415,
            f"valid from {_iso(nbf)}; now is {_iso(now)}",
        )
    missing = [c for c in ("sub", "client_id", "iat", "jti") if c not in claims]
    if missing:
        raise run.fail(
            Finding.TOKEN_MALFORMED,
            "required claims",
            _C_9068_4,
            f"missing {', '.join(missing)} (RFC 9068 §2.2)",
        )
    run.step("claims", _C_9068_4, True, f"iss and aud match; valid until {_iso(exp)}")
    return claims


def _iso(epoch: float) -> str:
    try:
        return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(epoch)


def _introspect(run: _Run, token: str) -> Mapping[str, Any]:
    introspect = run.config.introspect
    if introspect is None:
        raise run.fail(
            Finding.TOKEN_INACTIVE,
            "introspection",
            _C_7662_22,
            "no introspection endpoint configured",
        )
    try:
        response = introspect(token)
    except Exception as exc:
        raise run.fail(
            Finding.TOKEN_INACTIVE, "introspection", _C_7662_22, f"introspection failed ({exc})"
        ) from None
    if not isinstance(response, Mapping) or response.get("active") is not True:
        raise run.fail(Finding.TOKEN_INACTIVE, "introspection", _C_7662_22, "active: false")
    aud = response.get("aud")
    if aud is not None and run.config.audience not in (aud if isinstance(aud, list) else [aud]):
        raise run.fail(
            Finding.WRONG_AUDIENCE,
            "aud",
            _C_7662_22,
            f"aud {aud!r} does not name {run.config.audience!r}",
        )
    run.step(
        "introspection",
        _C_7662_22,
        True,
        "active: true" + (", with cnf" if "cnf" in response else ""),
    )
    return response


# ---- 4. binding ---------------------------------------------------------------------------------------


def _binding(
    run: _Run, token: str, claims: Mapping[str, Any], cert: bytes | None, untrusted_header: bool
) -> str | None:
    """Check the binding; when the token is bound but the server does not check it, return what a
    check would have found (``None`` otherwise)."""
    cnf = claims.get("cnf")
    where = _C_8705_32 if run.config.validation is Validation.INTROSPECTION else _C_7800_31
    if not run.config.checks_binding:
        if cnf is None:
            run.step(
                "binding",
                _C_8705_3,
                None,
                "unbound token; this server does not check binding anyway",
            )
            return None
        would = _dry_run(run, token, cnf, cert, untrusted_header)
        run.step(
            "binding",
            _C_8705_3,
            False,
            f"cnf present but this server does not check it (would have found: {would})",
        )
        return would
    if run.scheme == "dpop":
        _dpop(run, token, cnf)
        return None
    if cnf is None:
        if run.scheme == "mtls":
            raise run.fail(
                Finding.TOKEN_NOT_BOUND,
                "binding",
                _C_8705_3,
                "the MTLS scheme (hypothetical) needs a certificate-bound token; this one has no cnf",
            )
        if run.config.requires_binding:
            raise run.fail(
                Finding.TOKEN_NOT_BOUND,
                "binding",
                _C_8705_3,
                "this server accepts only sender-constrained tokens; this one has no cnf",
            )
        run.step("binding", where, None, "no cnf: a plain bearer token")
        return None
    if not isinstance(cnf, dict):
        raise run.fail(
            Finding.UNSUPPORTED_CONFIRMATION,
            "cnf",
            _C_7800_31,
            f"cnf is a {type(cnf).__name__}, not a JSON object",
        )
    if "jkt" in cnf and run.config.dpop:
        raise run.fail(
            Finding.DPOP_TOKEN_AS_BEARER,
            "scheme",
            _C_9449_72,
            "a DPoP-bound token (cnf.jkt) arrived as a bearer token; a DPoP-aware server refuses it",
        )
    if "x5t#S256" in cnf:
        if run.scheme == "bearer" and run.config.mtls_scheme:
            raise run.fail(
                Finding.MTLS_TOKEN_AS_BEARER,
                "scheme",
                _C_9449_72,
                "by analogy with RFC 9449 §7.2: a certificate-bound token must use the (hypothetical) "
                "MTLS scheme here",
            )
        _x5t(run, cnf["x5t#S256"], cert, untrusted_header)
        return None
    members = ", ".join(sorted(map(str, cnf))) or "none"
    raise run.fail(
        Finding.UNSUPPORTED_CONFIRMATION,
        "cnf",
        _C_7800_31,
        f"no confirmation method this server checks (cnf members: {members})",
    )


def _x5t(run: _Run, expected: Any, cert: bytes | None, untrusted_header: bool) -> None:
    run.binding = "x5t#S256"
    run.expected_x5t = expected if isinstance(expected, str) else json.dumps(expected)
    if cert is None:
        if untrusted_header:
            raise run.fail(
                Finding.UNTRUSTED_CLIENT_CERT_HEADER,
                "certificate binding",
                _C_9440_4,
                "the token is certificate-bound and the only certificate came in an untrusted "
                "Client-Cert header",
            )
        raise run.fail(
            Finding.CERTIFICATE_MISSING,
            "certificate binding",
            _C_8705_3,
            f"the token is bound to x5t#S256 {run.expected_x5t} but no client certificate was presented",
        )
    presented = run.presented_x5t or thumbprint_of_der(cert)
    ok = isinstance(expected, str) and hmac.compare_digest(
        expected.encode("utf-8", "surrogatepass"), presented.encode("ascii")
    )
    if not ok:
        raise run.fail(
            Finding.CERTIFICATE_MISMATCH,
            "certificate binding",
            _C_8705_31,
            f"expected x5t#S256 {run.expected_x5t}, presented {presented} (exact, constant-time comparison)",
        )
    run.step(
        "certificate binding",
        _C_8705_3,
        True,
        f"x5t#S256 matches the presented certificate ({presented})",
    )


def _dry_run(run: _Run, token: str, cnf: Any, cert: bytes | None, untrusted_header: bool) -> str:
    probe = _Run(
        request=run.request,
        config=run.config,
        now=run.now,
        scheme=run.scheme,
        presented_x5t=run.presented_x5t,
    )
    try:
        if run.scheme == "dpop":
            _dpop(probe, token, cnf)
        elif isinstance(cnf, dict) and "x5t#S256" in cnf:
            _x5t(probe, cnf["x5t#S256"], cert, untrusted_header)
        elif isinstance(cnf, dict) and "jkt" in cnf:
            return Finding.DPOP_TOKEN_AS_BEARER.value
        else:
            return Finding.UNSUPPORTED_CONFIRMATION.value
    except _Stop as stop:
        return stop.finding.value
    return "binding holds"


def _dpop(run: _Run, token: str, cnf: Any) -> None:
    run.binding = "jkt"
    proofs = run.request.header_values("DPoP")
    if not proofs:
        raise run.fail(
            Finding.DPOP_PROOF_MISSING,
            "DPoP proof",
            _C_9449_43,
            "the DPoP scheme was used without a DPoP header",
        )
    if len(proofs) > 1:
        raise run.fail(
            Finding.DPOP_PROOF_INVALID,
            "DPoP proof",
            _C_9449_43,
            f"{len(proofs)} DPoP header fields; one is allowed",
        )
    problem, jkt = _check_proof(proofs[0], run.request, token, run.now, run.config.dpop_max_age)
    if problem:
        raise run.fail(Finding.DPOP_PROOF_INVALID, "DPoP proof", _C_9449_43, problem)
    run.step("DPoP proof", _C_9449_43, True, f"valid proof for this request, key thumbprint {jkt}")
    expected = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(expected, str):
        raise run.fail(
            Finding.DPOP_KEY_MISMATCH,
            "DPoP key binding",
            _C_9449_71,
            "the DPoP scheme was used but the token is not DPoP-bound (no cnf.jkt)",
        )
    if not hmac.compare_digest(expected.encode("utf-8", "surrogatepass"), jkt.encode("ascii")):
        raise run.fail(
            Finding.DPOP_KEY_MISMATCH,
            "DPoP key binding",
            _C_9449_71,
            f"the token is bound to jkt {expected}, the proof's key is {jkt}",
        )
    run.step("DPoP key binding", _C_9449_71, True, f"cnf.jkt matches the proof's key ({jkt})")


def _check_proof(
    proof: str, request: Request, token: str, now: dt.datetime, max_age: int
) -> tuple[str, str]:
    """RFC 9449 §4.3: ``(problem, jkt)``; problem is empty when the proof is valid."""
    try:
        header = jwt.get_unverified_header(proof)
    except jwt.PyJWTError as exc:
        return f"not a JWT ({exc})", ""
    if header.get("typ") != "dpop+jwt":
        return f"typ is {header.get('typ')!r}, not dpop+jwt", ""
    alg = header.get("alg")
    if alg not in _DPOP_ALGS:
        return f"alg {alg!r} is not an asymmetric algorithm this server accepts", ""
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        return "no jwk in the header", ""
    if any(member in jwk for member in ("d", "p", "q", "dp", "dq", "qi", "k")):
        return "the jwk carries private key material", ""
    try:
        key = jwt.PyJWK(jwk, algorithm=str(alg))
        claims = jwt.decode(
            proof,
            key=key,
            algorithms=[str(alg)],
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
        jkt = jwk_thumbprint(jwk)
    except jwt.InvalidSignatureError:
        return "the signature does not verify with the jwk in its header", ""
    except Exception as exc:
        return f"unusable proof ({exc})", ""
    if not isinstance(claims.get("jti"), str):
        return "no jti", ""
    if claims.get("htm") != request.method:
        return f"htm {claims.get('htm')!r} is not the request method {request.method}", ""
    htu = _normal_url(claims["htu"]) if isinstance(claims.get("htu"), str) else None
    if htu is None or htu != _normal_url(request.url):
        return f"htu {claims.get('htu')!r} is not this URL", ""
    iat = claims.get("iat")
    if (
        not isinstance(iat, (int, float))
        or isinstance(iat, bool)
        or abs(now.timestamp() - iat) > max_age
    ):
        return f"iat {iat!r} is outside the accepted window of {max_age} s", ""
    if claims.get("ath") != access_token_hash(token):
        return "ath does not match the access token (a proof made for another token)", ""
    return "", jkt


def _normal_url(url: str) -> str | None:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return None
    return urllib.parse.urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", "", "")
    )


# ---- 5. scope -------------------------------------------------------------------------------------------


def _scope(run: _Run, claims: Mapping[str, Any]) -> None:
    required = run.config.required_scope
    if not required:
        return
    scope = claims.get("scope")
    granted = scope.split(" ") if isinstance(scope, str) else []
    if required not in granted:
        raise run.fail(
            Finding.INSUFFICIENT_SCOPE,
            "scope",
            _C_6750_31,
            f"the resource needs scope {required!r}; the token grants {scope!r}",
        )
    run.step("scope", _C_6750_31, True, f"scope {required!r} granted")
