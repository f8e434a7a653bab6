"""Scenarios: a deployment, how the client presents itself, and which token — plus the catalogue.

A :class:`Scenario` is ``Deployment × Presentation × token variant``. Every combination is evaluable, not
only catalogue entries: :func:`realize` turns one into an :class:`Exchange` — what the TLS layer does
(:mod:`mtlslab.tls`), the request the client sends, and the request that reaches the application (after a
TLS-terminating proxy, if any, has stripped and set the RFC 9440 ``Client-Cert`` header).

:data:`CATALOGUE` holds the named scenarios with stable ids and tags; the debate's cases come first.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import difflib
import enum
import re
import string
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from mtlslab.challenge import TOKEN
from mtlslab.errors import InputError, ScenarioError, UnknownScenarioError
from mtlslab.findings import Finding
from mtlslab.pki import LAB_NOW, Identity, Lab
from mtlslab.spec import read_data
from mtlslab.tls import ClientAuth, TlsResult, TlsVersion, handshake
from mtlslab.tokens import LAB_RESOURCE, AccessToken, AuthorizationServer, DPoPKey, dpop_proof

__all__ = [
    "CATALOGUE",
    "LAB_CLIENT_ID",
    "LAB_DPOP_NONCE",
    "CertChoice",
    "ClientAuth",
    "Deployment",
    "Endpoint",
    "Exchange",
    "Placement",
    "Presentation",
    "ProofChoice",
    "Relative",
    "Request",
    "Scenario",
    "Scheme",
    "TlsVersion",
    "Topology",
    "Validation",
    "arrival",
    "arrival_key",
    "client_request",
    "decode_client_cert",
    "deployment_overrides",
    "encode_client_cert",
    "get_scenario",
    "realize",
    "received",
    "redeploy",
    "scenarios_tagged",
    "through_proxy",
]


_T = TypeVar("_T")


def _public_fields(obj: Any) -> tuple[str, ...]:
    """The fields of a dataclass (or of its class)."""
    return tuple(f.name for f in fields(obj))


class _Fields:
    """JSON for a dataclass of enums, flags and text (a deployment, a presentation): fields by name."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (enum values as strings)."""
        return {name: _plain(getattr(self, name)) for name in _public_fields(self)}

    @classmethod
    def from_json(cls: type[_T], data: Mapping[str, Any]) -> _T:
        """The inverse of :meth:`to_json`; refuses unknown fields and values of the wrong type."""
        what = cls.__name__.lower()
        if not isinstance(data, Mapping):
            raise ScenarioError(what, "must be a JSON object")
        unknown = set(data) - set(_public_fields(cls))
        if unknown:
            raise ScenarioError(what, f"unknown field(s) {', '.join(sorted(unknown))}")
        return cls(
            **{name: _field_value(cls, name, v, f"{what}.{name}") for name, v in data.items()}
        )


class Topology(enum.Enum):
    """Whether the client talks TLS to the resource server itself or to a TLS-terminating proxy."""

    DIRECT = "direct"
    PROXY = "proxy"  # a reverse proxy terminates TLS and forwards the certificate as RFC 9440 Client-Cert


class Validation(enum.Enum):
    """How the resource server validates tokens."""

    JWT = "jwt"  # locally: RFC 9068 JWT + the issuer's JWKS
    INTROSPECTION = "introspection"  # by asking the authorization server (RFC 7662)


