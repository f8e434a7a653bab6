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
import functools
import re
import string
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from mtlslab.errors import InputError, ScenarioError, UnknownScenarioError
from mtlslab.findings import Finding
from mtlslab.pki import LAB_NOW, Identity, Lab
from mtlslab.tls import ClientAuth, TlsResult, TlsVersion, handshake
from mtlslab.tokens import LAB_RESOURCE, AccessToken, AuthorizationServer, DPoPKey, dpop_proof

__all__ = [
    "ARGUMENT_LIMIT_BYTES",
    "CATALOGUE",
    "CertChoice",
    "ClientAuth",
    "Deployment",
    "Exchange",
    "Placement",
    "Presentation",
    "ProofChoice",
    "Request",
    "Scenario",
    "Scheme",
    "TlsVersion",
    "Topology",
    "Validation",
    "client_request",
    "curl_argv",
    "curl_shown",
    "decode_client_cert",
    "encode_client_cert",
    "get_scenario",
    "realize",
    "received",
    "scenarios_tagged",
    "shorten",
    "through_proxy",
    "too_long_for_an_argument",
]


def _public_fields(obj: Any) -> tuple[str, ...]:
    """The fields a caller sets (not the cached hash)."""
    return _fields_of(obj if isinstance(obj, type) else type(obj))


@functools.cache
def _fields_of(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.init)


class _CachedHash:
    """Frozen value objects used as cache keys hash once (their hash is asked for on every lookup)."""

    __slots__ = ()

    def _init_hash(self) -> None:
        values = tuple(getattr(self, name) for name in _public_fields(self))
        object.__setattr__(self, "_hash", hash(values))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined, no-any-return]


class Topology(enum.Enum):
    """Whether the client talks TLS to the resource server itself or to a TLS-terminating proxy."""

    __hash__ = object.__hash__  # members are singletons; the C-level identity hash is much faster

    DIRECT = "direct"
    PROXY = "proxy"  # a reverse proxy terminates TLS and forwards the certificate as RFC 9440 Client-Cert


