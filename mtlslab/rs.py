"""The resource server's decision: :func:`evaluate` a request, get a :class:`Decision`.

Pure, with time injected. The checks run in spec order and each leaves a trace step citing its clause:

0. the size of the request — request line and header fields at most :data:`MAX_HEADER_BYTES` (RFC 6585 §5:
   431), body at most :data:`MAX_BODY_BYTES` (RFC 9110 §15.5.14: 413); an oversized request is refused before
   anything in it is parsed (the live server uses the same limits and the same check);
1. where the client certificate comes from — the connection's TLS layer, or an RFC 9440 ``Client-Cert``
   header, trusted only from a configured proxy (RFC 8705 §3, RFC 9440 §2);
2. where the token travels — RFC 6750 §2.1 header (scheme compared case-insensitively, RFC 9110 §11.1),
   §2.2 form body, §2.3 query; more than one place is refused (RFC 6750 §2);
3. the token itself — a JWT access token per RFC 9068 §4 (``typ``, signature with the issuer's JWKS only —
   never ``jku``/``x5u``/``jwk``/``x5c`` from the token, RFC 8725 §3.10 — no member name twice in the header
   or the claims, RFC 7515 §4 / RFC 7519 §4, then ``iss``, ``aud``, ``exp``, ``nbf``), or RFC 7662
   introspection;
4. the binding — RFC 8705 §3 (``cnf.x5t#S256`` against the certificate, compared in constant time),
   RFC 9449 §7 (DPoP proof and ``cnf.jkt``), RFC 7800 §3 (what ``cnf`` may hold). A ``cnf`` with several
   methods is checked for every method this server supports: ``x5t#S256`` and ``jkt`` together need the DPoP
   scheme with a valid proof *and* the certificate;
5. scope (RFC 6750 §3.1), and the result.

The outcome is one :class:`~mtlslab.findings.Finding`. Which HTTP status and error it becomes is the
business of :mod:`mtlslab.interpretations`, never of this module. A rejected request is a returned value;
``evaluate`` does not raise on any request it is given.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import math
import re
import reprlib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import jwt
import jwt.utils
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from mtlslab.errors import ScenarioError
from mtlslab.findings import Finding
from mtlslab.pki import LAB_NOW, same_thumbprint, sha256_b64url
from mtlslab.scenarios import (
    Deployment,
    Request,
    Topology,
    Validation,
    decode_client_cert,
)
from mtlslab.spec import Clause, Step, clause
from mtlslab.tokens import LAB_AUDIENCE, LAB_ISSUER, access_token_hash, jwk_thumbprint

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "Decision",
    "Jwks",
    "RsConfig",
    "config_for",
    "evaluate",
    "head_size",
    "size_decision",
    "thumbprint_of_der",
]

#: The default limit on the request line and header fields (see :func:`head_size`); the live server's too.
MAX_HEADER_BYTES = 16 * 1024
#: The default limit on the request body; the live server's too.
MAX_BODY_BYTES = 64 * 1024

# ---- clauses cited by the checks -----------------------------------------------------------------
_C_8705_3 = clause(8705, "3", "Mutual-TLS Client Certificate-Bound Access Tokens")
_C_8705_31 = clause(8705, "3.1", "JWT Certificate Thumbprint Confirmation Method")
_C_8705_32 = clause(8705, "3.2", "Confirmation Method for Token Introspection")
_C_9440_2 = clause(9440, "2", "HTTP Header Fields and Processing Rules")
_C_9440_24 = clause(9440, "2.4", "Processing Rules")
_C_6750_2 = clause(6750, "2", "Authenticated Requests")
_C_6750_21 = clause(6750, "2.1", "Authorization Request Header Field")
_C_6750_22 = clause(6750, "2.2", "Form-Encoded Body Parameter")
_C_6750_23 = clause(6750, "2.3", "URI Query Parameter")
_C_6750_31 = clause(6750, "3.1", "Error Codes")
_C_9110_111 = clause(9110, "11.1", "Authentication Scheme")
_C_9110_114 = clause(9110, "11.4", "Credentials")
_C_9068_4 = clause(9068, "4", "Validating JWT Access Tokens")
_C_8725_31 = clause(8725, "3.1", "Perform Algorithm Verification")
_C_8725_310 = clause(8725, "3.10", "Do Not Trust Received Claims")
_C_7519_415 = clause(7519, "4.1.5", '"nbf" (Not Before) Claim')
_C_7662_22 = clause(7662, "2.2", "Introspection Response")
_C_7800_31 = clause(7800, "3.1", "Confirmation Claim")
_C_9449_43 = clause(9449, "4.3", "Checking DPoP Proofs")
_C_9449_71 = clause(9449, "7.1", "The DPoP Authentication Scheme")
_C_9449_72 = clause(9449, "7.2", "Compatibility with the Bearer Authentication Scheme")
_C_6585_5 = clause(6585, "5", "431 Request Header Fields Too Large")
_C_9110_15514 = clause(9110, "15.5.14", "413 Content Too Large")
_C_7515_4 = clause(7515, "4", "JOSE Header")
_C_7519_4 = clause(7519, "4", "JWT Claims")

#: How a value from a request or token appears in a trace detail: its repr, kept short (a 4,000-digit iat
#: shows its first and last digits, a kid nested 900 deep its outer levels), so a hostile value cannot
#: swell the trace.
_BRIEF = reprlib.Repr()
_BRIEF.maxstring = _BRIEF.maxother = 80
_BRIEF.maxlong = 60
_BRIEF.maxlevel = 3
_BRIEF.maxlist = _BRIEF.maxtuple = _BRIEF.maxdict = 4


def _brief(value: object, limit: int = 160) -> str:
    """``repr(value)``, shortened where it is long or deep (:data:`_BRIEF`), and at most ``limit``
    characters in all (``limit`` ≥ 40), cut in the middle with a mark."""
    if limit < 40:
        raise ValueError(f"limit: {limit} is below 40")
    shown = _BRIEF.repr(value)
    if len(shown) <= limit:
        return shown
    tail = limit // 4
    return f"{shown[: limit - tail - 1]}…{shown[-tail:]}"


def _cut(text: str, limit: int = 120) -> str:
    """``text`` shown without quotes, for text a client or a token controls (a thumbprint, an error message
    that repeats input): characters that are not printable escaped, and the backslash, so no terminal
    control sequence gets through and an escape cannot pass for the character; beyond ``limit`` characters
    of the result, only its start and how many characters the text has."""
    pieces: list[str] = []
    used = 0
    for c in text:
        piece = c if c.isprintable() and c != "\\" else repr(c)[1:-1]
        if used + len(piece) > limit:  # whole escapes only: never half of one before the mark
            return f"{''.join(pieces)}… ({len(text):,} characters)"
        pieces.append(piece)
        used += len(piece)
    return "".join(pieces)


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
    return sha256_b64url(der)


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

    def prepared(self, key: jwt.PyJWK) -> Any:
        """``key`` as its algorithm object verifies with (checked against the algorithm, as pyjwt does)."""
        return key.Algorithm.prepare_key(key.key)

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
    max_header_bytes: int = (
        MAX_HEADER_BYTES  # request line + header fields, as head_size counts them
    )
    max_body_bytes: int = MAX_BODY_BYTES
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __hash__(self) -> int:  # a cache key on every evaluation: hash once, on first use
        if not self._hash:
            values = tuple(getattr(self, name) for name in _COMPARED_CONFIG_FIELDS)
            object.__setattr__(self, "_hash", hash(values) or 1)
        return self._hash


_COMPARED_CONFIG_FIELDS = tuple(f.name for f in fields(RsConfig) if f.compare)


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
) -> RsConfig:
    """The resource-server configuration a deployment implies (the size limits are the HTTP layer's)."""
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
        max_header_bytes=max_header_bytes,
        max_body_bytes=max_body_bytes,
    )


