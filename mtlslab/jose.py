"""JOSE as the resource server reads it: one strict reader for access tokens and DPoP proofs.

Pure, no I/O. :func:`verify_jws` reads a JWT access token's compact serialisation once and strictly
(RFC 7515 §7.1: three parts of unpadded, canonical base64url; JSON objects naming no member twice; finite
numbers) and checks its signature with the issuer's :class:`Jwks` — never with a key the token names
(``jku``, ``x5u``, ``jwk``, ``x5c``: RFC 8725 §3.10). :func:`check_proof` reads a DPoP proof with the same
reader and runs the checks of RFC 9449 §4.3. Both are used by :mod:`mtlslab.rs` (the engine) and by
:func:`mtlslab.rs.inspect_token` (the inspector), so the two can never read a token differently.

Signature verification is the one costly step, and the same token is verified under many resource-server
configurations: :func:`verify_jws` remembers its latest 256 answers, and ``_read_proof`` its latest 256 DPoP
proofs. What they remember is shared: the engine only reads it, and the inspector hands out copies.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import math
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from mtlslab.findings import Finding
from mtlslab.spec import Clause, DuplicateName, cite, shorten, unique_names
from mtlslab.tokens import access_token_hash, jwk_thumbprint

__all__ = ["DPOP_ALGS", "NONCE_PROBLEM", "Jwks", "Verified", "check_proof", "verify_jws"]

#: The asymmetric algorithms a DPoP proof may use here (RFC 9449 §4.3 check 5); a DPoP challenge's
#: ``algs`` lists exactly these (RFC 9449 §7.1).
DPOP_ALGS = (
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
_TYP_AT_JWT = ("at+jwt", "application/at+jwt")
_URL_BEARING_HEADERS = ("jku", "x5u", "jwk", "x5c")


@dataclass(frozen=True, slots=True)
class Jwks:
    """The issuer's public keys, parsed once; equal (and hashed) by their JSON, so verification can be
    remembered per key set."""

    keys: tuple[jwt.PyJWK, ...] = field(compare=False)
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

    def __repr__(self) -> str:
        return f"<Jwks {len(self.keys)} key(s): {', '.join(str(k.key_id) for k in self.keys)}>"


#: RFC 7515 §2: base64url is the URL-safe alphabet with every trailing "=" omitted, nothing else.
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: By the length of a segment modulo 4: the characters that may end it, their unused low bits zero
#: (after a whole group, any character: it has no unused bits).
_CANONICAL_LAST = {2: frozenset(_B64URL_ALPHABET[::16]), 3: frozenset(_B64URL_ALPHABET[::4])}


class _Malformed(ValueError):
    """A compact JWS that cannot be read; the message says why, ``part`` which part (``"structure"`` when
    it is not three dot-separated parts). A refusal says ``reading`` and cites ``clause``: a member
    named twice (:func:`_twice`) its own, anything else "not a well-formed JWT" (RFC 9068 §4)."""

    def __init__(self, reason: str, part: str, twice: str | None = None) -> None:
        super().__init__(reason)
        self.part = part
        self.twice = twice is not None
        self.clause = twice or "RFC 9068 §4"
        self.reading = reason if twice else f"not a well-formed JWT ({reason})"


def _b64url_part(segment: str, part: str) -> bytes:
    """One part of a compact JWS (RFC 7515 §7.1), decoded strictly: the base64url alphabet without padding
    (RFC 7515 §2), and canonical — its unused low bits zero, so one value has exactly one encoding."""
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise _Malformed(f"the {part} is not unpadded base64url (RFC 7515 §2)", part)
    # Only the last character carries unused bits (4 of its 6 after 2 characters of a group, 2 after 3).
    if segment and segment[-1] not in _CANONICAL_LAST.get(len(segment) % 4, _B64URL_ALPHABET):
        reason = f"the {part} is not canonical base64url: its unused low bits are not zero"
        raise _Malformed(reason, part)
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _no_constant(name: str) -> Any:
    """``json`` hook: ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON (RFC 8259 §6)."""
    raise ValueError(f"{name} is not a JSON number (RFC 8259 §6)")


def _finite(text: str) -> float:
    """``json`` hook: a number too large for a float (``1e400``) is refused, not read as infinity. JSON
    allows it; RFC 8259 §6 lets an implementation limit the range it reads, and this one does."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {shorten(text, 80)} is outside the range this server reads")
    return value


