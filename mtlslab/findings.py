"""The closed set of findings a resource server (or, for client authentication, a token endpoint) can reach,
each with its clause (rules as data).

A :class:`Finding` is *what the server found*; which status code and error it answers with is an
interpretation's choice (:mod:`mtlslab.interpretations`). Like h11's ``error_status_hint``, each finding carries
only a *hint*: the error code the text points to (RFC 6750 §3.1 at a resource, RFC 6749 §5.2 at a token
endpoint), or ``None`` where the RFCs are silent — the gap mtlslab exists to show.
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
    SCHEME_MISSING = "scheme_missing"
    SCHEME_UNSUPPORTED = "scheme_unsupported"
    MALFORMED_AUTHORIZATION = "malformed_authorization"
    MULTIPLE_METHODS = "multiple_methods"
    QUERY_TOKEN_REFUSED = "query_token_refused"
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
    DPOP_NONCE_REQUIRED = "dpop_nonce_required"
    DPOP_KEY_MISMATCH = "dpop_key_mismatch"
    UNTRUSTED_CLIENT_CERT_HEADER = "untrusted_client_cert_header"
    CERTIFICATE_MISSING = "certificate_missing"
    CERTIFICATE_MISMATCH = "certificate_mismatch"
    UNSUPPORTED_CONFIRMATION = "unsupported_confirmation"
    TOKEN_NOT_BOUND = "token_not_bound"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    CLIENT_CERTIFICATE_MISSING = "client_certificate_missing"
    CLIENT_CERTIFICATE_MISMATCH = "client_certificate_mismatch"
    ACCEPTED = "accepted"
    ACCEPTED_ALTHOUGH_BOUND = "accepted_although_bound"
    TOKEN_ISSUED = "token_issued"

    @property
    def info(self) -> FindingInfo:
        """The finding's documentation row."""
        return FINDINGS[self]

    @property
    def rejected(self) -> bool:
        """Whether the request is refused: every finding but the acceptances and a token issued."""
        return self not in (Finding.ACCEPTED, Finding.ACCEPTED_ALTHOUGH_BOUND, Finding.TOKEN_ISSUED)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingInfo:
    """Documentation of one finding: what it means, the clause, the error code the text points to."""

    title: str
    meaning: str
    clause: Clause
    hint: str | None
    security: bool = False


def _row(
    title: str, clause: str, hint: str | None, meaning: str, *, security: bool = False
) -> FindingInfo:
    return FindingInfo(
        title=title, meaning=meaning, clause=cite(clause), hint=hint, security=security
    )


_F = Finding
_IT = "invalid_token"
_IR = "invalid_request"
_IDP = "invalid_dpop_proof"

