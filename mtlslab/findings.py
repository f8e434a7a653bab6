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

from mtlslab.errors import InputError
from mtlslab.spec import Clause, cite, read_data

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


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "title": str,
    "clause": str,
    "hint": (str, type(None)),
    "meaning": str,
    "security": bool,
}


def _load_findings() -> dict[Finding, FindingInfo]:
    """Every finding's row from ``mtlslab/data/findings.json``, in :class:`Finding` order; a missing, extra
    or mistyped row or field is an error."""
    rows = read_data("findings.json")
    if not isinstance(rows, dict) or set(rows) != {f.value for f in Finding}:
        raise InputError("findings.json", "expected exactly one row for each finding")
    for name, row in rows.items():
        if not isinstance(row, dict) or set(row) != set(_FIELDS):
            raise InputError(f"findings.json: {name}", f"expected the fields {', '.join(_FIELDS)}")
        for field, kind in _FIELDS.items():
            if not isinstance(row[field], kind):
                raise InputError(
                    f"findings.json: {name}.{field}", f"{row[field]!r} has the wrong type"
                )
    return {
        f: FindingInfo(**{**rows[f.value], "clause": cite(rows[f.value]["clause"])})
        for f in Finding
    }


#: Documentation of every finding (rules as data: ``mtlslab/data/findings.json``; README tables are
#: generated from this).
FINDINGS: dict[Finding, FindingInfo] = _load_findings()
