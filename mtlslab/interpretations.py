"""Interpretations as data: for every finding, what a reading of the specs (or a real server) answers.

One finding, many readings. An :class:`Interpretation` is a table — name, one-line stance, source, the
departures from the RFC text with reasons, optional changes to the deployment (a server that requires
certificates at the TLS layer, or does not check binding), and an :class:`Answer` for every
:class:`~mtlslab.findings.Finding`. :meth:`Interpretation.respond` turns a decision into an
:class:`Outcome`: a TLS alert, or an HTTP status with ``WWW-Authenticate`` and body.

Built-ins (:data:`BUILTINS`): the RFC baseline as written (its missing-certificate cell is marked
*unspecified*), the two readings from the OAuth WG thread, the DPoP analogy (hypothetical), "require it at
the TLS layer", and what real servers return (``../shared/spec-notes.md``: Keycloak, Spring Security,
node-oidc-provider, Authlete, auth0's SDK, 3scale APIcast, the Duende sample). For an observed server, a
finding its source does not show is inherited from the baseline and marked *assumed*.

Write your own in a few lines::

    mine = derive(BUILTINS["thread-401"], name="mine", stance="...",
                  answers={Finding.CERTIFICATE_MISSING: Answer(status=403, scheme=None)})
    mine.to_json()    # save; Interpretation.from_json(...) loads it back
"""

from __future__ import annotations

import difflib
import json
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from http import HTTPStatus
from typing import Any, Literal

from mtlslab.challenge import (
    Challenge,
    ChallengeError,
    bearer,
    format_challenges,
    parse_www_authenticate,
)
from mtlslab.errors import InterpretationError
from mtlslab.findings import Finding
from mtlslab.rs import Decision
from mtlslab.scenarios import Deployment
from mtlslab.tls import ClientAuth, TlsAlert
from mtlslab.tokens import LAB_ISSUER

__all__ = [
    "BUILTINS",
    "Answer",
    "Departure",
    "Interpretation",
    "InterpretationKind",
    "Outcome",
    "Source",
    "SourceKind",
    "derive",
    "get_interpretation",
    "reason_phrase",
]

