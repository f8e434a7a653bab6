"""A pure model of what the TLS layer does with a client certificate — no sockets.

Given how the server asks for client certificates (:class:`ClientAuth`), the TLS version and the
certificate the client presents (or none), :func:`handshake` says either which certificate the
application receives, or which alert aborts the connection and when the client notices it:

* TLS 1.3 (RFC 8446 §4.4.2.4): the server checks the client's certificate after the client has sent its
  Finished, so the client believes the handshake succeeded and sees the alert on its **first read**
  (``certificate_required`` (116) when no certificate came and one is required).
* TLS 1.2 (RFC 5246 §7.4.6): the server rejects during the handshake, the client sees the alert there;
  a missing required certificate is ``handshake_failure`` (40).
* A certificate that fails validation gives the alert OpenSSL maps the verification error to:
  ``unknown_ca`` (48) for an untrusted issuer or a self-signed certificate, ``certificate_expired`` (45),
  ``bad_certificate`` (42) for not-yet-valid, ``unsupported_certificate`` (43) for a wrong EKU.

With ``optional-no-ca`` (nginx's ``optional_no_ca``; RFC 8705 §2.2 and §6.2 for self-signed clients) any
certificate is accepted and handed to the application unverified; ``required-no-ca`` does the same but
refuses a handshake without a certificate. The live tests check this model
against real OpenSSL and HAProxy on loopback.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mtlslab.pki import LAB_NOW, ChainProblem, Identity, validate_client_chain
from mtlslab.spec import Clause, Step, cite

__all__ = [
    "ALERTS",
    "ClientAuth",
    "TlsAlert",
    "TlsResult",
    "TlsVersion",
    "alert_by_name",
    "handshake",
]


class ClientAuth(enum.Enum):
    """How the TLS server asks for a client certificate."""

    NONE = "none"  # never asks (no CertificateRequest)
    # asks; none is fine; a bad one is refused at the TLS layer (OpenSSL VERIFY_PEER, Python CERT_OPTIONAL).
    # nginx "optional" differs: it completes the handshake and answers 400 over HTTP for a bad certificate.
    OPTIONAL = "optional"
    OPTIONAL_NO_CA = (
        "optional-no-ca"  # asks; accepts any certificate unverified (nginx "optional_no_ca")
    )
    REQUIRED = "required"  # asks and refuses the handshake without a valid one
    REQUIRED_NO_CA = (
        "required-no-ca"  # asks, refuses the handshake without one, accepts any unverified
    )

    @property
    def requires(self) -> bool:
        """Whether a handshake without a client certificate fails."""
        return self in (ClientAuth.REQUIRED, ClientAuth.REQUIRED_NO_CA)

    @property
    def validates(self) -> bool:
        """Whether a presented certificate is validated against the trusted CA."""
        return self in (ClientAuth.OPTIONAL, ClientAuth.REQUIRED)


class TlsVersion(enum.Enum):
    """The TLS version the server pins."""

    TLS1_2 = "1.2"
    TLS1_3 = "1.3"


#: TLS alert names and numbers (RFC 8446 §6 and RFC 5246 §7.2).
ALERTS: dict[str, int] = {
    "close_notify": 0,
    "unexpected_message": 10,
    "bad_record_mac": 20,
    "handshake_failure": 40,
    "bad_certificate": 42,
    "unsupported_certificate": 43,
    "certificate_revoked": 44,
    "certificate_expired": 45,
    "certificate_unknown": 46,
    "illegal_parameter": 47,
    "unknown_ca": 48,
    "access_denied": 49,
    "decode_error": 50,
    "decrypt_error": 51,
    "protocol_version": 70,
    "insufficient_security": 71,
    "internal_error": 80,
    "inappropriate_fallback": 86,
    "user_canceled": 90,
    "missing_extension": 109,
    "unsupported_extension": 110,
    "unrecognized_name": 112,
    "bad_certificate_status_response": 113,
    "unknown_psk_identity": 115,
    "certificate_required": 116,
    "no_application_protocol": 120,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsAlert:
    """A fatal TLS alert: its name and number, and when the client notices it."""

    name: str
    code: int
    when: Literal["handshake", "first_read"]

    def __str__(self) -> str:
        moment = "during the handshake" if self.when == "handshake" else "at the first read"
        return f"TLS alert {self.name} ({self.code}) {moment}"

    def to_json(self) -> dict[str, object]:
        """``{"name", "code", "when"}``."""
        return {"name": self.name, "code": self.code, "when": self.when}


def alert_by_name(name: str, when: Literal["handshake", "first_read"]) -> TlsAlert:
    """The alert called ``name`` (as in :data:`ALERTS`)."""
    return TlsAlert(name=name, code=ALERTS[name], when=when)


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsResult:
    """What the TLS layer did: an alert, or the certificate (DER) handed to the application."""

    alert: TlsAlert | None
    client_cert: bytes | None
    steps: tuple[Step, ...]

    @property
    def completed(self) -> bool:
        """Whether a request can reach the application."""
        return self.alert is None


_PROBLEM_ALERT = {
    ChainProblem.UNTRUSTED_ISSUER: "unknown_ca",
    ChainProblem.SELF_SIGNED: "unknown_ca",
    ChainProblem.EXPIRED: "certificate_expired",
    ChainProblem.NOT_YET_VALID: "bad_certificate",
    ChainProblem.WRONG_EKU: "unsupported_certificate",
    ChainProblem.OTHER: "bad_certificate",
}

_RFC8446_CERT = cite("RFC 8446 §4.4.2.4")
_RFC5246_CERT = cite("RFC 5246 §7.4.6")
_RFC8705_NO_CA = cite("RFC 8705 §6.2")


def _rejection_clause(version: TlsVersion) -> Clause:
    return _RFC8446_CERT if version is TlsVersion.TLS1_3 else _RFC5246_CERT


def handshake(
    *,
    client_auth: ClientAuth,
    version: TlsVersion,
    presented: Identity | x509.Certificate | None,
    roots: Sequence[x509.Certificate],
    at: dt.datetime = LAB_NOW,
) -> TlsResult:
    """Model the server side of a handshake with client authentication ``client_auth``.

    ``presented`` is the identity (or bare certificate) the client would send if asked. Certificates are
    validated at ``at`` (the lab clock; lab certificates are valid at both the lab clock and today).
    """
    name: str
    chain: tuple[x509.Certificate, ...]
    der: bytes
    certificate: x509.Certificate
    if isinstance(presented, x509.Certificate):
        name, chain = presented.subject.rfc4514_string() or "the certificate", ()
        der = presented.public_bytes(Encoding.DER)
        certificate = presented
    elif presented is not None:
        name, chain, der, certificate = (
            presented.name,
            presented.chain,
            presented.der,
            presented.certificate,
        )
    when: Literal["handshake", "first_read"] = (
        "first_read" if version is TlsVersion.TLS1_3 else "handshake"
    )
    if client_auth is ClientAuth.NONE:
        detail = "the server sends no CertificateRequest, so the client sends no certificate"
        if presented is not None:
            detail += f" (it had {name})"
        return TlsResult(
            alert=None,
            client_cert=None,
            steps=(
                Step(
                    check="TLS client certificate",
                    clause=_rejection_clause(version),
                    passed=None,
                    detail=detail,
                ),
            ),
        )
    if presented is None:
        if client_auth.requires:
            name = "certificate_required" if version is TlsVersion.TLS1_3 else "handshake_failure"
            alert = alert_by_name(name, when)
            step = Step(
                check="TLS client certificate",
                clause=_rejection_clause(version),
                passed=False,
                detail=f"required but none sent: the server aborts with {alert}",
            )
            return TlsResult(alert=alert, client_cert=None, steps=(step,))
        step = Step(
            check="TLS client certificate",
            clause=_rejection_clause(version),
            passed=None,
            detail=f"requested ({client_auth.value}), none sent: the handshake completes without one",
        )
        return TlsResult(alert=None, client_cert=None, steps=(step,))
    if not client_auth.validates:
        step = Step(
            check="TLS client certificate",
            clause=_RFC8705_NO_CA,
            passed=True,
            detail=f"{name} accepted without chain validation ({client_auth.value}); the "
            "application receives it as is",
        )
        return TlsResult(alert=None, client_cert=der, steps=(step,))
    verdict = validate_client_chain(certificate, roots=roots, intermediates=chain, at=at)
    if not verdict.valid:
        assert verdict.problem is not None
        alert = alert_by_name(_PROBLEM_ALERT[verdict.problem], when)
        step = Step(
            check="TLS client certificate",
            clause=_rejection_clause(version),
            passed=False,
            detail=f"{name}: {verdict.reason}; the server aborts with {alert}",
        )
        return TlsResult(alert=alert, client_cert=None, steps=(step,))
    step = Step(
        check="TLS client certificate",
        clause=_rejection_clause(version),
        passed=True,
        detail=f"{name} validated against the trusted CA ({client_auth.value})",
    )
    return TlsResult(alert=None, client_cert=der, steps=(step,))
