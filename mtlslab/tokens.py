"""Access tokens: JWTs per RFC 9068 bound by ``cnf.x5t#S256`` or ``cnf.jkt``, opaque tokens with RFC 7662
introspection, DPoP proofs, and deliberately broken variants — all minted by a lab authorization server::

    asrv = AuthorizationServer(lab)                  # ES256, key derived from the lab seed
    token = asrv.mint("bound")                       # bound to lab.client by cnf.x5t#S256 (RFC 8705 §3)
    token.claims()["cnf"], asrv.jwks()               # {'x5t#S256': '...'}; what a resource server trusts

Every variant in :data:`TOKEN_VARIANTS` is a named recipe (rules as data). ES256 (deterministic ECDSA, RFC
6979) and EdDSA tokens of a seeded lab are the same string on every machine; RS256 and PS256 use a fresh
random RSA key (and PS256 a random salt). Whether a token is acceptable is :mod:`mtlslab.rs`'s to decide.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import html
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import jwt
import jwt.algorithms
import jwt.utils
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mtlslab.errors import KeyTypeError, TokenError
from mtlslab.pki import (
    LAB_EPOCH,
    LAB_NOT_AFTER,
    LAB_NOW,
    Identity,
    KeyType,
    Lab,
    PrivateKey,
    public_jwk,
    sha256_b64url,
    sign_certificate,
)
from mtlslab.spec import keep_latest

__all__ = [
    "ALGORITHMS",
    "LAB_AUDIENCE",
    "LAB_ISSUER",
    "LAB_RESOURCE",
    "TOKEN_VARIANTS",
    "AccessToken",
    "AuthorizationServer",
    "DPoPKey",
    "IntrospectionResponse",
    "TokenKind",
    "TokenVariant",
    "access_token_hash",
    "decode_unverified",
    "dpop_proof",
    "jwk_thumbprint",
]

#: Signature algorithms the lab authorization server can use.
ALGORITHMS = ("ES256", "RS256", "PS256", "EdDSA")
#: The lab authorization server's issuer identifier.
LAB_ISSUER = "https://as.mtlslab.test"
#: The audience of lab access tokens: the lab resource server.
LAB_AUDIENCE = "https://rs.mtlslab.test"
#: The protected resource the simulation requests (live runs use the real loopback URL instead).
LAB_RESOURCE = "https://rs.mtlslab.test/resource"

_TOKEN_LIFETIME = dt.timedelta(hours=1)


class _DeterministicECAlgorithm(jwt.algorithms.ECAlgorithm):
    """pyjwt's ES256 with deterministic ECDSA (RFC 6979), so seeded tokens are reproducible."""

    def sign(self, msg: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
        der = key.sign(msg, ec.ECDSA(self.hash_alg(), deterministic_signing=True))
        return jwt.utils.der_to_raw_signature(der, key.curve)


class _UnguardedHMACAlgorithm(jwt.algorithms.HMACAlgorithm):
    """HS256 that accepts a PEM public key as the secret (the algorithm-confusion attack, on purpose): pyjwt
    refuses this, rightly; the lab makes such a token to show a resource server refusing it."""

    def prepare_key(self, key: str | bytes) -> bytes:
        return key.encode() if isinstance(key, str) else bytes(key)


def _signer(name: str, algorithm: jwt.algorithms.Algorithm) -> jwt.PyJWS:
    jws = jwt.PyJWS()
    jws.unregister_algorithm(name)
    jws.register_algorithm(name, algorithm)
    return jws


_SIGNER = _signer("ES256", _DeterministicECAlgorithm(_DeterministicECAlgorithm.SHA256))
_PLAIN_SIGNER = jwt.PyJWS()
_CONFUSION_SIGNER = _signer("HS256", _UnguardedHMACAlgorithm(_UnguardedHMACAlgorithm.SHA256))


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _b64url(data: bytes) -> str:
    return jwt.utils.base64url_encode(data).decode("ascii")


def _epoch(when: dt.datetime) -> int:
    return int(when.timestamp())


_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK SHA-256 thumbprint (base64url, unpadded), the value of ``cnf.jkt`` (RFC 9449 §6.1):
    over the key type's required members only, in lexicographic order, as compact JSON."""
    if not isinstance(jwk, Mapping):
        raise TokenError("jwk", f"expected a JSON object, got {type(jwk).__name__}")
    kty = jwk.get("kty")
    if not isinstance(kty, str) or kty not in _THUMBPRINT_MEMBERS:
        raise TokenError("jwk.kty", f"unsupported or missing key type {kty!r} (RFC 7638 §3.2)")
    required = {name: jwk.get(name) for name in _THUMBPRINT_MEMBERS[kty]}
    for name, value in required.items():
        if not isinstance(value, str):
            raise TokenError(
                f"jwk.{name}", f"required member missing or not a string for kty {kty}"
            )
    canonical = json.dumps(
        required, separators=(",", ":"), sort_keys=True, ensure_ascii=False
    ).encode("utf-8")
    return sha256_b64url(canonical)


def access_token_hash(token: str) -> str:
    """RFC 9449 §4.2 ``ath``: base64url SHA-256 of the ASCII access token."""
    return sha256_b64url(token.encode("ascii", "replace"))


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DPoPKey:
    """A client's DPoP key pair (RFC 9449 §4): the public JWK goes in each proof's header."""

    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def for_lab(cls, lab: Lab, label: str = "client") -> DPoPKey:
        """The lab client's DPoP key, derived from the seed: the same key for the same lab and label."""
        key = lab.key(f"dpop/{label}", KeyType.EC)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cls(private_key=key)

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public JWK placed in the proof header."""
        return public_jwk(self.private_key)

    @property
    def jkt(self) -> str:
        """RFC 7638 thumbprint of the public JWK: what ``cnf.jkt`` holds for tokens bound to this key."""
        return jwk_thumbprint(self.public_jwk)

    def __repr__(self) -> str:
        return f"<DPoPKey jkt={self.jkt}>"


def dpop_proof(
    key: DPoPKey,
    *,
    htm: str,
    htu: str,
    access_token: str | None = None,
    iat: dt.datetime = LAB_NOW,
    jti: str = "lab-dpop-proof-1",
    header_overrides: Mapping[str, Any] | None = None,
    claim_overrides: Mapping[str, Any] | None = None,
) -> str:
    """A DPoP proof JWT (RFC 9449 §4.2): ``typ: dpop+jwt``, ES256, the public ``jwk``; ``jti``, ``htm``,
    ``htu``, ``iat`` and, with an access token, ``ath``. Overrides make deliberately broken proofs."""
    headers = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk, **(header_overrides or {})}
    claims: dict[str, Any] = {"jti": jti, "htm": htm, "htu": htu, "iat": _epoch(iat)}
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    claims.update(claim_overrides or {})
    return _SIGNER.encode(_json(claims), key.private_key, algorithm="ES256", headers=headers)


TokenKind = Literal["jwt", "opaque", "malformed", "none"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessToken:
    """One access token as it travels: its string, which lab variant made it, and what it is bound to."""

    value: str
    variant: str
    kind: TokenKind
    description: str
    bound_x5t: str | None = None
    bound_jkt: str | None = None

    def header(self) -> dict[str, Any]:
        """The JOSE header, decoded without verification (empty for opaque or malformed tokens)."""
        return decode_unverified(self.value)[0] if self.kind == "jwt" else {}

    def claims(self) -> dict[str, Any]:
        """The claims, decoded without verification (empty for opaque or malformed tokens)."""
        return decode_unverified(self.value)[1] if self.kind == "jwt" else {}

    def __repr__(self) -> str:
        shown = self.value if len(self.value) <= 24 else f"{self.value[:12]}…{self.value[-8:]}"
        binding = f" x5t#S256={self.bound_x5t}" if self.bound_x5t else ""
        binding = binding or (f" jkt={self.bound_jkt}" if self.bound_jkt else "")
        return f"<AccessToken {self.variant} {self.kind} {shown!r}{binding}>"

    def _repr_html_(self) -> str:
        parts = [
            f"<div style='font-weight:bold'>Access token · {html.escape(self.variant)} ({self.kind})</div>"
        ]
        parts.append(f"<div style='color:#555'>{html.escape(self.description)}</div>")
        if self.kind == "jwt":
            for title, body in (("header", self.header()), ("claims", self.claims())):
                text = json.dumps(body, indent=2)
                if len(text) > 4096:  # the huge-token variant: show its shape, not a megabyte
                    text = f"{text[:4096]}… ({len(text)} characters)"
                parts.append(
                    f"<div>{title}</div><pre style='margin:2px 0;background:#f6f6f6;padding:4px'>"
                    f"{html.escape(text)}</pre>"
                )
        parts.append(
            "<div>compact form</div><pre style='white-space:pre-wrap;word-break:break-all;margin:2px 0;"
            f"background:#f6f6f6;padding:4px'>{html.escape(self.value[:4096])}</pre>"
        )
        return f"<div style='border:1px solid #ccc;border-radius:4px;padding:6px'>{''.join(parts)}</div>"


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWS without checking the signature (for display and inspection); a
    :class:`~mtlslab.errors.TokenError` names the part that is not a JWT."""
    if not isinstance(token, str):
        raise TokenError("token", f"expected a string, got {type(token).__name__}")
    if token.count(".") != 2:
        raise TokenError(
            "token", f"a JWS compact serialisation has 3 parts, this has {token.count('.') + 1}"
        )
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError(_broken_part(str(exc)), str(exc)) from None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenError("token.claims", str(exc)) from None
    return dict(header), dict(claims)


def _broken_part(message: str) -> str:
    """The part pyjwt's parse error is about (it decodes header, payload and signature in one go)."""
    if "payload" in message:
        return "token.claims"
    if "crypto" in message or "signature" in message:
        return "token.signature"
    return "token.header"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenVariant:
    """A named recipe for one kind of access token (rules as data)."""

    name: str
    description: str
    kind: TokenKind
    cite: str
    make: Callable[[_Mint], AccessToken] = field(repr=False, compare=False)


class IntrospectionResponse(dict[str, Any]):
    """An RFC 7662 §2.2 introspection response: a plain JSON object that also renders in a notebook."""

    def __repr__(self) -> str:
        active = "active" if self.get("active") is True else "inactive"
        cnf = f" cnf={json.dumps(self['cnf'])}" if "cnf" in self else ""
        return f"<IntrospectionResponse {active}{cnf} {dict.__repr__(self)}>"

    def _repr_html_(self) -> str:
        active = self.get("active") is True
        colour, state = ("#1b7f3b", "active") if active else ("#b00020", "inactive")
        return (
            "<div style='border:1px solid #ccc;border-radius:4px;padding:6px'>"
            f"<div style='font-weight:bold;color:{colour}'>Introspection response (RFC 7662 §2.2): "
            f"{state}</div>"
            "<pre style='margin:2px 0;background:#f6f6f6;padding:4px'>"
            f"{html.escape(json.dumps(dict(self), indent=2))}</pre></div>"
        )


class AuthorizationServer:
    """The lab's authorization server: signing key, public JWKS, token minting and RFC 7662 introspection.
    ES256 and EdDSA keys derive from the lab seed, RS256/PS256 keys are random; ``kid`` is the RFC 7638
    thumbprint of the public key."""

    def __init__(
        self,
        lab: Lab,
        *,
        alg: str = "ES256",
        issuer: str = LAB_ISSUER,
        audience: str = LAB_AUDIENCE,
    ) -> None:
        if alg not in ALGORITHMS:
            raise KeyTypeError("alg", f"{alg!r} is not one of {', '.join(ALGORITHMS)}")
        self.lab, self.alg, self.issuer, self.audience = lab, alg, issuer, audience
        key_type = {"ES256": KeyType.EC, "EdDSA": KeyType.ED25519}.get(alg, KeyType.RSA)
        self.signing_key: PrivateKey = lab.key("as/signing", key_type)
        # A second key of the same type that never appears in the JWKS: for "bad signature".
        self.impostor_key: PrivateKey = lab.key("as/impostor", key_type)
        self.kid = jwk_thumbprint(public_jwk(self.signing_key))
        self._introspection: dict[str, dict[str, Any]] = {}
        self._revoked: set[str] = set()
        self._cache: dict[tuple[str, Identity, dt.datetime], AccessToken] = {}

    @functools.cached_property
    def dpop_key(self) -> DPoPKey:
        """The lab client's DPoP key (RFC 9449), derived from the seed."""
        return DPoPKey.for_lab(self.lab)

    @property
    def reproducible(self) -> bool:
        """Whether tokens from this server are identical from run to run for a seeded lab."""
        return self.alg in ("ES256", "EdDSA") and self.lab.seeded

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set a resource server uses to verify lab tokens."""
        jwk = {**public_jwk(self.signing_key), "kid": self.kid, "use": "sig", "alg": self.alg}
        return {"keys": [jwk]}

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 metadata for the lab issuer (what a server under test needs to trust it)."""
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/jwks",
            "introspection_endpoint": f"{self.issuer}/introspect",
            "tls_client_certificate_bound_access_tokens": True,
            "dpop_signing_alg_values_supported": ["ES256"],
        }

    def public_key_pem(self) -> bytes:
        """The signing key's public half as PEM (the HMAC secret of the algorithm-confusion attack)."""
        return self.signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def claims(
        self,
        *,
        subject: str = "alice",
        client_id: str = "lab-client",
        now: dt.datetime = LAB_NOW,
        jti: str = "lab-token",
        cnf: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """RFC 9068 §2.2 claims for a lab token (``cnf`` per RFC 7800 when given)."""
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "exp": _epoch(now + _TOKEN_LIFETIME),
            "iat": _epoch(now),
            "jti": jti,
            "client_id": client_id,
            "scope": "read",
        }
        if cnf is not None:
            claims["cnf"] = dict(cnf)
        return claims

    def sign(
        self,
        claims: Mapping[str, Any] | bytes,
        *,
        headers: Mapping[str, Any] | None = None,
        key: PrivateKey | None = None,
    ) -> str:
        """Sign ``claims`` (a mapping, or raw payload bytes) as an RFC 9068 JWT: ``typ: at+jwt``, our ``kid``."""
        payload = claims if isinstance(claims, bytes) else _json(dict(claims))
        header = {"typ": "at+jwt", "kid": self.kid, **(headers or {})}
        return _SIGNER.encode(payload, key or self.signing_key, algorithm=self.alg, headers=header)

    def jti(self, label: str) -> str:
        """A reproducible token identifier for ``label``."""
        return _b64url(self.lab.derive(f"jti/{label}", 12))

    def mint(
        self,
        variant: str = "bound",
        *,
        bound_to: Identity | None = None,
        now: dt.datetime = LAB_NOW,
    ) -> AccessToken:
        """Make the token variant ``variant`` (see :data:`TOKEN_VARIANTS`), bound to ``bound_to``
        (default ``lab.client``) where the variant is certificate-bound. Cached per arguments."""
        recipe = TOKEN_VARIANTS.get(variant)
        if recipe is None:
            known = ", ".join(sorted(TOKEN_VARIANTS))
            raise TokenError("variant", f"unknown token variant {variant!r}; known: {known}")
        identity = bound_to if bound_to is not None else self.lab.client
        # identities hash by certificate
        cache_key = (variant, identity, now)
        found = self._cache.get(cache_key)
        if found is None:
            mint = _Mint(asrv=self, name=variant, bound_to=identity, now=now)
            found = keep_latest(self._cache, cache_key, recipe.make(mint), most=_KEPT)
        return found

    def register(self, token: str, response: Mapping[str, Any]) -> None:
        """Record what introspection says about ``token`` (RFC 7662 §2.2)."""
        keep_latest(self._introspection, token, dict(response), most=_KEPT)

    def revoke(self, token: str) -> None:
        """Revoke ``token``: introspection then answers ``{"active": false}``."""
        self._revoked.add(token)

    def introspect(self, token: str, *, now: dt.datetime = LAB_NOW) -> IntrospectionResponse:
        """RFC 7662 §2.2 response for ``token`` at ``now``: active only for a token this server issued (in
        any process: its JWTs carry its signature, its opaque tokens derive from the seed), not revoked, not
        expired and past any ``nbf`` (§4: the server "MUST determine whether or not a token's valid period
        has started yet"); a certificate-bound one carries ``cnf`` with ``x5t#S256`` (RFC 8705 §3.2)."""
        record = self._introspection.get(token) or self._own(token, now)
        if record is None or token in self._revoked:
            return IntrospectionResponse(active=False)
        at, exp, nbf = _epoch(now), record.get("exp"), record.get("nbf")
        expired = isinstance(exp, (int, float)) and at >= exp
        if expired or (isinstance(nbf, (int, float)) and at < nbf):
            return IntrospectionResponse(active=False)
        return IntrospectionResponse({"active": True, **record})

    def _own(self, token: str, now: dt.datetime) -> dict[str, Any] | None:
        """What this server issued as ``token`` in another process: a JWT its key signed, or one of its
        seed-derived opaque tokens (minted again here to know them)."""
        if token.count(".") == 2:
            key = self.signing_key.public_key()
            try:
                claims = _PLAIN_SIGNER.decode_complete(token, key, algorithms=[self.alg])
                payload = json.loads(claims["payload"])
            except (jwt.PyJWTError, ValueError):
                return None
            if not isinstance(payload, dict) or payload.get("iss") != self.issuer:
                return None
            return {**payload, "token_type": "Bearer"}
        x5t = self.lab.client.x5t_s256
        for variant in ("opaque-bound", "opaque-unbound", "opaque-inactive"):
            if token == _opaque_value(self.lab, variant, x5t):  # minted only when it is one of them
                self.mint(variant, now=now)
                return self._introspection.get(token)
        return None

    def __repr__(self) -> str:
        return f"<AuthorizationServer {self.issuer} {self.alg} kid={self.kid}>"


