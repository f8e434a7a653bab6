"""Access tokens: JWTs per RFC 9068 bound by ``cnf.x5t#S256`` or ``cnf.jkt``, opaque tokens with RFC 7662
introspection, DPoP proofs, and deliberately broken variants — all minted by a lab authorization server.

::

    asrv = AuthorizationServer(lab)                  # ES256, key derived from the lab seed
    token = asrv.mint("bound")                       # bound to lab.client by cnf.x5t#S256 (RFC 8705 §3)
    token.claims()["cnf"]                            # {'x5t#S256': '...'}
    asrv.jwks()                                      # what a resource server trusts

Every variant in :data:`TOKEN_VARIANTS` is a named recipe (rules as data); ``asrv.mint(name)`` makes it.
Reproducibility: ES256 tokens are signed with deterministic ECDSA (RFC 6979) and EdDSA is deterministic by
design, so with a seeded lab the same token string comes out on every machine. RS256 and PS256 use a
fresh random RSA key (and PS256 a random salt), so those tokens differ from run to run.

Nothing here decides whether a token is acceptable; that is :mod:`mtlslab.rs`.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import html
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
import jwt.algorithms
import jwt.utils
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
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


# --------------------------------------------------------------------------------------------------
# JWS plumbing: pyjwt with two private algorithm overrides.


class _DeterministicECAlgorithm(jwt.algorithms.ECAlgorithm):
    """pyjwt's ES256 with deterministic ECDSA (RFC 6979), so seeded tokens are reproducible."""

    def sign(self, msg: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
        der = key.sign(msg, ec.ECDSA(self.hash_alg(), deterministic_signing=True))
        return jwt.utils.der_to_raw_signature(der, key.curve)


class _UnguardedHMACAlgorithm(jwt.algorithms.HMACAlgorithm):
    """HS256 that accepts a PEM public key as the secret: the algorithm-confusion attack, on purpose.

    pyjwt refuses this (rightly); the lab needs to *make* such a token to show a resource server refusing it.
    """

    def prepare_key(self, key: str | bytes) -> bytes:
        return key.encode() if isinstance(key, str) else bytes(key)


def _signer() -> jwt.PyJWS:
    jws = jwt.PyJWS()
    jws.unregister_algorithm("ES256")
    jws.register_algorithm("ES256", _DeterministicECAlgorithm(_DeterministicECAlgorithm.SHA256))
    return jws


def _confusion_signer() -> jwt.PyJWS:
    jws = jwt.PyJWS()
    jws.unregister_algorithm("HS256")
    jws.register_algorithm("HS256", _UnguardedHMACAlgorithm(_UnguardedHMACAlgorithm.SHA256))
    return jws


_SIGNER = _signer()
_PLAIN_SIGNER = jwt.PyJWS()
_CONFUSION_SIGNER = _confusion_signer()


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _b64url(data: bytes) -> str:
    return jwt.utils.base64url_encode(data).decode("ascii")


def _epoch(when: dt.datetime) -> int:
    return int(when.timestamp())


# --------------------------------------------------------------------------------------------------
# RFC 7638 and RFC 9449 helpers.

_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK SHA-256 thumbprint (base64url, unpadded): the value of ``cnf.jkt`` (RFC 9449 §6.1).

    Only the required members of the key type take part, in lexicographic order, as compact JSON.
    """
    if not isinstance(jwk, Mapping):
        raise TokenError("jwk", f"expected a JSON object, got {type(jwk).__name__}")
    kty = jwk.get("kty")
    if not isinstance(kty, str) or kty not in _THUMBPRINT_MEMBERS:
        raise TokenError("jwk.kty", f"unsupported or missing key type {kty!r} (RFC 7638 §3.2)")
    required = {}
    for name in _THUMBPRINT_MEMBERS[kty]:
        value = jwk.get(name)
        if not isinstance(value, str):
            raise TokenError(
                f"jwk.{name}", f"required member missing or not a string for kty {kty}"
            )
        required[name] = value
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
    headers: dict[str, Any] = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk}
    claims: dict[str, Any] = {"jti": jti, "htm": htm, "htu": htu, "iat": _epoch(iat)}
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    headers.update(header_overrides or {})
    claims.update(claim_overrides or {})
    return _SIGNER.encode(_json(claims), key.private_key, algorithm="ES256", headers=headers)


# --------------------------------------------------------------------------------------------------
# Tokens.

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
        binding = (
            f" x5t#S256={self.bound_x5t}"
            if self.bound_x5t
            else f" jkt={self.bound_jkt}"
            if self.bound_jkt
            else ""
        )
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
    """Header and claims of a compact JWS without checking the signature (for display and inspection).

    Raises :class:`~mtlslab.errors.TokenError` naming the part that is not a JWT.
    """
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
    make: Callable[[AuthorizationServer, _MintContext], AccessToken] = field(
        repr=False, compare=False
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _MintContext:
    name: str
    description: str
    bound_to: Identity
    dpop_key: DPoPKey
    now: dt.datetime


class IntrospectionResponse(dict[str, Any]):
    """An RFC 7662 §2.2 introspection response: a plain JSON object that also renders in a notebook."""

    def __repr__(self) -> str:
        active = "active" if self.get("active") is True else "inactive"
        cnf = f" cnf={json.dumps(self['cnf'])}" if "cnf" in self else ""
        return f"<IntrospectionResponse {active}{cnf} {dict.__repr__(self)}>"

    def _repr_html_(self) -> str:
        colour = "#1b7f3b" if self.get("active") is True else "#b00020"
        return (
            "<div style='border:1px solid #ccc;border-radius:4px;padding:6px'>"
            f"<div style='font-weight:bold;color:{colour}'>Introspection response (RFC 7662 §2.2): "
            f"{'active' if self.get('active') is True else 'inactive'}</div>"
            "<pre style='margin:2px 0;background:#f6f6f6;padding:4px'>"
            f"{html.escape(json.dumps(dict(self), indent=2))}</pre></div>"
        )


class AuthorizationServer:
    """The lab's authorization server: signing key, public JWKS, token minting and RFC 7662 introspection.

    ES256 (default) and EdDSA keys are derived from the lab seed; RS256/PS256 keys are random (see the
    module docs). ``kid`` is the RFC 7638 thumbprint of the public key.
    """

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
        self.lab = lab
        self.alg = alg
        self.issuer = issuer
        self.audience = audience
        self.signing_key: PrivateKey = self._key(lab, alg, "as/signing")
        # A second key of the same type that never appears in the JWKS: for "bad signature".
        self.impostor_key: PrivateKey = self._key(lab, alg, "as/impostor")
        self.kid = jwk_thumbprint(public_jwk(self.signing_key))
        self._introspection: dict[str, dict[str, Any]] = {}
        self._revoked: set[str] = set()
        self._cache: dict[tuple[str, Identity, DPoPKey | None, dt.datetime], AccessToken] = {}

    @staticmethod
    def _key(lab: Lab, alg: str, label: str) -> PrivateKey:
        key_type = {"ES256": KeyType.EC, "EdDSA": KeyType.ED25519}.get(alg, KeyType.RSA)
        return lab.key(label, key_type)

    @functools.cached_property
    def dpop_key(self) -> DPoPKey:
        """The lab client's DPoP key (RFC 9449), derived from the seed."""
        return DPoPKey.for_lab(self.lab)

    @property
    def reproducible(self) -> bool:
        """Whether tokens from this server are identical from run to run for a seeded lab."""
        return self.alg in ("ES256", "EdDSA") and self.lab.seeded

    # ---- keys -----------------------------------------------------------------------------------
    def jwks(self) -> dict[str, Any]:
        """The public JWK Set a resource server uses to verify lab tokens."""
        jwk = public_jwk(self.signing_key)
        jwk.update({"kid": self.kid, "use": "sig", "alg": self.alg})
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

    # ---- minting --------------------------------------------------------------------------------
    def claims(
        self,
        *,
        subject: str = "alice",
        client_id: str = "lab-client",
        scope: str = "read",
        now: dt.datetime = LAB_NOW,
        lifetime: dt.timedelta = _TOKEN_LIFETIME,
        jti: str = "lab-token",
        cnf: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """RFC 9068 §2.2 claims for a lab token (``cnf`` per RFC 7800 when given)."""
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "exp": _epoch(now + lifetime),
            "iat": _epoch(now),
            "jti": jti,
            "client_id": client_id,
            "scope": scope,
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
        hdr: dict[str, Any] = {"typ": "at+jwt", "kid": self.kid}
        hdr.update(headers or {})
        return _SIGNER.encode(payload, key or self.signing_key, algorithm=self.alg, headers=hdr)

    def jti(self, label: str) -> str:
        """A reproducible token identifier for ``label``."""
        return _b64url(self.lab.derive(f"jti/{label}", 12))

    def mint(
        self,
        variant: str = "bound",
        *,
        bound_to: Identity | None = None,
        dpop_key: DPoPKey | None = None,
        now: dt.datetime = LAB_NOW,
    ) -> AccessToken:
        """Make the token variant ``variant`` (see :data:`TOKEN_VARIANTS`), bound to ``bound_to``
        (default ``lab.client``) where the variant is certificate-bound. Cached per arguments."""
        recipe = TOKEN_VARIANTS.get(variant)
        if recipe is None:
            known = ", ".join(sorted(TOKEN_VARIANTS))
            raise TokenError("variant", f"unknown token variant {variant!r}; known: {known}")
        identity = bound_to if bound_to is not None else self.lab.client
        cache_key = (
            variant,
            identity,
            dpop_key,
            now,
        )  # identities hash by certificate; keys by identity
        found = self._cache.get(cache_key)
        if found is None:
            key = dpop_key or self.dpop_key
            ctx = _MintContext(
                name=variant,
                description=recipe.description,
                bound_to=identity,
                dpop_key=key,
                now=now,
            )
            found = self._cache[cache_key] = recipe.make(self, ctx)
        return found

    def register(self, token: str, response: Mapping[str, Any]) -> None:
        """Record what introspection says about ``token`` (RFC 7662 §2.2)."""
        self._introspection[token] = dict(response)

    def revoke(self, token: str) -> None:
        """Revoke ``token``: introspection then answers ``{"active": false}``."""
        self._revoked.add(token)

    def introspect(self, token: str, *, now: dt.datetime = LAB_NOW) -> IntrospectionResponse:
        """RFC 7662 §2.2 response for ``token`` at ``now``: active only for a token this server issued, not
        revoked, and within its validity window — issued, not expired, and past any ``nbf`` (RFC 7662 §2.2;
        §4: the server "MUST determine whether or not a token's valid period has started yet").

        The server knows its own tokens, whichever process minted them: its opaque tokens are derived from the
        lab seed, and its JWTs carry its signature. Certificate-bound tokens carry ``cnf`` with ``x5t#S256``
        (RFC 8705 §3.2).
        """
        record = self._introspection.get(token) or self._own(token, now)
        if record is None or token in self._revoked:
            return IntrospectionResponse(active=False)
        at = _epoch(now)
        exp, nbf = record.get("exp"), record.get("nbf")
        if isinstance(exp, (int, float)) and at >= exp:
            return IntrospectionResponse(active=False)
        if isinstance(nbf, (int, float)) and at < nbf:
            return IntrospectionResponse(active=False)
        return IntrospectionResponse({"active": True, **record})

    def _own(self, token: str, now: dt.datetime) -> dict[str, Any] | None:
        """What this server issued as ``token`` in another process: a JWT its key signed, or one of its
        seed-derived opaque tokens (minted again here to know them)."""
        if token.count(".") == 2:
            try:
                claims = _PLAIN_SIGNER.decode_complete(
                    token, self.signing_key.public_key(), algorithms=[self.alg]
                )
                payload = json.loads(claims["payload"])
            except (jwt.PyJWTError, ValueError):
                return None
            if not isinstance(payload, dict) or payload.get("iss") != self.issuer:
                return None
            return {**payload, "token_type": "Bearer"}
        for variant in ("opaque-bound", "opaque-unbound", "opaque-inactive"):
            self.mint(variant, now=now)
        return self._introspection.get(token)

    def __repr__(self) -> str:
        return f"<AuthorizationServer {self.issuer} {self.alg} kid={self.kid}>"


# --------------------------------------------------------------------------------------------------
# The variants (rules as data). Each recipe gets the server and the mint context.


def _x5t_cnf(ctx: _MintContext) -> dict[str, Any]:
    return {"x5t#S256": ctx.bound_to.x5t_s256}


def _jwt(
    asrv: AuthorizationServer,
    ctx: _MintContext,
    *,
    cnf: Mapping[str, Any] | None = None,
    claim_changes: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
    key: PrivateKey | None = None,
    bound_x5t: str | None = None,
    bound_jkt: str | None = None,
    register: bool = True,
    headers: Mapping[str, Any] | None = None,
) -> AccessToken:
    claims = asrv.claims(now=now or ctx.now, jti=asrv.jti(ctx.name), cnf=cnf)
    claims.update(claim_changes or {})
    value = asrv.sign(claims, key=key, headers=headers)
    if register and claims.get("iss") == asrv.issuer:
        # Only tokens this server issued are known to its introspection endpoint: one that names
        # another issuer is, to it, an unknown token (RFC 7662 §2.2: active false).
        asrv.register(value, {**claims, "token_type": "DPoP" if bound_jkt else "Bearer"})
    return AccessToken(
        value=value,
        variant=ctx.name,
        kind="jwt",
        description=ctx.description,
        bound_x5t=bound_x5t,
        bound_jkt=bound_jkt,
    )


def _bound(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
    return _jwt(asrv, ctx, cnf=_x5t_cnf(ctx), bound_x5t=ctx.bound_to.x5t_s256)


def _bound_self_signed(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
    identity = asrv.lab.self_signed_client
    return _jwt(
        asrv,
        ctx,
        cnf={"x5t#S256": identity.x5t_s256},
        bound_x5t=identity.x5t_s256,
        claim_changes={"client_id": identity.client_id},
    )


def _unbound(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
    return _jwt(asrv, ctx)


def _dpop_bound(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
    return _jwt(asrv, ctx, cnf={"jkt": ctx.dpop_key.jkt}, bound_jkt=ctx.dpop_key.jkt)


def _claims_variant(**changes: Any) -> Callable[[AuthorizationServer, _MintContext], AccessToken]:
    def make(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
        return _jwt(
            asrv, ctx, cnf=_x5t_cnf(ctx), claim_changes=changes, bound_x5t=ctx.bound_to.x5t_s256
        )

    return make


def _expired(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
    return _jwt(
        asrv,
        ctx,
        cnf=_x5t_cnf(ctx),
        now=ctx.now - 2 * _TOKEN_LIFETIME,
        bound_x5t=ctx.bound_to.x5t_s256,
    )


def _not_yet_valid(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
    later = ctx.now + dt.timedelta(hours=2)
    return _jwt(
        asrv,
        ctx,
        cnf=_x5t_cnf(ctx),
        claim_changes={
            "nbf": _epoch(later),
            "iat": _epoch(later),
            "exp": _epoch(later + _TOKEN_LIFETIME),
        },
        bound_x5t=ctx.bound_to.x5t_s256,
    )


def _cnf_variant(
    make_cnf: Callable[[Identity], Any],
) -> Callable[[AuthorizationServer, _MintContext], AccessToken]:
    def make(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
        cnf = make_cnf(ctx.bound_to)
        if isinstance(cnf, Mapping):
            return _jwt(asrv, ctx, cnf=cnf, bound_x5t=ctx.bound_to.x5t_s256)
        # not a JSON object (RFC 7800 §3.1 wants one): set as a claim, exactly as given
        return _jwt(asrv, ctx, claim_changes={"cnf": cnf}, bound_x5t=ctx.bound_to.x5t_s256)

    return make


def _bad_signature(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
    # Signed by a key that is not in the JWKS, under the real kid: the signature does not verify.
    return _jwt(
        asrv,
        ctx,
        cnf=_x5t_cnf(ctx),
        key=asrv.impostor_key,
        bound_x5t=ctx.bound_to.x5t_s256,
        register=False,
    )


def _alg_none(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
    claims = asrv.claims(now=ctx.now, jti=asrv.jti(ctx.name), cnf=_x5t_cnf(ctx))
    value = _PLAIN_SIGNER.encode(
        _json(claims), "", algorithm="none", headers={"typ": "at+jwt", "kid": asrv.kid}
    )
    return AccessToken(
        value=value,
        variant=ctx.name,
        kind="jwt",
        description=ctx.description,
        bound_x5t=ctx.bound_to.x5t_s256,
    )


def _hs256_confusion(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
    claims = asrv.claims(now=ctx.now, jti=asrv.jti(ctx.name), cnf=_x5t_cnf(ctx))
    value = _CONFUSION_SIGNER.encode(
        _json(claims),
        asrv.public_key_pem(),
        algorithm="HS256",
        headers={"typ": "at+jwt", "kid": asrv.kid},
    )
    return AccessToken(
        value=value,
        variant=ctx.name,
        kind="jwt",
        description=ctx.description,
        bound_x5t=ctx.bound_to.x5t_s256,
    )


#: Where the attacker's key-pointing headers point: a host under the .test TLD (RFC 2606), which never
#: resolves — and the resource server never looks it up anyway.
_ATTACKER_ORIGIN = "https://attacker.mtlslab.test"


def _impostor_kid(asrv: AuthorizationServer) -> str:
    return jwk_thumbprint(public_jwk(asrv.impostor_key))


def _impostor_certificate(asrv: AuthorizationServer) -> x509.Certificate:
    """A self-signed certificate for the attacker's key (what an x5c header would carry)."""
    key = asrv.impostor_key
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker (self-signed)")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(asrv.lab.derive("attacker/serial", 16), "big") >> 1 or 1)
        .not_valid_before(LAB_EPOCH)
        .not_valid_after(LAB_NOT_AFTER)
    )
    return sign_certificate(builder, key)


def _attacker_signed(
    headers: Callable[[AuthorizationServer], Mapping[str, Any]],
) -> Callable[[AuthorizationServer, _MintContext], AccessToken]:
    """A bound token signed with the attacker's key, whose header carries ``headers(asrv)``."""

    def make(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
        return _jwt(
            asrv,
            ctx,
            cnf=_x5t_cnf(ctx),
            key=asrv.impostor_key,
            headers=headers(asrv),
            bound_x5t=ctx.bound_to.x5t_s256,
            register=False,
        )

    return make


def _jku_genuine(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
    # Signed by the real key: the header is noise, and a resource server that never fetches it accepts.
    return _jwt(
        asrv,
        ctx,
        cnf=_x5t_cnf(ctx),
        headers={"jku": f"{_ATTACKER_ORIGIN}/jwks.json"},
        bound_x5t=ctx.bound_to.x5t_s256,
    )


def _two_methods(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
    return _jwt(
        asrv,
        ctx,
        cnf={"x5t#S256": ctx.bound_to.x5t_s256, "jkt": ctx.dpop_key.jkt},
        bound_x5t=ctx.bound_to.x5t_s256,
        bound_jkt=ctx.dpop_key.jkt,
    )


def _duplicate_cnf(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
    """Two ``cnf`` members in the payload text: the attacker's certificate first, the victim's last.

    Built from JSON fragments by hand (no JSON library writes a duplicate name) and signed by the AS.
    """
    attacker = asrv.lab.other_client
    claims = asrv.claims(now=ctx.now, jti=asrv.jti(ctx.name))
    first = _json({"x5t#S256": attacker.x5t_s256})
    last = _json({"x5t#S256": ctx.bound_to.x5t_s256})
    payload = _json(claims)[:-1] + b',"cnf":' + first + b',"cnf":' + last + b"}"
    return AccessToken(
        value=asrv.sign(payload),
        variant=ctx.name,
        kind="jwt",
        description=ctx.description,
        bound_x5t=ctx.bound_to.x5t_s256,
    )


def _duplicate_header(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
    """A JOSE header naming ``alg`` twice — ``none`` first, the real algorithm last — signed by the AS."""
    claims = asrv.claims(now=ctx.now, jti=asrv.jti(ctx.name), cnf=_x5t_cnf(ctx))
    header = (
        b'{"alg":"none","typ":"at+jwt","kid":'
        + _json(asrv.kid)
        + b',"alg":'
        + _json(asrv.alg)
        + b"}"
    )
    signing_input = f"{_b64url(header)}.{_b64url(_json(claims))}".encode("ascii")
    algorithm = _SIGNER.get_algorithm_by_name(asrv.alg)
    signature = algorithm.sign(signing_input, algorithm.prepare_key(asrv.signing_key))
    return AccessToken(
        value=f"{signing_input.decode('ascii')}.{_b64url(signature)}",
        variant=ctx.name,
        kind="jwt",
        description=ctx.description,
        bound_x5t=ctx.bound_to.x5t_s256,
    )


#: The padding claim of the ``huge-token`` variant: 1 MiB, far beyond any header limit.
_HUGE_PADDING = 1024 * 1024


_TRUNCATED_JSON = b'{"iss": "https://as.mtlslab.test", '


def _malformed(shape: str) -> Callable[[AuthorizationServer, _MintContext], AccessToken]:
    def make(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
        claims = asrv.claims(now=ctx.now, jti=asrv.jti(ctx.name), cnf=_x5t_cnf(ctx))
        if shape == "json":
            # Properly signed, so the signature is not what fails: the payload is not JSON.
            value = asrv.sign(_TRUNCATED_JSON)
        else:
            header, payload, signature = asrv.sign(claims).split(".")
            if shape == "parts":
                value = f"{header}.{payload}"
            else:  # base64: still b64token characters, but a length no base64 encoding can have
                value = f"{header}.{payload}{'A' * ((1 - len(payload)) % 4)}.{signature}"
        return AccessToken(
            value=value, variant=ctx.name, kind="malformed", description=ctx.description
        )

    return make


def _opaque(
    kind: Literal["bound", "unbound", "inactive"],
) -> Callable[[AuthorizationServer, _MintContext], AccessToken]:
    def make(asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
        value = _b64url(asrv.lab.derive(f"opaque/{ctx.name}/{ctx.bound_to.x5t_s256}", 24))
        claims = asrv.claims(
            now=ctx.now, jti=asrv.jti(ctx.name), cnf=_x5t_cnf(ctx) if kind != "unbound" else None
        )
        asrv.register(value, {**claims, "token_type": "Bearer"})
        if kind == "inactive":
            asrv.revoke(value)
        return AccessToken(
            value=value,
            variant=ctx.name,
            kind="opaque",
            description=ctx.description,
            bound_x5t=ctx.bound_to.x5t_s256 if kind != "unbound" else None,
        )

    return make


def _no_token(_asrv: AuthorizationServer, ctx: _MintContext) -> AccessToken:
    return AccessToken(value="", variant=ctx.name, kind="none", description=ctx.description)


def _spki_sha256(identity: Identity) -> str:
    spki = identity.certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return sha256_b64url(spki)


def _recipes() -> dict[str, TokenVariant]:
    def v(
        name: str,
        description: str,
        kind: TokenKind,
        cite: str,
        make: Callable[[AuthorizationServer, _MintContext], AccessToken],
    ) -> tuple[str, TokenVariant]:
        return name, TokenVariant(
            name=name, description=description, kind=kind, cite=cite, make=make
        )

    sha1 = hashes.SHA1()  # noqa: S303 - a deliberately wrong thumbprint, never used for security

    def sha1_b64url(identity: Identity) -> str:
        digest = hashes.Hash(sha1)
        digest.update(identity.der)
        return _b64url(digest.finalize())

    return dict(
        [
            v("none", "no access token at all", "none", "RFC 6750 §3.1", _no_token),
            v(
                "bound",
                "JWT bound to the lab client certificate by cnf.x5t#S256",
                "jwt",
                "RFC 8705 §3.1",
                _bound,
            ),
            v(
                "bound-self-signed",
                "JWT bound to the self-signed client's certificate (self_signed_tls_client_auth)",
                "jwt",
                "RFC 8705 §2.2, §3.1",
                _bound_self_signed,
            ),
            v("unbound", "plain bearer JWT without cnf", "jwt", "RFC 6750 §1.2", _unbound),
            v(
                "dpop-bound",
                "JWT bound to the client's DPoP key by cnf.jkt",
                "jwt",
                "RFC 9449 §6.1",
                _dpop_bound,
            ),
            v(
                "expired",
                "bound JWT whose exp lies an hour before the lab clock",
                "jwt",
                "RFC 9068 §4",
                _expired,
            ),
            v(
                "not-yet-valid",
                "bound JWT whose nbf lies two hours after the lab clock",
                "jwt",
                "RFC 7519 §4.1.5",
                _not_yet_valid,
            ),
            v(
                "wrong-audience",
                "bound JWT for another resource server (aud)",
                "jwt",
                "RFC 9068 §4",
                _claims_variant(aud="https://other-rs.mtlslab.test"),
            ),
            v(
                "wrong-issuer",
                "bound JWT naming an issuer the resource server does not trust",
                "jwt",
                "RFC 9068 §4",
                _claims_variant(iss="https://evil-as.mtlslab.test"),
            ),
            v(
                "insufficient-scope",
                "bound JWT whose scope lacks what the resource requires",
                "jwt",
                "RFC 6750 §3.1",
                _claims_variant(scope="profile"),
            ),
            v(
                "bad-signature",
                "bound JWT signed with a key that is not in the JWKS",
                "jwt",
                "RFC 9068 §4",
                _bad_signature,
            ),
            v(
                "alg-none",
                "bound JWT with alg none and no signature",
                "jwt",
                "RFC 8725 §3.1",
                _alg_none,
            ),
            v(
                "hs256-confusion",
                "bound JWT HMAC-signed with the AS public key as secret (algorithm confusion)",
                "jwt",
                "RFC 8725 §2.1",
                _hs256_confusion,
            ),
            v(
                "unknown-kid",
                "bound JWT signed with an attacker key under a kid the issuer never published",
                "jwt",
                "RFC 9068 §4",
                _attacker_signed(lambda asrv: {"kid": _impostor_kid(asrv)}),
            ),
            v(
                "jku-header",
                "bound JWT signed with an attacker key; header jku points at the attacker's JWK Set",
                "jwt",
                "RFC 8725 §3.10",
                _attacker_signed(lambda _asrv: {"jku": f"{_ATTACKER_ORIGIN}/jwks.json"}),
            ),
            v(
                "x5u-header",
                "bound JWT signed with an attacker key; header x5u points at the attacker's certificate",
                "jwt",
                "RFC 8725 §3.10",
                _attacker_signed(lambda _asrv: {"x5u": f"{_ATTACKER_ORIGIN}/cert.pem"}),
            ),
            v(
                "jwk-header",
                "bound JWT signed with an attacker key whose public JWK rides in the header",
                "jwt",
                "RFC 8725 §3.10",
                _attacker_signed(lambda asrv: {"jwk": public_jwk(asrv.impostor_key)}),
            ),
            v(
                "x5c-header",
                "bound JWT signed with an attacker key whose self-signed certificate rides in x5c",
                "jwt",
                "RFC 8725 §3.10",
                _attacker_signed(
                    lambda asrv: {
                        "x5c": [
                            _std_b64(
                                _impostor_certificate(asrv).public_bytes(serialization.Encoding.DER)
                            )
                        ]
                    }
                ),
            ),
            v(
                "jku-header-genuine",
                "bound JWT signed by the issuer's own key that merely carries a jku header",
                "jwt",
                "RFC 8725 §3.10",
                _jku_genuine,
            ),
            v(
                "duplicate-header-member",
                "bound JWT whose header names alg twice: none first, the real algorithm last",
                "jwt",
                "RFC 7515 §4",
                _duplicate_header,
            ),
            v(
                "huge-token",
                "bound JWT carrying a 1 MiB padding claim",
                "jwt",
                "RFC 6585 §5",
                lambda asrv, ctx: _jwt(
                    asrv,
                    ctx,
                    cnf=_x5t_cnf(ctx),
                    claim_changes={"padding": "A" * _HUGE_PADDING},
                    bound_x5t=ctx.bound_to.x5t_s256,
                ),
            ),
            v(
                "non-ascii-subject",
                "bound JWT whose sub holds U+2028, CR LF and a header line",
                "jwt",
                "RFC 9110 §5.5",
                _claims_variant(sub="alice\u2028\r\nX-Injected: 1"),
            ),
            v(
                "malformed-parts",
                "two dot-separated parts instead of three",
                "malformed",
                "RFC 7515 §7.1",
                _malformed("parts"),
            ),
            v(
                "malformed-base64",
                "a payload that is not base64url",
                "malformed",
                "RFC 7515 §2",
                _malformed("base64"),
            ),
            v(
                "malformed-json",
                "a payload that is not JSON",
                "malformed",
                "RFC 7519 §7.2",
                _malformed("json"),
            ),
            v(
                "cnf-padded",
                "cnf.x5t#S256 with base64 '=' padding",
                "jwt",
                "RFC 8705 §3.1",
                _cnf_variant(lambda i: {"x5t#S256": i.x5t_s256 + "="}),
            ),
            v(
                "cnf-uppercase",
                "cnf.x5t#S256 upper-cased",
                "jwt",
                "RFC 8705 §3.1",
                _cnf_variant(lambda i: {"x5t#S256": i.x5t_s256.upper()}),
            ),
            v(
                "cnf-standard-base64",
                "cnf.x5t#S256 in standard base64 (+ / =) instead of base64url",
                "jwt",
                "RFC 8705 §3.1",
                _cnf_variant(lambda i: {"x5t#S256": _std_b64(hashlib.sha256(i.der).digest())}),
            ),
            v(
                "cnf-sha1",
                "cnf.x5t#S256 holding a SHA-1 thumbprint",
                "jwt",
                "RFC 8705 §3.1",
                _cnf_variant(lambda i: {"x5t#S256": sha1_b64url(i)}),
            ),
            v(
                "cnf-x5t-sha1",
                "cnf with the JOSE-header style SHA-1 'x5t' member instead of 'x5t#S256'",
                "jwt",
                "RFC 8705 §3.1",
                _cnf_variant(lambda i: {"x5t": sha1_b64url(i)}),
            ),
            v(
                "cnf-pem-hash",
                "cnf.x5t#S256 hashed over the PEM text instead of the DER",
                "jwt",
                "RFC 8705 §3.1",
                _cnf_variant(lambda i: {"x5t#S256": sha256_b64url(i.cert_pem.bytes())}),
            ),
            v(
                "cnf-public-key-hash",
                "cnf.x5t#S256 hashed over the public key only (SPKI), not the certificate",
                "jwt",
                "RFC 8705 §7.2",
                _cnf_variant(_spki_x5t),
            ),
            v(
                "cnf-unknown-method",
                "cnf with only a confirmation method the resource server does not support (kid)",
                "jwt",
                "RFC 7800 §3.4",
                _cnf_variant(lambda _identity: {"kid": "lab-client-key-1"}),
            ),
            v(
                "cnf-list",
                "cnf as a JSON array holding the x5t#S256 object",
                "jwt",
                "RFC 7800 §3.1",
                _cnf_variant(lambda i: [{"x5t#S256": i.x5t_s256}]),
            ),
            v(
                "cnf-string",
                "cnf as a bare string: the thumbprint without its member name",
                "jwt",
                "RFC 7800 §3.1",
                _cnf_variant(lambda i: i.x5t_s256),
            ),
            v(
                "cnf-two-methods",
                "cnf with both x5t#S256 of the client certificate and jkt of the client's DPoP key",
                "jwt",
                "RFC 7800 §3.1",
                _two_methods,
            ),
            v(
                "cnf-duplicate-member",
                "two cnf members in the payload: the attacker's certificate first, the victim's last",
                "jwt",
                "RFC 7519 §4",
                _duplicate_cnf,
            ),
            v(
                "opaque-bound",
                "opaque token; introspection returns cnf.x5t#S256",
                "opaque",
                "RFC 8705 §3.2",
                _opaque("bound"),
            ),
            v(
                "opaque-unbound",
                "opaque token; introspection returns no cnf",
                "opaque",
                "RFC 7662 §2.2",
                _opaque("unbound"),
            ),
            v(
                "opaque-inactive",
                "opaque token the authorization server has revoked",
                "opaque",
                "RFC 7662 §2.2",
                _opaque("inactive"),
            ),
        ]
    )


def _std_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _spki_x5t(identity: Identity) -> dict[str, Any]:
    return {"x5t#S256": _spki_sha256(identity)}


#: Every token variant the lab can mint, by name.
TOKEN_VARIANTS: Mapping[str, TokenVariant] = _recipes()