class Endpoint(enum.Enum):
    """Which endpoint the client talks to: the protected resource, or the token endpoint where the client
    authenticates with its certificate (RFC 8705 §2), registered for one of the two methods."""

    RESOURCE = "resource"
    TOKEN_PKI = "token-tls-client-auth"  # RFC 8705 §2.1: registered subject DN, chain validated
    TOKEN_SELF_SIGNED = "token-self-signed"  # RFC 8705 §2.2: registered certificate, no chain


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment(_Fields):
    """How the resource server (and the TLS in front of it) is set up."""

    client_auth: ClientAuth = ClientAuth.OPTIONAL
    tls_version: TlsVersion = TlsVersion.TLS1_3
    topology: Topology = Topology.DIRECT
    # the origin trusts the proxy's Client-Cert (only with topology=proxy)
    proxy_trusted: bool = True
    # the proxy removes any Client-Cert the client sent (RFC 9440 §2)
    proxy_strips_client_cert: bool = True
    checks_binding: bool = True  # the RS compares cnf with the certificate / DPoP key at all
    requires_binding: bool = False  # the RS refuses tokens without cnf
    validation: Validation = Validation.JWT
    # the RS accepts a dedicated (hypothetical) MTLS scheme for bound tokens
    mtls_scheme: bool = False
    # the RS supports DPoP (RFC 9449) and checks cnf.jkt, whatever checks_binding says
    dpop: bool = True
    endpoint: Endpoint = Endpoint.RESOURCE
    http2: bool = False  # HTTP/2: no certificate can be asked for late (RFC 9113 §9.2.1, §9.2.3)
    query_tokens: bool = True  # the RS accepts a token in the query (RFC 6750 §2.3 leaves it open)
    # a cnf naming no method the RS knows is taken as no cnf at all
    ignores_unknown_cnf: bool = False
    dpop_nonce: bool = False  # the RS asks for its own nonce in DPoP proofs (RFC 9449 §9)
    resource_metadata: bool = False  # challenges point at RFC 9728 protected resource metadata
    origin_validates_chain: bool = False  # behind a proxy: the origin validates Client-Cert itself

    def describe(self) -> str:
        """A one-line description, e.g. ``TLS 1.3, client auth optional, direct, JWT``."""
        parts = [f"TLS {self.tls_version.value}", f"client auth {self.client_auth.value}"]
        if self.topology is Topology.PROXY:
            trust = "trusted" if self.proxy_trusted else "not trusted"
            proxy = f"behind a proxy (Client-Cert {trust})"
            if not self.proxy_strips_client_cert:
                proxy += ", proxy passes client's Client-Cert through"
            parts.append(proxy)
        else:
            parts.append("direct")
        parts.append(
            "introspection" if self.validation is Validation.INTROSPECTION else "local JWT"
        )
        parts += [
            text for name, shown, text in _DESCRIBED_FLAGS if bool(getattr(self, name)) is shown
        ]
        if self.endpoint is not Endpoint.RESOURCE:
            parts.insert(0, f"token endpoint ({self.endpoint.value.removeprefix('token-')})")
        return ", ".join(parts)

    def overridden(self, changes: Mapping[str, Any]) -> Deployment:
        """This deployment with ``changes`` (as :func:`deployment_overrides` reads them) applied."""
        values = dict(changes)
        relative = values.get("client_auth")
        if isinstance(relative, Relative):
            values["client_auth"] = relative.applied_to(self.client_auth)
        if all(getattr(self, name) == value for name, value in values.items()):
            return self
        return replace(self, **values)


#: The flags :meth:`Deployment.describe` names, when they have the value given, in its order.
_DESCRIBED_FLAGS = (
    ("checks_binding", False, "binding NOT checked"),
    ("requires_binding", True, "bound tokens required"),
    ("mtls_scheme", True, "MTLS scheme (hypothetical)"),
    ("dpop", False, "no DPoP"),
    ("http2", True, "HTTP/2"),
    ("dpop_nonce", True, "DPoP nonce required"),
    ("resource_metadata", True, "RFC 9728 metadata"),
    ("ignores_unknown_cnf", True, "unknown cnf ignored"),
    ("origin_validates_chain", True, "origin validates Client-Cert"),
    ("query_tokens", False, "no query tokens"),
)


class CertChoice(enum.Enum):
    """Which certificate the client presents (names of :meth:`mtlslab.pki.Lab.identities`)."""

    NONE = "none"
    CLIENT = "client"  # the certificate bound tokens are bound to
    OTHER = "other-client"  # another valid client certificate
    SELF_SIGNED = "self-signed-client"  # a self_signed_tls_client_auth client
    EXPIRED = "expired-client"
    NOT_YET_VALID = "not-yet-valid-client"
    UNTRUSTED_CA = "untrusted-ca-client"
    SERVER_AUTH_ONLY = "server-auth-only-client"
    PKI_SELF_SIGNED = "pki-self-signed-client"
    # the client holds its certificate, but resumes a TLS session that was set up without one
    RESUMED_WITHOUT = "resumed-without-certificate"

    def identity(self, lab: Lab) -> Identity | None:
        """The lab identity, or ``None`` for no certificate."""
        if self is CertChoice.RESUMED_WITHOUT:
            return lab.client
        return None if self is CertChoice.NONE else lab.identity(self.value)