#: One decoder for every JOSE header and claims set. No member name twice, and every number finite: a NaN
#: ``exp`` or ``iat`` would pass every comparison.
_STRICT_JSON = json.JSONDecoder(
    object_pairs_hook=unique_names, parse_constant=_no_constant, parse_float=_finite
)


def _json_object(raw: bytes, part: str) -> dict[str, Any]:
    """``raw`` as a JSON object, refusing a member name that occurs twice at any depth."""
    try:
        value = _STRICT_JSON.decode(raw.decode("utf-8"))
    except DuplicateName as dup:
        raise _twice(part, dup.args[0]) from None
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _Malformed(f"the {part} is not JSON ({exc})", part) from None
    if not isinstance(value, dict):
        raise _Malformed(f"the {part} is not a JSON object", part)
    return value


def _twice(part: str, name: str) -> _Malformed:
    """RFC 7515 §4 and RFC 7519 §4 let a parser either reject a duplicate member name or keep the lexically
    last one. Python's ``json`` keeps the last, so a token whose first ``cnf`` names one certificate and
    whose last names another could be read one way here and the other way elsewhere: refused instead, so no
    two parsers can disagree on what the token says."""
    where = "JOSE header" if part == "JOSE header" else "claims"
    shown = shorten(name, 40, quote=True)
    reason = f"the member name {shown} occurs twice in the {where}: refused rather than guessed"
    return _Malformed(reason, part, "RFC 7515 §4" if where == "JOSE header" else "RFC 7519 §4")


@dataclass(frozen=True, slots=True)
class _Compact:
    """A compact JWS read strictly (RFC 7515 §7.1): three unpadded, canonical base64url parts, the JOSE header
    a JSON object naming no member twice. The payload and signature are decoded only when asked for, after
    the header has been judged; the payload's JSON only after the signature verifies."""

    header: dict[str, Any]
    parts: tuple[str, str, str]

    @classmethod
    def read(cls, token: str) -> _Compact:
        """Raises :class:`_Malformed` with the reason."""
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

    def problem(self) -> str | None:
        """Why the header cannot be honoured, or None: a ``kid`` must be a string (RFC 7515 §4.1.4); an
        extension listed in ``crit`` must be understood, and this server understands none (RFC 7515 §4.1.11:
        RFC 7797's unencoded payload has no place in a JWT); a ``b64`` other than true outside ``crit`` is
        refused too (RFC 7797 §6)."""
        header = self.header
        kid = header.get("kid", "")
        if not isinstance(kid, str):
            return f"kid {shorten(kid, 80, quote=True)} is not a string (RFC 7515 §4.1.4)"
        if "crit" in header:
            return f"crit {shorten(header['crit'], 40, quote=True)}: this server understands no critical header extension"
        if "b64" in header and header["b64"] is not True:
            return f"b64 {shorten(header['b64'], 40, quote=True)} without crit (RFC 7797 §6): the payload must be base64url"
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Verified:
    """What reading and verifying a JWT access token found.

    ``finding`` is ``None`` when the token is well formed and its signature verifies (``claims`` then holds
    the claims set), else ``token_malformed`` or ``bad_signature`` with the ``reason``. ``header`` is the JOSE
    header when it could be read; ``pointers`` the key-bearing members it carries (never fetched, never used);
    ``clause`` the clause the result rests on.
    """

    finding: Finding | None
    reason: str
    clause: Clause
    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    pointers: tuple[str, ...] = ()


def _refused(
    finding: Finding, reason: str, clause: str, header: Mapping[str, Any] | None = None
) -> Verified:
    header = header or {}
    pointers = tuple(name for name in _URL_BEARING_HEADERS if name in header)
    return Verified(
        finding=finding,
        reason=reason,
        clause=cite(clause),
        header=header,
        claims={},
        pointers=pointers,
    )


#: The memos' size: a whole matrix verifies 37 tokens and 10 proofs; a live server facing a room holds at
#: most this many values of at most its header limit (16 KiB each), so no client can make it grow further.
_REMEMBERED = 256