def head_size(request: Request) -> int:
    """The size of ``request``'s request line and header fields as :func:`evaluate` measures it: the method,
    the absolute URL (whose authority stands for the Host field) and every field as ``name: value`` CRLF.

    Counted in characters, which are octets for the latin-1 text the live server decodes; nothing is parsed,
    so any request can be measured.
    """
    return (
        len(request.method)
        + 1
        + len(request.url)
        + sum(len(name) + len(value) + 4 for name, value in request.headers)
    )


def _size_problem(config: RsConfig, head: int, body: int) -> tuple[Finding, Step] | None:
    if head > config.max_header_bytes:
        return Finding.HEADERS_TOO_LARGE, Step(
            check="request size",
            clause=_C_6585_5,
            passed=False,
            detail=f"the request line and header fields take {head} bytes, more than this server's limit "
            f"of {config.max_header_bytes}: refused before anything in them is parsed",
        )
    if body > config.max_body_bytes:
        return Finding.BODY_TOO_LARGE, Step(
            check="request size",
            clause=_C_9110_15514,
            passed=False,
            detail=f"the body takes {body} bytes, more than this server's limit of "
            f"{config.max_body_bytes}: refused before anything in it is parsed",
        )
    return None


def size_decision(config: RsConfig, *, head: int = 0, body: int = 0) -> Decision | None:
    """The decision on sizes alone: ``headers_too_large`` or ``body_too_large`` when ``head`` (as
    :func:`head_size` counts) or ``body`` bytes exceed ``config``'s limits, else ``None``.

    :func:`evaluate` makes this check first. A server that stops reading an oversized request, and so never
    has a whole :class:`~mtlslab.scenarios.Request`, calls it with the bytes it counted.
    """
    problem = _size_problem(config, head, body)
    if problem is None:
        return None
    finding, step = problem
    return Decision(finding=finding, trace=(step,), required_scope=config.required_scope)


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
    """``config`` without its binding policy, scope and validation method: what the first three stages
    depend on (the validation method is the caller's choice of stage 3).

    Accepting the (hypothetical) MTLS scheme changes those stages only for a request that uses it.
    """
    return replace(
        config,
        validation=Validation.JWT,
        introspect=None,
        checks_binding=True,
        requires_binding=False,
        required_scope="",
        mtls_scheme=config.mtls_scheme and mtls_relevant,
    )


