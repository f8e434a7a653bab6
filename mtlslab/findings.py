"""The closed set of findings a resource server can reach, each with its clause (rules as data).

A :class:`Finding` is *what the resource server found*; which status code and error it answers with is
an interpretation's choice (:mod:`mtlslab.interpretations`). Like h11's ``error_status_hint``, each finding
carries only a *hint*: the RFC 6750 §3.1 error code the text points to, or ``None`` where the RFCs are
silent — the gap mtlslab exists to show.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mtlslab.spec import Clause, cite

__all__ = ["FINDINGS", "Finding", "FindingInfo"]


class Finding(enum.Enum):
    """Where evaluation ended. Ordered roughly as the checks run."""

    TLS_REJECTED = "tls_rejected"
    HEADERS_TOO_LARGE = "headers_too_large"
    BODY_TOO_LARGE = "body_too_large"
    NO_TOKEN = "no_token"
    MALFORMED_AUTHORIZATION = "malformed_authorization"
    MULTIPLE_METHODS = "multiple_methods"
    TOKEN_MALFORMED = "token_malformed"
    BAD_SIGNATURE = "bad_signature"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_NOT_YET_VALID = "token_not_yet_valid"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_AUDIENCE = "wrong_audience"
    TOKEN_INACTIVE = "token_inactive"
    DPOP_TOKEN_AS_BEARER = "dpop_token_as_bearer"
    MTLS_TOKEN_AS_BEARER = "mtls_token_as_bearer"
    DPOP_PROOF_MISSING = "dpop_proof_missing"
    DPOP_PROOF_INVALID = "dpop_proof_invalid"
    DPOP_KEY_MISMATCH = "dpop_key_mismatch"
    UNTRUSTED_CLIENT_CERT_HEADER = "untrusted_client_cert_header"
    CERTIFICATE_MISSING = "certificate_missing"
    CERTIFICATE_MISMATCH = "certificate_mismatch"
    UNSUPPORTED_CONFIRMATION = "unsupported_confirmation"
    TOKEN_NOT_BOUND = "token_not_bound"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    ACCEPTED = "accepted"
    ACCEPTED_ALTHOUGH_BOUND = "accepted_although_bound"

    @property
    def info(self) -> FindingInfo:
        """The finding's documentation row."""
        return FINDINGS[self]

    @property
    def rejected(self) -> bool:
        """Whether the request is refused: every finding but the two acceptances."""
        return self is not Finding.ACCEPTED and self is not Finding.ACCEPTED_ALTHOUGH_BOUND

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingInfo:
    """Documentation of one finding: what it means, the clause, the RFC 6750 code the text points to."""

    title: str
    meaning: str
    clause: Clause
    hint: str | None
    security: bool = False


_6750_21 = cite("RFC 6750 §2.1")
_6750_2 = cite("RFC 6750 §2")
_6750_31 = cite("RFC 6750 §3.1")
_9068_4 = cite("RFC 9068 §4")
_7662_22 = cite("RFC 7662 §2.2")
_8705_3 = cite("RFC 8705 §3")
_9449_71 = cite("RFC 9449 §7.1")
_9449_72 = cite("RFC 9449 §7.2")
_9449_43 = cite("RFC 9449 §4.3")
_9440_24 = cite("RFC 9440 §2.4")
_7800_3 = cite("RFC 7800 §3")
_8446 = cite("RFC 8446 §4.4.2.4")
_6585_5 = cite("RFC 6585 §5")
_9110_15514 = cite("RFC 9110 §15.5.14")