#: How many minted tokens and introspection records a server keeps. A live token endpoint mints one per
#: request at the wall clock, so the stores must not grow with the requests; a record let go is known
#: again by :meth:`AuthorizationServer._own` (the signature, or the seed).
_KEPT = 1024


#: The default ``cnf`` of a lab token: the ``x5t#S256`` of the certificate it is bound to.
_X5T: Any = object()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Mint:
    """What a recipe gets: the server (and its DPoP key), the variant, the identity to bind to, the clock."""

    asrv: AuthorizationServer
    name: str
    bound_to: Identity
    now: dt.datetime

    @property
    def x5t(self) -> str:
        """The thumbprint of the certificate the token is bound to."""
        return self.bound_to.x5t_s256

    def claims(self, cnf: Any = _X5T) -> dict[str, Any]:
        """The lab claims with this variant's ``jti`` and ``cnf`` (default: the certificate's x5t#S256)."""
        cnf = {"x5t#S256": self.x5t} if cnf is _X5T else cnf
        claims = self.asrv.claims(now=self.now, jti=self.asrv.jti(self.name))
        if cnf is not None:  # anything but a JSON object (RFC 7800 §3.1 wants one) is set as given
            claims["cnf"] = dict(cnf) if isinstance(cnf, Mapping) else cnf
        return claims

    def token(
        self, value: str, kind: TokenKind = "jwt", *, x5t: bool = True, jkt: str | None = None
    ) -> AccessToken:
        """The access token ``value``, bound (by ``x5t``) to the mint's certificate, or by ``jkt``."""
        return AccessToken(
            value=value,
            variant=self.name,
            kind=kind,
            description=TOKEN_VARIANTS[self.name].description,
            bound_x5t=self.x5t if x5t else None,
            bound_jkt=jkt,
        )

    def jwt(
        self,
        *,
        cnf: Any = _X5T,
        claims: Mapping[str, Any] | None = None,
        key: PrivateKey | None = None,
        headers: Mapping[str, Any] | None = None,
        x5t: bool = True,
        jkt: str | None = None,
    ) -> AccessToken:
        """A JWT signed by the server (or with ``key``), bound by default to the mint's certificate; known to
        the server's introspection only if signed by its key and naming it as issuer (RFC 7662 §2.2)."""
        payload = self.claims(cnf)
        payload.update(claims or {})
        value = self.asrv.sign(payload, key=key, headers=headers)
        if key is None and payload.get("iss") == self.asrv.issuer:
            self.asrv.register(value, {**payload, "token_type": "DPoP" if jkt else "Bearer"})
        return self.token(value, x5t=x5t, jkt=jkt)

    def attacker_signed(self, headers: Mapping[str, Any]) -> AccessToken:
        """A bound token signed with the attacker's key, whose header carries ``headers``."""
        return self.jwt(key=self.asrv.impostor_key, headers=headers)