#: An Authorization value whose scheme is ``MTLS`` in any case, after optional spaces and tabs: the scheme
#: ends at a space or at the end (trailing spaces and tabs allowed). Spelled out letter by letter, not with
#: ``re.IGNORECASE``, which would also take ``ſ`` (long s) for ``s``.
_MTLS_SCHEME = re.compile(r"[ \t]*[mM][tT][lL][sS](?: |[ \t]*\Z)")


def _uses_mtls_scheme(request: Request) -> bool:
    """Whether an Authorization field names the (hypothetical) MTLS scheme. Asked before the size check, so
    only the start of each value is read: the credentials after the scheme, however large, are not."""
    return any(_MTLS_SCHEME.match(value) for value in request.header_values("Authorization"))


@dataclass(frozen=True, slots=True)
class _Prefix:
    """Where the first stages ended: size, certificate and token (:func:`_front`), then validation
    (:func:`_prefix`). Shared between servers that differ only in their binding policy or required scope."""

    steps: tuple[Step, ...]
    stop: Finding | None
    cert: bytes | None = None
    untrusted: bool = False
    token: str = ""
    scheme: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    presented_x5t: str | None = None


@functools.lru_cache(maxsize=4096)
def _front(request: Request, config: RsConfig) -> _Prefix:
    """Stages 0-2 for ``request`` (size, certificate, token): the same whether the token is then validated
    locally or by introspection; ``config`` is neutral (:func:`_neutral`)."""
    run = _Run(request=request, config=config, now=LAB_NOW)  # no clock before stage 3
    too_large = _size_problem(config, head_size(request), len(request.body))
    if too_large is not None:
        return _Prefix(steps=(too_large[1],), stop=too_large[0])
    try:
        cert, untrusted = _certificate(run)
        token, scheme = _extract_token(run)
    except _Stop as stop:
        return _Prefix(steps=tuple(run.steps), stop=stop.finding, presented_x5t=run.presented_x5t)
    return _Prefix(
        steps=tuple(run.steps),
        stop=None,
        cert=cert,
        untrusted=untrusted,
        token=token,
        scheme=scheme,
        presented_x5t=run.presented_x5t,
    )


def _validated(
    request: Request,
    config: RsConfig,
    now: dt.datetime,
    introspect: Callable[[str], Mapping[str, Any]] | None = None,
) -> _Prefix:
    """Stages 0-3: :func:`_front`, then the token validated — by introspection when ``introspect`` is
    given (``config`` is neutral either way)."""
    front = _front(request, config)
    if front.stop is not None:
        return front
    run = _Run(
        request=request,
        config=config,
        now=now,
        steps=list(front.steps),
        scheme=front.scheme,
        presented_x5t=front.presented_x5t,
    )
    try:
        claims = (
            _validate_jwt(run, front.token)
            if introspect is None
            else _introspect(run, front.token, introspect)
        )
    except _Stop as stop:
        return replace(front, steps=tuple(run.steps), stop=stop.finding)
    return replace(front, steps=tuple(run.steps), claims=claims)


#: Stages 0-3 with local JWT validation, a pure function of its arguments: cached.
_prefix = functools.lru_cache(maxsize=4096)(_validated)