SourceKind = Literal["rfc", "mailing-list", "repository", "documentation", "hypothetical", "user"]
InterpretationKind = Literal["baseline", "reading", "hypothetical", "observed", "custom"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """Where an interpretation comes from: an RFC section, an archived message, a repository path."""

    kind: SourceKind
    citation: str
    url: str = ""

    def __str__(self) -> str:
        return f"{self.citation} <{self.url}>" if self.url else self.citation


@dataclass(frozen=True, slots=True, kw_only=True)
class Departure:
    """A stated departure from the RFC text, with its reason."""

    what: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """What to send back for one finding.

    ``status=None`` with ``tls_alert=True`` means the answer is the TLS alert itself. ``scheme=None`` means
    no ``WWW-Authenticate``. ``body`` is a :class:`string.Template` (``$error``, ``$description``,
    ``$status``, ``$reason``, ``$sub``, ``$client_id``). ``same_as`` answers exactly like another finding.
    """

    status: int | None = 401
    tls_alert: bool = False
    scheme: str | None = "Bearer"
    error: str | None = None
    description: str | None = None
    error_uri: str | None = None
    realm: bool = True
    scope: bool = False
    params: tuple[
        tuple[str, str], ...
    ] = ()  # more auth-params after the RFC 6750 ones (e.g. DPoP algs)
    extra_challenges: tuple[str, ...] = ()
    separator: str = ", "
    body: str = ""
    content_type: str | None = None
    same_as: Finding | None = None
    unspecified: bool = False
    assumed: bool = False
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """Only the fields that differ from the defaults."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = (
                    value.value
                    if isinstance(value, Finding)
                    else [list(v) if isinstance(v, tuple) else v for v in value]
                    if isinstance(value, tuple)
                    else value
                )
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, where: str = "answer") -> Answer:
        """The inverse of :meth:`to_json`."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InterpretationError(where, f"unknown field(s) {', '.join(sorted(unknown))}")
        values = dict(data)
        try:
            if values.get("same_as") is not None:
                values["same_as"] = Finding(values["same_as"])
        except ValueError:
            raise InterpretationError(
                f"{where}.same_as", f"{data['same_as']!r} is not a finding"
            ) from None
        if "extra_challenges" in values:
            values["extra_challenges"] = tuple(values["extra_challenges"])
        if "params" in values:
            try:
                values["params"] = tuple((str(n), str(v)) for n, v in values["params"])
            except (TypeError, ValueError):
                raise InterpretationError(
                    f"{where}.params", "a list of [name, value] pairs"
                ) from None
        return cls(**values)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What the client observes: a TLS alert, or an HTTP response."""

    finding: Finding
    tls_alert: TlsAlert | None = None
    status: int | None = None
    www_authenticate: str | None = None
    error: str | None = None
    content_type: str | None = None
    body: str = ""
    unspecified: bool = False
    assumed: bool = False
    note: str = ""

    @property
    def verdict(self) -> tuple[str, ...]:
        """What readings agree or disagree on: the alert, or the status and error code."""
        if self.tls_alert is not None:
            return ("tls", self.tls_alert.name)
        return (str(self.status), self.error or "")

    def summary(self) -> str:
        """``401 invalid_token``, ``TLS certificate_required (116)``, ``401 (no error) [unspecified]`` ..."""
        if self.tls_alert is not None:
            text = f"TLS {self.tls_alert.name} ({self.tls_alert.code})"
        elif self.error:
            text = f"{self.status} {self.error}"
        elif self.status is not None and self.status >= 400:
            text = f"{self.status} (no error)" if self.www_authenticate else f"{self.status}"
        else:
            text = str(self.status)
        if self.unspecified:
            text += " [unspecified]"
        elif self.assumed:
            text += " [assumed]"
        return text

    def wire(self) -> tuple[Any, ...]:
        """Everything a client sees on the wire (what live runs compare with the simulation)."""
        if self.tls_alert is not None:
            return ("tls", self.tls_alert.name, self.tls_alert.code, self.tls_alert.when)
        return ("http", self.status, self.www_authenticate, self.content_type, self.body)

    def http_text(self) -> str:
        """The response as raw HTTP/1.1 (or a description of the alert)."""
        if self.tls_alert is not None:
            return f"(no HTTP response: {self.tls_alert})"
        assert self.status is not None
        lines = [f"HTTP/1.1 {self.status} {reason_phrase(self.status)}"]
        for name, value in self.headers():
            lines.append(f"{name}: {value}")
        return "\r\n".join(lines) + "\r\n\r\n" + self.body

    def headers(self) -> list[tuple[str, str]]:
        """Response headers (besides framing)."""
        out: list[tuple[str, str]] = []
        if self.www_authenticate is not None:
            out.append(("WWW-Authenticate", self.www_authenticate))
        if self.content_type is not None:
            out.append(("Content-Type", self.content_type))
        out.append(("Content-Length", str(len(self.body.encode("utf-8")))))
        return out

    def to_json(self) -> dict[str, Any]:
        """``tls_alert`` (null or ``{name, code, when}``), ``status``, ``www_authenticate``, ``error``, ``body``..."""
        return {
            "tls_alert": self.tls_alert.to_json() if self.tls_alert else None,
            "status": self.status,
            "www_authenticate": self.www_authenticate,
            "error": self.error,
            "content_type": self.content_type,
            "body": self.body,
            "unspecified": self.unspecified,
            "assumed": self.assumed,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, finding: Finding, data: Mapping[str, Any]) -> Outcome:
        """The inverse of :meth:`to_json`."""
        alert = data.get("tls_alert")
        return cls(
            finding=finding,
            tls_alert=TlsAlert(
                name=alert["name"], code=int(alert["code"]), when=alert.get("when", "handshake")
            )
            if alert
            else None,
            status=data.get("status"),
            www_authenticate=data.get("www_authenticate"),
            error=data.get("error"),
            content_type=data.get("content_type"),
            body=data.get("body", ""),
            unspecified=bool(data.get("unspecified", False)),
            assumed=bool(data.get("assumed", False)),
            note=str(data.get("note", "")),
        )


_FINDING_ORDER = {finding: i for i, finding in enumerate(Finding)}


def _in_finding_order(answers: Mapping[Finding, Answer]) -> tuple[tuple[Finding, Answer], ...]:
    """``answers`` as an interpretation stores them: in the order findings are declared."""
    return tuple(sorted(answers.items(), key=lambda kv: _FINDING_ORDER[kv[0]]))


def reason_phrase(status: int) -> str:
    """The reason phrase HTTP/1.1 servers send with ``status`` (``Unauthorized``), or "" for a code without one."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


_RESOURCE_BODY = '{"resource":"the protected resource","sub":"$sub","client_id":"$client_id"}'
_JSON = "application/json"
_ACCEPTED = Answer(status=200, scheme=None, body=_RESOURCE_BODY, content_type=_JSON)
_HTTP_LIMIT_NOTE = (
    "the HTTP layer's size limit answers before any token check; every reading answers alike, and the live "
    "server sends exactly this"
)
#: RFC 6585 §5. No challenge: the request was never read far enough to know what authentication it carries.
_HEADERS_TOO_LARGE = Answer(
    status=431,
    scheme=None,
    content_type="text/plain",
    body="request header fields too large\n",
    note=_HTTP_LIMIT_NOTE,
)
#: RFC 9110 §15.5.14.
_BODY_TOO_LARGE = Answer(
    status=413,
    scheme=None,
    content_type="text/plain",
    body="request body too large\n",
    note=_HTTP_LIMIT_NOTE,
)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Interpretation:
    """One reading of the specs (or one real server's behaviour), as a table."""

    name: str
    title: str
    stance: str
    source: Source
    kind: InterpretationKind
    answers: tuple[tuple[Finding, Answer], ...]
    departures: tuple[Departure, ...] = ()
    realm: str | None = "mtlslab"
    deployment: tuple[tuple[str, Any], ...] = ()  # overrides applied to every scenario's deployment
    base: str | None = None
    _index: dict[Finding, Answer] = field(default_factory=dict, repr=False)
    _cache: dict[tuple[Any, ...], Outcome] = field(default_factory=dict, repr=False)
    _adapted: dict[Deployment, Deployment] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        index = dict(self.answers)
        missing = [f.value for f in Finding if f not in index]
        if missing:
            raise InterpretationError(f"{self.name}.answers", f"no answer for {', '.join(missing)}")
        for finding, answer in index.items():
            self._check(finding, answer, index)
        unknown = {k for k, _ in self.deployment} - {f.name for f in fields(Deployment) if f.init}
        if unknown:
            raise InterpretationError(
                f"{self.name}.deployment", f"unknown field(s) {', '.join(sorted(unknown))}"
            )
        self._index.update(index)

    def _check(self, finding: Finding, answer: Answer, index: Mapping[Finding, Answer]) -> None:
        where = f"{self.name}.answers.{finding.value}"
        if answer.same_as is not None:
            target = index.get(answer.same_as)
            if target is None or target.same_as is not None:
                raise InterpretationError(
                    where, "same_as must name a finding with an answer of its own"
                )
            return
        if finding is Finding.TLS_REJECTED:
            if not answer.tls_alert:
                raise InterpretationError(
                    where, "a TLS rejection is answered by the alert itself (tls_alert=True)"
                )
            return
        if answer.tls_alert:
            raise InterpretationError(
                where,
                "only tls_rejected is a TLS alert; to refuse at the TLS layer, set "
                "deployment client_auth to required",
            )
        if (
            not isinstance(answer.status, int)
            or isinstance(answer.status, bool)
            or not 100 <= answer.status <= 599
        ):
            raise InterpretationError(where, f"status {answer.status!r} is not an HTTP status code")
        try:
            self._challenges(answer, scope="read")
        except ChallengeError as exc:
            raise InterpretationError(where, str(exc)) from None
        try:
            string.Template(answer.body).substitute(
                _template_values(answer, status=answer.status, sub="", client_id="")
            )
        except (KeyError, ValueError) as exc:
            raise InterpretationError(f"{where}.body", f"bad template placeholder {exc}") from None

    # ---- the table ------------------------------------------------------------------------------------
    def answer(self, finding: Finding) -> Answer:
        """The answer for ``finding``, with ``same_as`` resolved (flags of the alias kept)."""
        answer = self._index[finding]
        if answer.same_as is None:
            return answer
        target = self._index[answer.same_as]
        return replace(
            target,
            assumed=target.assumed or answer.assumed,
            unspecified=target.unspecified or answer.unspecified,
            note=answer.note or target.note,
        )

    def adapt(self, deployment: Deployment) -> Deployment:
        """The deployment as this interpretation runs it (its overrides applied); idempotent."""
        if not self.deployment:
            return deployment
        adapted = self._adapted.get(deployment)
        if adapted is None:
            adapted = self._adapted[deployment] = self._adapt(deployment)
        return adapted

    def _adapt(self, deployment: Deployment) -> Deployment:
        changes = dict(self.deployment)
        if changes.get("client_auth") == "required-as-deployed":
            changes["client_auth"] = (
                ClientAuth.REQUIRED_NO_CA
                if not deployment.client_auth.validates
                and deployment.client_auth is not ClientAuth.NONE
                else ClientAuth.REQUIRED
            )
        return replace(deployment, **changes)

    # ---- responding -----------------------------------------------------------------------------------
    def respond(self, decision: Decision | None, *, tls_alert: TlsAlert | None = None) -> Outcome:
        """The outcome for a decision (or for a TLS alert, when the handshake failed)."""
        if tls_alert is not None or decision is None:
            if tls_alert is None:
                raise InterpretationError("respond", "give a decision or a TLS alert")
            answer = self.answer(Finding.TLS_REJECTED)
            return Outcome(finding=Finding.TLS_REJECTED, tls_alert=tls_alert, note=answer.note)
        key = (decision.finding, decision.required_scope, decision.subject, decision.client_id)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._build(decision.finding, self.answer(decision.finding), decision)
            self._cache[key] = cached
        return cached

    def _challenges(self, answer: Answer, *, scope: str) -> list[Challenge]:
        if answer.scheme is None:
            return [c for raw in answer.extra_challenges for c in parse_www_authenticate(raw)]
        realm = self.realm if answer.realm else None
        first = bearer(
            scheme="Bearer" if answer.scheme.lower() == "bearer" else answer.scheme,
            realm=realm,
            scope=scope if answer.scope else None,
            error=answer.error,
            error_description=answer.description,
            error_uri=answer.error_uri,
            extra=answer.params,
        )
        extra = [c for raw in answer.extra_challenges for c in parse_www_authenticate(raw)]
        return [first, *extra]

    def _build(self, finding: Finding, answer: Answer, decision: Decision) -> Outcome:
        assert answer.status is not None
        challenges = self._challenges(answer, scope=decision.required_scope)
        header = format_challenges(challenges, separator=answer.separator) if challenges else None
        values = _template_values(
            answer,
            status=answer.status,
            sub=decision.subject or "",
            client_id=decision.client_id or "",
        )
        return Outcome(
            finding=finding,
            status=answer.status,
            www_authenticate=header,
            error=answer.error,
            content_type=answer.content_type,
            body=string.Template(answer.body).substitute(values),
            unspecified=answer.unspecified,
            assumed=answer.assumed,
            note=answer.note,
        )

    # ---- JSON -----------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_json` loads back into an equal interpretation."""
        return {
            "name": self.name,
            "title": self.title,
            "stance": self.stance,
            "kind": self.kind,
            "base": self.base,
            "source": {
                "kind": self.source.kind,
                "citation": self.source.citation,
                "url": self.source.url,
            },
            "departures": [{"what": d.what, "reason": d.reason} for d in self.departures],
            "realm": self.realm,
            "deployment": {k: v.value if hasattr(v, "value") else v for k, v in self.deployment},
            "answers": {f.value: a.to_json() for f, a in self.answers},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> Interpretation:
        """Load an interpretation; findings it leaves out are inherited from its ``base`` (default: the
        baseline) and marked assumed."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise InterpretationError("json", f"not JSON ({exc})") from None
        if not isinstance(data, Mapping):
            raise InterpretationError("json", "an interpretation is a JSON object")
        try:
            name = str(data["name"])
        except KeyError:
            raise InterpretationError("name", "missing") from None
        base_name = data.get("base") or "baseline"
        base = BUILTINS.get(base_name)
        given = data.get("answers", {})
        if not isinstance(given, Mapping):
            raise InterpretationError(f"{name}.answers", "must be an object of finding → answer")
        answers: dict[Finding, Answer] = {}
        for key, value in given.items():
            try:
                finding = Finding(key)
            except ValueError:
                near = difflib.get_close_matches(key, [f.value for f in Finding], n=1)
                hint = f"; did you mean {near[0]}?" if near else ""
                raise InterpretationError(
                    f"{name}.answers", f"{key!r} is not a finding{hint}"
                ) from None
            if not isinstance(value, Mapping):
                raise InterpretationError(f"{name}.answers.{key}", "must be an object")
            answers[finding] = Answer.from_json(value, where=f"{name}.answers.{key}")
        for finding in Finding:
            if finding not in answers:
                if base is None:
                    near = difflib.get_close_matches(str(base_name), list(BUILTINS), n=1)
                    hint = f"; did you mean {near[0]}?" if near else ""
                    raise InterpretationError(
                        f"{name}.base",
                        f"no answer for {finding.value}, and {base_name!r} is not a built-in "
                        f"interpretation to inherit it from{hint}",
                    )
                inherited = base._index[finding]
                answers[finding] = (
                    replace(inherited, assumed=True)
                    if data.get("kind") == "observed"
                    else inherited
                )
        source = data.get("source") or {}
        try:
            return cls(
                name=name,
                title=str(data.get("title", name)),
                stance=str(data.get("stance", "")),
                kind=data.get("kind", "custom"),
                base=data.get("base"),
                source=Source(
                    kind=source.get("kind", "user"),
                    citation=source.get("citation", "user-defined"),
                    url=source.get("url", ""),
                ),
                departures=tuple(
                    Departure(what=d["what"], reason=d["reason"])
                    for d in data.get("departures", ())
                ),
                realm=data.get("realm", "mtlslab"),
                deployment=_deployment_overrides(
                    data.get("deployment", {}), where=f"{name}.deployment"
                ),
                answers=_in_finding_order(answers),
            )
        except (KeyError, TypeError) as exc:
            raise InterpretationError(name, f"cannot load ({exc})") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Interpretation):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"<Interpretation {self.name} ({self.kind}): {self.stance}>"

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><td style='padding:2px 8px;font-family:monospace'>{html.escape(f.value)}</td>"
            f"<td style='padding:2px 8px'>{html.escape(_answer_text(self.answer(f)))}</td></tr>"
            for f in Finding
        )
        departures = "".join(
            f"<li>{html.escape(d.what)} — {html.escape(d.reason)}</li>" for d in self.departures
        )
        return (
            f"<div style='border:1px solid #ccc;border-radius:4px;padding:6px'><b>{html.escape(self.title)}</b> "
            f"<span style='color:#555'>({html.escape(self.name)}, {self.kind})</span>"
            f"<div>{html.escape(self.stance)}</div><div style='color:#555'>source: {html.escape(str(self.source))}</div>"
            f"{'<ul>' + departures + '</ul>' if departures else ''}"
            f"<table style='border-collapse:collapse'>{rows}</table></div>"
        )


def _answer_text(answer: Answer) -> str:
    if answer.tls_alert:
        return "TLS alert"
    text = f"{answer.status}"
    if answer.error:
        text += f" {answer.error}"
    if answer.scheme:
        text += f" ({answer.scheme} challenge)"
    if answer.unspecified:
        text += " [unspecified]"
    elif answer.assumed:
        text += " [assumed]"
    return text


def _template_values(answer: Answer, *, status: int, sub: str, client_id: str) -> dict[str, str]:
    return {
        "error": answer.error or "",
        "description": answer.description or "",
        "status": str(status),
        "reason": reason_phrase(status),
        "sub": _json_text(sub),
        "client_id": _json_text(client_id),
    }


def _json_text(value: str) -> str:
    return json.dumps(value)[1:-1]


def _deployment_overrides(data: Any, *, where: str) -> tuple[tuple[str, Any], ...]:
    if not isinstance(data, Mapping):
        raise InterpretationError(where, "must be an object of deployment field → value")
    if not data:
        return ()
    special = {k: v for k, v in data.items() if v == "required-as-deployed"}
    rest = {k: v for k, v in data.items() if k not in special}
    try:
        parsed = Deployment.from_json(rest) if rest else Deployment()
    except Exception as exc:
        raise InterpretationError(where, str(exc)) from None
    values = {k: getattr(parsed, k) for k in rest}
    values.update(special)
    return tuple(sorted(values.items()))


def derive(
    base: Interpretation,
    *,
    name: str,
    title: str | None = None,
    stance: str = "",
    answers: Mapping[Finding, Answer] | None = None,
    deployment: Mapping[str, Any] | None = None,
    departures: Iterable[Departure] = (),
    realm: str | Literal["inherit"] | None = "inherit",
    source: Source | None = None,
) -> Interpretation:
    """A new interpretation: ``base`` with some findings answered differently (rules as data)."""
    merged = dict(base.answers)
    merged.update(answers or {})
    overrides = dict(base.deployment)
    if deployment:
        overrides.update(dict(_deployment_overrides(deployment, where=f"{name}.deployment")))
    return Interpretation(
        name=name,
        title=title or name,
        stance=stance or base.stance,
        source=source or Source(kind="user", citation=f"derived from {base.name}"),
        kind="custom",
        base=base.name,
        answers=_in_finding_order(merged),
        departures=(*base.departures, *departures),
        realm=base.realm if realm == "inherit" else realm,
        deployment=tuple(sorted(overrides.items())),
    )


# --------------------------------------------------------------------------------------------------
# The built-ins.

_F = Finding
_UNSPECIFIED_NOTE = (
    "RFC 8705 §3 says what to do on a mismatch, not when no certificate came at all; RFC 6750 §3 only requires a "
    "challenge, so this cell shows the bare challenge and is marked unspecified"
)


_DPOP_ALGS = (
    ("algs", "ES256"),
)  # RFC 9449 §7.1: the DPoP challenge SHOULD list the accepted algorithms


def _baseline_answers() -> dict[Finding, Answer]:
    invalid_token = Answer(status=401, error="invalid_token")
    return {
        _F.TLS_REJECTED: Answer(
            status=None,
            tls_alert=True,
            scheme=None,
            note="the TLS layer answers; no HTTP response exists",
        ),
        _F.HEADERS_TOO_LARGE: _HEADERS_TOO_LARGE,
        _F.BODY_TOO_LARGE: _BODY_TOO_LARGE,
        _F.NO_TOKEN: Answer(
            status=401, note="RFC 6750 §3.1: no error code when the request has no authentication"
        ),
        _F.MALFORMED_AUTHORIZATION: Answer(status=400, error="invalid_request"),
        _F.MULTIPLE_METHODS: Answer(status=400, error="invalid_request"),
        _F.TOKEN_MALFORMED: invalid_token,
        _F.BAD_SIGNATURE: invalid_token,
        _F.TOKEN_EXPIRED: invalid_token,
        _F.TOKEN_NOT_YET_VALID: invalid_token,
        _F.WRONG_ISSUER: invalid_token,
        _F.WRONG_AUDIENCE: invalid_token,
        _F.TOKEN_INACTIVE: invalid_token,
        _F.DPOP_TOKEN_AS_BEARER: Answer(
            status=401,
            error="invalid_token",
            extra_challenges=('DPoP algs="ES256"',),
            note="RFC 9449 §7.2: refuse, and a server supporting both schemes may send both challenges",
        ),
        _F.MTLS_TOKEN_AS_BEARER: Answer(
            status=401,
            error="invalid_token",
            assumed=True,
            note="cannot arise here: no server of the baseline has an MTLS scheme",
        ),
        _F.DPOP_PROOF_MISSING: Answer(
            status=401,
            scheme="DPoP",
            error="invalid_dpop_proof",
            realm=False,
            params=_DPOP_ALGS,
            note="RFC 9449 §7.1: a missing proof fails §4.3; algs SHOULD be sent",
        ),
        _F.DPOP_PROOF_INVALID: Answer(
            status=401, scheme="DPoP", error="invalid_dpop_proof", realm=False, params=_DPOP_ALGS
        ),
        _F.DPOP_KEY_MISMATCH: Answer(
            status=401,
            scheme="DPoP",
            error="invalid_token",
            realm=False,
            description="Invalid DPoP key binding",
            params=_DPOP_ALGS,
            note="RFC 9449 §7.1's own example",
        ),
        _F.UNTRUSTED_CLIENT_CERT_HEADER: Answer(
            same_as=_F.CERTIFICATE_MISSING,
            note="RFC 9440: an untrusted header is ignored, so no certificate came",
        ),
        _F.CERTIFICATE_MISSING: Answer(status=401, unspecified=True, note=_UNSPECIFIED_NOTE),
        _F.CERTIFICATE_MISMATCH: Answer(
            status=401, error="invalid_token", note="RFC 8705 §3, the explicit case"
        ),
        _F.UNSUPPORTED_CONFIRMATION: Answer(
            status=401, error="invalid_token", note="RFC 6750 §3.1: invalid for other reasons"
        ),
        _F.TOKEN_NOT_BOUND: invalid_token,
        _F.INSUFFICIENT_SCOPE: Answer(status=403, error="insufficient_scope", scope=True),
        _F.ACCEPTED: _ACCEPTED,
        _F.ACCEPTED_ALTHOUGH_BOUND: _ACCEPTED,
    }


def _make(
    name: str,
    title: str,
    stance: str,
    source: Source,
    kind: InterpretationKind,
    changes: Mapping[Finding, Answer],
    *,
    departures: Iterable[Departure] = (),
    realm: str | None = "mtlslab",
    deployment: Mapping[str, Any] | None = None,
    assume_rest: bool = False,
) -> Interpretation:
    answers = _baseline_answers()
    if assume_rest:
        answers = {
            f: a
            if f
            in (
                _F.TLS_REJECTED,
                _F.ACCEPTED,
                _F.ACCEPTED_ALTHOUGH_BOUND,
                _F.UNTRUSTED_CLIENT_CERT_HEADER,
            )
            else replace(
                a,
                assumed=True,
                unspecified=False,
                note="not shown by the source: inherited from the baseline",
            )
            for f, a in answers.items()
        }
        answers[_F.UNTRUSTED_CLIENT_CERT_HEADER] = Answer(
            same_as=_F.CERTIFICATE_MISSING,
            assumed=True,
            note="the header is ignored, so the server sees no certificate (assumed)",
        )
    answers.update(changes)
    return Interpretation(
        name=name,
        title=title,
        stance=stance,
        source=source,
        kind=kind,
        answers=_in_finding_order(answers),
        departures=tuple(departures),
        realm=realm,
        deployment=_deployment_overrides(deployment or {}, where=f"{name}.deployment"),
    )


_RICHER_10NOV = "https://mailarchive.ietf.org/arch/msg/oauth/XfeH2q0Rwa2YocsR484xk-8LMqc/"
_RICHER_17NOV = "https://mailarchive.ietf.org/arch/msg/oauth/0AqJC-xFPFBrz_CxC08I2tJ49ws/"
_KEYCLOAK_MSG = "Client certificate missing, or its thumbprint and one in the token did NOT match"
_KEYCLOAK_NOTE = "observed in the source (newer text; 19.0.2's first versions said '…one in the refresh token did NOT match')"
_SPRING_PREFIX = "An error occurred while attempting to decode the Jwt: "
_SPRING_URI = "https://tools.ietf.org/html/rfc6750#section-3.1"
_AUTH0_DPOP = 'DPoP algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES256K ES384 ES512 EdDSA"'
_EXPRESS_HTML = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n<body>\n'
    "<pre>$reason</pre>\n</body>\n</html>\n"
)
_OBSERVED = "observed in the source"


def _builtins() -> dict[str, Interpretation]:
    baseline = _make(
        "baseline",
        "RFC 6750 + RFC 8705 as written",
        "Answer what the RFCs say and nothing more; where they are silent, say so.",
        Source(
            kind="rfc",
            citation="RFC 6750 §3.1, RFC 8705 §3, RFC 9449 §7",
            url="https://www.rfc-editor.org/rfc/rfc8705#section-3",
        ),
        "baseline",
        {},
        departures=(
            Departure(
                what="missing certificate: a bare 401 challenge marked unspecified",
                reason="RFC 8705 §3 defines no error for it; the cell shows the gap, not a guess",
            ),
        ),
    )
    thread_400 = _make(
        "thread-400",
        "Missing certificate is a malformed request (400 invalid_request)",
        "No certificate makes the request itself incomplete: RFC 6750 §3.1's invalid_request.",
        Source(
            kind="mailing-list",
            citation="Dmitry Telegin, OAuth WG list, 24 Sep and 10 Nov 2021 (quoted in "
            "Richer's reply)",
            url=_RICHER_10NOV,
        ),
        "reading",
        {_F.CERTIFICATE_MISSING: Answer(status=400, error="invalid_request")},
        departures=(
            Departure(
                what="missing certificate → 400 invalid_request",
                reason="RFC 6750 §3.1: the request is missing something it requires",
            ),
        ),
    )
    thread_401 = _make(
        "thread-401",
        "Missing certificate is an invalid token (401 invalid_token)",
        "The request is fine; the client failed to present what the token requires: invalid_token.",
        Source(
            kind="mailing-list",
            citation="Justin Richer, OAuth WG list, 10 Nov 2021",
            url=_RICHER_10NOV,
        ),
        "reading",
        {_F.CERTIFICATE_MISSING: Answer(status=401, error="invalid_token")},
        departures=(
            Departure(
                what="missing certificate → 401 invalid_token",
                reason="treated like RFC 8705 §3's mismatch: the token cannot be used this way",
            ),
        ),
    )
    dpop_analogy = _make(
        "dpop-analogy",
        "As DPoP does it: a dedicated scheme and error code (hypothetical)",
        "Give MTLS tokens their own Authorization scheme and error code, as RFC 9449 does for DPoP.",
        Source(
            kind="hypothetical",
            citation="Justin Richer, OAuth WG list, 10 and 17 Nov 2021; RFC 9449 §7",
            url=_RICHER_17NOV,
        ),
        "hypothetical",
        {
            _F.CERTIFICATE_MISSING: Answer(
                status=401,
                scheme="MTLS",
                error="invalid_client_certificate",
                note="hypothetical, unregistered scheme and error code",
            ),
            _F.CERTIFICATE_MISMATCH: Answer(
                status=401,
                scheme="MTLS",
                error="invalid_token",
                description="Invalid certificate binding",
                note="like RFC 9449 §7.1's key-binding failure",
            ),
            _F.MTLS_TOKEN_AS_BEARER: Answer(
                status=401,
                error="invalid_token",
                extra_challenges=("MTLS",),
                note="like RFC 9449 §7.2: a bound token sent as Bearer is refused",
            ),
            _F.TOKEN_NOT_BOUND: Answer(status=401, scheme="MTLS", error="invalid_token"),
            _F.UNTRUSTED_CLIENT_CERT_HEADER: Answer(same_as=_F.CERTIFICATE_MISSING),
        },
        departures=(
            Departure(
                what="the MTLS scheme and the invalid_client_certificate code are hypothetical",
                reason="mtlslab's names, not Richer's, and neither is registered (IANA HTTP Authentication "
                "Schemes; OAuth Extensions Error registry); this shows what the analogy would mean",
            ),
            Departure(
                what="certificate-bound tokens sent as Bearer are refused",
                reason="by analogy with RFC 9449 §7.2; today's clients, which all use Bearer, would break. "
                "So in every Bearer row this reading answers 'bound token as Bearer' (401 invalid_token) before "
                "it looks at the certificate: that is not agreement with thread-401; its own missing-certificate "
                "answer shows in the MTLS-scheme rows",
            ),
        ),
        deployment={"mtls_scheme": True},
    )
    tls_required = _make(
        "tls-required",
        "Require client certificates at the TLS layer",
        "Ask for the certificate at the TLS layer as required; the HTTP question never arises.",
        Source(
            kind="rfc",
            citation="RFC 8705 §3 (the server must know before the handshake); RFC 8446 §4.4.2.4",
            url="https://www.rfc-editor.org/rfc/rfc8446#section-4.4.2.4",
        ),
        "reading",
        {},
        departures=(
            Departure(
                what="clients without a certificate get a TLS alert, not an HTTP answer",
                reason="certificate_required (116) in TLS 1.3, seen at the client's first read; handshake_failure "
                "(40) in TLS 1.2",
            ),
            Departure(
                what="clients with unbound tokens and no certificate are shut out too",
                reason="the TLS layer cannot know which token will follow",
            ),
        ),
        deployment={"client_auth": "required-as-deployed"},
    )
    keycloak = _make(
        "keycloak",
        "Keycloak, recent versions (UserInfo)",
        "401 invalid_token for both a missing and a mismatched certificate, one message for both.",
        Source(
            kind="repository",
            citation="keycloak/keycloak services/…/endpoints/UserInfoEndpoint.java, "
            "services/…/util/MtlsHoKTokenUtil.java; PR #14237",
            url="https://github.com/keycloak/keycloak/pull/14237",
        ),
        "observed",
        {
            _F.CERTIFICATE_MISSING: Answer(
                status=401, error="invalid_token", description=_KEYCLOAK_MSG, note=_KEYCLOAK_NOTE
            ),
            _F.CERTIFICATE_MISMATCH: Answer(
                status=401, error="invalid_token", description=_KEYCLOAK_MSG, note=_KEYCLOAK_NOTE
            ),
        },
        departures=(
            Departure(
                what="binding is checked only for clients with the 'use MTLS HoK token' option",
                reason="modelled with the option on; without it cnf is ignored",
            ),
            Departure(
                what="the description is the newer text",
                reason="from 19.0.2 Keycloak first said '…one in the refresh token did NOT match'; newer "
                "versions say '…one in the token did NOT match'",
            ),
        ),
        assume_rest=True,
    )
    keycloak_legacy = _make(
        "keycloak-legacy",
        "Keycloak, older versions (UserInfo)",
        "401 unauthorized_client — not an RFC 6750 resource error code — for both cases.",
        Source(
            kind="repository",
            citation="keycloak/keycloak UserInfoEndpoint.java, MtlsHoKTokenUtil.java (older history)",
            url="https://github.com/keycloak/keycloak/pull/14237",
        ),
        "observed",
        {
            _F.CERTIFICATE_MISSING: Answer(
                status=401,
                error="unauthorized_client",
                assumed=True,
                note="status and code observed; the challenge's exact form assumed",
            ),
            _F.CERTIFICATE_MISMATCH: Answer(
                status=401,
                error="unauthorized_client",
                assumed=True,
                note="status and code observed; the challenge's exact form assumed",
            ),
        },
        departures=(
            Departure(
                what="unauthorized_client",
                reason="an RFC 6749 token-endpoint code, not an RFC 6750 one",
            ),
        ),
        assume_rest=True,
    )
    spring = _make(
        "spring-security",
        "Spring Security ≥ 6.3 (JWT resource server)",
        "401 invalid_token for both, with the validator's message and an error_uri; no realm.",
        Source(
            kind="repository",
            citation="spring-projects/spring-security oauth2/oauth2-jose/…/jwt/"
            "X509CertificateThumbprintValidator.java, …/resource/web/BearerTokenAuthenticationEntryPoint.java",
            url="https://github.com/spring-projects/spring-security",
        ),
        "observed",
        {
            _F.CERTIFICATE_MISSING: Answer(
                status=401,
                error="invalid_token",
                error_uri=_SPRING_URI,
                description=_SPRING_PREFIX
                + "Unable to obtain X509Certificate from current request.",
                assumed=True,
                note="status, error, error_uri and the end of the description observed; the description's "
                "prefix assumed to be the one (a) shows",
            ),
            _F.CERTIFICATE_MISMATCH: Answer(
                status=401,
                error="invalid_token",
                error_uri=_SPRING_URI,
                description=_SPRING_PREFIX + "Invalid SHA-256 Thumbprint for X509Certificate.",
                note=_OBSERVED,
            ),
            _F.UNTRUSTED_CLIENT_CERT_HEADER: Answer(
                same_as=_F.CERTIFICATE_MISSING,
                assumed=True,
                note="observed for a proxy's header: without a certificate supplier every bound token lands in "
                "the missing-certificate case; a client's own header on a direct connection is assumed to be "
                "ignored the same way",
            ),
        },
        departures=(
            Departure(
                what="behind a TLS-terminating proxy every bound token fails as 'no certificate'",
                reason="by default no certificate supplier reads a forwarded Client-Cert",
            ),
        ),
        realm=None,
        deployment={"proxy_trusted": False},
        assume_rest=True,
    )
    oidc_provider = _make(
        "node-oidc-provider",
        "node-oidc-provider 9.13 (UserInfo)",
        "401 invalid_token 'invalid token provided' for both, in the challenge and in a JSON body.",
        Source(
            kind="repository",
            citation="panva/node-oidc-provider lib/shared/access_token.js, lib/helpers/errors.js "
            "(verified by running it)",
            url="https://github.com/panva/node-oidc-provider",
        ),
        "observed",
        {
            f: Answer(
                status=401,
                error="invalid_token",
                description="invalid token provided",
                body='{"error":"$error","error_description":"$description"}',
                content_type="application/json; charset=utf-8",
                note="observed in the source (the Content-Type is Koa's for a JSON body)",
            )
            for f in (_F.CERTIFICATE_MISSING, _F.CERTIFICATE_MISMATCH)
        },
        realm=LAB_ISSUER,
        assume_rest=True,
    )
    authlete = _make(
        "authlete",
        "Authlete (introspection-driven resource server)",
        "401 invalid_token with a coded description and error_uri; the certificate goes to introspection.",
        Source(
            kind="repository",
            citation="authlete/authlete-java-common IntrospectionResponse.java; "
            "authlete/java-resource-server PR #9",
            url="https://docs.authlete.com/#A065304",
        ),
        "observed",
        {
            _F.CERTIFICATE_MISSING: Answer(
                status=401,
                error="invalid_token",
                separator=",",
                realm=False,
                description="[A065304] The client failed to present a certificate and the access token is MTLS bound.",
                error_uri="https://docs.authlete.com/#A065304",
                note=_OBSERVED,
            ),
            _F.CERTIFICATE_MISMATCH: Answer(
                status=401,
                error="invalid_token",
                separator=",",
                realm=False,
                assumed=True,
                note="401 observed; the text is unconfirmed",
            ),
        },
        realm=None,
        deployment={"validation": "introspection"},
        assume_rest=True,
    )
    auth0 = _make(
        "auth0",
        "auth0 express-oauth2-jwt-bearer 1.10 (with a certificate supplier)",
        "Splits the cases: 401 invalid_token on a mismatch, 400 invalid_request on a missing certificate.",
        Source(
            kind="repository",
            citation="auth0/node-oauth2-jwt-bearer packages/access-token-jwt/src/mtls-verifier.ts "
            "(verified by running it)",
            url="https://github.com/auth0/node-oauth2-jwt-bearer",
        ),
        "observed",
        {
            _F.CERTIFICATE_MISMATCH: Answer(
                status=401,
                error="invalid_token",
                description="JWT Access Token confirmation mismatch",
                extra_challenges=(_AUTH0_DPOP,),
                body=_EXPRESS_HTML,
                content_type="text/html; charset=utf-8",
                note="observed; the HTML body is Express's production error page",
            ),
            _F.CERTIFICATE_MISSING: Answer(
                status=400,
                error="invalid_request",
                description="A client certificate is required for this certificate-bound access token",
                extra_challenges=(_AUTH0_DPOP,),
                body=_EXPRESS_HTML,
                content_type="text/html; charset=utf-8",
                note="observed; the HTML body is Express's production error page",
            ),
            _F.TOKEN_NOT_BOUND: Answer(
                status=401,
                error="invalid_token",
                description="JWT Access Token has no x5t#S256 confirmation claim",
                extra_challenges=(_AUTH0_DPOP,),
                body=_EXPRESS_HTML,
                content_type="text/html; charset=utf-8",
                note="observed with mtls.required",
            ),
        },
        departures=(
            Departure(
                what="binding is checked only when a certificate supplier is configured",
                reason="the default ignores cnf: see auth0-default",
            ),
        ),
        realm="api",
        assume_rest=True,
    )
    auth0_default = _make(
        "auth0-default",
        "auth0 express-oauth2-jwt-bearer 1.10 (default: no certificate supplier)",
        "Ignores cnf: a certificate-bound token is accepted from anyone.",
        Source(
            kind="repository",
            citation="auth0/node-oauth2-jwt-bearer packages/access-token-jwt/src/mtls-verifier.ts "
            "(verified by running it)",
            url="https://github.com/auth0/node-oauth2-jwt-bearer",
        ),
        "observed",
        {},
        departures=(
            Departure(
                what="cnf is not checked", reason="no certificate supplier is configured by default"
            ),
        ),
        realm="api",
        deployment={"checks_binding": False},
        assume_rest=True,
    )
    apicast = _make(
        "apicast",
        "3scale APIcast oauth_mtls policy",
        "401 with a JSON body and no WWW-Authenticate, for both; tokens without cnf are refused too.",
        Source(
            kind="repository",
            citation="3scale/APIcast gateway/src/apicast/policy/oauth_mtls/oauth_mtls.lua",
            url="https://github.com/3scale/APIcast",
        ),
        "observed",
        {
            f: Answer(
                status=401,
                scheme=None,
                error="invalid_token",
                body='{"error": "invalid_token"}',
                content_type="application/json; charset=utf-8",
                note="observed in the source (the Content-Type as oauth_mtls.lua sets it)",
            )
            for f in (
                _F.CERTIFICATE_MISSING,
                _F.CERTIFICATE_MISMATCH,
                _F.TOKEN_NOT_BOUND,
            )
        }
        | {
            _F.UNSUPPORTED_CONFIRMATION: Answer(
                status=401,
                scheme=None,
                error="invalid_token",
                body='{"error": "invalid_token"}',
                content_type="application/json; charset=utf-8",
                assumed=True,
                note="cnf without x5t#S256: read off the same branch of oauth_mtls.lua, not in the source notes",
            )
        },
        departures=(
            Departure(
                what="401 without WWW-Authenticate",
                reason="RFC 9110 §15.5.2 requires the challenge",
            ),
            Departure(what="unbound tokens refused", reason="the policy requires cnf"),
        ),
        deployment={"requires_binding": True},
        assume_rest=True,
    )
    duende = _make(
        "duende-sample",
        "Duende IdentityServer documentation sample",
        "401 Bearer challenge on a mismatch; 403 (forbid) when no certificate came.",
        Source(
            kind="documentation",
            citation="Duende docs 'Validating Proof-of-Possession'; dotnet/aspnetcore "
            "CertificateAuthenticationHandler.cs",
            url="https://docs.duendesoftware.com/",
        ),
        "observed",
        {
            _F.CERTIFICATE_MISMATCH: Answer(
                status=401,
                error="invalid_token",
                realm=False,
                assumed=True,
                note="401 with a Bearer challenge observed; the error parameter assumed",
            ),
            _F.CERTIFICATE_MISSING: Answer(
                status=403, scheme=None, note="observed: the certificate handler forbids"
            ),
        },
        departures=(
            Departure(
                what="missing certificate → 403",
                reason="the certificate handler turns the challenge into a forbid",
            ),
        ),
        realm=None,
        assume_rest=True,
    )
    return {
        i.name: i
        for i in (
            baseline,
            thread_400,
            thread_401,
            dpop_analogy,
            tls_required,
            keycloak,
            keycloak_legacy,
            spring,
            oidc_provider,
            authlete,
            auth0,
            auth0_default,
            apicast,
            duende,
        )
    }


#: The built-in interpretations, by name, in display order.
BUILTINS: dict[str, Interpretation] = _builtins()


def get_interpretation(name: str) -> Interpretation:
    """A built-in interpretation by name; an unknown name suggests the nearest."""
    found = BUILTINS.get(name)
    if found is not None:
        return found
    near = difflib.get_close_matches(name, list(BUILTINS), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(near)}?" if near else f"; known: {', '.join(BUILTINS)}"
    raise InterpretationError("interpretation", f"unknown interpretation {name!r}{hint}")
