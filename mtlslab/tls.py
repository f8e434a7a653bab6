"""A pure model of what the TLS layer does with a client certificate — no sockets.

Given how the server asks for client certificates (:class:`ClientAuth`), the TLS version and the
certificate the client presents (or none), :func:`handshake` says either which certificate the
application receives, or which alert aborts the connection and when the client notices it:

* TLS 1.3: the server checks the client's certificate after the client has sent its Finished, so the
  client believes the handshake succeeded and meets the alert only when it next reads (RFC 8446 §4.4.4: such
  alerts travel under the application traffic keys) — ``certificate_required`` (116) when no certificate
  came and one is required (RFC 8446 §6.2). Such an alert arrives after the client has started to write its
  request: a server that closes without reading what the client sent makes the kernel reset the connection.
  On Linux the alert still arrives, but the client's write may fail first, and a client that stops there
  (Python's http.client) reports only a closed connection; on Windows the reset can discard the alert.
  mtlslab's server shuts its write side and drains first (see :attr:`TlsAlert.may_be_lost`).
* TLS 1.2 (RFC 5246 §7.4.6): the server rejects during the handshake, the client sees the alert there;
  a missing required certificate is ``handshake_failure`` (40).
* A certificate that fails validation gives the alert OpenSSL maps the verification error to:
  ``unknown_ca`` (48) for an untrusted issuer or a self-signed certificate, ``certificate_expired`` (45),
  ``bad_certificate`` (42) for not-yet-valid, ``unsupported_certificate`` (43) for a wrong EKU. The RFCs
  define what each alert means (RFC 8446 §6.2, RFC 5246 §7.2.2); which one a server sends is its TLS
  library's choice, and these are OpenSSL's (the live tests check them against OpenSSL and HAProxy).

With ``optional-no-ca`` (nginx's ``optional_no_ca``; RFC 8705 §2.2 and §6.2 for self-signed clients) any
certificate is accepted and handed to the application unverified; ``required-no-ca`` does the same but
refuses a handshake without a certificate.

Certificates asked for late (RFC 8705 §3 makes no provision for them): with ``post-handshake`` the server
asks only once the request has come, by TLS 1.3 post-handshake authentication (RFC 8446 §4.6.2), which the
client must have offered; with ``renegotiation`` by a TLS 1.2 renegotiation (RFC 5246 §7.4.1.1). HTTP/2
forbids both (RFC 9113 §9.2.1, §9.2.3), so there the certificate cannot be had. A resumed session carries
the authentication of the session it resumes (RFC 8446 §2.2): one set up without a certificate hands none to
the application, whatever certificate the client holds now — except at a server that requires one, which
never made such a session.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mtlslab.pki import LAB_NOW, ChainProblem, ChainVerdict, Identity, validate_client_chain
from mtlslab.spec import Step, cite

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
    # asks; accepts any certificate unverified (nginx "optional_no_ca")
    OPTIONAL_NO_CA = "optional-no-ca"
    REQUIRED = "required"  # asks and refuses the handshake without a valid one
    # asks, refuses the handshake without one, accepts any unverified
    REQUIRED_NO_CA = "required-no-ca"
    POST_HANDSHAKE = "post-handshake"  # asks once the request has come: TLS 1.3 post-handshake auth
    RENEGOTIATION = "renegotiation"  # asks once the request has come: a TLS 1.2 renegotiation

    @property
    def requires(self) -> bool:
        """Whether a handshake without a client certificate fails."""
        return self in (ClientAuth.REQUIRED, ClientAuth.REQUIRED_NO_CA)

    @property
    def validates(self) -> bool:
        """Whether a presented certificate is validated against the trusted CA."""
        return self not in (ClientAuth.NONE, ClientAuth.OPTIONAL_NO_CA, ClientAuth.REQUIRED_NO_CA)

    @property
    def late(self) -> bool:
        """Whether the certificate is asked for only after the handshake."""
        return self in (ClientAuth.POST_HANDSHAKE, ClientAuth.RENEGOTIATION)


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

    @property
    def may_be_lost(self) -> bool:
        """Whether a server that does not drain could make the client miss this alert: one met at the first
        read reaches the client after it began to send its request (mtlslab's own server drains first)."""
        return self.when == "first_read"

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
    """What the TLS layer did: an alert, or the certificate (DER) handed to the application, with the
    intermediates the client sent along (``client_chain``, DER, in order)."""

    alert: TlsAlert | None
    client_cert: bytes | None
    steps: tuple[Step, ...]
    client_chain: tuple[bytes, ...] = ()

    @property
    def completed(self) -> bool:
        """Whether a request can reach the application."""
        return self.alert is None


#: The alert OpenSSL sends for each validation problem (its choice; RFC 8446 §6.2 says what each means).
_PROBLEM_ALERT = {
    ChainProblem.UNTRUSTED_ISSUER: "unknown_ca",
    ChainProblem.SELF_SIGNED: "unknown_ca",
    ChainProblem.EXPIRED: "certificate_expired",
    ChainProblem.NOT_YET_VALID: "bad_certificate",
    ChainProblem.WRONG_EKU: "unsupported_certificate",
    ChainProblem.OTHER: "bad_certificate",
}
_LOST = (
    " (a server that closes without reading the client's request can make the client see the connection "
    "close instead; mtlslab's server drains first, so the alert arrives)"
)


def _step(clause: str, passed: bool | None, detail: str) -> Step:
    return Step(check="TLS client certificate", clause=cite(clause), passed=passed, detail=detail)


def _result(
    alert: TlsAlert | None, cert: bytes | None, *steps: Step, chain: Sequence[x509.Certificate] = ()
) -> TlsResult:
    sent = tuple(c.public_bytes(Encoding.DER) for c in chain)
    return TlsResult(alert=alert, client_cert=cert, steps=steps, client_chain=sent)


def _abort(name: str, when: Literal["handshake", "first_read"], clause: str, why: str) -> TlsResult:
    """The handshake aborted with the alert called ``name``; ``why`` begins the step's detail."""
    alert = alert_by_name(name, when)
    lost = _LOST if alert.may_be_lost else ""
    detail = (
        f"{why} the server aborts with {alert}{lost}; RFC 8446 §6.2 says what the alert means, "
        "OpenSSL chooses it"
    )
    return _result(alert, None, _step(clause, False, detail))


def handshake(
    *,
    client_auth: ClientAuth,
    version: TlsVersion,
    presented: Identity | x509.Certificate | None,
    roots: Sequence[x509.Certificate],
    at: dt.datetime = LAB_NOW,
    resumed_without_certificate: bool = False,
    post_handshake_auth: bool = True,
    http2: bool = False,
) -> TlsResult:
    """Model the server side of a handshake with client authentication ``client_auth``. ``presented`` is
    the identity (or bare certificate) the client would send if asked, validated at ``at`` (the lab clock;
    lab certificates are valid then and today). ``resumed_without_certificate``: the client resumes a
    session set up without one. For a certificate asked for late, ``post_handshake_auth`` says whether the
    client offered TLS 1.3 post-handshake authentication, and ``http2`` whether the connection is HTTP/2."""
    when: Literal["handshake", "first_read"] = (
        "first_read" if version is TlsVersion.TLS1_3 or client_auth.late else "handshake"
    )
    rejection = "RFC 8446 §4.4.2.4" if version is TlsVersion.TLS1_3 else "RFC 5246 §7.4.6"
    missing = "certificate_required" if version is TlsVersion.TLS1_3 else "handshake_failure"
    if resumed_without_certificate and presented is not None:
        resumed = _step(
            "RFC 8446 §2.2",
            None,
            "the client resumes a session that was set up without a certificate: resumption carries that "
            "session's authentication, so no certificate is presented now",
        )
        if client_auth.late:
            late = _late(client_auth, version, presented, roots, at, post_handshake_auth, http2)
            return replace(late, steps=(resumed, *late.steps))
        if client_auth.requires:
            # this server refused every handshake without a certificate, so it holds no such session
            full = _validated(client_auth, rejection, presented, roots, at, when)
            fresh = _step(
                "RFC 8446 §2.2",
                None,
                "a server that requires a certificate never set up a session without one: there is none to "
                "resume, the handshake is a full one and the client presents its certificate",
            )
            return replace(full, steps=(fresh, *full.steps))
        return _result(None, None, resumed)
    if client_auth is ClientAuth.NONE:
        detail = "the server sends no CertificateRequest, so the client sends no certificate"
        if presented is not None:
            detail += f" (it had {_name(presented)})"
        return _result(None, None, _step(rejection, None, detail))
    if client_auth.late:
        return _late(client_auth, version, presented, roots, at, post_handshake_auth, http2)
    if presented is None:
        if client_auth.requires:
            return _abort(missing, when, rejection, "required but none sent:")
        detail = f"requested ({client_auth.value}), none sent: the handshake completes without one"
        return _result(None, None, _step(rejection, None, detail))
    return _validated(client_auth, rejection, presented, roots, at, when)


def _name(presented: Identity | x509.Certificate) -> str:
    if isinstance(presented, x509.Certificate):
        return presented.subject.rfc4514_string() or "the certificate"
    return presented.name


def _validated(
    client_auth: ClientAuth,
    clause: str,
    presented: Identity | x509.Certificate,
    roots: Sequence[x509.Certificate],
    at: dt.datetime,
    when: Literal["handshake", "first_read"],
) -> TlsResult:
    """The certificate the client sends when asked: accepted as is without chain validation, or validated."""
    certificate = presented if isinstance(presented, x509.Certificate) else presented.certificate
    chain = presented.chain if isinstance(presented, Identity) else ()
    der = certificate.public_bytes(Encoding.DER)
    name = _name(presented)
    if not client_auth.validates:
        dates = ""  # without chain validation, nothing looks at the certificate's dates either
        if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
            dates = (
                f", its dates unchecked: valid {certificate.not_valid_before_utc:%Y-%m-%d} to "
                f"{certificate.not_valid_after_utc:%Y-%m-%d}, not at {at:%Y-%m-%d}"
            )
        detail = (
            f"{name} accepted without chain validation ({client_auth.value}){dates}; the "
            "application receives it as is"
        )
        return _result(None, der, _step("RFC 8705 §6.2", True, detail), chain=chain)
    verdict = _chain_verdict(certificate, tuple(roots), chain, at)
    if verdict.problem is not None:
        return _abort(_PROBLEM_ALERT[verdict.problem], when, clause, f"{name}: {verdict.reason};")
    detail = f"{name} validated against the trusted CA ({client_auth.value})"
    return _result(None, der, _step(clause, True, detail), chain=chain)


@functools.lru_cache(maxsize=256)
def _chain_verdict(
    certificate: x509.Certificate,
    roots: tuple[x509.Certificate, ...],
    chain: tuple[x509.Certificate, ...],
    at: dt.datetime,
) -> ChainVerdict:
    """The chain's verdict, remembered: the same chain at the same instant validates alike, and a matrix row
    asks once for each way its readings ask for a certificate (measured: a fifth of the whole matrix)."""
    return validate_client_chain(certificate, roots=roots, intermediates=chain, at=at)


def _late(
    client_auth: ClientAuth,
    version: TlsVersion,
    presented: Identity | x509.Certificate | None,
    roots: Sequence[x509.Certificate],
    at: dt.datetime,
    post_handshake_auth: bool,
    http2: bool,
) -> TlsResult:
    """A certificate asked for once the request has come (``client_auth.late``)."""
    pha = client_auth is ClientAuth.POST_HANDSHAKE
    clause = "RFC 8446 §4.6.2" if pha else "RFC 5246 §7.4.1.1"
    how = "TLS 1.3 post-handshake authentication" if pha else "a TLS 1.2 renegotiation"
    first = _step(
        "RFC 8705 §3",
        None,
        f"no certificate asked for in the handshake; the server asks once the request has come, by {how} "
        "(RFC 8705 §3 makes no provision for it)",
    )
    wanted = TlsVersion.TLS1_3 if pha else TlsVersion.TLS1_2
    if http2:
        rule = "RFC 9113 §9.2.3" if pha else "RFC 9113 §9.2.1"
        none = _step(rule, False, f"HTTP/2 forbids {how}: the server cannot ask, no certificate")
    elif version is not wanted:
        detail = f"{how} needs TLS {wanted.value}; this is TLS {version.value}: no certificate"
        none = _step(clause, False, detail)
    elif pha and not post_handshake_auth:
        why = "the client did not offer post_handshake_auth, so the server may not ask"
        none = _step(clause, False, f"{why}: no certificate")
    elif presented is None:
        none = _step(clause, None, "asked late; the client has no certificate to send")
    else:
        later = _validated(ClientAuth.OPTIONAL, clause, presented, roots, at, "first_read")
        return replace(later, steps=(first, *later.steps))
    return _result(None, None, first, none)