_Recipe = Callable[[_Mint], AccessToken]

#: Where the attacker's key-pointing headers point: a host under the .test TLD (RFC 2606), which never
#: resolves — and the resource server never looks it up anyway.
_ATTACKER_ORIGIN = "https://attacker.mtlslab.test"
#: The padding claim of the ``huge-token`` variant: 1 MiB, far beyond any header limit.
_HUGE_PADDING = 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _sha1_b64url(identity: Identity) -> str:
    return _b64url(hashlib.sha1(identity.der, usedforsecurity=False).digest())


def _spki_sha256(identity: Identity) -> str:
    spki = identity.certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return sha256_b64url(spki)


def _not_yet_valid(m: _Mint) -> AccessToken:
    later = m.now + dt.timedelta(hours=2)
    return replace(m, now=later).jwt(claims={"nbf": _epoch(later)})


def _signed_with(m: _Mint, signer: jwt.PyJWS, alg: str, secret: str | bytes) -> AccessToken:
    """A bound JWT that ``signer`` signs with ``alg`` and ``secret`` (alg ``none``: no signature at all)."""
    header = {"typ": "at+jwt", "kid": m.asrv.kid}
    return m.token(signer.encode(_json(m.claims()), secret, algorithm=alg, headers=header))


def _x5c_header(m: _Mint) -> AccessToken:
    key = m.asrv.impostor_key
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker (self-signed)")])
    serial = int.from_bytes(m.asrv.lab.derive("attacker/serial", 16), "big") >> 1 or 1
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name)
    builder = builder.public_key(key.public_key()).serial_number(serial)
    builder = builder.not_valid_before(LAB_EPOCH).not_valid_after(LAB_NOT_AFTER)
    der = sign_certificate(builder, key).public_bytes(serialization.Encoding.DER)
    return m.attacker_signed({"x5c": [_b64(der)]})