class Validation(enum.Enum):
    """How the resource server validates tokens."""

    __hash__ = object.__hash__  # members are singletons; the C-level identity hash is much faster

    JWT = "jwt"  # locally: RFC 9068 JWT + the issuer's JWKS
    INTROSPECTION = "introspection"  # by asking the authorization server (RFC 7662)


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment(_CachedHash):
    """How the resource server (and the TLS in front of it) is set up."""

    client_auth: ClientAuth = ClientAuth.OPTIONAL
    tls_version: TlsVersion = TlsVersion.TLS1_3
    topology: Topology = Topology.DIRECT
    proxy_trusted: bool = (
        True  # the origin trusts the proxy's Client-Cert (only with topology=proxy)
    )
    proxy_strips_client_cert: bool = (
        True  # the proxy removes any Client-Cert the client sent (RFC 9440 §2)
    )
    checks_binding: bool = True  # the RS compares cnf with the certificate / DPoP key at all
    requires_binding: bool = False  # the RS refuses tokens without cnf
    validation: Validation = Validation.JWT
    mtls_scheme: bool = (
        False  # the RS accepts a dedicated (hypothetical) MTLS scheme for bound tokens
    )
    dpop: bool = True  # the RS supports DPoP (RFC 9449)

    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._init_hash()

    __hash__ = _CachedHash.__hash__  # dataclass would otherwise generate a field-by-field hash

    def describe(self) -> str:
        """A one-line description, e.g. ``TLS 1.3, client auth optional, direct, JWT``."""
        parts = [f"TLS {self.tls_version.value}", f"client auth {self.client_auth.value}"]
        if self.topology is Topology.PROXY:
            proxy = (
                "behind a proxy (Client-Cert "
                + ("trusted" if self.proxy_trusted else "not trusted")
                + ")"
            )
            if not self.proxy_strips_client_cert:
                proxy += ", proxy passes client's Client-Cert through"
            parts.append(proxy)
        else:
            parts.append("direct")
        parts.append(
            "introspection" if self.validation is Validation.INTROSPECTION else "local JWT"
        )
        if not self.checks_binding:
            parts.append("binding NOT checked")
        if self.requires_binding:
            parts.append("bound tokens required")
        if self.mtls_scheme:
            parts.append("MTLS scheme (hypothetical)")
        if not self.dpop:
            parts.append("no DPoP")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (enum values as strings)."""
        return {name: _plain(getattr(self, name)) for name in _public_fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Deployment:
        """The inverse of :meth:`to_json`; refuses unknown fields."""
        found: Deployment = _from_json(cls, data, "deployment")
        return found


class CertChoice(enum.Enum):
    """Which certificate the client presents (names of :meth:`mtlslab.pki.Lab.identities`)."""

    __hash__ = object.__hash__  # members are singletons; the C-level identity hash is much faster

    NONE = "none"
    CLIENT = "client"  # the certificate bound tokens are bound to
    OTHER = "other-client"  # another valid client certificate
    SELF_SIGNED = "self-signed-client"  # a self_signed_tls_client_auth client
    EXPIRED = "expired-client"
    NOT_YET_VALID = "not-yet-valid-client"
    UNTRUSTED_CA = "untrusted-ca-client"
    SERVER_AUTH_ONLY = "server-auth-only-client"
    PKI_SELF_SIGNED = "pki-self-signed-client"

    def identity(self, lab: Lab) -> Identity | None:
        """The lab identity, or ``None`` for no certificate."""
        return None if self is CertChoice.NONE else lab.identity(self.value)


class Scheme(enum.Enum):
    """The Authorization scheme the client uses."""

    __hash__ = object.__hash__  # members are singletons; the C-level identity hash is much faster

    BEARER = "Bearer"
    BEARER_LOWER = "bearer"  # auth-schemes are case-insensitive (RFC 9110 §11.1)
    DPOP = "DPoP"
    MTLS = "MTLS"  # hypothetical, unregistered: what a dedicated scheme for RFC 8705 tokens could look like
    NONE = "none"  # the bare token, with no scheme at all


class Placement(enum.Enum):
    """Where the token travels (RFC 6750 §2.1 header, §2.2 form body, §2.3 query)."""

    __hash__ = object.__hash__  # members are singletons; the C-level identity hash is much faster

    HEADER = "header"
    FORM = "form"
    QUERY = "query"
    HEADER_AND_QUERY = "header+query"
    HEADER_AND_FORM = "header+form"


class ProofChoice(enum.Enum):
    """The DPoP proof sent along (RFC 9449 §4)."""

    __hash__ = object.__hash__  # members are singletons; the C-level identity hash is much faster

    AUTO = "auto"  # a valid proof when the scheme is DPoP, none otherwise
    NONE = "none"
    VALID = "valid"
    WRONG_ATH = "wrong-ath"  # a proof made for another access token
    WRONG_HTM = "wrong-htm"
    WRONG_HTU = "wrong-htu"
    BAD_SIGNATURE = "bad-signature"
    STALE = "stale"  # iat an hour old
    OTHER_KEY = "other-key"  # valid, but signed with a key the token is not bound to
    TWO_PROOFS = "two-proofs"  # two DPoP header fields


@dataclass(frozen=True, slots=True, kw_only=True)
class Presentation(_CachedHash):
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

    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._init_hash()

    __hash__ = _CachedHash.__hash__  # dataclass would otherwise generate a field-by-field hash

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
        if self.dpop_proof not in (ProofChoice.AUTO,):
            parts.append(f"DPoP proof {self.dpop_proof.value}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {name: _plain(getattr(self, name)) for name in _public_fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Presentation:
        """The inverse of :meth:`to_json`."""
        found: Presentation = _from_json(cls, data, "presentation")
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario(_CachedHash):
    """One situation a resource server can be in, with a stable id."""

    id: str
    title: str
    deployment: Deployment = field(default_factory=Deployment)
    presentation: Presentation = field(default_factory=Presentation)
    token: str = "bound"
    tags: tuple[str, ...] = ()
    description: str = ""
    expect: Finding | None = (
        None  # the finding under the RFC baseline, documented with the scenario
    )

    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._init_hash()

    __hash__ = _CachedHash.__hash__  # dataclass would otherwise generate a field-by-field hash

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


def _from_json(cls: Any, data: Mapping[str, Any], what: str) -> Any:
    known = _public_fields(cls)
    unknown = set(data) - set(known)
    if unknown:
        raise ScenarioError(what, f"unknown field(s) {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    hints = {
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
    for name, value in data.items():
        kind = hints.get(name)
        try:
            values[name] = kind(value) if kind is not None and value is not None else value
        except ValueError:
            choices = ", ".join(m.value for m in kind) if kind else ""
            raise ScenarioError(f"{what}.{name}", f"{value!r} is not one of {choices}") from None
    return cls(**values)


# --------------------------------------------------------------------------------------------------
# RFC 9440 Client-Cert.


def encode_client_cert(der: bytes) -> str:
    """RFC 9440 §2.2: the DER certificate as a Structured-Field Byte Sequence, ``:base64:``."""
    return f":{base64.b64encode(der).decode('ascii')}:"


def decode_client_cert(value: str) -> bytes:
    """The DER inside an RFC 9440 ``Client-Cert`` value; :class:`ScenarioError` when it is not a byte sequence."""
    text = value.strip(" \t")
    # RFC 8941 §3.3.5: an Item may carry parameters after the value (";name=value"); they are ignored.
    if text.startswith(":") and ":" in text[1:]:
        end = text.index(":", 1)
        rest = text[end + 1 :]
        if rest.strip(" \t") and not rest.lstrip(" \t").startswith(";"):
            raise ScenarioError("Client-Cert", "unexpected characters after the byte sequence")
        text = text[: end + 1]
    if len(text) < 2 or text[0] != ":" or text[-1] != ":":
        raise ScenarioError(
            "Client-Cert", "not a Structured-Field Byte Sequence (RFC 9440 §2.2: ':base64:')"
        )
    body = text[1:-1]
    # RFC 8941 §4.2.7: parsers SHOULD NOT fail when "=" padding is missing.
    body += "=" * (-len(body) % 4)
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ScenarioError("Client-Cert", "the byte sequence is not valid base64") from None


# --------------------------------------------------------------------------------------------------
# Requests and realisation.


@dataclass(frozen=True, slots=True, kw_only=True)
class Request(_CachedHash):
    """An HTTP request as the resource server's application sees it (or as the client sends it)."""

    method: str = "GET"
    url: str = LAB_RESOURCE  # absolute URL, query included (DPoP htu is checked against it)
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    client_cert: bytes | None = None  # DER the TLS layer of this connection handed over
    from_proxy: bool = False  # arrived on the hop from the TLS-terminating proxy

    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._init_hash()

    __hash__ = _CachedHash.__hash__  # dataclass would otherwise generate a field-by-field hash

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
    key = DPoPKey.for_lab(lab)
    htu = url.split("?", 1)[0]
    common: dict[str, Any] = {
        "htm": method,
        "htu": htu,
        "access_token": token.value or None,
        "iat": now,
    }
    if choice in (ProofChoice.NONE,):
        return []
    if choice is ProofChoice.VALID or choice is ProofChoice.AUTO:
        return [dpop_proof(key, **common)]
    if choice is ProofChoice.WRONG_ATH:
        return [dpop_proof(key, **{**common, "access_token": "another-access-token"})]
    if choice is ProofChoice.WRONG_HTM:
        return [dpop_proof(key, **{**common, "htm": "DELETE" if method != "DELETE" else "GET"})]
    if choice is ProofChoice.WRONG_HTU:
        return [dpop_proof(key, **{**common, "htu": "https://elsewhere.mtlslab.test/resource"})]
    if choice is ProofChoice.STALE:
        return [dpop_proof(key, **{**common, "iat": now - dt.timedelta(hours=1)})]
    if choice is ProofChoice.OTHER_KEY:
        return [dpop_proof(DPoPKey.for_lab(lab, "attacker"), **common)]
    if choice is ProofChoice.BAD_SIGNATURE:
        good = dpop_proof(key, **common)
        other = dpop_proof(DPoPKey.for_lab(lab, "attacker"), **common)
        return [good.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]]
    if choice is ProofChoice.TWO_PROOFS:
        proof = dpop_proof(key, **common)
        return [proof, proof]
    raise ScenarioError("presentation.dpop_proof", f"unhandled proof choice {choice!r}")


_FIELD_LINE = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*")  # RFC 9110 §5.1, §5.5
_LINE_BREAK = re.compile(r"\r?\n")


def _raw_fields(raw: str, *, token: str, lab: Lab) -> list[tuple[str, str]]:
    """``raw_authorization`` as the header fields it makes on the wire.

    ``$token`` and ``$client_cert`` are filled in. A line break ends a header field (RFC 9112 §2.2: CR LF,
    or a bare LF a recipient may accept), so a value that smuggles ``CR LF Client-Cert: …`` is exactly two
    fields; each further line must be ``name: value``, as a server would otherwise refuse the request itself.
    """
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


def _access_token_field(value: str) -> str:
    """``access_token=value``, form-urlencoded, as text for a query (RFC 6750 §2.3)."""
    return _access_token_bytes(value).decode("ascii")


def client_request(
    presentation: Presentation,
    token: AccessToken,
    *,
    lab: Lab,
    resource_url: str = LAB_RESOURCE,
    now: Any = LAB_NOW,
) -> Request:
    """The HTTP request the client sends for ``presentation`` and ``token``.

    A ``raw_authorization`` holding line breaks becomes several header fields, as it would on the wire.
    """
    placement = presentation.placement
    in_form = placement in (Placement.FORM, Placement.HEADER_AND_FORM)
    method = "POST" if in_form else "GET"
    url = resource_url
    headers: list[tuple[str, str]] = []
    body = b""
    value = token.value
    if presentation.raw_authorization is not None:
        headers += _raw_fields(presentation.raw_authorization, token=value, lab=lab)
    elif token.kind != "none" and placement in (
        Placement.HEADER,
        Placement.HEADER_AND_QUERY,
        Placement.HEADER_AND_FORM,
    ):
        headers.append(("Authorization", _authorization(presentation.scheme, value)))
    if token.kind != "none" and placement in (Placement.QUERY, Placement.HEADER_AND_QUERY):
        sep = "&" if "?" in url else "?"
        url = f"{url}{sep}{_access_token_field(value)}"
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