def _no_endpoint(_token: str) -> Mapping[str, Any]:
    raise LookupError("no introspection endpoint configured")


def evaluate(request: Request, config: RsConfig, *, now: dt.datetime = LAB_NOW) -> Decision:
    """Decide what the resource server finds for ``request`` at ``now``."""
    neutral = _neutral(config, config.mtls_scheme and _uses_mtls_scheme(request))
    if config.validation is Validation.JWT:
        prefix = _prefix(request, neutral, now)
    else:
        # Introspection asks the authorization server, whose answer can change (RFC 7662 §2.2: revoked
        # tokens become inactive): asked afresh every time; only the stages before it are shared.
        prefix = _validated(request, neutral, now, config.introspect or _no_endpoint)
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
    run.step("result", Finding.ACCEPTED.info.clause, True, "every check passed")
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
                    _C_9440_24,
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
            _C_9440_24,
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
        if "\t" in scheme and scheme.split("\t", 1)[0].lower() in known:
            raise run.fail(
                Finding.MALFORMED_AUTHORIZATION,
                "Authorization header",
                _C_9110_114,
                "the scheme and the token are separated by a tab; RFC 9110 §11.4 requires one or more "
                "spaces",
            )
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
    query = _query(request.url)
    query_tokens = (
        urllib.parse.parse_qs(query, keep_blank_values=True).get("access_token", [])
        if query
        else []
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

#: RFC 7515 §2: base64url is the URL-safe alphabet with every trailing "=" omitted, nothing else.
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class _Malformed(ValueError):
    """A compact JWS that cannot be read; the message says why, ``part`` which part (``"structure"`` when
    it is not three dot-separated parts)."""

    def __init__(self, reason: str, part: str) -> None:
        super().__init__(reason)
        self.part = part


_B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: By the length of a segment modulo 4: the characters that may end it, their unused low bits zero.
_CANONICAL_LAST = {
    0: frozenset(_B64URL_ALPHABET),
    2: frozenset(_B64URL_ALPHABET[::16]),
    3: frozenset(_B64URL_ALPHABET[::4]),
}


def _b64url_part(segment: str, part: str) -> bytes:
    """One part of a compact JWS (RFC 7515 §7.1), decoded strictly: the base64url alphabet without padding
    (RFC 7515 §2), and canonical — its unused low bits zero, so one value has exactly one encoding."""
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise _Malformed(f"the {part} is not unpadded base64url (RFC 7515 §2)", part)
    # Only the last character carries unused bits (4 of its 6 after 2 characters of a group, 2 after 3).
    if segment and segment[-1] not in _CANONICAL_LAST[len(segment) % 4]:
        raise _Malformed(
            f"the {part} is not canonical base64url: its unused low bits are not zero", part
        )
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json_object(raw: bytes, part: str) -> dict[str, Any]:
    """``raw`` as a JSON object, refusing a member name that occurs twice at any depth
    (raises :class:`_DuplicateMember`)."""
    try:
        value = _STRICT_JSON.decode(raw.decode("utf-8"))
    except _DuplicateMember:
        raise
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _Malformed(f"the {part} is not JSON ({exc})", part) from None
    if not isinstance(value, dict):
        raise _Malformed(f"the {part} is not a JSON object", part)
    return value


class _DuplicateMember(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads`` hook: an object naming a member twice is refused, at any depth."""
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise _DuplicateMember(name)
        found[name] = value
    return found


def _no_constant(name: str) -> Any:
    """``json`` hook: ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON (RFC 8259 §6)."""
    raise ValueError(f"{name} is not a JSON number (RFC 8259 §6)")


def _finite(text: str) -> float:
    """``json`` hook: a number too large for a float (``1e400``) is refused, not read as infinity. JSON
    allows it; RFC 8259 §6 lets an implementation limit the range it reads, and this one does."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {_cut(text, 40)} is outside the range this server reads")
    return value


#: One decoder for every JOSE header and claims set (``json.loads`` with a hook would build one per call).
#: No member name twice, and every number finite: a NaN ``exp`` or ``iat`` would pass every comparison.
_STRICT_JSON = json.JSONDecoder(
    object_pairs_hook=_unique_members, parse_constant=_no_constant, parse_float=_finite
)

_Verified = tuple[str, dict[str, Any] | str, tuple[str, ...], Clause]


def _duplicate(
    part: str, name: str, where: Clause, pointers: tuple[str, ...] = ()
) -> tuple[str, str, tuple[str, ...], Clause]:
    """RFC 7515 §4 and RFC 7519 §4 let a parser either reject a duplicate member name or keep the lexically
    last one. Python's ``json`` keeps the last, so a token whose first ``cnf`` names one certificate and
    whose last names another could be read one way here and the other way elsewhere: this server rejects
    instead, so no two parsers can disagree on what the token says."""
    return Finding.TOKEN_MALFORMED.value, _twice(part, name), pointers, where


def _twice(part: str, name: str) -> str:
    return f"the member name {_brief(name)} occurs twice in the {part}: refused rather than guessed"


def _malformed(reason: str, pointers: tuple[str, ...] = ()) -> _Verified:
    return Finding.TOKEN_MALFORMED.value, f"not a well-formed JWT ({reason})", pointers, _C_9068_4


@dataclass(frozen=True, slots=True)
class _Compact:
    """A compact JWS read strictly (RFC 7515 §7.1): three unpadded, canonical base64url parts, the JOSE header a
    JSON object naming no member twice. The payload and signature are decoded only when asked for, after the
    header has been judged; the payload's JSON only after the signature verifies."""

    header: dict[str, Any]
    parts: tuple[str, str, str]

    @classmethod
    def read(cls, token: str) -> _Compact:
        """Raises :class:`_Malformed` (with the reason) or :class:`_DuplicateMember` (for the header)."""
        parts = token.split(".")
        if len(parts) != 3:
            raise _Malformed(f"{len(parts)} dot-separated part(s); a JWS has 3", "structure")
        header = _json_object(_b64url_part(parts[0], "JOSE header"), "JOSE header")
        return cls(header, (parts[0], parts[1], parts[2]))

    def body(self) -> tuple[bytes, bytes, bytes]:
        """``(signing input, payload, signature)``, the payload and signature decoded strictly."""
        header_part, payload_part, signature_part = self.parts
        payload = _b64url_part(payload_part, "payload")
        signature = _b64url_part(signature_part, "signature")
        return f"{header_part}.{payload_part}".encode("ascii"), payload, signature

    def kid_problem(self) -> str | None:
        """Why ``kid`` is unusable, or None: when present it is a string (RFC 7515 §4.1.4)."""
        kid = self.header.get("kid", "")
        return (
            None if isinstance(kid, str) else f"kid {_brief(kid)} is not a string (RFC 7515 §4.1.4)"
        )

    def extension_problem(self) -> str | None:
        """Why the header's extensions cannot be honoured, or None.

        RFC 7515 §4.1.11: an extension listed in ``crit`` must be understood, and this server understands
        none (RFC 7797's unencoded payload has no place in a JWT). A ``b64`` other than true outside ``crit``
        is refused too (RFC 7797 §6)."""
        header = self.header
        if "crit" in header:
            return f"crit {_brief(header['crit'])}: this server understands no critical header extension"
        if "b64" in header and header["b64"] is not True:
            return f"b64 {_brief(header['b64'])} without crit (RFC 7797 §6): the payload must be base64url"
        return None


@functools.lru_cache(maxsize=4096)
def _verify_jws(token: str, jwks: Jwks) -> _Verified:
    """Signature verification, once per (token, key set): ``(outcome, claims or reason, key headers, clause)``.

    ``outcome`` is ``"ok"`` (with the claims) or a finding's value (with the reason); the key headers are the
    ``jku``/``x5u``/``jwk``/``x5c`` members the token carries — never fetched, never used; the clause is the
    one the outcome rests on.

    The compact serialisation is read once, strictly (:class:`_Compact`); the signature is then checked by
    pyjwt's algorithm object for the issuer's key (``cryptography`` underneath). Anything pyjwt's own
    ``decode`` refuses is refused here too — a differential test holds the two to that.
    """
    try:
        jws = _Compact.read(token)
    except _DuplicateMember as dup:
        return _duplicate("JOSE header", dup.name, _C_7515_4)
    except _Malformed as exc:
        if exc.part != "JOSE header":
            return _malformed(str(exc))
        return (
            Finding.TOKEN_MALFORMED.value,
            f"the JOSE header is not base64url-encoded JSON: {exc}",
            (),
            _C_9068_4,
        )
    header = jws.header
    pointers = tuple(name for name in _URL_BEARING_HEADERS if name in header)
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _TYP_AT_JWT:
        return (
            Finding.TOKEN_MALFORMED.value,
            f"typ is {_brief(typ)}, not at+jwt: not a JWT access token",
            pointers,
            _C_9068_4,
        )
    kid = jws.kid_problem()
    if kid is not None:
        return _malformed(kid, pointers)
    alg = header.get("alg")
    key = jwks.find(header.get("kid"))
    if key is None:
        return (
            Finding.BAD_SIGNATURE.value,
            f"no key with kid {_brief(header.get('kid'))} in the issuer's JWKS",
            pointers,
            _C_9068_4,
        )
    if alg != key.algorithm_name:
        return (
            Finding.BAD_SIGNATURE.value,
            f"alg {_brief(alg)} is refused: the issuer's key {key.key_id} is {key.algorithm_name} (alg none "
            "and HMAC with a public key are the classic confusions)",
            pointers,
            _C_8725_31,
        )
    extension = jws.extension_problem()
    if extension is not None:
        return _malformed(extension, pointers)
    try:
        signing_input, payload_raw, signature = jws.body()
    except _Malformed as exc:
        return _malformed(str(exc), pointers)
    if not key.Algorithm.verify(signing_input, jwks.prepared(key), signature):
        return (
            Finding.BAD_SIGNATURE.value,
            f"the signature does not verify with key {key.key_id}",
            pointers,
            _C_9068_4,
        )
    try:
        payload = _json_object(payload_raw, "claims set")
    except _DuplicateMember as dup:
        return _duplicate("claims", dup.name, _C_7519_4, pointers)
    except _Malformed as exc:
        return _malformed(str(exc), pointers)
    return "ok", payload, pointers, _C_9068_4


def _validate_jwt(run: _Run, token: str) -> Mapping[str, Any]:
    outcome, result, ignored, where = _verify_jws(token, run.config.jwks)
    if ignored:
        run.step(
            "JOSE header",
            _C_8725_310,
            None,
            f"header carries {', '.join(ignored)}: never fetched nor trusted; keys come only from the "
            "configured JWKS",
        )
    if outcome != "ok":
        assert isinstance(result, str)
        raise run.fail(
            Finding(outcome),
            "signature" if outcome == Finding.BAD_SIGNATURE.value else "JWT structure",
            where,
            result,
        )
    assert isinstance(result, dict)
    claims = result
    run.step(
        "signature", _C_9068_4, True, "typ at+jwt; the signature verifies with the issuer's key"
    )
    iss = claims.get("iss")
    if iss != run.config.issuer:
        raise run.fail(
            Finding.WRONG_ISSUER,
            "iss",
            _C_9068_4,
            f"iss {_brief(iss)} is not the trusted issuer {run.config.issuer!r}",
        )
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if run.config.audience not in audiences:
        raise run.fail(
            Finding.WRONG_AUDIENCE,
            "aud",
            _C_9068_4,
            f"aud {_brief(aud)} does not name {run.config.audience!r}",
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
    """``epoch`` as an RFC 3339 UTC date-time to the second (the epoch itself when it is out of range)."""
    try:
        t = dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return str(epoch)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"


def _introspect(
    run: _Run, token: str, introspect: Callable[[str], Mapping[str, Any]]
) -> Mapping[str, Any]:
    if introspect is _no_endpoint:
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
            f"aud {_brief(aud)} does not name {run.config.audience!r}",
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
        _also_certificate(run, cnf, cert, untrusted_header)
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
        also = (
            " (its cnf names a certificate too; both would be checked)" if "x5t#S256" in cnf else ""
        )
        raise run.fail(
            Finding.DPOP_TOKEN_AS_BEARER,
            "scheme",
            _C_9449_72,
            f"a DPoP-bound token (cnf.jkt) arrived as a {run.scheme} token, not under the DPoP scheme; a "
            f"DPoP-aware server refuses it{also}",
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
    names = sorted(map(str, cnf))
    members = ", ".join(_brief(n, 40) for n in names[:8]) or "none"
    if len(names) > 8:
        members += f" and {len(names) - 8} more"
    raise run.fail(
        Finding.UNSUPPORTED_CONFIRMATION,
        "cnf",
        _C_7800_31,
        f"no confirmation method this server checks (cnf members: {members})",
    )


def _also_certificate(run: _Run, cnf: Any, cert: bytes | None, untrusted_header: bool) -> None:
    """After a valid DPoP proof and key binding: a cnf that also names a certificate binds to it as well.

    RFC 7800 §3.1 lets cnf hold several confirmation members; a server checks every one it supports, so a
    token bound to a DPoP key *and* a certificate needs both (one stolen secret is not enough).
    """
    if isinstance(cnf, dict) and "x5t#S256" in cnf:
        run.step(
            "confirmation methods",
            _C_7800_31,
            None,
            "cnf names a certificate as well as the DPoP key: every method this server supports is checked",
        )
        _x5t(run, cnf["x5t#S256"], cert, untrusted_header)


def _x5t(run: _Run, expected: Any, cert: bytes | None, untrusted_header: bool) -> None:
    run.binding = "x5t#S256"
    run.expected_x5t = expected if isinstance(expected, str) else json.dumps(expected)
    if cert is None:
        if untrusted_header:
            raise run.fail(
                Finding.UNTRUSTED_CLIENT_CERT_HEADER,
                "certificate binding",
                _C_9440_24,
                "the token is certificate-bound and the only certificate came in an untrusted "
                "Client-Cert header",
            )
        raise run.fail(
            Finding.CERTIFICATE_MISSING,
            "certificate binding",
            _C_8705_3,
            f"the token is bound to x5t#S256 {_cut(run.expected_x5t)} but no client certificate was "
            "presented",
        )
    presented = run.presented_x5t or thumbprint_of_der(cert)
    if not same_thumbprint(expected, presented):
        raise run.fail(
            Finding.CERTIFICATE_MISMATCH,
            "certificate binding",
            _C_8705_31,
            f"expected x5t#S256 {_cut(run.expected_x5t)}, presented {presented} (exact, constant-time "
            "comparison)",
        )
    run.step(
        "certificate binding",
        _C_8705_3,
        True,
        f"x5t#S256 matches the presented certificate ({presented})",
    )


@functools.lru_cache(maxsize=256)
def _checking(config: RsConfig) -> RsConfig:
    """``config`` as a server that checks binding: the one :func:`_dry_run` asks."""
    return replace(config, checks_binding=True)


def _dry_run(run: _Run, token: str, cnf: Any, cert: bytes | None, untrusted_header: bool) -> str:
    """What the binding check would have found, for a server that skips it: stage 4 run on a copy as a
    checking server (its trace discarded)."""
    probe = _Run(
        request=run.request,
        config=_checking(run.config),
        now=run.now,
        scheme=run.scheme,
        presented_x5t=run.presented_x5t,
    )
    try:
        _binding(probe, token, {"cnf": cnf}, cert, untrusted_header)
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
    problem, jkt = _check_proof(
        proofs[0], run.request.method, run.request.url, token, run.now, run.config.dpop_max_age
    )
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
    if not same_thumbprint(expected, jkt):
        raise run.fail(
            Finding.DPOP_KEY_MISMATCH,
            "DPoP key binding",
            _C_9449_71,
            f"the token is bound to jkt {_cut(expected)}, the proof's key is {jkt}",
        )
    run.step("DPoP key binding", _C_9449_71, True, f"cnf.jkt matches the proof's key ({jkt})")


@functools.lru_cache(maxsize=1024)
def _check_proof(
    proof: str, method: str, url: str, token: str, now: dt.datetime, max_age: int
) -> tuple[str, str]:
    """RFC 9449 §4.3: ``(problem, jkt)``; problem is empty when the proof is valid.

    A pure function of its arguments (this server keeps no ``jti`` replay cache), so each proof is verified
    once however many resource-server configurations look at the same request.

    The proof is read as strictly as an access token (:class:`_Compact`: canonical unpadded base64url, no
    member name twice, finite numbers, a string ``kid``, no critical extension: all part of check 2, a
    well-formed JWT); its ``jwk`` must be a public key of the kind ``alg`` is defined for
    (:func:`_unfit_key`, part of checks 5 and 6), and the signature is checked with it by pyjwt's algorithm
    object. A differential test holds the reading to pyjwt's JWS ``decode``: what this accepts, pyjwt
    accepts. The checks run in the order of §4.3 with two exceptions: the jwk is judged (check 7, no private
    key) before the signature is checked with it (check 6), and the claims (check 3) are read only after
    the signature verifies.
    """
    # Check 2: one well-formed JWT (read as strictly as an access token).
    try:
        jws = _Compact.read(proof)
    except _DuplicateMember as dup:
        return _twice("JOSE header", dup.name), ""
    except _Malformed as exc:
        return f"not a well-formed JWT ({exc})", ""
    header = jws.header
    problem = jws.kid_problem() or jws.extension_problem()
    if problem is not None:
        return f"not a well-formed JWT ({problem})", ""
    # Check 4: typ; like any typ, compared without case and with "application/" optional (RFC 7515 §4.1.9).
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ("dpop+jwt", "application/dpop+jwt"):
        return f"typ is {_brief(typ)}, not dpop+jwt", ""
    # Check 5: an asymmetric algorithm this server supports.
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in _DPOP_ALGS:
        return f"alg {_brief(alg)} is not an asymmetric algorithm this server accepts", ""
    # Check 7 (no private key), then whether the key is one the algorithm is defined for (checks 5, 6).
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        return "no jwk in the header", ""
    if any(member in jwk for member in ("d", "p", "q", "dp", "dq", "qi", "k")):
        return "the jwk carries private key material", ""
    try:
        key = jwt.PyJWK(jwk, algorithm=alg)
        jkt = jwk_thumbprint(jwk)
    except Exception as exc:  # whatever an attacker's JWK makes pyjwt or cryptography raise
        return f"unusable jwk ({_cut(str(exc))})", ""
    unfit = _unfit_key(alg, key.key)
    if unfit is not None:
        return f"unusable jwk ({unfit})", ""
    # Check 6: the signature, with that key.
    try:
        signing_input, payload_raw, signature = jws.body()
    except _Malformed as exc:
        return f"not a well-formed JWT ({exc})", ""
    if not key.Algorithm.verify(signing_input, key.key, signature):
        return "the signature does not verify with the jwk in its header", ""
    # Check 3: the claims (a JSON object naming no member twice; the required ones follow).
    try:
        claims = _json_object(payload_raw, "claims set")
    except _DuplicateMember as dup:
        return _twice("claims", dup.name), ""
    except _Malformed as exc:
        return f"not a well-formed JWT ({exc})", ""
    if not isinstance(claims.get("jti"), str):
        return "no jti", ""
    if claims.get("htm") != method:
        return f"htm {_brief(claims.get('htm'))} is not the request method {method}", ""
    htu = _normal_url(claims["htu"]) if isinstance(claims.get("htu"), str) else None
    if htu is None or htu != _normal_url(url):
        return f"htu {_brief(claims.get('htu'))} is not this URL", ""
    iat = claims.get("iat")
    at = now.timestamp()
    if (  # compared, not subtracted: an integer too large for a float cannot overflow a comparison
        not isinstance(iat, (int, float))
        or isinstance(iat, bool)
        or not at - max_age <= iat <= at + max_age
    ):
        return f"iat {_brief(iat)} is outside the accepted window of {max_age} s", ""
    if claims.get("ath") != access_token_hash(token):
        return "ath does not match the access token (a proof made for another token)", ""
    return "", jkt


#: RFC 7518 §3.4: each ECDSA algorithm is defined for one curve.
_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}


def _unfit_key(alg: str, key: object) -> str | None:
    """Why ``key`` (a DPoP proof's public key) cannot serve ``alg``, or None: ES* on its own curve
    (RFC 7518 §3.4), RS* and PS* with RSA of 2048 bits or more (§3.3, §3.5), EdDSA with Ed25519 or Ed448
    (RFC 8037 §3.1)."""
    if alg in _EC_CURVES:
        curve = key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else None
        if curve != _EC_CURVES[alg]:
            return f"{alg} needs a {_EC_CURVES[alg]} key, not {curve or type(key).__name__}"
        return None
    if alg.startswith(("RS", "PS")):
        if not isinstance(key, rsa.RSAPublicKey):
            return f"{alg} needs an RSA key, not {type(key).__name__}"
        if key.key_size < 2048:
            return f"{alg} needs an RSA key of 2048 bits or more, not {key.key_size}"
        return None
    if alg == "EdDSA":
        if not isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            return f"{alg} needs an Ed25519 or Ed448 key, not {type(key).__name__}"
        return None
    return f"this server has no key rule for {alg}"


_DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _normal_url(url: str) -> str | None:
    """RFC 9449 §4.3 check 9: compare ``htu`` ignoring query and fragment, after the syntax- and
    scheme-based normalisation of RFC 3986 §6.2.2 and §6.2.3 (case of scheme and host, default port,
    percent-encoding case, percent-encoded unreserved characters, empty path)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"

    def percent(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else f"%{match.group(1).upper()}"

    path = _PERCENT.sub(percent, parts.path) or "/"
    return urllib.parse.urlunsplit((scheme, netloc, path, "", ""))


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
            f"the resource needs scope {required!r}; the token grants {_brief(scope)}",
        )
    run.step("scope", _C_6750_31, True, f"scope {required!r} granted")