@functools.lru_cache(maxsize=_REMEMBERED)
def verify_jws(token: str, jwks: Jwks) -> Verified:
    """Read ``token`` strictly and verify its signature with ``jwks`` (remembered per token and key set).

    The typ must be ``at+jwt`` (RFC 9068 §4), the ``alg`` the algorithm of the issuer's key named by ``kid``
    (RFC 8725 §3.1: ``none`` and HMAC keyed with a public key are the classic confusions). The signature is
    checked by pyjwt's algorithm object for that key (``cryptography`` underneath); a differential test holds
    this reader to pyjwt's own ``decode``: what this accepts, pyjwt accepts.
    """
    malformed = Finding.TOKEN_MALFORMED
    try:
        jws = _Compact.read(token)
    except _Malformed as exc:
        if exc.part == "JOSE header" and not exc.twice:
            reason = f"the JOSE header is not base64url-encoded JSON: {exc}"
            return _refused(malformed, reason, "RFC 9068 §4")
        return _refused(malformed, exc.reading, exc.clause)
    header = jws.header
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _TYP_AT_JWT:
        reason = f"typ is {shorten(typ, 40, quote=True)}, not at+jwt: not a JWT access token"
        return _refused(malformed, reason, "RFC 9068 §4", header)
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        reason = f"not a well-formed JWT ({jws.problem()})"
        return _refused(malformed, reason, "RFC 9068 §4", header)
    alg = header.get("alg")
    key = jwks.find(kid)
    if key is None:
        reason = f"no key with kid {shorten(kid, 80, quote=True)} in the issuer's JWKS"
        return _refused(Finding.BAD_SIGNATURE, reason, "RFC 9068 §4", header)
    if alg != key.algorithm_name:
        reason = (
            f"alg {shorten(alg, 40, quote=True)} is refused: the issuer's key {key.key_id} is "
            f"{key.algorithm_name} (alg none and HMAC with a public key are the classic confusions)"
        )
        return _refused(Finding.BAD_SIGNATURE, reason, "RFC 8725 §3.1", header)
    problem = jws.problem()
    if problem is not None:
        return _refused(malformed, f"not a well-formed JWT ({problem})", "RFC 9068 §4", header)
    try:
        signing_input, payload_raw, signature = jws.body()
        if not key.Algorithm.verify(signing_input, key.Algorithm.prepare_key(key.key), signature):
            reason = f"the signature does not verify with key {key.key_id}"
            return _refused(Finding.BAD_SIGNATURE, reason, "RFC 9068 §4", header)
        claims = _json_object(payload_raw, "claims set")
    except _Malformed as exc:
        return _refused(malformed, exc.reading, exc.clause, header)
    return Verified(
        finding=None,
        reason=f"typ at+jwt; the signature verifies with kid {key.key_id} ({alg}) of the issuer's JWKS",
        clause=cite("RFC 9068 §4"),
        header=header,
        claims=claims,
        pointers=tuple(name for name in _URL_BEARING_HEADERS if name in header),
    )


#: The problem :func:`check_proof` gives for a proof without the nonce the server asks for (RFC 9449 §4.3
#: check 10): the one a client can cure by retrying with the nonce the answer gives (RFC 9449 §9).
NONCE_PROBLEM = "the proof does not carry the nonce this server asks for"


def check_proof(
    proof: str,
    *,
    method: str,
    url: str,
    token: str,
    now: dt.datetime,
    max_age: int,
    nonce: str | None = None,
) -> tuple[str, str]:
    """RFC 9449 §4.3: ``(problem, jkt)``; ``problem`` is empty for a valid proof, and
    :data:`NONCE_PROBLEM` itself when all that is wrong is a missing or other ``nonce`` where the server
    asks for ``nonce``.

    No ``jti`` store (RFC 9449 §11.1 leaves single use to the server): a proof is valid again while its
    ``iat`` is inside the window. Read as strictly as an access token; the ``jwk`` must be a public key of
    the kind ``alg`` is defined for (:func:`_unfit_key`, part of checks 5 and 6) and checks the signature
    through pyjwt's algorithm object (a differential test holds the reading to pyjwt's JWS ``decode``).
    The checks run in §4.3's order, except that the jwk is judged (check 7, no private key) before it
    checks the signature (check 6), and the claims (check 3) are read only after the signature verifies.
    """
    problem, jkt, claims = _read_proof(proof)
    if problem:
        return problem, ""
    if not isinstance(claims.get("jti"), str):
        return "no jti", ""
    if claims.get("htm") != method:
        shown = shorten(claims.get("htm"), 40, quote=True)
        return f"htm {shown} is not the request method {method}", ""
    htu = _normal_url(claims["htu"]) if isinstance(claims.get("htu"), str) else None
    if htu is None or htu != _normal_url(url):
        return f"htu {shorten(claims.get('htu'), 80, quote=True)} is not this URL", ""
    iat, at = claims.get("iat"), now.timestamp()
    if (  # compared, not subtracted: an integer too large for a float cannot overflow a comparison
        not isinstance(iat, (int, float))
        or isinstance(iat, bool)
        or not at - max_age <= iat <= at + max_age
    ):
        shown = shorten(iat, 40, quote=True)
        return f"iat {shown} is outside the accepted window of {max_age} s", ""
    if claims.get("ath") != access_token_hash(token):
        return "ath does not match the access token (a proof made for another token)", ""
    if nonce is not None and claims.get("nonce") != nonce:
        return NONCE_PROBLEM, jkt
    return "", jkt