def _duplicate_header(m: _Mint) -> AccessToken:
    asrv = m.asrv
    header = b'{"alg":"none","typ":"at+jwt","kid":%s,"alg":%s}' % (_json(asrv.kid), _json(asrv.alg))
    signing_input = f"{_b64url(header)}.{_b64url(_json(m.claims()))}".encode("ascii")
    algorithm = _SIGNER.get_algorithm_by_name(asrv.alg)
    signature = algorithm.sign(signing_input, algorithm.prepare_key(asrv.signing_key))
    return m.token(f"{signing_input.decode('ascii')}.{_b64url(signature)}")


def _duplicate_cnf(m: _Mint) -> AccessToken:
    # Built from JSON fragments by hand (no JSON library writes a duplicate name), signed by the AS.
    attacker = _json({"x5t#S256": m.asrv.lab.other_client.x5t_s256})
    victim = _json({"x5t#S256": m.x5t})
    payload = _json(m.claims(None))[:-1] + b',"cnf":%s,"cnf":%s}' % (attacker, victim)
    return m.token(m.asrv.sign(payload))


def _malformed(m: _Mint, shape: str) -> AccessToken:
    if shape == "json":  # signed properly: what fails is the payload, not JSON
        return m.token(m.asrv.sign(b'{"iss": "https://as.mtlslab.test", '), "malformed", x5t=False)
    header, payload, signature = m.asrv.sign(m.claims()).split(".")
    if shape == "parts":
        return m.token(f"{header}.{payload}", "malformed", x5t=False)
    # base64: still b64token characters, but a length no base64 encoding can have
    value = f"{header}.{payload}{'A' * ((1 - len(payload)) % 4)}.{signature}"
    return m.token(value, "malformed", x5t=False)