class Scheme(enum.Enum):
    """The Authorization scheme the client uses."""

    BEARER = "Bearer"
    BEARER_LOWER = "bearer"  # auth-schemes are case-insensitive (RFC 9110 §11.1)
    DPOP = "DPoP"
    MTLS = "MTLS"  # hypothetical, unregistered: what a dedicated scheme for RFC 8705 tokens could look like
    NONE = "none"  # the bare token, with no scheme at all


class Placement(enum.Enum):
    """Where the token travels (RFC 6750 §2.1 header, §2.2 form body, §2.3 query)."""

    HEADER = "header"
    FORM = "form"
    QUERY = "query"
    HEADER_AND_QUERY = "header+query"
    HEADER_AND_FORM = "header+form"


class ProofChoice(enum.Enum):
    """The DPoP proof sent along (RFC 9449 §4)."""

    AUTO = "auto"  # a valid proof when the scheme is DPoP, none otherwise
    NONE = "none"
    VALID = "valid"
    WITH_NONCE = "with-nonce"  # valid, carrying the resource server's nonce (RFC 9449 §9)
    WRONG_ATH = "wrong-ath"  # a proof made for another access token
    WRONG_HTM = "wrong-htm"
    WRONG_HTU = "wrong-htu"
    BAD_SIGNATURE = "bad-signature"
    STALE = "stale"  # iat an hour old
    OTHER_KEY = "other-key"  # valid, but signed with a key the token is not bound to
    TWO_PROOFS = "two-proofs"  # two DPoP header fields