#: Documentation of every finding (rules as data; README tables are generated from this).
FINDINGS: dict[Finding, FindingInfo] = {
    _F.TLS_REJECTED: _row(
        "TLS rejected",
        "RFC 8446 §6.2",
        None,
        "the TLS layer aborted the handshake with an alert; no HTTP request reached the resource server",
    ),
    _F.HEADERS_TOO_LARGE: _row(
        "header fields too large",
        "RFC 6585 §5",
        None,
        "the request line and header fields exceed the server's limit (16 KiB by default): refused at the "
        "HTTP layer before any token check",
    ),
    _F.BODY_TOO_LARGE: _row(
        "body too large",
        "RFC 9110 §15.5.14",
        None,
        "the request body exceeds the server's limit (64 KiB by default): refused at the HTTP layer before "
        "any token check",
    ),
    _F.NO_TOKEN: _row(
        "no token",
        "RFC 6750 §3.1",
        None,
        "the request carries no access token and no Authorization field; RFC 6750 §3.1: no error code",
    ),
    _F.SCHEME_MISSING: _row(
        "no authentication scheme",
        "RFC 9110 §11.4",
        None,
        "the Authorization field holds a bare token with no scheme before it (credentials begin with an "
        "auth-scheme); no token the server understands, so RFC 6750 §3.1 asks for no error code",
    ),
    _F.SCHEME_UNSUPPORTED: _row(
        "unsupported scheme",
        "RFC 6750 §3.1",
        None,
        "the Authorization field uses a scheme this server does not accept (Basic, or MTLS where there is no "
        "such scheme): RFC 6750 §3.1, an unsupported authentication method, no error code",
    ),
    _F.MALFORMED_AUTHORIZATION: _row(
        "malformed Authorization",
        "RFC 6750 §2.1",
        _IR,
        "the Authorization header does not follow the Bearer syntax (empty credentials, bad characters, or "
        "more than one header)",
    ),
    _F.MULTIPLE_METHODS: _row(
        "more than one method",
        "RFC 6750 §2",
        _IR,
        "the token travels in more than one place (header, form body, query): RFC 6750 §2 allows one",
    ),
    _F.QUERY_TOKEN_REFUSED: _row(
        "token in the query refused",
        "RFC 6750 §2.3",
        _IR,
        "the token came in the query, which this server does not accept (RFC 6750 §2.3 lets a server support "
        "it or not)",
    ),
    _F.TOKEN_MALFORMED: _row(
        "token malformed",
        "RFC 9068 §4",
        _IT,
        "the token is not a well-formed JWT access token (three parts of unpadded, canonical base64url; JSON "
        "objects naming no member twice; typ at+jwt; no crit; required claims)",
    ),
    _F.BAD_SIGNATURE: _row(
        "bad signature",
        "RFC 9068 §4",
        _IT,
        "the signature does not verify with the issuer's keys (wrong key, unknown kid, alg none, an algorithm "
        "the key does not use)",
        security=True,
    ),
    _F.TOKEN_EXPIRED: _row("expired", "RFC 9068 §4", _IT, "the token's exp is in the past"),
    _F.TOKEN_NOT_YET_VALID: _row(
        "not yet valid", "RFC 9068 §4", _IT, "the token's nbf lies in the future"
    ),
    _F.WRONG_ISSUER: _row("wrong issuer", "RFC 9068 §4", _IT, "iss is not the trusted issuer"),
    _F.WRONG_AUDIENCE: _row(
        "wrong audience", "RFC 9068 §4", _IT, "aud does not name this resource server"
    ),
    _F.TOKEN_INACTIVE: _row(
        "inactive",
        "RFC 7662 §2.2",
        _IT,
        "introspection says active: false (revoked, expired, not yet valid, or unknown)",
    ),
    _F.DPOP_TOKEN_AS_BEARER: _row(
        "DPoP-bound token sent as Bearer",
        "RFC 9449 §7.2",
        _IT,
        "a token bound by cnf.jkt arrived under the Bearer scheme (or in the body or query); an RS that "
        "supports DPoP must refuse it",
        security=True,
    ),
    _F.MTLS_TOKEN_AS_BEARER: _row(
        "certificate-bound token sent as Bearer (hypothetical MTLS scheme)",
        "RFC 9449 §7.2",
        _IT,
        "only at a server with a dedicated (hypothetical, unregistered) MTLS scheme: a certificate-bound "
        "token presented as Bearer is refused, by analogy with RFC 9449 §7.2",
    ),
    _F.DPOP_PROOF_MISSING: _row(
        "DPoP proof missing",
        "RFC 9449 §7.1",
        _IDP,
        "the DPoP scheme was used but no DPoP header came with the request (RFC 9449 §7.1: the resource "
        "server must check that a proof is present)",
    ),
    _F.DPOP_PROOF_INVALID: _row(
        "DPoP proof invalid",
        "RFC 9449 §4.3",
        _IDP,
        "the DPoP proof fails a check of RFC 9449 §4.3 (one DPoP header, typ, alg, signature, htm, htu, "
        "iat, ath)",
    ),
    _F.DPOP_NONCE_REQUIRED: _row(
        "DPoP nonce required",
        "RFC 9449 §9",
        "use_dpop_nonce",
        "the resource server asks for its own nonce in DPoP proofs and this proof carries none, or another: "
        "the client must retry with the nonce the answer's DPoP-Nonce field gives",
    ),
    _F.DPOP_KEY_MISMATCH: _row(
        "DPoP key binding mismatch",
        "RFC 9449 §7.1",
        _IT,
        "the proof is valid but its key is not the one the token is bound to (cnf.jkt)",
        security=True,
    ),
    _F.UNTRUSTED_CLIENT_CERT_HEADER: _row(
        "untrusted Client-Cert header",
        "RFC 9440 §4",
        None,
        "the only certificate for a bound token came in a Client-Cert header the server must not trust (sent "
        "by the client itself, or by a proxy the origin is not configured to trust); it is ignored",
        security=True,
    ),
    _F.CERTIFICATE_MISSING: _row(
        "certificate missing",
        "RFC 8705 §3",
        None,
        "the token is certificate-bound but no client certificate came with the request: RFC 8705 §3 does "
        "not say which error to return",
    ),
    _F.CERTIFICATE_MISMATCH: _row(
        "certificate mismatch",
        "RFC 8705 §3",
        _IT,
        "a client certificate came, but its SHA-256 thumbprint differs from cnf.x5t#S256",
        security=True,
    ),
    _F.UNSUPPORTED_CONFIRMATION: _row(
        "unsupported confirmation method",
        "RFC 7800 §3",
        _IT,
        "cnf holds no confirmation method this server can check (or is not a JSON object)",
    ),
    _F.TOKEN_NOT_BOUND: _row(
        "token not bound",
        "RFC 8705 §3",
        _IT,
        "the server (or the scheme used) requires a sender-constrained token and this one has no cnf",
    ),
    _F.INSUFFICIENT_SCOPE: _row(
        "insufficient scope",
        "RFC 6750 §3.1",
        "insufficient_scope",
        "the token is valid and correctly bound but lacks the scope the resource requires",
    ),
    _F.CLIENT_CERTIFICATE_MISSING: _row(
        "client certificate missing (token endpoint)",
        "RFC 8705 §2",
        "invalid_client",
        "at the token endpoint, a client registered for mutual-TLS client authentication presented no "
        "certificate: RFC 8705 §2 says invalid_client, as for one that does not match",
    ),
    _F.CLIENT_CERTIFICATE_MISMATCH: _row(
        "client certificate mismatch (token endpoint)",
        "RFC 8705 §2",
        "invalid_client",
        "at the token endpoint, the certificate presented is not the one registered for the client (subject "
        "or SAN for tls_client_auth, the registered key for self_signed_tls_client_auth): invalid_client",
        security=True,
    ),
    _F.ACCEPTED: _row(
        "accepted", "RFC 8705 §3", None, "every check passed; the resource is served"
    ),
    _F.ACCEPTED_ALTHOUGH_BOUND: _row(
        "accepted although bound",
        "RFC 8705 §3",
        None,
        "a sender-constrained token was accepted without checking its binding: anyone holding the token can "
        "use it (security finding)",
        security=True,
    ),
    _F.TOKEN_ISSUED: _row(
        "token issued",
        "RFC 8705 §2",
        None,
        "at the token endpoint, the client authenticated with its certificate and was issued a token bound "
        "to it (RFC 8705 §3.1)",
    ),
}