def _opaque_value(lab: Lab, variant: str, x5t: str) -> str:
    """An opaque token's value, derived from the lab's seed: another process knows it again."""
    return _b64url(lab.derive(f"opaque/{variant}/{x5t}", 24))


def _opaque(m: _Mint, *, bound: bool = True, revoked: bool = False) -> AccessToken:
    value = _opaque_value(m.asrv.lab, m.name, m.x5t)
    m.asrv.register(value, {**m.claims(_X5T if bound else None), "token_type": "Bearer"})
    if revoked:
        m.asrv.revoke(value)
    return m.token(value, "opaque", x5t=bound)


def _before_expiry(m: _Mint) -> AccessToken:
    """Issued for a year while the client's previous certificate was valid, and bound to that certificate."""
    issued = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
    older = replace(m, bound_to=m.asrv.lab.expired_client, now=issued)
    return older.jwt(claims={"exp": _epoch(issued + dt.timedelta(days=365))})


def _self_signed_bound(m: _Mint) -> AccessToken:
    identity = m.asrv.lab.self_signed_client
    return replace(m, bound_to=identity).jwt(claims={"client_id": identity.client_id})


def _table(*rows: tuple[str, TokenKind, str, _Recipe, str]) -> dict[str, TokenVariant]:
    return {
        name: TokenVariant(name=name, kind=kind, cite=cite, make=make, description=what)
        for name, kind, cite, make, what in rows
    }


