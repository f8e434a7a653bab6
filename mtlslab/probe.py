"""Probe a real resource server: send a bounded battery of requests and say which reading it follows.

An edge of mtlslab, like :mod:`mtlslab.live`: it opens sockets, decides nothing itself, and compares what a
server answers with what every interpretation predicts. ::

    lab = Lab(seed="workshop")
    with LabIssuer(lab) as issuer:                 # JWKS + RFC 8414 metadata on https://127.0.0.1:PORT
        report = probe("https://127.0.0.1:8443/resource", issuer=issuer, ca=Path("server-ca.pem"))
    print(report.headline)                         # answers like keycloak on 21 of 21 probes (verdict), ...
    print(report.to_text())                        # ≤ 72 columns; also to_markdown(), to_json()

Tokens the server accepts come from the **lab issuer** (:class:`mtlslab.live.issuer.LabIssuer`: mtlslab's
authorization server with its JWKS, RFC 8414 metadata and RFC 7662 introspection on loopback; the full
battery, broken tokens included, minted at wall-clock time unless ``now`` is injected) or are **brought**
(:class:`BringYourOwn`: a bound token with its certificate and key, optionally an unbound token and a
second certificate; the battery shrinks to what that allows and the report says what it skipped and why).

Every probe is a GET, sent one at a time, each within one time limit; at most :data:`MAX_REQUESTS`. A target
off loopback (127.0.0.0/8, ::1, ``localhost``) is refused unless ``allow_remote=True``. The report states
what was sent: method, URL and headers (tokens shortened), and which certificate.

Predictions come from the engine: each probe is a :class:`~mtlslab.scenarios.Scenario` (the lab analogue of
what is sent), simulated under every interpretation for a server assumed to ask for client certificates
*optionally* at the stated TLS version (each interpretation adapts that). Bring your own: the analogue
assumes the user's token valid and bound to the given certificate, and each decision carries the user's own
``sub`` and ``client_id``. Scores: *verdict* (:func:`observed_verdict`: the same TLS alert, or status and
error code) names the closest reading; *exact* (the same answer on the wire, the realm's value left to the
server) breaks ties.

The first probe is the control, the bound token with its own certificate: unless the server serves it (or
refuses it exactly as the hypothetical ``dpop-analogy`` says), the report is
:attr:`ProbeReport.inconclusive`, names no reading, says what to check, and nothing more is sent.

A server's answer, any answer, is data: each request is bounded in time as a whole and in size
(:func:`~mtlslab.live.client.send`), an answer that is not HTTP/1.1 is recorded with its first bytes, and
every string the server chose is made visible before it is printed (control characters escaped; in Markdown
its markup and HTML too).

Exceptions: :class:`~mtlslab.errors.InputError` (unusable input — a URL, a file, a target that refuses
connections or whose certificate does not verify), before or at the first request.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mtlslab import _probe_render as render
from mtlslab.challenge import TOKEN68
from mtlslab.compare import Simulator
from mtlslab.errors import CertificateError, InputError, KeyTypeError
from mtlslab.interpretations import BUILTINS, Interpretation, Outcome
from mtlslab.live.client import Observed, client_context, send
from mtlslab.live.issuer import LabIssuer
from mtlslab.live.server import is_loopback
from mtlslab.pki import CertificateAuthority, Identity, Lab, load_certificate, load_private_key
from mtlslab.rs import Decision
from mtlslab.scenarios import (
    CertChoice,
    ClientAuth,
    Placement,
    Presentation,
    Request,
    Scenario,
    Scheme,
    TlsVersion,
    client_request,
    encode_client_cert,
)
from mtlslab.spec import shorten
from mtlslab.tokens import AccessToken, decode_unverified

__all__ = [
    "MAX_REQUESTS",
    "PROBES",
    "BringYourOwn",
    "Need",
    "Prediction",
    "Probe",
    "ProbeReport",
    "ProbeResult",
    "Score",
    "SecurityWarning",
    "Sent",
    "Skipped",
    "check_target",
    "identity_from_pem",
    "is_loopback",
    "observed_verdict",
    "probe",
]

#: The most requests one probe run sends.
MAX_REQUESTS = 40
#: The most characters of a token (or a Client-Cert value) a report shows: a longer one is never
#: shown whole, only its start and end (:func:`mtlslab.spec.shorten`).
_SECRET_SHOWN = 20

Need = Literal["lab-issuer", "unbound-token", "other-cert"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """One request of the battery: its lab analogue, and what accepting it would mean for security.

    ``scenario.token`` names a lab token variant (``bound``, ``unbound``, ``none`` or a broken one);
    ``scenario.presentation`` says which certificate (``client`` = the one the token is bound to), scheme,
    placement, and whether the client forges a ``Client-Cert`` header carrying the bound certificate.
    """

    id: str
    title: str
    scenario: Scenario
    warning: str | None = None  # a security warning when the server answers 2xx

    @property
    def needs(self) -> tuple[Need, ...]:
        """The material beyond a bound token and its certificate that this probe needs."""
        out: list[Need] = []
        if self.scenario.token not in ("bound", "unbound", "none"):
            out.append("lab-issuer")
        if self.scenario.token == "unbound":
            out.append("unbound-token")
        if self.scenario.presentation.certificate is CertChoice.OTHER:
            out.append("other-cert")
        return tuple(out)

    @property
    def certificate(self) -> str:
        """``bound``, ``other`` or ``none``: which certificate the TLS client presents."""
        return {CertChoice.CLIENT: "bound", CertChoice.OTHER: "other"}.get(
            self.scenario.presentation.certificate, "none"
        )

    def __repr__(self) -> str:
        return f"<Probe {self.id}: {self.title}>"


def _p(id: str, title: str, *, token: str = "bound", **presentation: Any) -> Probe:
    scenario = Scenario(id=id, title=title, token=token, presentation=Presentation(**presentation))
    return Probe(id=id, title=title, scenario=scenario, warning=_WARNINGS.get(id))


#: What a server that serves a probe (2xx) accepted that it must refuse, by probe id.
_WARNINGS = {
    "no-cert": "accepted a certificate-bound token without any certificate",
    "mismatch": "accepted a certificate-bound token with another client's certificate",
    "forged-client-cert": "trusted a Client-Cert header sent by the client itself (RFC 9440 §2)",
    "query-no-cert": "accepted a certificate-bound token in the query without any certificate",
    "expired": "accepted an expired token",
    "bad-signature": "accepted a token whose signature does not verify",
    "alg-none": "accepted an unsigned token (alg none)",
    "hs256-confusion": "accepted a token HMAC-signed with the issuer's public key",
    "wrong-audience": "accepted a token issued for another audience",
    "wrong-issuer": "accepted a token from an issuer it does not trust",
    "cnf-unknown-method": "accepted a token whose cnf names only a method it cannot check",
    "dpop-as-bearer": "accepted a DPoP-bound token as a plain bearer token (RFC 9449 §7.2)",
}
_NONE = CertChoice.NONE

#: The battery, in the order it is sent. Ids are stable (they appear in reports).
PROBES: tuple[Probe, ...] = (
    _p("success", "bound token with its certificate (the control)"),
    _p("no-cert", "bound token, no certificate", certificate=_NONE),
    _p("mismatch", "bound token with another client's certificate", certificate=CertChoice.OTHER),
    _p(
        "forged-client-cert",
        "bound token, no certificate, the client sends Client-Cert itself",
        certificate=_NONE,
        forged_client_cert=CertChoice.CLIENT,
    ),
    _p(
        "query-no-cert",
        "bound token in the query, no certificate",
        certificate=_NONE,
        placement=Placement.QUERY,
    ),
    _p("unbound-no-cert", "unbound token, no certificate", token="unbound", certificate=_NONE),
    _p("unbound-with-cert", "unbound token with a certificate", token="unbound"),
    _p("no-token", "a certificate, no token", token="none"),
    _p("lowercase-bearer", "scheme written 'bearer'", scheme=Scheme.BEARER_LOWER),
    _p("no-scheme", "the bare token in Authorization", scheme=Scheme.NONE),
    _p("token-in-query", "bound token in the query", placement=Placement.QUERY),
    _p(
        "header-and-query",
        "bound token in the header and the query",
        placement=Placement.HEADER_AND_QUERY,
    ),
    _p("mtls-scheme", "bound token under an MTLS scheme (hypothetical)", scheme=Scheme.MTLS),
    _p("expired", "expired bound token", token="expired"),
    _p("bad-signature", "bound token signed with a key not in the JWKS", token="bad-signature"),
    _p("alg-none", "bound token with alg none", token="alg-none"),
    _p(
        "hs256-confusion",
        "bound token HMAC-signed with the issuer's public key",
        token="hs256-confusion",
    ),
    _p("wrong-audience", "bound token for another resource server", token="wrong-audience"),
    _p("wrong-issuer", "bound token from an untrusted issuer", token="wrong-issuer"),
    _p(
        "cnf-unknown-method",
        "cnf with only a method the server cannot check",
        token="cnf-unknown-method",
    ),
    _p(
        "dpop-as-bearer",
        "DPoP-bound token sent as Bearer, no proof",
        token="dpop-bound",
        certificate=_NONE,
    ),
)
assert len({p.id for p in PROBES}) == len(PROBES) <= MAX_REQUESTS
assert set(_WARNINGS) <= {p.id for p in PROBES}

_NEED_REASONS: dict[Need, str] = {
    "lab-issuer": "needs the lab issuer: only mtlslab's own authorization server can mint this "
    "broken token for a server that trusts it (--lab-issuer)",
    "unbound-token": "needs an unbound token the server accepts (--unbound-token)",
    "other-cert": "needs a second certificate and key the server's TLS layer accepts "
    "(--other-cert, --other-key)",
}


def _certificates(raw: bytes, *, field: str) -> list[x509.Certificate]:
    """Every certificate of a PEM chain, or the one certificate of DER bytes (errors name ``field``)."""
    if not raw.lstrip().startswith(b"-----BEGIN"):
        return [load_certificate(raw, field=field)]
    try:
        return x509.load_pem_x509_certificates(raw)
    except ValueError as exc:
        raise CertificateError(field, f"not a valid PEM certificate ({exc})") from None


def identity_from_pem(
    cert: bytes | str,
    key: bytes | str,
    *,
    name: str = "certificate",
    field: str = "cert",
    key_field: str = "key",
) -> Identity:
    """An :class:`~mtlslab.pki.Identity` from a PEM certificate (chain) and its private key (PEM or DER).

    Raises :class:`~mtlslab.errors.CertificateError` (naming ``field``) or
    :class:`~mtlslab.errors.KeyTypeError` (naming ``key_field``) when either is unusable or the key does
    not belong to the certificate.
    """
    chain = _certificates(cert.encode() if isinstance(cert, str) else bytes(cert), field=field)
    private_key = load_private_key(key, field=key_field)
    leaf = chain[0]
    if leaf.public_key() != private_key.public_key():
        raise KeyTypeError(key_field, "this private key does not belong to the certificate")
    return Identity(name=name, certificate=leaf, private_key=private_key, chain=tuple(chain[1:]))


def _check_token(value: str, field: str) -> str:
    token = value.strip()
    if not TOKEN68.fullmatch(token):
        raise InputError(field, "not an access token (RFC 6750 §2.1 b64token characters only)")
    return token


@dataclass(frozen=True, slots=True, kw_only=True)
class BringYourOwn:
    """Material the user brings: a bound token with its certificate, optionally more."""

    token: str  # bound to ``identity``'s certificate (assumed valid at the server)
    identity: Identity
    unbound_token: str | None = None
    other: Identity | None = None  # another certificate the server's TLS layer accepts

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", _check_token(self.token, "token"))
        if self.unbound_token is not None:
            object.__setattr__(
                self, "unbound_token", _check_token(self.unbound_token, "unbound_token")
            )

    @classmethod
    def from_pem(
        cls,
        *,
        token: str,
        cert: bytes | str,
        key: bytes | str,
        unbound_token: str | None = None,
        other_cert: bytes | str | None = None,
        other_key: bytes | str | None = None,
    ) -> BringYourOwn:
        """From PEM (or DER) certificate and key bytes; ``other_cert`` and ``other_key`` go together."""
        if (other_cert is None) != (other_key is None):
            raise InputError("other_cert", "a second certificate needs its key, and a key its cert")
        other = None
        if other_cert is not None and other_key is not None:
            other = identity_from_pem(
                other_cert,
                other_key,
                name="other certificate",
                field="other_cert",
                key_field="other_key",
            )
        return cls(
            token=token,
            identity=identity_from_pem(cert, key, name="bound certificate", field="cert"),
            unbound_token=unbound_token,
            other=other,
        )

    def missing(self) -> set[Need]:
        """What this material cannot provide."""
        out: set[Need] = {"lab-issuer"}
        if self.unbound_token is None:
            out.add("unbound-token")
        if self.other is None:
            out.add("other-cert")
        return out

    def __repr__(self) -> str:
        extras = [n for n, v in (("unbound", self.unbound_token), ("other", self.other)) if v]
        return (
            f"<BringYourOwn {shorten(self.token, _SECRET_SHOWN)} + {', '.join(['cert', *extras])}>"
        )


def _json_ready(record: Any) -> dict[str, Any]:
    """A dataclass record as a JSON-ready dict (its tuples as lists)."""
    ready: dict[str, Any] = json.loads(json.dumps(asdict(record)))
    return ready


@dataclass(frozen=True, slots=True, kw_only=True)
class Sent:
    """Exactly what one probe sent: method, URL and headers (tokens shortened), and which certificate."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    certificate: str  # "bound", "other" or "none"

    def lines(self) -> list[str]:
        """The request line and headers, as sent (tokens shortened)."""
        return [f"{self.method} {self.url}", *(f"{k}: {v}" for k, v in self.headers)]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return _json_ready(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Prediction:
    """One interpretation's predicted outcome for one probe, and whether the server matched it."""

    interpretation: str
    outcome: Outcome
    exact: bool
    verdict: bool
    differences: tuple[str, ...] = ()  # what differs on the wire ("WWW-Authenticate", "body", ...)

    @property
    def mark(self) -> str:
        """``=`` exact, ``~`` same verdict, ``x`` different."""
        return "=" if self.exact else "~" if self.verdict else "x"


def observed_verdict(observed: Observed) -> tuple[str, ...]:
    """What readings compare: ``("tls", alert)``, ``(status, error code or "")``, or ``("error", why)``.

    The error code comes from the first ``WWW-Authenticate`` challenge that has one; only an answer
    without any challenge is read for a JSON body's ``error`` member
    (:meth:`~mtlslab.live.client.Observed.error_code`). The realm and the wording of a description are the
    server's own: a verdict never looks at them.
    """
    if observed.tls_alert is not None:
        return ("tls", observed.tls_alert.name)
    if observed.status is None:
        return ("error", observed.error)
    return (str(observed.status), observed.error_code() or "")


#: A realm auth-param (its value quoted or a token), or a quoted string to step over whole (a realm
#: named inside a description is text, not a parameter).
_REALM_OR_QUOTED = re.compile(
    r'"(?:[^"\\]|\\.)*"?|(?<![^\s,])(realm[ \t]*=[ \t]*)(?:"(?:[^"\\]|\\.)*"?|[^\s,"]*)',
    re.IGNORECASE,
)


def _comparable(answer: Outcome | Observed, named: frozenset[str]) -> tuple[Any, ...]:
    """The answer as the exact score compares it: the TLS alert (name, number, when it surfaced), or the
    status, ``WWW-Authenticate`` with every realm's value blanked (a foreign server's realm is its own
    configuration — node-oidc-provider's is its issuer URL — which no reading can predict),
    ``Content-Type``, body (a body cut at the client's limit never equals a prediction) and, as a multiset,
    the further fields whose names are ``named`` (case-insensitive, RFC 9110 §5.1) — those some scored
    reading sends (``Cache-Control``, ``DPoP-Nonce``...); a field no reading speaks of (``X-Powered-By``,
    ``Vary``) is the server's own. An answer that never came compares by its error."""
    wire = answer.wire()
    if wire[0] != "http":
        return wire
    _, status, www, kind, body = wire[:5]
    fields = answer.headers_more if isinstance(answer, Outcome) else answer.headers
    if isinstance(answer, Observed) and answer.truncated:
        body = ("cut at", len(body))
    if www is not None:
        www = _REALM_OR_QUOTED.sub(lambda m: f"{m.group(1)}…" if m.group(1) else m.group(0), www)
    further = tuple(sorted((k.lower(), v) for k, v in fields if k.lower() in named))
    return ("http", status, www, kind, body, further)


_PARTS = {
    "tls": ("kind", "alert", "alert number", "alert timing"),
    "http": ("kind", "status", "WWW-Authenticate", "Content-Type", "body", "further fields"),
}


def _differences(
    predicted: Outcome, seen: tuple[Any, ...], named: frozenset[str]
) -> tuple[str, ...]:
    """What differs between a prediction and the answer (``seen`` is :func:`_comparable` of it): the parts
    of :data:`_PARTS` that differ, ``kind of answer`` when one is an alert and the other not."""
    want = _comparable(predicted, named)  # a prediction is an alert or HTTP, never an error
    if want[0] != seen[0]:
        return ("kind of answer",)
    return tuple(n for n, a, b in zip(_PARTS[want[0]], want, seen, strict=True) if a != b)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    """One probe: what was sent, what came back, and every interpretation's prediction."""

    probe: Probe
    sent: Sent
    observed: Observed
    predictions: tuple[Prediction, ...]

    @property
    def verdict(self) -> tuple[str, ...]:
        """The observed verdict (:func:`observed_verdict`)."""
        return observed_verdict(self.observed)

    @property
    def accepted(self) -> bool:
        """Whether the server served the resource (2xx)."""
        return self.observed.status is not None and 200 <= self.observed.status < 300

    def prediction(self, interpretation: str) -> Prediction:
        """One interpretation's prediction."""
        for found in self.predictions:
            if found.interpretation == interpretation:
                return found
        raise InputError("interpretation", f"{interpretation!r} was not scored")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        obs = self.observed
        return {
            "id": self.probe.id,
            "title": self.probe.title,
            "sent": self.sent.to_json(),
            "observed": {
                "tls_alert": obs.tls_alert.to_json() if obs.tls_alert else None,
                "status": obs.status,
                "headers": [list(h) for h in obs.headers],
                "body": obs.body,
                "truncated": obs.truncated,
                "body_length": obs.body_length,
                "error": obs.error,
                "elapsed": round(obs.elapsed, 4),
            },
            "verdict": list(self.verdict),
            "predictions": {
                p.interpretation: {
                    "exact": p.exact,
                    "verdict": p.verdict,
                    "differences": list(p.differences),
                    "finding": p.outcome.finding.value,
                    "outcome": p.outcome.to_json(),
                }
                for p in self.predictions
            },
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Skipped:
    """A probe the material did not allow, and why."""

    probe: Probe
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Score:
    """How well one interpretation predicts the server."""

    interpretation: str
    title: str
    verdict: int
    exact: int
    probes: int
    verdict_mismatches: tuple[str, ...]  # probe ids whose verdict differs
    wire_mismatches: tuple[str, ...]  # probe ids with the same verdict but other bytes on the wire

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return _json_ready(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityWarning:
    """The server accepted something it must refuse."""

    probe: str
    text: str

    def __str__(self) -> str:
        return f"{self.text} ({self.probe})"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ProbeReport:
    """Everything one probe run saw, scored against every interpretation; exports to text, Markdown, JSON.

    Every string the server chose (fields, body, error codes, the bytes of an answer that is not HTTP) is
    made visible before it is printed: control and invisible characters as escapes (``\\x1b``), in Markdown
    also its punctuation escaped, so no report carries a raw control character or the server's HTML."""

    target: str
    mode: Literal["lab-issuer", "bring-your-own"]
    tls_version: TlsVersion
    results: tuple[ProbeResult, ...]
    skipped: tuple[Skipped, ...]
    scores: tuple[Score, ...]
    seconds: float
    issuer: str | None = None
    jwks_url: str | None = None
    audience: str | None = None
    assumptions: tuple[str, ...] = ()

    @property
    def inconclusive(self) -> str | None:
        """Why the run names no reading — the control (the bound token with its own certificate) was not
        served — and what to check; None when the control was served."""
        return _control_failure(self.results[0], self.mode)  # the control is always sent first

    @property
    def closest(self) -> tuple[str, ...]:
        """The interpretation(s) with the best verdict score, ties broken by the exact score; none when the
        run is :attr:`inconclusive`."""
        if self.inconclusive:
            return ()
        best = max((s.verdict, s.exact) for s in self.scores)
        return tuple(s.interpretation for s in self.scores if (s.verdict, s.exact) == best)

    @property
    def unique(self) -> bool:
        """Whether one interpretation alone is closest."""
        return len(self.closest) == 1

    def score(self, interpretation: str) -> Score:
        """One interpretation's score."""
        for found in self.scores:
            if found.interpretation == interpretation:
                return found
        raise InputError("interpretation", f"{interpretation!r} was not scored")

    @property
    def headline(self) -> str:
        """``answers like keycloak on 21 of 21 probes (verdict), 21 of 21 exact``, or ``inconclusive: …``.

        Readings tied as closest are named together: ``(tied)``, or ``(alike on every probe)`` when they
        predict the same answer to every probe sent, so that no battery of these probes could part them."""
        why = self.inconclusive
        if why:
            return f"inconclusive: {why}"
        names = list(self.closest)
        alike = all(len({r.prediction(n).outcome.wire() for n in names}) == 1 for r in self.results)
        tie = "alike on every probe" if alike else "tied"
        who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" or {names[-1]} ({tie})"
        best = self.score(names[0])
        return (
            f"answers like {who} on {best.verdict} of {best.probes} probes (verdict), "
            f"{best.exact} of {best.probes} exact"
        )

    @property
    def warnings(self) -> tuple[SecurityWarning, ...]:
        """What the server accepted that it must refuse (security first)."""
        return tuple(
            SecurityWarning(probe=r.probe.id, text=r.probe.warning)
            for r in self.results
            if r.probe.warning and r.accepted
        )

    def to_text(self, *, width: int = 72, details: bool = True) -> str:
        """A plain-text report no wider than ``width``; ``details=False`` leaves out the mismatch details
        and the requests sent (the compact form for a README or a mail)."""
        return render.text_report(self, width=width, details=details)

    def to_markdown(self) -> str:
        """A Markdown report: headline, warnings, the server's column beside every interpretation (mismatches
        in bold), scores, skipped probes, mismatch details and the requests sent."""
        return render.markdown_report(self)

    def to_json(self, *, indent: int | None = 2) -> str:
        """Everything, machine-readable (``format: mtlslab-probe/2``); every control or invisible character
        in a string escaped (``\\u001b``, ``\\u009b``)."""
        return render.json_report(self, indent=indent)

    def __repr__(self) -> str:
        return f"<ProbeReport {render.visible(self.target)}: {render.visible(self.headline)}>"

    def _repr_html_(self) -> str:
        return render.html_report(self)


_Trusted = CertificateAuthority | x509.Certificate | bytes | os.PathLike[str] | None


def _trust(ca: _Trusted) -> CertificateAuthority | str | None:
    """What to trust for the server's certificate: a lab CA, PEM text, or None (the system's store)."""
    if ca is None or isinstance(ca, CertificateAuthority):
        return ca
    if isinstance(ca, x509.Certificate):
        certs = [ca]
    else:
        raw = bytes(ca) if isinstance(ca, (bytes, bytearray)) else Path(ca).read_bytes()
        certs = _certificates(raw, field="ca")
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)


def check_target(url: str, *, allow_remote: bool = False) -> tuple[str, int]:
    """``(host, port)`` of an ``https://`` URL; :class:`~mtlslab.errors.InputError` when it is unusable or
    not on loopback (127.0.0.0/8, ::1, ``localhost``) and ``allow_remote`` is false."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InputError("url", f"not a URL ({exc})") from None
    if parts.scheme != "https" or not parts.hostname:
        raise InputError("url", f"{url!r} is not an https:// URL (certificate binding needs TLS)")
    if parts.fragment or any(c in url for c in "\r\n\0 "):
        raise InputError("url", "no fragment, spaces or control characters, please")
    if not allow_remote and not is_loopback(parts.hostname):
        raise InputError(
            "url",
            f"{parts.hostname} is not on loopback (127.0.0.0/8, ::1, localhost); probing another "
            "machine needs allow_remote=True (command line: --allow-remote)",
        )
    return parts.hostname, port or 443


def _sent(request: Request, certificate: str, secrets: Iterable[str]) -> Sent:
    """What was sent, every secret in it (as is, or form-encoded in the query) shortened."""

    def hidden(text: str) -> str:
        for secret in secrets:
            if len(secret) > _SECRET_SHOWN:
                for form in {secret, urllib.parse.quote_plus(secret)}:
                    text = text.replace(form, shorten(form, _SECRET_SHOWN))
        return text

    headers = tuple(
        (name, shorten(value, _SECRET_SHOWN) if name.lower() == "client-cert" else hidden(value))
        for name, value in request.headers
    )
    return Sent(
        method=request.method, url=hidden(request.url), headers=headers, certificate=certificate
    )


def _fatal(observed: Observed) -> str | None:
    """A first-request failure that means the input is unusable: the field to name (``ca``, ``url``)."""
    error = observed.error if observed.status is None and observed.tls_alert is None else ""
    if "CERTIFICATE_VERIFY_FAILED" in error or "certificate verify failed" in error:
        return "ca"
    unreachable = ("refused", "Name or service", "No route", "resolve")
    return "url" if any(s in error for s in unreachable) else None


_NOT_TLS = ("WRONG_VERSION_NUMBER", "wrong version number", "RECORD_LAYER_FAILURE", "PACKET_LENGTH")


def _control_failure(control: ProbeResult, mode: str) -> str | None:
    """Why the control makes a run inconclusive, and what to check; None when it was served.

    The control is the bound token with its own certificate, as today's clients send it. A server set up
    right serves it; the one reading that refuses it by design (the hypothetical ``dpop-analogy``, which
    wants its own scheme) is recognised by its exact answer. Any other refusal says the setup is wrong, or
    the target is not the resource — not which reading the server follows.
    """
    observed, status = control.observed, control.observed.status
    if control.accepted or any(p.exact for p in control.predictions):
        return None
    verdict = render.verdict_text(observed_verdict(observed))
    got = f"the control got {verdict}"
    long_got = f"the control (a bound token with its own certificate) got {verdict}"
    if observed.tls_alert is not None:
        return f"{long_got}: check that the server's TLS layer trusts the client certificate's CA"
    if status is None and any(marker in observed.error for marker in _NOT_TLS):
        return (
            "the control got no TLS answer (the port speaks something else, plain HTTP perhaps): "
            "check the URL's port and that the server serves HTTPS there"
        )
    if status is None and "no answer within" in observed.error:
        return (
            f"{got}: check that the URL's port is the server's HTTPS port and that the server is up"
        )
    if status is None:
        return f"{got}: check the URL's port and the server's logs"
    if status in (404, 405, 410):
        return f"{got}: check the URL's path (it must name the protected resource)"
    if 300 <= status < 400:
        return f"{got} (a redirect): probe the URL the server redirects to"
    if status in (401, 403) and mode == "lab-issuer":
        return (
            f"{long_got}: check that the server trusts the lab issuer (its URL and JWKS: "
            "--issuer-port, --seed) and its audience (--audience), and the route asks for no scope "
            "beyond read"
        )
    if status in (401, 403):
        return (
            f"{long_got}: check that your token is valid now, issued for this server (audience, "
            "scope) and bound to the --cert given"
        )
    if status >= 500:
        return f"{got}: the server failed; see its logs"
    return f"{got}, not 2xx: check the URL and the server's configuration"


def probe(
    url: str,
    *,
    issuer: LabIssuer | None = None,
    own: BringYourOwn | None = None,
    ca: _Trusted = None,
    tls_version: TlsVersion | str = TlsVersion.TLS1_3,
    interpretations: Iterable[Interpretation] = (),
    simulator: Simulator | None = None,
    now: dt.datetime | None = None,
    allow_remote: bool = False,
    timeout: float = 5.0,
) -> ProbeReport:
    """Probe the protected resource at ``url`` and score every interpretation against its answers.

    Give exactly one of ``issuer`` (a started :class:`~mtlslab.live.issuer.LabIssuer` the server trusts:
    the full battery) or ``own`` (:class:`BringYourOwn`). ``ca`` is what to trust for the server's
    certificate (default: the system's trust store). ``interpretations`` are scored besides
    :data:`~mtlslab.interpretations.BUILTINS`. ``simulator`` makes the predictions (pass one to reuse its
    caches); ``now`` is when tokens are minted (default: the wall clock). ``timeout`` bounds each request as
    a whole (handshake, write and reads). When the control is not served the run stops there,
    :attr:`ProbeReport.inconclusive`.
    """
    host, _port = check_target(url, allow_remote=allow_remote)
    if (issuer is None) == (own is None):
        raise InputError(
            "mode", "give exactly one of issuer (lab-issuer mode) or own (bring your own)"
        )
    if issuer is not None and not issuer.started:
        raise InputError("issuer", "start the lab issuer first (use it as a context manager)")
    try:
        version = TlsVersion(tls_version)
    except ValueError:
        raise InputError("tls_version", f"{tls_version!r} is not 1.2 or 1.3") from None
    if not timeout > 0:
        raise InputError("timeout", "must be positive")
    chosen = [*BUILTINS.values(), *interpretations]
    if len({i.name for i in chosen}) != len(chosen):
        raise InputError("interpretations", "two interpretations share a name")
    # The further fields the exact score compares: those some reading sends (the rest are the
    # server's).
    named = frozenset(name.lower() for i in chosen for name in i.field_names())
    trust = _trust(ca)
    clock = now or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    mode: Literal["lab-issuer", "bring-your-own"] = "lab-issuer"
    other: Identity | None
    missing: set[Need] = set()
    claims: dict[str, Any] = {}
    if issuer is not None:
        lab = issuer.lab
        bound, other = lab.client, lab.other_client
    else:
        assert own is not None
        lab = simulator.lab if simulator else Lab(seed="mtlslab")
        mode, missing, bound, other = "bring-your-own", own.missing(), own.identity, own.other
        with contextlib.suppress(InputError):
            claims = decode_unverified(own.token)[1]
    sim = simulator or Simulator(lab)
    runnable = [p for p in PROBES if not set(p.needs) & missing]
    skipped = [
        Skipped(probe=p, reason=_NEED_REASONS[next(n for n in p.needs if n in missing)])
        for p in PROBES
        if set(p.needs) & missing
    ]
    contexts = {
        name: client_context(ca=trust, identity=identity, version=version)
        for name, identity in {"bound": bound, "other": other, "none": None}.items()
        if name != "other" or identity is not None
    }
    secrets = (own.token, own.unbound_token or "") if own else ()

    started = time.monotonic()
    results: list[ProbeResult] = []
    for index, item in enumerate(runnable):
        token = _token(item, issuer=issuer, own=own, now=clock)
        presentation = replace(item.scenario.presentation, forged_client_cert=None)
        request = client_request(presentation, token, lab=lab, resource_url=url, now=clock)
        if item.scenario.presentation.forged_client_cert is not None:
            request = request.with_header("Client-Cert", encode_client_cert(bound.der))
        context = contexts[item.certificate]
        try:
            observed = send(request, context=context, timeout=timeout, server_hostname=host)
        except OSError as exc:
            observed = Observed(error=f"connect: {exc}")
        if index == 0 and (field := _fatal(observed)) is not None:
            raise InputError(field, f"cannot probe {url}: {render.visible(observed.error, 300)}")
        scenario = item.scenario.with_(tls_version=version, client_auth=ClientAuth.OPTIONAL)
        seen = _comparable(observed, named)
        predictions = tuple(
            _prediction(sim, scenario, interp, observed, seen, named, claims) for interp in chosen
        )
        sent = _sent(request, item.certificate, (token.value, *secrets))
        results.append(
            ProbeResult(probe=item, sent=sent, observed=observed, predictions=predictions)
        )
        if index == 0 and _control_failure(results[0], mode) is not None:
            break  # inconclusive: the rest would only measure a server that refuses everything
    seconds = time.monotonic() - started
    skipped += [
        Skipped(probe=p, reason="not sent: the control failed (see the headline)")
        for p in runnable[len(results) :]
    ]
    assumptions = [
        f"Predictions assume the server asks for client certificates optionally, at TLS "
        f"{version.value} (each interpretation adapts that)."
    ]
    if own is not None:
        assumptions.append(
            "Bring your own: the token is assumed valid and bound to the given certificate"
            + (", the unbound token valid" if own.unbound_token else "")
            + (", the other certificate accepted by the server's TLS layer" if own.other else "")
            + "."
        )
    return ProbeReport(
        target=url,
        mode=mode,
        tls_version=version,
        results=tuple(results),
        skipped=tuple(skipped),
        scores=tuple(_score(i, results) for i in chosen),
        seconds=seconds,
        issuer=issuer.issuer if issuer is not None else None,
        jwks_url=issuer.jwks_url if issuer is not None else None,
        audience=issuer.audience if issuer is not None else None,
        assumptions=tuple(assumptions),
    )


def _token(
    item: Probe, *, issuer: LabIssuer | None, own: BringYourOwn | None, now: dt.datetime
) -> AccessToken:
    variant = item.scenario.token
    if issuer is not None:
        return issuer.asrv.mint(variant, now=now)
    assert own is not None
    if variant == "none":
        return AccessToken(value="", variant="none", kind="none", description="no token")
    value = own.token if variant == "bound" else own.unbound_token
    assert value is not None
    return AccessToken(
        value=value,
        variant=variant,
        kind="jwt" if value.count(".") == 2 else "opaque",
        description=f"your {variant} token",
    )


def _prediction(
    sim: Simulator,
    scenario: Scenario,
    interp: Interpretation,
    observed: Observed,
    seen: tuple[Any, ...],
    named: frozenset[str],
    claims: dict[str, Any],
) -> Prediction:
    exchange, decision = sim.decide(scenario, interp)  # a decision only after a completed handshake
    outcome = interp.respond(_as_yours(decision, claims), tls_alert=exchange.tls.alert)
    differences = _differences(outcome, seen, named)
    return Prediction(
        interpretation=interp.name,
        outcome=outcome,
        exact=not differences,
        verdict=outcome.verdict == observed_verdict(observed),
        differences=differences,
    )


def _as_yours(decision: Decision | None, claims: dict[str, Any]) -> Decision | None:
    """The lab analogue's decision, carrying the user's own subject and client (bring your own)."""
    if not claims or decision is None or decision.subject is None or decision.finding.rejected:
        return decision
    sub, client_id = claims.get("sub"), claims.get("client_id")
    return replace(
        decision,
        subject=sub if isinstance(sub, str) else None,
        client_id=client_id if isinstance(client_id, str) else None,
    )


def _score(interp: Interpretation, results: Sequence[ProbeResult]) -> Score:
    mine = [(r.probe.id, r.prediction(interp.name)) for r in results]
    return Score(
        interpretation=interp.name,
        title=interp.title,
        verdict=sum(p.verdict for _, p in mine),
        exact=sum(p.exact for _, p in mine),
        probes=len(mine),
        verdict_mismatches=tuple(i for i, p in mine if not p.verdict),
        wire_mismatches=tuple(i for i, p in mine if p.verdict and not p.exact),
    )