@dataclass(frozen=True, slots=True, kw_only=True)
class Presentation(_Fields):
    """What the client sends: certificate, scheme, token placement, and extras."""

    certificate: CertChoice = CertChoice.CLIENT
    scheme: Scheme = Scheme.BEARER
    placement: Placement = Placement.HEADER
    forged_client_cert: CertChoice | None = None  # a Client-Cert header the client adds itself
    dpop_proof: ProofChoice = ProofChoice.AUTO
    # An exact Authorization value instead of scheme + token. ``$token`` stands for the token and
    # ``$client_cert`` for the lab client's certificate as an RFC 9440 value; a CR LF (or LF) inside ends
    # the field on the wire, so what follows is sent as further header fields (see client_request).
    raw_authorization: str | None = None
    # the client offers TLS 1.3 post-handshake authentication (RFC 8446 §4.6.2), so a server may ask late
    post_handshake_auth: bool = True

    def describe(self) -> str:
        """A one-line description."""
        cert = (
            "no certificate"
            if self.certificate is CertChoice.NONE
            else f"certificate {self.certificate.value}"
        )
        if self.raw_authorization is not None:
            how = f"Authorization: {self.raw_authorization!r}"
        else:
            how = f"{self.scheme.value} in {self.placement.value}"
        parts = [cert, how]
        if self.forged_client_cert is not None:
            parts.append(f"forged Client-Cert ({self.forged_client_cert.value})")
        if self.dpop_proof is not ProofChoice.AUTO:
            parts.append(f"DPoP proof {self.dpop_proof.value}")
        if not self.post_handshake_auth:
            parts.append("no post-handshake auth offered")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One situation a resource server can be in, with a stable id."""

    id: str
    title: str
    deployment: Deployment = field(default_factory=Deployment)
    presentation: Presentation = field(default_factory=Presentation)
    token: str = "bound"
    tags: tuple[str, ...] = ()
    description: str = ""
    # the finding under the RFC baseline, documented with the scenario
    expect: Finding | None = None

    def describe(self) -> str:
        """Deployment, presentation and token on one line."""
        return f"{self.deployment.describe()}; {self.presentation.describe()}; token {self.token}"

    def to_json(self) -> dict[str, Any]:
        """``id``, ``title``, ``tags``, ``description`` and the three dimensions."""
        return {
            "id": self.id,
            "title": self.title,
            "tags": list(self.tags),
            "description": self.description,
            "deployment": self.deployment.to_json(),
            "presentation": self.presentation.to_json(),
            "token": self.token,
            "expect": self.expect.value if self.expect else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Scenario:
        """The inverse of :meth:`to_json`; refuses unknown fields."""
        unknown = set(data) - set(_public_fields(cls))
        if unknown:
            raise ScenarioError("scenario", f"unknown field(s) {', '.join(sorted(unknown))}")
        try:
            return cls(
                id=str(data["id"]),
                title=str(data.get("title", data["id"])),
                tags=tuple(data.get("tags", ())),
                description=str(data.get("description", "")),
                deployment=Deployment.from_json(data.get("deployment", {})),
                presentation=Presentation.from_json(data.get("presentation", {})),
                token=str(data.get("token", "bound")),
                expect=Finding(data["expect"]) if data.get("expect") else None,
            )
        except ScenarioError:
            raise  # already names the field (deployment.client_auth, presentation, ...)
        except (KeyError, ValueError) as exc:
            raise ScenarioError("scenario", f"cannot load: {exc}") from None

    def with_(self, **changes: Any) -> Scenario:
        """A variant: ``deployment=...``, ``presentation=...`` or any of their fields by name."""
        dep = {k: v for k, v in changes.items() if k in _public_fields(Deployment)}
        pres = {k: v for k, v in changes.items() if k in _public_fields(Presentation)}
        own = {k: v for k, v in changes.items() if k not in dep and k not in pres}
        scenario = replace(self, **own)
        if dep:
            scenario = replace(scenario, deployment=replace(scenario.deployment, **dep))
        if pres:
            scenario = replace(scenario, presentation=replace(scenario.presentation, **pres))
        return scenario


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


#: The enumerated fields of deployments and presentations, by name.
_ENUMS: dict[str, type[enum.Enum]] = {
    "endpoint": Endpoint,
    "client_auth": ClientAuth,
    "tls_version": TlsVersion,
    "topology": Topology,
    "validation": Validation,
    "certificate": CertChoice,
    "scheme": Scheme,
    "placement": Placement,
    "forged_client_cert": CertChoice,
    "dpop_proof": ProofChoice,
}


def _field_value(cls: Any, name: str, value: Any, where: str) -> Any:
    """``value`` (from JSON) for field ``name`` of ``cls``: an enum by its value, a flag as a boolean, text
    as a string; :class:`ScenarioError` naming ``where`` otherwise."""
    default = next(f.default for f in fields(cls) if f.name == name)
    kind = _ENUMS.get(name)
    if kind is not None:
        if value is None and default is None:
            return None
        try:
            return kind(value)
        except ValueError:
            choices = ", ".join(m.value for m in kind)
            raise ScenarioError(where, f"{value!r} is not one of {choices}") from None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ScenarioError(where, f"{value!r} is not true or false")
        return value
    if not isinstance(value, str) and not (value is None and default is None):
        raise ScenarioError(where, f"{value!r} is not a string")
    return value


class Relative(enum.Enum):
    """A deployment value given relative to the deployment it changes (an interpretation's override)."""

    #: ``client_auth``: refuse a handshake without a client certificate, validating one as deployed —
    #: ``required`` where the deployment validates, ``required-no-ca`` where it does not.
    REQUIRED_AS_DEPLOYED = "required-as-deployed"
    #: ``client_auth``: ask as deployed but accept any certificate without validating its chain, as RFC 8705
    #: §6.2 lets a resource server do — ``optional-no-ca`` or ``required-no-ca``.
    NO_CA_AS_DEPLOYED = "no-ca-as-deployed"

    def applied_to(self, client_auth: ClientAuth) -> ClientAuth:
        """The client authentication this value makes of ``client_auth``."""
        if self is Relative.REQUIRED_AS_DEPLOYED:
            keeps_ca = client_auth.validates or client_auth is ClientAuth.NONE
            return ClientAuth.REQUIRED if keeps_ca else ClientAuth.REQUIRED_NO_CA
        if client_auth.requires:
            return ClientAuth.REQUIRED_NO_CA
        if client_auth is ClientAuth.NONE or client_auth.late:  # asks for nothing, or late: as is
            return client_auth
        return ClientAuth.OPTIONAL_NO_CA


def deployment_overrides(data: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Deployment fields to override, read from JSON (or given as values): each a :class:`Deployment` field
    with a value of its type, or for ``client_auth`` a :class:`Relative` value; sorted by name.
    :class:`ScenarioError` names a field that is unknown or of the wrong type."""
    if not isinstance(data, Mapping):
        raise ScenarioError("deployment", "must be an object of deployment field → value")
    known = _public_fields(Deployment)
    out: dict[str, Any] = {}
    for name, value in data.items():
        if name not in known:
            raise ScenarioError("deployment", f"unknown field {name!r}")
        if name == "client_auth" and _plain(value) in {r.value for r in Relative}:
            out[name] = Relative(_plain(value))
        else:
            out[name] = _field_value(Deployment, name, _plain(value), f"deployment.{name}")
    return tuple(sorted(out.items()))


#: The nonce the lab resource server asks for in DPoP proofs when its deployment says so (RFC 9449 §9). A
#: real server makes fresh ones; the lab's is fixed so that simulation and wire agree.
LAB_DPOP_NONCE = "mtlslab-dpop-nonce-1"
#: The client_id the lab client is registered under at the lab token endpoint (RFC 8705 §2).
LAB_CLIENT_ID = "lab-client"


def encode_client_cert(der: bytes) -> str:
    """RFC 9440 §2.2: the DER certificate as a Structured-Field Byte Sequence, ``:base64:``."""
    return f":{base64.b64encode(der).decode('ascii')}:"


def decode_client_cert(value: str) -> bytes:
    """The DER inside an RFC 9440 ``Client-Cert`` value; :class:`ScenarioError` when it is not a byte sequence."""
    text = value.strip(" \t")
    end = text.find(":", 1)
    if not text.startswith(":") or end < 0:
        raise ScenarioError(
            "Client-Cert", "not a Structured-Field Byte Sequence (RFC 9440 §2.2: ':base64:')"
        )
    # RFC 8941 §3.3.5: an Item may carry parameters after the value (";name=value"); they are ignored.
    rest = text[end + 1 :].lstrip(" \t")
    if rest and not rest.startswith(";"):
        raise ScenarioError("Client-Cert", "unexpected characters after the byte sequence")
    body = text[1:end]
    # RFC 8941 §4.2.7: parsers SHOULD NOT fail when "=" padding is missing.
    body += "=" * (-len(body) % 4)
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ScenarioError("Client-Cert", "the byte sequence is not valid base64") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """An HTTP request as the resource server's application sees it (or as the client sends it)."""

    method: str = "GET"
    url: str = LAB_RESOURCE  # absolute URL, query included (DPoP htu is checked against it)
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    client_cert: bytes | None = None  # DER the TLS layer of this connection handed over
    # the intermediates the client sent with the certificate (DER, in order)
    client_chain: tuple[bytes, ...] = ()
    from_proxy: bool = False  # arrived on the hop from the TLS-terminating proxy

    @property
    def target(self) -> str:
        """Path and query, as on the request line."""
        parts = urllib.parse.urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    @property
    def host(self) -> str:
        """The authority, as in the Host header."""
        return urllib.parse.urlsplit(self.url).netloc

    def header_values(self, name: str) -> list[str]:
        """All values of header ``name`` (case-insensitive)."""
        lowered = name.lower()
        return [v for k, v in self.headers if k.lower() == lowered]

    def without(self, name: str) -> Request:
        """This request with every ``name`` header removed."""
        lowered = name.lower()
        return replace(self, headers=tuple((k, v) for k, v in self.headers if k.lower() != lowered))

    def with_header(self, name: str, value: str) -> Request:
        """This request with one more header."""
        return replace(self, headers=(*self.headers, (name, value)))

    def http_text(self) -> str:
        """The request as it would appear on the wire (HTTP/1.1)."""
        lines = [f"{self.method} {self.target} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        body = self.body.decode("latin-1")
        if self.body:
            lines.append(f"Content-Length: {len(self.body)}")
        return "\r\n".join(lines) + "\r\n\r\n" + body


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """A realised scenario: the certificate and token used, the TLS result, and both views of the request."""

    scenario: Scenario
    identity: Identity | None
    token: AccessToken
    tls: TlsResult
    client_request: Request  # what the client sends
    request: Request | None  # what reaches the application; None when TLS aborted

    @property
    def via_proxy(self) -> bool:
        """Whether a TLS-terminating proxy sits between client and resource server."""
        return self.scenario.deployment.topology is Topology.PROXY


def _authorization(scheme: Scheme, token: str) -> str:
    return token if scheme is Scheme.NONE else f"{scheme.value} {token}"


def _proof(
    choice: ProofChoice, *, lab: Lab, token: AccessToken, method: str, url: str, now: Any
) -> list[str]:
    """The DPoP fields for ``choice`` (RFC 9449 §4): the proof the client would make, or one broken."""
    if choice is ProofChoice.NONE:
        return []
    made: dict[str, Any] = {
        "htm": method,
        "htu": url.split("?", 1)[0],
        "access_token": token.value or None,
        "iat": now,
    }
    broken: dict[ProofChoice, dict[str, Any]] = {
        ProofChoice.WITH_NONCE: {"claim_overrides": {"nonce": LAB_DPOP_NONCE}},
        ProofChoice.WRONG_ATH: {"access_token": "another-access-token"},
        ProofChoice.WRONG_HTM: {"htm": "DELETE" if method != "DELETE" else "GET"},
        ProofChoice.WRONG_HTU: {"htu": "https://elsewhere.mtlslab.test/resource"},
        ProofChoice.STALE: {"iat": now - dt.timedelta(hours=1)},
    }
    key = DPoPKey.for_lab(lab, "attacker" if choice is ProofChoice.OTHER_KEY else "client")
    proof = dpop_proof(key, **{**made, **broken.get(choice, {})})
    if choice is ProofChoice.BAD_SIGNATURE:  # the client's proof, the attacker's signature
        other = dpop_proof(DPoPKey.for_lab(lab, "attacker"), **made)
        return [proof.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]]
    return [proof, proof] if choice is ProofChoice.TWO_PROOFS else [proof]


_FIELD_LINE = re.compile(rf"({TOKEN.pattern}):[ \t]*(.*?)[ \t]*")  # RFC 9110 §5.1, §5.5
_LINE_BREAK = re.compile(r"\r?\n")


def _raw_fields(raw: str, *, token: str, lab: Lab) -> list[tuple[str, str]]:
    """``raw_authorization`` as the header fields it makes on the wire, ``$token`` and ``$client_cert``
    filled in. A line break ends a field (RFC 9112 §2.2: CR LF, or a bare LF a recipient may accept), so a
    value smuggling ``CR LF Client-Cert: …`` is two fields; each further line must be ``name: value``, as a
    server would otherwise refuse the request itself."""
    text = string.Template(raw).safe_substitute(
        token=token, client_cert=encode_client_cert(lab.client.der)
    )
    first, *more = _LINE_BREAK.split(text)
    fields = [("Authorization", first)]
    for number, line in enumerate(more, start=2):
        match = _FIELD_LINE.fullmatch(line)
        if match is None:
            raise ScenarioError(
                "presentation.raw_authorization",
                f"line {number} ({line[:40]!r}) after a line break is not a 'name: value' header field; on "
                "the wire the request would be malformed, which scenarios do not model",
            )
        fields.append((match.group(1), match.group(2)))
    return fields


#: The characters form encoding leaves as they are (RFC 3986 §2.3 unreserved; what ``quote_plus`` keeps).
_UNRESERVED = (string.ascii_letters + string.digits + "_.-~").encode("ascii")


def _access_token_bytes(value: str) -> bytes:
    """``access_token=value``, form-urlencoded, as the ASCII bytes of a form body (RFC 6750 §2.2). A value made
    only of unreserved characters — every base64url token — encodes to itself: its bytes, made once for the
    check, are the field's (a megabyte token is copied twice, not three times)."""
    if value.isascii():
        raw = value.encode("ascii")
        if not raw.translate(None, _UNRESERVED):
            return b"access_token=" + raw
    return urllib.parse.urlencode({"access_token": value}).encode("ascii")


def client_request(
    presentation: Presentation,
    token: AccessToken,
    *,
    lab: Lab,
    resource_url: str = LAB_RESOURCE,
    now: Any = LAB_NOW,
    endpoint: Endpoint = Endpoint.RESOURCE,
) -> Request:
    """The HTTP request the client sends for ``presentation`` and ``token`` (a ``raw_authorization`` with
    line breaks makes several fields, as on the wire); at a token endpoint, the lab client's client
    credentials grant, authenticated by its certificate alone (RFC 8705 §2)."""
    if endpoint is not Endpoint.RESOURCE:
        parts = urllib.parse.urlsplit(resource_url)
        url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/token", "", ""))
        body = urllib.parse.urlencode(
            {"grant_type": "client_credentials", "client_id": LAB_CLIENT_ID}
        ).encode("ascii")
        form = (("Content-Type", "application/x-www-form-urlencoded"),)
        return Request(method="POST", url=url, headers=form, body=body)
    placement = presentation.placement
    in_form = placement in (Placement.FORM, Placement.HEADER_AND_FORM)
    method = "POST" if in_form else "GET"
    url = resource_url
    headers: list[tuple[str, str]] = []
    body = b""
    value = token.value
    if presentation.raw_authorization is not None:
        headers += _raw_fields(presentation.raw_authorization, token=value, lab=lab)
    elif token.kind != "none" and placement not in (Placement.FORM, Placement.QUERY):
        headers.append(("Authorization", _authorization(presentation.scheme, value)))
    if token.kind != "none" and placement in (Placement.QUERY, Placement.HEADER_AND_QUERY):
        url = f"{url}{'&' if '?' in url else '?'}{_access_token_bytes(value).decode('ascii')}"
    if token.kind != "none" and in_form:
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        body = _access_token_bytes(value)
    proof_choice = presentation.dpop_proof
    if proof_choice is ProofChoice.AUTO:
        proof_choice = ProofChoice.VALID if presentation.scheme is Scheme.DPOP else ProofChoice.NONE
    for proof in _proof(proof_choice, lab=lab, token=token, method=method, url=url, now=now):
        headers.append(("DPoP", proof))
    if presentation.forged_client_cert is not None:
        forged = presentation.forged_client_cert.identity(lab)
        if forged is not None:
            headers.append(("Client-Cert", encode_client_cert(forged.der)))
    return Request(method=method, url=url, headers=tuple(headers), body=body)


def through_proxy(request: Request, tls: TlsResult, *, strips: bool = True) -> Request:
    """What a TLS-terminating proxy forwards to the origin (RFC 9440 §2): any ``Client-Cert`` and
    ``Client-Cert-Chain`` the client sent removed (unless the proxy is broken), the handshake's certificate
    added when there was one, and the intermediates the client sent with it (RFC 9440 §2.3)."""
    forwarded = request.without("Client-Cert").without("Client-Cert-Chain") if strips else request
    if tls.client_cert is not None:
        forwarded = forwarded.with_header("Client-Cert", encode_client_cert(tls.client_cert))
        if tls.client_chain:
            chain = ", ".join(encode_client_cert(der) for der in tls.client_chain)
            forwarded = forwarded.with_header("Client-Cert-Chain", chain)
    return replace(forwarded, client_cert=None, client_chain=(), from_proxy=True)


def received(sent: Request, tls: TlsResult, deployment: Deployment) -> Request | None:
    """What reaches the resource server's application when the client sends ``sent``: nothing after a failed
    handshake; on a direct connection the request with the handshake's certificate; behind a proxy what
    the proxy forwards (:func:`through_proxy`)."""
    if not tls.completed:
        return None
    if deployment.topology is Topology.PROXY:
        return through_proxy(sent, tls, strips=deployment.proxy_strips_client_cert)
    return replace(sent, client_cert=tls.client_cert, client_chain=tls.client_chain)


def realize(
    scenario: Scenario,
    lab: Lab,
    asrv: AuthorizationServer,
    *,
    resource_url: str = LAB_RESOURCE,
    now: Any = LAB_NOW,
) -> Exchange:
    """Turn ``scenario`` into concrete material: certificate, token, TLS result, requests."""
    identity = scenario.presentation.certificate.identity(lab)
    try:
        token = asrv.mint(scenario.token, now=now)
    except InputError as exc:  # an unknown variant; a failing recipe is a bug, and says so
        raise ScenarioError("token", str(exc)) from None
    sent = client_request(
        scenario.presentation,
        token,
        lab=lab,
        resource_url=resource_url,
        now=now,
        endpoint=scenario.deployment.endpoint,
    )
    tls = _handshake(scenario.deployment, scenario.presentation, identity, lab=lab, now=now)
    return Exchange(
        scenario=scenario,
        identity=identity,
        token=token,
        tls=tls,
        client_request=sent,
        request=received(sent, tls, scenario.deployment),
    )


def redeploy(
    exchange: Exchange, deployment: Deployment, *, lab: Lab, now: Any = LAB_NOW
) -> Exchange:
    """``exchange`` at a server deployed as ``deployment``: the same certificate, token and request sent;
    the handshake and what reaches the application as :func:`arrival` says (``exchange`` itself when
    nothing changes)."""
    if deployment == exchange.scenario.deployment:
        return exchange
    tls, request = arrival(exchange, deployment, lab=lab, now=now)
    scenario = replace(exchange.scenario, deployment=deployment)
    return replace(exchange, scenario=scenario, tls=tls, request=request)


def arrival(
    exchange: Exchange, deployment: Deployment, *, lab: Lab, now: Any = LAB_NOW
) -> tuple[TlsResult, Request | None]:
    """What the TLS layer does and what reaches the application when ``exchange``'s request is sent to a
    server deployed as ``deployment``: the handshake made anew when its own arguments (how the server asks for
    a certificate, the TLS version, HTTP/2) change, the request received anew when the handshake or the path
    through a proxy changes."""
    before = exchange.scenario.deployment
    if deployment.endpoint is not before.endpoint:
        raise ScenarioError(
            "deployment.endpoint", "another endpoint is another request: realize it"
        )
    handshake_now, path = arrival_key(deployment)
    if handshake_now == arrival_key(before)[0]:
        tls = exchange.tls
    else:
        tls = _handshake(
            deployment, exchange.scenario.presentation, exchange.identity, lab=lab, now=now
        )
    if tls is exchange.tls and path == arrival_key(before)[1]:
        return tls, exchange.request
    return tls, received(exchange.client_request, tls, deployment)


def arrival_key(deployment: Deployment) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """The deployment's part in :func:`arrival`: the handshake's arguments (how the server asks for a
    certificate, the TLS version, HTTP/2) and the path a request takes to the application. Two deployments
    with the same key receive the same exchange alike."""
    return (
        (deployment.client_auth, deployment.tls_version, deployment.http2),
        (deployment.topology, deployment.proxy_strips_client_cert),
    )


def _handshake(
    deployment: Deployment,
    presentation: Presentation,
    identity: Identity | None,
    *,
    lab: Lab,
    now: Any,
) -> TlsResult:
    return handshake(
        client_auth=deployment.client_auth,
        version=deployment.tls_version,
        presented=identity,
        roots=(lab.ca.certificate,),
        at=now,
        resumed_without_certificate=presentation.certificate is CertChoice.RESUMED_WITHOUT,
        post_handshake_auth=presentation.post_handshake_auth,
        http2=deployment.http2,
    )


#: The named scenarios, debate first (``mtlslab/data/catalogue.json``, loaded by :meth:`Scenario.from_json`).
#: Ids are stable: they appear in exports and mails.
CATALOGUE: tuple[Scenario, ...] = tuple(Scenario.from_json(e) for e in read_data("catalogue.json"))


def get_scenario(scenario_id: str) -> Scenario:
    """The catalogue scenario ``scenario_id``; an unknown id raises with the nearest ids as suggestions."""
    for scenario in CATALOGUE:
        if scenario.id == scenario_id:
            return scenario
    ids = [s.id for s in CATALOGUE]
    near = difflib.get_close_matches(scenario_id, ids, n=3, cutoff=0.5)
    if not near:
        near = [i for i in ids if scenario_id and scenario_id in i][:3]
    raise UnknownScenarioError(scenario_id, tuple(near))


def scenarios_tagged(*tags: str) -> tuple[Scenario, ...]:
    """Catalogue scenarios carrying every one of ``tags``."""
    return tuple(s for s in CATALOGUE if all(t in s.tags for t in tags))