# The request depends only on the presentation and the token (DPoP proofs are signed deterministically),
# so scenarios differing only in their deployment share it.
_client_request = functools.lru_cache(maxsize=4096)(client_request)


#: Linux refuses to start a program (E2BIG) when one command-line argument's bytes, with the argument's
#: terminating NUL, are more than this: MAX_ARG_STRLEN, 32 pages (here of 4 KiB; more where pages are larger).
ARGUMENT_LIMIT_BYTES = 128 * 1024


def too_long_for_an_argument(arg: str) -> bool:
    """Whether ``arg`` is more than Linux lets one command-line argument be (:data:`ARGUMENT_LIMIT_BYTES`)."""
    return len(arg.encode("utf-8", "surrogateescape")) + 1 > ARGUMENT_LIMIT_BYTES


def shorten(text: str, limit: int = 2048) -> str:
    """``text`` as it is when it has at most ``limit`` characters; otherwise its start and its end with the
    number of characters left out between them, so a shortened value cannot pass for the real one.

    ``limit`` is at least 256: room for a useful start, the end and the count.
    """
    if limit < 256:
        raise ValueError(f"limit: {limit} is below 256")
    if len(text) <= limit:
        return text
    head, tail = text[: limit // 2], text[-64:]
    return f"{head}…[{len(text) - len(head) - len(tail):,} characters not shown]…{tail}"


def curl_shown(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """``args`` as a person can be shown them: arguments too long for a command line shortened, and a
    comment line for each saying the command cannot run as printed, and how to pass the value instead."""
    notes = [
        f"# NOT RUNNABLE AS SHOWN: one argument has {len(arg.encode('utf-8', 'surrogateescape')):,} bytes, "
        f"more than Linux lets one command-line argument be ({ARGUMENT_LIMIT_BYTES // 1024} KiB); it is "
        "shortened below. Put the full value in a file and let curl read it (--header @FILE, "
        "--data-binary @FILE)"
        for arg in args
        if too_long_for_an_argument(arg)
    ]
    return [shorten(a) if too_long_for_an_argument(a) else a for a in args], notes


def curl_argv(
    request: Request, *, certificate: CertChoice, tls_version: TlsVersion, folder: str = "lab"
) -> list[str]:
    """The ``curl`` arguments that send ``request`` presenting ``certificate`` with ``tls_version`` pinned,
    using the lab's file names in ``folder`` (``ca.pem``, ``NAME.pem``, ``NAME.key``)."""
    prefix = f"{folder}/" if folder not in ("", ".") else ""
    version = tls_version.value
    args = [
        "curl",
        "--silent",
        "--show-error",
        "--include",
        f"--tlsv{version}",
        "--tls-max",
        version,
        "--cacert",
        f"{prefix}ca.pem",
    ]
    if certificate is not CertChoice.NONE:
        args += [
            "--cert",
            f"{prefix}{certificate.value}.pem",
            "--key",
            f"{prefix}{certificate.value}.key",
        ]
    if request.method != ("POST" if request.body else "GET"):
        args += ["--request", request.method]
    for name, value in request.headers:
        args += ["--header", f"{name}: {value}"]
    if request.body:
        args += ["--data-raw", request.body.decode("latin-1")]
    args.append(request.url)
    return args


def through_proxy(request: Request, tls: TlsResult, *, strips: bool = True) -> Request:
    """What a TLS-terminating proxy forwards to the origin (RFC 9440 §2): any ``Client-Cert`` the client
    sent removed (unless the proxy is broken), the handshake's certificate added when there was one."""
    forwarded = request.without("Client-Cert") if strips else request
    if tls.client_cert is not None:
        forwarded = forwarded.with_header("Client-Cert", encode_client_cert(tls.client_cert))
    return replace(forwarded, client_cert=None, from_proxy=True)


def received(sent: Request, tls: TlsResult, deployment: Deployment) -> Request | None:
    """What reaches the resource server's application when the client sends ``sent``: nothing after a failed
    handshake; on a direct connection the request with the handshake's certificate; behind a proxy what
    the proxy forwards (:func:`through_proxy`)."""
    if not tls.completed:
        return None
    if deployment.topology is Topology.PROXY:
        return through_proxy(sent, tls, strips=deployment.proxy_strips_client_cert)
    return replace(sent, client_cert=tls.client_cert)


def realize(
    scenario: Scenario,
    lab: Lab,
    asrv: AuthorizationServer,
    *,
    resource_url: str = LAB_RESOURCE,
    now: Any = LAB_NOW,
) -> Exchange:
    """Turn ``scenario`` into concrete material: certificate, token, TLS result, requests."""
    deployment = scenario.deployment
    identity = scenario.presentation.certificate.identity(lab)
    try:
        token = asrv.mint(scenario.token, now=now)
    except InputError as exc:  # an unknown variant; a failing recipe is a bug, and says so
        raise ScenarioError("token", str(exc)) from None
    tls = handshake(
        client_auth=deployment.client_auth,
        version=deployment.tls_version,
        presented=identity,
        roots=(lab.ca.certificate,),
        at=now,
    )
    sent = _client_request(
        scenario.presentation, token, lab=lab, resource_url=resource_url, now=now
    )
    return Exchange(
        scenario=scenario,
        identity=identity,
        token=token,
        tls=tls,
        client_request=sent,
        request=received(sent, tls, deployment),
    )


# --------------------------------------------------------------------------------------------------
# The catalogue.

_PROXY = Deployment(topology=Topology.PROXY)
_NO_CERT = Presentation(certificate=CertChoice.NONE)
_F = Finding


def _s(
    id: str,
    title: str,
    *,
    tags: Iterable[str],
    expect: Finding,
    description: str = "",
    token: str = "bound",
    deployment: Deployment | None = None,
    presentation: Presentation | None = None,
    **changes: Any,
) -> Scenario:
    scenario = Scenario(
        id=id,
        title=title,
        tags=tuple(tags),
        expect=expect,
        description=description,
        token=token,
        deployment=deployment or Deployment(),
        presentation=presentation or Presentation(),
    )
    return scenario.with_(**changes) if changes else scenario


#: The named scenarios, debate first. Ids are stable: they appear in exports and mails.
CATALOGUE: tuple[Scenario, ...] = (
    # ---- the debate ---------------------------------------------------------------------------------
    _s(
        "no-cert-optional",
        "Bound token, no client certificate (TLS client auth optional)",
        tags=("debate", "binding", "attack"),
        expect=_F.CERTIFICATE_MISSING,
        presentation=_NO_CERT,
        description="The thread's case: the TLS layer only requests a certificate (Undertow REQUESTED, nginx "
        "optional, Python CERT_OPTIONAL) and the client sends none. RFC 8705 §3 names no error. As an attack: a "
        "stolen token replayed without the victim's certificate; the binding check stops it.",
    ),
    _s(
        "mismatch",
        "Bound token, another valid client certificate",
        tags=("debate", "binding", "attack"),
        expect=_F.CERTIFICATE_MISMATCH,
        certificate=CertChoice.OTHER,
        description="RFC 8705 §3's explicit case: the thumbprint differs, 401 invalid_token. As an attack: a "
        "stolen token replayed with the thief's own valid certificate; the thumbprint comparison stops it.",
    ),
    _s(
        "required-unbound-no-cert",
        "Unbound token, no certificate, TLS client auth required (TLS 1.3)",
        tags=("debate", "tls"),
        expect=_F.TLS_REJECTED,
        token="unbound",
        presentation=_NO_CERT,
        client_auth=ClientAuth.REQUIRED,
        description="Requiring certificates at the TLS layer settles the question for bound tokens, and shuts "
        "out clients whose tokens are not bound: no HTTP answer at all.",
    ),
    _s(
        "proxy-no-cert",
        "Behind a TLS-terminating proxy, bound token, no certificate",
        tags=("debate", "proxy"),
        expect=_F.CERTIFICATE_MISSING,
        deployment=_PROXY,
        presentation=_NO_CERT,
        description="The proxy forwards no Client-Cert (RFC 9440: absence means no certificate).",
    ),
    _s(
        "forged-client-cert",
        "Bound token, no TLS certificate, the client forges Client-Cert itself",
        tags=("debate", "attack", "proxy"),
        expect=_F.UNTRUSTED_CLIENT_CERT_HEADER,
        presentation=_NO_CERT,
        forged_client_cert=CertChoice.CLIENT,
        description="Certificates are public: a thief of the token can put the victim's certificate in a header. "
        "Straight to the origin, the header must not be trusted (RFC 9440 §2, §4).",
    ),
    _s(
        "success",
        "Bound token with its certificate",
        tags=("debate", "binding", "control"),
        expect=_F.ACCEPTED,
        description="The positive control every rejection is measured against.",
    ),
    _s(
        "required-no-cert-tls13",
        "Bound token, no certificate, client auth required, TLS 1.3",
        tags=("debate", "tls"),
        expect=_F.TLS_REJECTED,
        presentation=_NO_CERT,
        client_auth=ClientAuth.REQUIRED,
        description="certificate_required (116), seen by the client only at its first read (RFC 8446 §4.4.2.4).",
    ),
    _s(
        "required-no-cert-tls12",
        "Bound token, no certificate, client auth required, TLS 1.2",
        tags=("debate", "tls"),
        expect=_F.TLS_REJECTED,
        presentation=_NO_CERT,
        client_auth=ClientAuth.REQUIRED,
        tls_version=TlsVersion.TLS1_2,
        description="handshake_failure (40) during the handshake.",
    ),
    _s(
        "no-cert-client-auth-none",
        "Bound token at a server that never asks for a certificate",
        tags=("debate", "binding", "tls"),
        expect=_F.CERTIFICATE_MISSING,
        client_auth=ClientAuth.NONE,
        description="The client has its certificate but is never asked for it (RFC 8705 §3: the server must "
        "know before the handshake).",
    ),
    _s(
        "no-cert-tls12",
        "Bound token, no client certificate, TLS 1.2 optional",
        tags=("debate", "binding"),
        expect=_F.CERTIFICATE_MISSING,
        presentation=_NO_CERT,
        tls_version=TlsVersion.TLS1_2,
    ),
    # ---- certificate binding --------------------------------------------------------------------------
    _s(
        "success-tls12",
        "Bound token with its certificate, TLS 1.2",
        tags=("binding", "control"),
        expect=_F.ACCEPTED,
        tls_version=TlsVersion.TLS1_2,
    ),
    _s(
        "success-required",
        "Bound token with its certificate, client auth required",
        tags=("binding", "control"),
        expect=_F.ACCEPTED,
        client_auth=ClientAuth.REQUIRED,
    ),
    _s(
        "mismatch-required",
        "Bound token, another valid certificate, client auth required",
        tags=("binding",),
        expect=_F.CERTIFICATE_MISMATCH,
        client_auth=ClientAuth.REQUIRED,
        certificate=CertChoice.OTHER,
    ),
    _s(
        "success-no-ca",
        "Bound token with its certificate, optional without CA validation",
        tags=("binding", "control"),
        expect=_F.ACCEPTED,
        client_auth=ClientAuth.OPTIONAL_NO_CA,
    ),
    _s(
        "self-signed-success",
        "self_signed_tls_client_auth: token bound to a self-signed certificate, no-CA TLS",
        tags=("binding", "self-signed", "control"),
        expect=_F.ACCEPTED,
        token="bound-self-signed",
        client_auth=ClientAuth.OPTIONAL_NO_CA,
        certificate=CertChoice.SELF_SIGNED,
        description="RFC 8705 §2.2 and §6.2: the chain is not validated; the binding is the whole check.",
    ),
    _s(
        "self-signed-with-ca-validation",
        "Self-signed client certificate at a server that validates chains",
        tags=("binding", "self-signed", "tls"),
        expect=_F.TLS_REJECTED,
        token="bound-self-signed",
        certificate=CertChoice.SELF_SIGNED,
        description="unknown_ca: self-signed clients need optional-no-ca.",
    ),
    _s(
        "self-signed-required-no-ca",
        "self_signed_tls_client_auth at a server that requires a certificate but validates no chain",
        tags=("binding", "self-signed", "tls"),
        expect=_F.ACCEPTED,
        token="bound-self-signed",
        client_auth=ClientAuth.REQUIRED_NO_CA,
        certificate=CertChoice.SELF_SIGNED,
        description="The TLS layer insists on a certificate, any certificate (RFC 8705 §6.2); the binding decides.",
    ),
    _s(
        "required-no-ca-no-cert",
        "Bound token, no certificate, client auth required without CA validation (TLS 1.3)",
        tags=("tls",),
        expect=_F.TLS_REJECTED,
        token="bound-self-signed",
        client_auth=ClientAuth.REQUIRED_NO_CA,
        presentation=_NO_CERT,
        description="certificate_required (116), seen at the client's first read: no chain is validated, "
        "but a certificate is still required.",
    ),
    _s(
        "self-signed-mismatch",
        "Self-signed certificate presented for a token bound to the PKI client",
        tags=("binding", "self-signed"),
        expect=_F.CERTIFICATE_MISMATCH,
        client_auth=ClientAuth.OPTIONAL_NO_CA,
        certificate=CertChoice.SELF_SIGNED,
    ),
    _s(
        "expired-cert",
        "Expired client certificate (client auth optional)",
        tags=("binding", "tls"),
        expect=_F.TLS_REJECTED,
        certificate=CertChoice.EXPIRED,
    ),
    _s(
        "expired-cert-no-ca",
        "Expired client certificate at a no-CA server",
        tags=("binding",),
        expect=_F.CERTIFICATE_MISMATCH,
        certificate=CertChoice.EXPIRED,
        client_auth=ClientAuth.OPTIONAL_NO_CA,
        description="The TLS layer does not look; the re-issued certificate has another thumbprint.",
    ),
    _s(
        "not-yet-valid-cert",
        "Client certificate not yet valid",
        tags=("binding", "tls"),
        expect=_F.TLS_REJECTED,
        certificate=CertChoice.NOT_YET_VALID,
    ),
    _s(
        "untrusted-ca-cert",
        "Client certificate from an untrusted CA",
        tags=("binding", "tls"),
        expect=_F.TLS_REJECTED,
        certificate=CertChoice.UNTRUSTED_CA,
    ),
    _s(
        "untrusted-ca-cert-tls12",
        "Client certificate from an untrusted CA, TLS 1.2",
        tags=("binding", "tls"),
        expect=_F.TLS_REJECTED,
        certificate=CertChoice.UNTRUSTED_CA,
        tls_version=TlsVersion.TLS1_2,
    ),
    _s(
        "untrusted-ca-cert-no-ca",
        "Client certificate from an untrusted CA at a no-CA server",
        tags=("binding",),
        expect=_F.CERTIFICATE_MISMATCH,
        certificate=CertChoice.UNTRUSTED_CA,
        client_auth=ClientAuth.OPTIONAL_NO_CA,
    ),
    _s(
        "server-auth-only-cert",
        "Client certificate with EKU serverAuth only",
        tags=("binding", "tls"),
        expect=_F.TLS_REJECTED,
        certificate=CertChoice.SERVER_AUTH_ONLY,
    ),
    _s(
        "pki-self-signed-cert",
        "Self-signed certificate where a CA-issued one is expected",
        tags=("binding", "tls"),
        expect=_F.TLS_REJECTED,
        certificate=CertChoice.PKI_SELF_SIGNED,
    ),
    _s(
        "unbound-no-cert",
        "Unbound token without a certificate",
        tags=("binding", "control"),
        expect=_F.ACCEPTED,
        token="unbound",
        presentation=_NO_CERT,
        description="Plain bearer tokens need no certificate.",
    ),
    _s(
        "unbound-with-cert",
        "Unbound token with a certificate",
        tags=("binding", "control"),
        expect=_F.ACCEPTED,
        token="unbound",
    ),
    _s(
        "unbound-required",
        "Unbound token, certificate sent, client auth required",
        tags=("binding", "tls"),
        expect=_F.ACCEPTED,
        token="unbound",
        client_auth=ClientAuth.REQUIRED,
    ),
    # ---- proxies ----------------------------------------------------------------------------------------
    _s(
        "proxy-success",
        "Behind a proxy: bound token with its certificate",
        tags=("proxy", "control"),
        expect=_F.ACCEPTED,
        deployment=_PROXY,
    ),
    _s(
        "proxy-mismatch",
        "Behind a proxy: another valid certificate",
        tags=("proxy",),
        expect=_F.CERTIFICATE_MISMATCH,
        deployment=_PROXY,
        certificate=CertChoice.OTHER,
    ),
    _s(
        "proxy-untrusted",
        "Behind a proxy the origin does not trust: the certificate is ignored",
        tags=("proxy",),
        expect=_F.UNTRUSTED_CLIENT_CERT_HEADER,
        deployment=_PROXY,
        proxy_trusted=False,
        description="Spring Security's default behind a TLS-terminating proxy: every bound token fails.",
    ),
    _s(
        "proxy-smuggled-header",
        "Through the proxy: no certificate, the client adds its own Client-Cert",
        tags=("proxy", "attack"),
        expect=_F.CERTIFICATE_MISSING,
        deployment=_PROXY,
        presentation=_NO_CERT,
        forged_client_cert=CertChoice.CLIENT,
        description="The thief sends the victim's (public) certificate in its own Client-Cert header through "
        "the proxy. The proxy strips it (RFC 9440 §2) and forwards none, so the origin sees no "
        "certificate.",
    ),
    _s(
        "proxy-required-no-cert",
        "Behind a proxy that requires certificates, none sent",
        tags=("proxy", "tls"),
        expect=_F.TLS_REJECTED,
        deployment=_PROXY,
        presentation=_NO_CERT,
        client_auth=ClientAuth.REQUIRED,
    ),
    _s(
        "proxy-tls12-success",
        "Behind a proxy, TLS 1.2, bound token with its certificate",
        tags=("proxy", "control"),
        expect=_F.ACCEPTED,
        deployment=_PROXY,
        tls_version=TlsVersion.TLS1_2,
    ),
    # ---- token validation ---------------------------------------------------------------------------------
    _s("no-token", "No access token at all", tags=("token",), expect=_F.NO_TOKEN, token="none"),
    _s(
        "expired-token",
        "Expired bound token with its certificate",
        tags=("token",),
        expect=_F.TOKEN_EXPIRED,
        token="expired",
    ),
    _s(
        "not-yet-valid-token",
        "Bound token not yet valid",
        tags=("token",),
        expect=_F.TOKEN_NOT_YET_VALID,
        token="not-yet-valid",
    ),
    _s(
        "wrong-audience",
        "Bound token for another resource server",
        tags=("token",),
        expect=_F.WRONG_AUDIENCE,
        token="wrong-audience",
    ),
    _s(
        "wrong-issuer",
        "Bound token from an untrusted issuer",
        tags=("token",),
        expect=_F.WRONG_ISSUER,
        token="wrong-issuer",
    ),
    _s(
        "bad-signature",
        "Bound token signed with a key not in the JWKS",
        tags=("token", "attack"),
        expect=_F.BAD_SIGNATURE,
        token="bad-signature",
        description="A forged token under the issuer's kid, signed with another key: the signature does not "
        "verify with the issuer's key (RFC 9068 §4).",
    ),
    _s(
        "alg-none",
        "Token with alg none",
        tags=("token", "attack"),
        expect=_F.BAD_SIGNATURE,
        token="alg-none",
        description="The classic forgery: alg none and no signature. Only the issuer key's own algorithm is "
        "accepted (RFC 8725 §3.1).",
    ),
    _s(
        "hs256-confusion",
        "Token HMAC-signed with the AS public key",
        tags=("token", "attack"),
        expect=_F.BAD_SIGNATURE,
        token="hs256-confusion",
        description="Algorithm confusion: HMAC keyed with the issuer's public key, which anyone has. The key "
        "is ES256, so HS256 is refused (RFC 8725 §3.1).",
    ),
    _s(
        "malformed-parts",
        "Token with two parts",
        tags=("token",),
        expect=_F.TOKEN_MALFORMED,
        token="malformed-parts",
    ),
    _s(
        "malformed-base64",
        "Token whose payload is not base64url",
        tags=("token",),
        expect=_F.TOKEN_MALFORMED,
        token="malformed-base64",
    ),
    _s(
        "malformed-json",
        "Token whose payload is not JSON",
        tags=("token",),
        expect=_F.TOKEN_MALFORMED,
        token="malformed-json",
    ),
    _s(
        "insufficient-scope",
        "Bound token with its certificate but too little scope",
        tags=("token",),
        expect=_F.INSUFFICIENT_SCOPE,
        token="insufficient-scope",
    ),
    _s(
        "insufficient-scope-no-cert",
        "Too little scope and no certificate",
        tags=("token", "debate"),
        expect=_F.CERTIFICATE_MISSING,
        token="insufficient-scope",
        presentation=_NO_CERT,
        description="Binding is part of authentication, so it is checked before scope.",
    ),
    # ---- thumbprint look-alikes -------------------------------------------------------------------------
    _s(
        "cnf-padded",
        "cnf.x5t#S256 with '=' padding",
        tags=("thumbprint", "attack"),
        expect=_F.CERTIFICATE_MISMATCH,
        token="cnf-padded",
        description="RFC 8705 §3.1: base64url without padding; the comparison is exact, so a padded "
        "thumbprint differs even though it decodes to the same digest.",
    ),
    _s(
        "cnf-uppercase",
        "cnf.x5t#S256 upper-cased",
        tags=("thumbprint", "attack"),
        expect=_F.CERTIFICATE_MISMATCH,
        token="cnf-uppercase",
        description="Base64url is case-sensitive: an upper-cased thumbprint is another value, never a match.",
    ),
    _s(
        "cnf-sha1",
        "cnf.x5t#S256 holding a SHA-1 thumbprint",
        tags=("thumbprint", "attack"),
        expect=_F.CERTIFICATE_MISMATCH,
        token="cnf-sha1",
        description="A SHA-1 digest under the x5t#S256 name: not the certificate's SHA-256 thumbprint, so it "
        "differs.",
    ),
    _s(
        "cnf-pem-hash",
        "cnf.x5t#S256 hashed over the PEM text",
        tags=("thumbprint", "attack"),
        expect=_F.CERTIFICATE_MISMATCH,
        token="cnf-pem-hash",
        description="Hashing the PEM text instead of the DER (RFC 8705 §3.1) gives another value: it differs.",
    ),
    _s(
        "cnf-unknown-method",
        "cnf with an unsupported confirmation method",
        tags=("thumbprint",),
        expect=_F.UNSUPPORTED_CONFIRMATION,
        token="cnf-unknown-method",
    ),
    # ---- presentation ----------------------------------------------------------------------------------
    _s(
        "lowercase-bearer",
        "Scheme written 'bearer'",
        tags=("presentation",),
        expect=_F.ACCEPTED,
        scheme=Scheme.BEARER_LOWER,
        description="Auth-schemes are case-insensitive (RFC 9110 §11.1).",
    ),
    _s(
        "token-in-form",
        "Token in the form body",
        tags=("presentation",),
        expect=_F.ACCEPTED,
        placement=Placement.FORM,
    ),
    _s(
        "token-in-query",
        "Token in the query",
        tags=("presentation",),
        expect=_F.ACCEPTED,
        placement=Placement.QUERY,
    ),
    _s(
        "token-in-header-and-query",
        "Token in the header and the query",
        tags=("presentation",),
        expect=_F.MULTIPLE_METHODS,
        placement=Placement.HEADER_AND_QUERY,
    ),
    _s(
        "token-in-header-and-form",
        "Token in the header and the form body",
        tags=("presentation",),
        expect=_F.MULTIPLE_METHODS,
        placement=Placement.HEADER_AND_FORM,
    ),
    _s(
        "token-in-form-no-cert",
        "Token in the form body, no certificate",
        tags=("presentation", "debate"),
        expect=_F.CERTIFICATE_MISSING,
        placement=Placement.FORM,
        presentation=_NO_CERT,
    ),
    _s(
        "no-scheme",
        "The bare token in Authorization, without a scheme",
        tags=("presentation",),
        expect=_F.NO_TOKEN,
        scheme=Scheme.NONE,
    ),
    _s(
        "malformed-authorization",
        "Authorization: 'Bearer' with no token",
        tags=("presentation",),
        expect=_F.MALFORMED_AUTHORIZATION,
        raw_authorization="Bearer",
    ),
    _s(
        "mtls-scheme",
        "Bound token under a dedicated MTLS scheme (hypothetical)",
        tags=("presentation", "analogy"),
        expect=_F.NO_TOKEN,
        scheme=Scheme.MTLS,
        description="Today no server knows an MTLS scheme; under the DPoP analogy this is how clients would send.",
    ),
    _s(
        "mtls-scheme-no-cert",
        "MTLS scheme (hypothetical), no certificate",
        tags=("presentation", "analogy", "debate"),
        expect=_F.NO_TOKEN,
        scheme=Scheme.MTLS,
        presentation=_NO_CERT,
    ),
    # ---- DPoP, the analogy -------------------------------------------------------------------------------
    _s(
        "dpop-success",
        "DPoP-bound token with a valid proof",
        tags=("dpop", "control"),
        expect=_F.ACCEPTED,
        token="dpop-bound",
        scheme=Scheme.DPOP,
        presentation=_NO_CERT,
    ),
    _s(
        "dpop-token-as-bearer",
        "DPoP-bound token sent as Bearer",
        tags=("dpop", "attack"),
        expect=_F.DPOP_TOKEN_AS_BEARER,
        token="dpop-bound",
        presentation=_NO_CERT,
        description="A stolen DPoP-bound token replayed as a plain bearer token, without a proof: a "
        "DPoP-aware server refuses it (RFC 9449 §7.2).",
    ),
    _s(
        "dpop-proof-missing",
        "DPoP scheme without a proof",
        tags=("dpop",),
        expect=_F.DPOP_PROOF_MISSING,
        token="dpop-bound",
        scheme=Scheme.DPOP,
        dpop_proof=ProofChoice.NONE,
        presentation=_NO_CERT,
    ),
    _s(
        "dpop-proof-wrong-ath",
        "DPoP proof made for another token (ath)",
        tags=("dpop", "attack"),
        expect=_F.DPOP_PROOF_INVALID,
        token="dpop-bound",
        scheme=Scheme.DPOP,
        dpop_proof=ProofChoice.WRONG_ATH,
        presentation=_NO_CERT,
        description="A proof captured from another request replayed with this token: its ath is the hash of "
        "another access token (RFC 9449 §4.3).",
    ),
    _s(
        "dpop-proof-wrong-htm",
        "DPoP proof for another method",
        tags=("dpop",),
        expect=_F.DPOP_PROOF_INVALID,
        token="dpop-bound",
        scheme=Scheme.DPOP,
        dpop_proof=ProofChoice.WRONG_HTM,
        presentation=_NO_CERT,
    ),
    _s(
        "dpop-proof-wrong-htu",
        "DPoP proof for another URL",
        tags=("dpop",),
        expect=_F.DPOP_PROOF_INVALID,
        token="dpop-bound",
        scheme=Scheme.DPOP,
        dpop_proof=ProofChoice.WRONG_HTU,
        presentation=_NO_CERT,
        description="The proof names another resource in htu; the server compares it with the URL it was "
        "sent to, ignoring query and fragment (RFC 9449 §4.3).",
    ),
    _s(
        "dpop-proof-stale",
        "DPoP proof made an hour ago",
        tags=("dpop",),
        expect=_F.DPOP_PROOF_INVALID,
        token="dpop-bound",
        scheme=Scheme.DPOP,
        dpop_proof=ProofChoice.STALE,
        presentation=_NO_CERT,
        description="A proof whose iat is an hour before the request, outside the window the server accepts "
        "(RFC 9449 §4.3, §11.1: proofs are short-lived to limit replay).",
    ),
    _s(
        "dpop-proof-bad-signature",
        "DPoP proof whose signature does not verify",
        tags=("dpop",),
        expect=_F.DPOP_PROOF_INVALID,
        token="dpop-bound",
        scheme=Scheme.DPOP,
        dpop_proof=ProofChoice.BAD_SIGNATURE,
        presentation=_NO_CERT,
        description="A proof whose signature does not verify with the public key in its own jwk header "
        "(RFC 9449 §4.3).",
    ),
    _s(
        "dpop-two-proofs",
        "Two DPoP header fields",
        tags=("dpop",),
        expect=_F.DPOP_PROOF_INVALID,
        token="dpop-bound",
        scheme=Scheme.DPOP,
        dpop_proof=ProofChoice.TWO_PROOFS,
        presentation=_NO_CERT,
        description="Two valid proofs in two DPoP fields; the server accepts exactly one (RFC 9449 §4.3).",
    ),
    _s(
        "dpop-proof-other-key",
        "Valid DPoP proof from a key the token is not bound to",
        tags=("dpop", "attack"),
        expect=_F.DPOP_KEY_MISMATCH,
        token="dpop-bound",
        scheme=Scheme.DPOP,
        dpop_proof=ProofChoice.OTHER_KEY,
        presentation=_NO_CERT,
        description="A thief's own valid proof with a stolen DPoP-bound token: the proof's key is not the one "
        "in cnf.jkt (RFC 9449 §7.1).",
    ),
    _s(
        "dpop-scheme-cert-bound-token",
        "Certificate-bound token under the DPoP scheme",
        tags=("dpop",),
        expect=_F.DPOP_KEY_MISMATCH,
        scheme=Scheme.DPOP,
    ),
    # ---- resource-server configuration ----------------------------------------------------------------------
    _s(
        "binding-ignored-no-cert",
        "RS ignores cnf: bound token without a certificate",
        tags=("rs-config", "attack", "debate"),
        expect=_F.ACCEPTED_ALTHOUGH_BOUND,
        checks_binding=False,
        presentation=_NO_CERT,
        description="auth0's SDK without a certificate supplier, Keycloak without the client option: a stolen "
        "token works for anyone (security finding).",
    ),
    _s(
        "binding-ignored-mismatch",
        "RS ignores cnf: bound token with another certificate",
        tags=("rs-config", "attack"),
        expect=_F.ACCEPTED_ALTHOUGH_BOUND,
        checks_binding=False,
        certificate=CertChoice.OTHER,
        description="A stolen token replayed with the thief's own certificate at a server that never compares "
        "the thumbprint: accepted (security finding).",
    ),
    _s(
        "binding-required-unbound",
        "RS requires bound tokens: unbound token",
        tags=("rs-config",),
        expect=_F.TOKEN_NOT_BOUND,
        token="unbound",
        requires_binding=True,
        description="3scale APIcast's oauth_mtls policy and auth0's mtls.required refuse tokens without cnf.",
    ),
    _s(
        "introspection-success",
        "Opaque bound token (introspection) with its certificate",
        tags=("rs-config", "introspection", "control"),
        expect=_F.ACCEPTED,
        token="opaque-bound",
        validation=Validation.INTROSPECTION,
    ),
    _s(
        "introspection-no-cert",
        "Opaque bound token (introspection), no certificate",
        tags=("rs-config", "introspection", "debate"),
        expect=_F.CERTIFICATE_MISSING,
        token="opaque-bound",
        validation=Validation.INTROSPECTION,
        presentation=_NO_CERT,
        description="RFC 8705 §3.2: introspection returns cnf; Authlete's A065304 case.",
    ),
    _s(
        "introspection-mismatch",
        "Opaque bound token (introspection), another certificate",
        tags=("rs-config", "introspection"),
        expect=_F.CERTIFICATE_MISMATCH,
        token="opaque-bound",
        validation=Validation.INTROSPECTION,
        certificate=CertChoice.OTHER,
    ),
    _s(
        "introspection-inactive",
        "Revoked opaque token",
        tags=("rs-config", "introspection"),
        expect=_F.TOKEN_INACTIVE,
        token="opaque-inactive",
        validation=Validation.INTROSPECTION,
    ),
    _s(
        "introspection-unbound",
        "Opaque unbound token without a certificate",
        tags=("rs-config", "introspection"),
        expect=_F.ACCEPTED,
        token="opaque-unbound",
        validation=Validation.INTROSPECTION,
        presentation=_NO_CERT,
    ),
    _s(
        "opaque-token-local-validation",
        "Opaque token at a server that only validates JWTs locally",
        tags=("rs-config", "token"),
        expect=_F.TOKEN_MALFORMED,
        token="opaque-bound",
    ),
    # ---- attacks: keys the token points at --------------------------------------------------------------
    _s(
        "unknown-kid",
        "Token signed by an attacker key under a kid the AS never published",
        tags=("token", "attack"),
        expect=_F.BAD_SIGNATURE,
        token="unknown-kid",
        description="The attacker signs a bound token with their own key and names its kid. The resource server "
        "looks the kid up in the issuer's JWKS only, finds nothing, and refuses (RFC 9068 §4).",
    ),
    _s(
        "jku-header",
        "Attacker-signed token whose jku points at the attacker's JWK Set",
        tags=("token", "attack"),
        expect=_F.BAD_SIGNATURE,
        token="jku-header",
        description="A server that fetched keys from jku would verify the attacker's signature with the "
        "attacker's key. This one never fetches it (RFC 8725 §3.10): the signature fails with the issuer's key.",
    ),
    _s(
        "x5u-header",
        "Attacker-signed token whose x5u points at the attacker's certificate",
        tags=("token", "attack"),
        expect=_F.BAD_SIGNATURE,
        token="x5u-header",
        description="Like jku, a URL the token supplies for its own verification key: never fetched, never "
        "trusted (RFC 8725 §3.10).",
    ),
    _s(
        "jwk-header",
        "Attacker-signed token carrying the attacker's public key in jwk",
        tags=("token", "attack"),
        expect=_F.BAD_SIGNATURE,
        token="jwk-header",
        description="A token that brings its own key proves only that someone holds that key. Keys come from "
        "the issuer's JWKS, so the signature fails (RFC 8725 §3.10).",
    ),
    _s(
        "x5c-header",
        "Attacker-signed token carrying a self-signed attacker certificate in x5c",
        tags=("token", "attack"),
        expect=_F.BAD_SIGNATURE,
        token="x5c-header",
        description="The chain in x5c leads to no trust anchor the resource server has for tokens; it is "
        "ignored and the signature fails with the issuer's key (RFC 8725 §3.10).",
    ),
    _s(
        "jku-header-genuine",
        "Token signed by the AS that merely carries a jku header",
        tags=("token", "control"),
        expect=_F.ACCEPTED,
        token="jku-header-genuine",
        description="The control for the key-header attacks: the header is noise, the trace says it was not "
        "fetched, and the issuer's own signature verifies.",
    ),
    # ---- attacks: cnf look-alikes and odd shapes ----------------------------------------------------------
    _s(
        "cnf-standard-base64",
        "cnf.x5t#S256 in standard base64",
        tags=("thumbprint", "attack"),
        expect=_F.CERTIFICATE_MISMATCH,
        token="cnf-standard-base64",
        description="A lenient decoder would find the same digest; RFC 8705 §3.1 compares the base64url text "
        "exactly, so it differs.",
    ),
    _s(
        "cnf-x5t-sha1",
        "cnf with a SHA-1 x5t member instead of x5t#S256",
        tags=("thumbprint", "attack"),
        expect=_F.UNSUPPORTED_CONFIRMATION,
        token="cnf-x5t-sha1",
        description="RFC 8705 defines only x5t#S256 for cnf; a SHA-1 x5t is not a method this server checks, "
        "so the token is refused rather than treated as unbound.",
    ),
    _s(
        "cnf-public-key-hash",
        "cnf.x5t#S256 hashed over the public key only",
        tags=("thumbprint", "attack"),
        expect=_F.CERTIFICATE_MISMATCH,
        token="cnf-public-key-hash",
        description="A hash of the key alone would match any certificate issued for that key; RFC 8705 §7.2 "
        "binds the whole certificate, so it differs.",
    ),
    _s(
        "cnf-list",
        "cnf is a JSON array",
        tags=("thumbprint", "attack"),
        expect=_F.UNSUPPORTED_CONFIRMATION,
        token="cnf-list",
        description="RFC 7800 §3.1: cnf is a JSON object. A list holding the right object is not read as one.",
    ),
    _s(
        "cnf-string",
        "cnf is a bare string",
        tags=("thumbprint", "attack"),
        expect=_F.UNSUPPORTED_CONFIRMATION,
        token="cnf-string",
        description="RFC 7800 §3.1: cnf is a JSON object. The right thumbprint without its member name names "
        "no method.",
    ),
    _s(
        "cnf-two-methods",
        "cnf with a certificate and a DPoP key, sent as Bearer",
        tags=("thumbprint", "dpop", "attack"),
        expect=_F.DPOP_TOKEN_AS_BEARER,
        token="cnf-two-methods",
        description="The server checks every confirmation method it supports (RFC 7800 §3.1). A token with "
        "cnf.jkt must come under the DPoP scheme (RFC 9449 §7.2), even with the right certificate.",
    ),
    _s(
        "cnf-two-methods-dpop",
        "cnf with a certificate and a DPoP key: proof and certificate both presented",
        tags=("thumbprint", "dpop", "control"),
        expect=_F.ACCEPTED,
        token="cnf-two-methods",
        scheme=Scheme.DPOP,
        description="The control: a valid proof with the bound key, and the bound certificate.",
    ),
    _s(
        "cnf-two-methods-dpop-no-cert",
        "cnf with a certificate and a DPoP key: valid DPoP proof, no certificate",
        tags=("thumbprint", "dpop", "attack"),
        expect=_F.CERTIFICATE_MISSING,
        token="cnf-two-methods",
        scheme=Scheme.DPOP,
        presentation=_NO_CERT,
        description="A thief with the token and the DPoP key but not the certificate's key: the proof passes, "
        "the certificate binding does not.",
    ),
    _s(
        "cnf-two-methods-no-proof",
        "cnf with a certificate and a DPoP key: certificate, DPoP scheme, no proof",
        tags=("thumbprint", "dpop", "attack"),
        expect=_F.DPOP_PROOF_MISSING,
        token="cnf-two-methods",
        scheme=Scheme.DPOP,
        dpop_proof=ProofChoice.NONE,
        description="A thief with the token and the certificate but not the DPoP key: no proof, refused.",
    ),
    _s(
        "cnf-duplicate-member",
        "Two cnf members: the attacker's certificate first, the victim's last",
        tags=("thumbprint", "token", "attack"),
        expect=_F.TOKEN_MALFORMED,
        token="cnf-duplicate-member",
        certificate=CertChoice.OTHER,
        description="The attacker presents their own certificate, named by the first cnf. A parser that keeps "
        "the first member would accept; Python's keeps the last. RFC 7519 §4 allows rejecting or keeping the "
        "last: this server rejects, so no two parsers can disagree on the binding.",
    ),
    _s(
        "duplicate-header-member",
        "JOSE header naming alg twice, none first",
        tags=("token", "attack"),
        expect=_F.TOKEN_MALFORMED,
        token="duplicate-header-member",
        description="A first-member parser would read alg none while the signature library reads the last; "
        "RFC 7515 §4: duplicate header names are rejected here.",
    ),
    # ---- attacks: the HTTP layer ----------------------------------------------------------------------------
    _s(
        "huge-token",
        "An access token of over 1 MiB in the Authorization header",
        tags=("presentation", "attack"),
        expect=_F.HEADERS_TOO_LARGE,
        token="huge-token",
        description="Refused by size before it is decoded, let alone verified (RFC 6585 §5: 431): a token "
        "cannot make the server buffer or parse a megabyte.",
    ),
    _s(
        "huge-token-in-form",
        "An access token of over 1 MiB in the form body",
        tags=("presentation", "attack"),
        expect=_F.BODY_TOO_LARGE,
        token="huge-token",
        placement=Placement.FORM,
        description="The same in the body: refused by size (RFC 9110 §15.5.14: 413) before the form is parsed.",
    ),
    _s(
        "header-injection",
        "A Client-Cert line smuggled inside the Authorization value",
        tags=("presentation", "attack"),
        expect=_F.UNTRUSTED_CLIENT_CERT_HEADER,
        presentation=_NO_CERT,
        raw_authorization="Bearer $token\r\nClient-Cert: $client_cert",
        description="The client writes 'Bearer <token>' CR LF 'Client-Cert: :<victim's certificate>:' as its "
        "Authorization value. On the wire a CR LF ends a header field, so this is two fields, and the model "
        "sends two. Straight to the origin, a Client-Cert is only the client's claim and is ignored "
        "(RFC 9440 §2, §4).",
    ),
    _s(
        "non-ascii-subject",
        "Bound token whose sub holds U+2028, CR LF and a header line",
        tags=("presentation", "attack", "response-splitting"),
        expect=_F.ACCEPTED,
        token="non-ascii-subject",
        description="The token is genuine and served; the attack is on the answer. The subject is echoed only "
        "into the JSON body, escaped, never into a header: the response's header section stays intact.",
    ),
    _s(
        "proxy-passes-client-cert",
        "A broken proxy passes the client's own Client-Cert through",
        tags=("proxy", "attack"),
        expect=_F.ACCEPTED,
        deployment=replace(_PROXY, proxy_strips_client_cert=False),
        presentation=_NO_CERT,
        forged_client_cert=CertChoice.CLIENT,
        description="RFC 9440 §2 requires the proxy to strip Client-Cert from requests. This one does not, so "
        "the thief's header with the victim's (public) certificate reaches an origin that trusts the proxy: "
        "accepted, the security failure a misconfigured proxy causes.",
    ),
)


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