@functools.lru_cache(maxsize=_REMEMBERED)
def _read_proof(proof: str) -> tuple[str, str, Mapping[str, Any]]:
    """RFC 9449 §4.3 checks 2 to 7 of ``proof``, which depend on nothing but the proof: ``(problem, jkt,
    claims)``, remembered per proof like :func:`verify_jws` (a row of the matrix meets one proof many times).
    The claims are the caller's to read, never to change."""
    # Check 2: one well-formed JWT (read as strictly as an access token).
    try:
        jws = _Compact.read(proof)
    except _Malformed as exc:
        return exc.reading, "", {}
    header = jws.header
    problem = jws.problem()
    if problem is not None:
        return f"not a well-formed JWT ({problem})", "", {}
    # Check 4: typ; like any typ, compared without case and with "application/" optional (RFC 7515 §4.1.9).
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ("dpop+jwt", "application/dpop+jwt"):
        return f"typ is {shorten(typ, 40, quote=True)}, not dpop+jwt", "", {}
    # Check 5: an asymmetric algorithm this server supports.
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in DPOP_ALGS:
        shown = shorten(alg, 40, quote=True)
        return f"alg {shown} is not an asymmetric algorithm this server accepts", "", {}
    # Check 7 (no private key), then whether the key is one the algorithm is defined for (checks 5, 6).
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        return "no jwk in the header", "", {}
    if any(member in jwk for member in ("d", "p", "q", "dp", "dq", "qi", "k")):
        return "the jwk carries private key material", "", {}
    try:
        key = jwt.PyJWK(jwk, algorithm=alg)
        jkt = jwk_thumbprint(jwk)
    except Exception as exc:  # whatever an attacker's JWK makes pyjwt or cryptography raise
        return f"unusable jwk ({shorten(str(exc))})", "", {}
    unfit = _unfit_key(alg, key.key)
    if unfit is not None:
        return f"unusable jwk ({unfit})", "", {}
    # Check 6: the signature, with that key; then check 3: the claims (a JSON object naming no
    # member twice; the required ones follow).
    try:
        signing_input, payload_raw, signature = jws.body()
        if not key.Algorithm.verify(signing_input, key.key, signature):
            return "the signature does not verify with the jwk in its header", "", {}
        claims = _json_object(payload_raw, "claims set")
    except _Malformed as exc:
        return exc.reading, "", {}
    return "", jkt, claims


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
    elif alg.startswith(("RS", "PS")):
        if not isinstance(key, rsa.RSAPublicKey):
            return f"{alg} needs an RSA key, not {type(key).__name__}"
        if key.key_size < 2048:
            return f"{alg} needs an RSA key of 2048 bits or more, not {key.key_size}"
    elif alg == "EdDSA":
        if not isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            return f"{alg} needs an Ed25519 or Ed448 key, not {type(key).__name__}"
    else:
        return f"this server has no key rule for {alg}"
    return None


_DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _normal_url(url: str) -> str | None:
    """RFC 9449 §4.3 check 9: ``htu`` compared ignoring query and fragment, after the syntax- and
    scheme-based normalisation of RFC 3986 §6.2.2 and §6.2.3: the case of scheme and host, percent-encoding
    case, percent-encoded unreserved characters decoded, dot segments removed (§6.2.2.3, with the algorithm
    of §5.2.4), the default port and an empty path."""
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

    path = _remove_dot_segments(_PERCENT.sub(percent, parts.path)) or "/"
    return urllib.parse.urlunsplit((scheme, netloc, path, "", ""))


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4: ``/a/b/../c/./d`` is ``/a/c/d``; a last ``.`` or ``..`` leaves a ``/``."""
    output: list[str] = []
    segments = path.split("/")
    for segment in segments:
        if segment == "..":
            if output and output != [""]:  # never above the root
                output.pop()
        elif segment != ".":
            output.append(segment)
    if segments[-1] in (".", ".."):
        output.append("")
    return "/".join(output)