# The recipe table: one row per variant (name, kind, clause, recipe, then what it is), in the order the
# explorer and the README list them. A new variant is one more row.
# fmt: off
#: Every token variant the lab can mint, by name.
TOKEN_VARIANTS: Mapping[str, TokenVariant] = _table(
    ("none", "none", "RFC 6750 §3.1", lambda m: m.token("", "none", x5t=False),
     "no access token at all"),
    ("bound", "jwt", "RFC 8705 §3.1", lambda m: m.jwt(),
     "JWT bound to the lab client certificate by cnf.x5t#S256"),
    ("bound-self-signed", "jwt", "RFC 8705 §2.2, §3.1", _self_signed_bound,
     "JWT bound to the self-signed client's certificate (self_signed_tls_client_auth)"),
    ("bound-expired-cert", "jwt", "RFC 8705 §6.3", _before_expiry,
     "year-long JWT issued 2025-06-01, bound to the client's previous certificate (same key and subject), which expired 2025-06-30"),
    ("unbound", "jwt", "RFC 6750 §1.2", lambda m: m.jwt(cnf=None, x5t=False),
     "plain bearer JWT without cnf"),
    ("dpop-bound", "jwt", "RFC 9449 §6.1", lambda m: m.jwt(cnf={"jkt": m.asrv.dpop_key.jkt}, x5t=False, jkt=m.asrv.dpop_key.jkt),
     "JWT bound to the client's DPoP key by cnf.jkt"),
    ("expired", "jwt", "RFC 9068 §4", lambda m: replace(m, now=m.now - 2 * _TOKEN_LIFETIME).jwt(),
     "bound JWT whose exp lies an hour before the lab clock"),
    ("not-yet-valid", "jwt", "RFC 7519 §4.1.5", _not_yet_valid,
     "bound JWT whose nbf lies two hours after the lab clock"),
    ("wrong-audience", "jwt", "RFC 9068 §4", lambda m: m.jwt(claims={"aud": "https://other-rs.mtlslab.test"}),
     "bound JWT for another resource server (aud)"),
    ("wrong-issuer", "jwt", "RFC 9068 §4", lambda m: m.jwt(claims={"iss": "https://evil-as.mtlslab.test"}),
     "bound JWT naming an issuer the resource server does not trust"),
    ("insufficient-scope", "jwt", "RFC 6750 §3.1", lambda m: m.jwt(claims={"scope": "profile"}),
     "bound JWT whose scope lacks what the resource requires"),
    # under the real kid: the signature does not verify
    ("bad-signature", "jwt", "RFC 9068 §4", lambda m: m.jwt(key=m.asrv.impostor_key),
     "bound JWT signed with a key that is not in the JWKS"),
    ("alg-none", "jwt", "RFC 8725 §3.1", lambda m: _signed_with(m, _PLAIN_SIGNER, "none", ""),
     "bound JWT with alg none and no signature"),
    ("hs256-confusion", "jwt", "RFC 8725 §2.1", lambda m: _signed_with(m, _CONFUSION_SIGNER, "HS256", m.asrv.public_key_pem()),
     "bound JWT HMAC-signed with the AS public key as secret (algorithm confusion)"),
    ("unknown-kid", "jwt", "RFC 9068 §4", lambda m: m.attacker_signed({"kid": jwk_thumbprint(public_jwk(m.asrv.impostor_key))}),
     "bound JWT signed with an attacker key under a kid the issuer never published"),
    ("jku-header", "jwt", "RFC 8725 §3.10", lambda m: m.attacker_signed({"jku": f"{_ATTACKER_ORIGIN}/jwks.json"}),
     "bound JWT signed with an attacker key; header jku points at the attacker's JWK Set"),
    ("x5u-header", "jwt", "RFC 8725 §3.10", lambda m: m.attacker_signed({"x5u": f"{_ATTACKER_ORIGIN}/cert.pem"}),
     "bound JWT signed with an attacker key; header x5u points at the attacker's certificate"),
    ("jwk-header", "jwt", "RFC 8725 §3.10", lambda m: m.attacker_signed({"jwk": public_jwk(m.asrv.impostor_key)}),
     "bound JWT signed with an attacker key whose public JWK rides in the header"),
    ("x5c-header", "jwt", "RFC 8725 §3.10", _x5c_header,
     "bound JWT signed with an attacker key whose self-signed certificate rides in x5c"),
    # signed by the real key: the header is noise, and a resource server that never fetches it accepts
    ("jku-header-genuine", "jwt", "RFC 8725 §3.10", lambda m: m.jwt(headers={"jku": f"{_ATTACKER_ORIGIN}/jwks.json"}),
     "bound JWT signed by the issuer's own key that merely carries a jku header"),
    ("duplicate-header-member", "jwt", "RFC 7515 §4", _duplicate_header,
     "bound JWT whose header names alg twice: none first, the real algorithm last"),
    ("huge-token", "jwt", "RFC 6585 §5", lambda m: m.jwt(claims={"padding": "A" * _HUGE_PADDING}),
     "bound JWT carrying a 1 MiB padding claim"),
    ("non-ascii-subject", "jwt", "RFC 9110 §5.5", lambda m: m.jwt(claims={"sub": "alice\u2028\r\nX-Injected: 1"}),
     "bound JWT whose sub holds U+2028, CR LF and a header line"),
    ("malformed-parts", "malformed", "RFC 7515 §7.1", lambda m: _malformed(m, "parts"),
     "two dot-separated parts instead of three"),
    ("malformed-base64", "malformed", "RFC 7515 §2", lambda m: _malformed(m, "base64"),
     "a payload that is not base64url"),
    ("malformed-json", "malformed", "RFC 7519 §7.2", lambda m: _malformed(m, "json"),
     "a payload that is not JSON"),
    ("cnf-padded", "jwt", "RFC 8705 §3.1", lambda m: m.jwt(cnf={"x5t#S256": m.x5t + "="}),
     "cnf.x5t#S256 with base64 '=' padding"),
    ("cnf-uppercase", "jwt", "RFC 8705 §3.1", lambda m: m.jwt(cnf={"x5t#S256": m.x5t.upper()}),
     "cnf.x5t#S256 upper-cased"),
    ("cnf-standard-base64", "jwt", "RFC 8705 §3.1", lambda m: m.jwt(cnf={"x5t#S256": _b64(hashlib.sha256(m.bound_to.der).digest())}),
     "cnf.x5t#S256 in standard base64 (+ / =) instead of base64url"),
    ("cnf-sha1", "jwt", "RFC 8705 §3.1", lambda m: m.jwt(cnf={"x5t#S256": _sha1_b64url(m.bound_to)}),
     "cnf.x5t#S256 holding a SHA-1 thumbprint"),
    ("cnf-x5t-sha1", "jwt", "RFC 8705 §3.1", lambda m: m.jwt(cnf={"x5t": _sha1_b64url(m.bound_to)}),
     "cnf with the JOSE-header style SHA-1 'x5t' member instead of 'x5t#S256'"),
    ("cnf-pem-hash", "jwt", "RFC 8705 §3.1", lambda m: m.jwt(cnf={"x5t#S256": sha256_b64url(m.bound_to.cert_pem.bytes())}),
     "cnf.x5t#S256 hashed over the PEM text instead of the DER"),
    ("cnf-public-key-hash", "jwt", "RFC 8705 §7.2", lambda m: m.jwt(cnf={"x5t#S256": _spki_sha256(m.bound_to)}),
     "cnf.x5t#S256 hashed over the public key only (SPKI), not the certificate"),
    ("cnf-unknown-method", "jwt", "RFC 7800 §3.4", lambda m: m.jwt(cnf={"kid": "lab-client-key-1"}),
     "cnf with only a confirmation method the resource server does not support (kid)"),
    ("cnf-list", "jwt", "RFC 7800 §3.1", lambda m: m.jwt(cnf=[{"x5t#S256": m.x5t}]),
     "cnf as a JSON array holding the x5t#S256 object"),
    ("cnf-string", "jwt", "RFC 7800 §3.1", lambda m: m.jwt(cnf=m.x5t),
     "cnf as a bare string: the thumbprint without its member name"),
    ("cnf-two-methods", "jwt", "RFC 7800 §3.1", lambda m: m.jwt(cnf={"x5t#S256": m.x5t, "jkt": m.asrv.dpop_key.jkt}, jkt=m.asrv.dpop_key.jkt),
     "cnf with both x5t#S256 of the client certificate and jkt of the client's DPoP key"),
    ("cnf-duplicate-member", "jwt", "RFC 7519 §4", _duplicate_cnf,
     "two cnf members in the payload: the attacker's certificate first, the victim's last"),
    ("opaque-bound", "opaque", "RFC 8705 §3.2", _opaque,
     "opaque token; introspection returns cnf.x5t#S256"),
    ("opaque-unbound", "opaque", "RFC 7662 §2.2", lambda m: _opaque(m, bound=False),
     "opaque token; introspection returns no cnf"),
    ("opaque-inactive", "opaque", "RFC 7662 §2.2", lambda m: _opaque(m, revoked=True),
     "opaque token the authorization server has revoked"),
)
# fmt: on