#: Documentation of every finding (rules as data; README tables are generated from this).
FINDINGS: dict[Finding, FindingInfo] = {
    Finding.TLS_REJECTED: FindingInfo(
        title="TLS rejected",
        clause=_8446,
        hint=None,
        meaning="the TLS layer aborted the handshake with an alert; no HTTP request reached the resource server",
    ),
    Finding.HEADERS_TOO_LARGE: FindingInfo(
        title="header fields too large",
        clause=_6585_5,
        hint=None,
        meaning="the request line and header fields exceed the server's limit (16 KiB by default): refused at "
        "the HTTP layer before any token check",
    ),
    Finding.BODY_TOO_LARGE: FindingInfo(
        title="body too large",
        clause=_9110_15514,
        hint=None,
        meaning="the request body exceeds the server's limit (64 KiB by default): refused at the HTTP layer "
        "before any token check",
    ),
    Finding.NO_TOKEN: FindingInfo(
        title="no token",
        clause=_6750_31,
        hint=None,
        meaning="the request carries no access token the server understands; RFC 6750 §3.1: no error code",
    ),
    Finding.MALFORMED_AUTHORIZATION: FindingInfo(
        title="malformed Authorization",
        clause=_6750_21,
        hint="invalid_request",
        meaning="the Authorization header does not follow the Bearer syntax (empty credentials, bad characters, "
        "or more than one header)",
    ),
    Finding.MULTIPLE_METHODS: FindingInfo(
        title="more than one method",
        clause=_6750_2,
        hint="invalid_request",
        meaning="the token travels in more than one place (header, form body, query): RFC 6750 §2 allows one",
    ),
    Finding.TOKEN_MALFORMED: FindingInfo(
        title="token malformed",
        clause=_9068_4,
        hint="invalid_token",
        meaning="the token is not a well-formed JWT access token (three parts of unpadded, canonical base64url; "
        "JSON objects naming no member twice; typ at+jwt; no crit; required claims)",
    ),
    Finding.BAD_SIGNATURE: FindingInfo(
        title="bad signature",
        clause=_9068_4,
        hint="invalid_token",
        meaning="the signature does not verify with the issuer's keys (wrong key, unknown kid, alg none, "
        "an algorithm the key does not use)",
        security=True,
    ),
    Finding.TOKEN_EXPIRED: FindingInfo(
        title="expired",
        clause=_9068_4,
        hint="invalid_token",
        meaning="the token's exp is in the past",
    ),
    Finding.TOKEN_NOT_YET_VALID: FindingInfo(
        title="not yet valid",
        clause=_9068_4,
        hint="invalid_token",
        meaning="the token's nbf lies in the future",
    ),
    Finding.WRONG_ISSUER: FindingInfo(
        title="wrong issuer",
        clause=_9068_4,
        hint="invalid_token",
        meaning="iss is not the trusted issuer",
    ),
    Finding.WRONG_AUDIENCE: FindingInfo(
        title="wrong audience",
        clause=_9068_4,
        hint="invalid_token",
        meaning="aud does not name this resource server",
    ),
    Finding.TOKEN_INACTIVE: FindingInfo(
        title="inactive",
        clause=_7662_22,
        hint="invalid_token",
        meaning="introspection says active: false (revoked, expired or unknown)",
    ),
    Finding.DPOP_TOKEN_AS_BEARER: FindingInfo(
        title="DPoP-bound token sent as Bearer",
        clause=_9449_72,
        hint="invalid_token",
        meaning="a token bound by cnf.jkt arrived under the Bearer scheme (or in the body or query); an RS that "
        "supports DPoP must refuse it",
        security=True,
    ),
    Finding.MTLS_TOKEN_AS_BEARER: FindingInfo(
        title="certificate-bound token sent as Bearer (hypothetical MTLS scheme)",
        clause=_9449_72,
        hint="invalid_token",
        meaning="only at a server with a dedicated (hypothetical, unregistered) MTLS scheme: a certificate-bound "
        "token presented as Bearer is refused, by analogy with RFC 9449 §7.2",
    ),
    Finding.DPOP_PROOF_MISSING: FindingInfo(
        title="DPoP proof missing",
        clause=_9449_43,
        hint="invalid_dpop_proof",
        meaning="the DPoP scheme was used but no DPoP header came with the request",
    ),
    Finding.DPOP_PROOF_INVALID: FindingInfo(
        title="DPoP proof invalid",
        clause=_9449_43,
        hint="invalid_dpop_proof",
        meaning="the DPoP proof fails a check of RFC 9449 §4.3 (one DPoP header, typ, alg, signature, htm, htu, "
        "iat, ath)",
    ),
    Finding.DPOP_KEY_MISMATCH: FindingInfo(
        title="DPoP key binding mismatch",
        clause=_9449_71,
        hint="invalid_token",
        meaning="the proof is valid but its key is not the one the token is bound to (cnf.jkt)",
        security=True,
    ),
    Finding.UNTRUSTED_CLIENT_CERT_HEADER: FindingInfo(
        title="untrusted Client-Cert header",
        clause=_9440_24,
        hint=None,
        meaning="the only certificate for a bound token came in a Client-Cert header the server must not trust "
        "(sent by the client itself, or by a proxy the origin is not configured to trust); it is ignored",
        security=True,
    ),
    Finding.CERTIFICATE_MISSING: FindingInfo(
        title="certificate missing",
        clause=_8705_3,
        hint=None,
        meaning="the token is certificate-bound but no client certificate came with the request: RFC 8705 §3 "
        "does not say which error to return",
    ),
    Finding.CERTIFICATE_MISMATCH: FindingInfo(
        title="certificate mismatch",
        clause=_8705_3,
        hint="invalid_token",
        meaning="a client certificate came, but its SHA-256 thumbprint differs from cnf.x5t#S256",
        security=True,
    ),
    Finding.UNSUPPORTED_CONFIRMATION: FindingInfo(
        title="unsupported confirmation method",
        clause=_7800_3,
        hint="invalid_token",
        meaning="cnf holds no confirmation method this server can check (or is not a JSON object)",
    ),
    Finding.TOKEN_NOT_BOUND: FindingInfo(
        title="token not bound",
        clause=_8705_3,
        hint="invalid_token",
        meaning="the server (or the scheme used) requires a sender-constrained token and this one has no cnf",
    ),
    Finding.INSUFFICIENT_SCOPE: FindingInfo(
        title="insufficient scope",
        clause=_6750_31,
        hint="insufficient_scope",
        meaning="the token is valid and correctly bound but lacks the scope the resource requires",
    ),
    Finding.ACCEPTED: FindingInfo(
        title="accepted",
        clause=_8705_3,
        hint=None,
        meaning="every check passed; the resource is served",
    ),
    Finding.ACCEPTED_ALTHOUGH_BOUND: FindingInfo(
        title="accepted although bound",
        clause=_8705_3,
        hint=None,
        meaning="a sender-constrained token was accepted without checking its binding: anyone holding the "
        "token can use it (security finding)",
        security=True,
    ),
}
