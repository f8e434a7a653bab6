"""Interpretations as data: for every finding, what a reading of the specs (or a real server) answers.

One finding, many readings. An :class:`Interpretation` is a table — name, one-line stance, source, the
departures from the RFC text with reasons, optional changes to the deployment (a server that requires
certificates at the TLS layer, or does not check binding), and an :class:`Answer` for every
:class:`~mtlslab.findings.Finding`. :meth:`Interpretation.respond` turns a decision into an
:class:`Outcome`: a TLS alert, or an HTTP status with ``WWW-Authenticate`` and body.

The built-ins (:data:`BUILTINS`) are data: ``mtlslab/data/interpretations.json``, loaded by the loader that
loads a user's file (:meth:`Interpretation.from_json`), with one inheritance rule (:func:`inherit`): a
reading states the answers where it differs from its ``base`` (default: the baseline) and inherits the
rest; an *observed* server's inherited answers are marked *assumed*, since its source does not show them.
Adding a server is a data diff; a reading of your own is :func:`derive` of another (README.md shows one).
"""

from __future__ import annotations

import difflib
import functools
import html
import json
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from http import HTTPStatus
from typing import Any, Literal, get_args

from mtlslab.challenge import (
    TOKEN,
    Challenge,
    ChallengeError,
    bearer,
    format_challenges,
    parse_www_authenticate,
)
from mtlslab.errors import InterpretationError, ScenarioError
from mtlslab.findings import Finding
from mtlslab.jose import DPOP_ALGS
from mtlslab.rs import Decision
from mtlslab.scenarios import Deployment, deployment_overrides
from mtlslab.spec import DuplicateName, read_data, shorten, unique_names
from mtlslab.tls import TlsAlert

__all__ = [
    "BUILTINS",
    "UNSPECIFIED_ERROR",
    "Answer",
    "Departure",
    "Interpretation",
    "InterpretationKind",
    "Outcome",
    "Source",
    "SourceKind",
    "derive",
    "get_interpretation",
    "inherit",
    "reason_phrase",
]

SourceKind = Literal["rfc", "mailing-list", "repository", "documentation", "hypothetical", "user"]
InterpretationKind = Literal["baseline", "reading", "hypothetical", "observed", "custom"]
_SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)
_KINDS: tuple[str, ...] = get_args(InterpretationKind)


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
    """A stated departure from the RFC text, with its reason, and what it is about: the findings whose
    answers, or the deployment fields whose values, make it (empty: the reading as a whole)."""

    what: str
    reason: str
    about: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """What to send back for one finding.

    ``status=None`` with ``tls_alert=True`` means the answer is the TLS alert itself. ``scheme=None`` means
    no ``WWW-Authenticate``; ``params`` are auth-params after the RFC 6750 ones (e.g. DPoP ``algs``). ``body``
    is a :class:`string.Template` (``$error``, ``$description``, ``$status``, ``$reason``, ``$sub``,
    ``$client_id``), and so are the values of ``headers``, further response fields. ``same_as`` answers
    exactly like another finding.
    """

    status: int | None = 401
    tls_alert: bool = False
    scheme: str | None = "Bearer"
    error: str | None = None
    description: str | None = None
    error_uri: str | None = None
    realm: bool = True
    scope: bool = False
    params: tuple[tuple[str, str], ...] = ()
    extra_challenges: tuple[str, ...] = ()
    separator: str = ", "
    body: str = ""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    same_as: Finding | None = None
    unspecified: bool = False
    assumed: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        # Every field read once, as from JSON, however the answer was made: a bad value is an
        # InterpretationError naming the field, lists are kept as tuples (so the answer can be hashed).
        for name, read in _ANSWER_FIELDS.items():
            object.__setattr__(self, name, read(getattr(self, name), name))

    def to_json(self) -> dict[str, Any]:
        """Only the fields that differ from the defaults."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                if isinstance(value, Finding):
                    value = value.value
                elif isinstance(value, tuple):
                    value = [list(v) if isinstance(v, tuple) else v for v in value]
                out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: object, *, where: str = "answer") -> Answer:
        """The inverse of :meth:`to_json`: every field of the right type, or :class:`InterpretationError`
        naming it."""
        found = _object(data, where, known=_ANSWER_FIELDS)
        try:
            return cls(**found)
        except InterpretationError as exc:
            raise InterpretationError(f"{where}.{exc.field}", exc.reason) from None


def _object(data: object, where: str, *, known: Iterable[str] = ()) -> Mapping[str, Any]:
    """``data`` if it is a JSON object; with ``known``, one whose names are all among them."""
    if not isinstance(data, Mapping):
        raise InterpretationError(where, f"must be a JSON object, not {_json_type(data)}")
    unknown = set(data) - set(known) if known else set()
    if unknown:
        raise InterpretationError(where, f"unknown field(s) {', '.join(sorted(unknown))}")
    return data


def _json_type(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}
    return "null" if value is None else names.get(type(value), "an object")


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise InterpretationError(where, f"must be a string, not {_json_type(value)}")
    return value


def _optional_text(value: object, where: str) -> str | None:
    return None if value is None else _text(value, where)


def _choice(value: object, choices: tuple[str, ...], where: str) -> str:
    text = _text(value, where)
    if text not in choices:
        raise InterpretationError(where, f"{text!r} is not one of {', '.join(choices)}")
    return text


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise InterpretationError(where, f"must be true or false, not {_json_type(value)}")
    return value


def _status(value: object, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 599:
        raise InterpretationError(
            where, f"{shorten(value, 40, quote=True)} is not an HTTP status code (100-599)"
        )
    return value


#: RFC 9110 §5.5: a field value is visible ASCII, spaces and tabs; never CR, LF or NUL. mtlslab's own
#: header values stay within printable ASCII, so simulation and wire cannot differ on how they are encoded.
_FIELD_VALUE = re.compile(r"[\x20-\x7e]+")


def _content_type(value: object, where: str) -> str | None:
    text = _optional_text(value, where)
    if text is not None and not _FIELD_VALUE.fullmatch(text):
        raise InterpretationError(
            where,
            "a header value of printable ASCII only (RFC 9110 §5.5: no CR, LF, NUL or other control "
            "characters)",
        )
    return text


def _pairs(value: object, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        for pair in value
    ):
        raise InterpretationError(where, "a list of [name, value] pairs of strings")
    return tuple((name, text) for name, text in value)


def _fields(value: object, where: str) -> tuple[tuple[str, str], ...]:
    pairs = _pairs(value, where)
    for name, text in pairs:
        if not TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(text):
            raise InterpretationError(
                where,
                f"{name!r}: a field name (RFC 9110 §5.1) and a value of printable ASCII (§5.5)",
            )
    return pairs


def _texts(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise InterpretationError(where, "a list of strings")
    return tuple(value)


def _finding(value: object, where: str) -> Finding | None:
    if value is None or isinstance(value, Finding):
        return value
    try:
        return Finding(_text(value, where))
    except ValueError:
        raise InterpretationError(where, f"{value!r} is not a finding") from None


#: How each field of an answer is read from JSON (rules as data).
_ANSWER_FIELDS = {
    "status": _status,
    "tls_alert": _flag,
    "scheme": _optional_text,
    "error": _optional_text,
    "description": _optional_text,
    "error_uri": _optional_text,
    "realm": _flag,
    "scope": _flag,
    "params": _pairs,
    "extra_challenges": _texts,
    "separator": _text,
    "body": _text,
    "content_type": _content_type,
    "headers": _fields,
    "same_as": _finding,
    "unspecified": _flag,
    "assumed": _flag,
    "note": _text,
}


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
    # further response fields (DPoP-Nonce, Cache-Control...)
    headers_more: tuple[tuple[str, str], ...] = ()
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
        elif self.error == UNSPECIFIED_ERROR:
            text = f"{self.status} (error code unspecified)"
        elif self.error:
            text = f"{self.status} {self.error}"
        elif self.www_authenticate and self.status is not None and self.status >= 400:
            text = f"{self.status} (no error)"
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
        return (
            "http",
            self.status,
            self.www_authenticate,
            self.content_type,
            self.body,
            *self.headers_more,
        )

    def http_text(self) -> str:
        """The response as raw HTTP/1.1 (or a description of the alert, and whether it can be lost)."""
        if self.tls_alert is not None:
            if self.tls_alert.may_be_lost:
                return (
                    f"(no HTTP response: {self.tls_alert}; from a server that closes without reading the "
                    "request, the client may see only the connection close — mtlslab's server reads first)"
                )
            return f"(no HTTP response: {self.tls_alert})"
        assert self.status is not None
        lines = [f"HTTP/1.1 {self.status} {reason_phrase(self.status)}"]
        lines += [f"{name}: {value}" for name, value in self.headers()]
        return "\r\n".join(lines) + "\r\n\r\n" + self.body

    def headers(self) -> list[tuple[str, str]]:
        """Response headers (besides framing)."""
        out: list[tuple[str, str]] = []
        if self.www_authenticate is not None:
            out.append(("WWW-Authenticate", self.www_authenticate))
        if self.content_type is not None:
            out.append(("Content-Type", self.content_type))
        out += self.headers_more
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
            "headers": [list(h) for h in self.headers_more],
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
            headers_more=tuple((str(n), str(v)) for n, v in data.get("headers", ())),
            unspecified=bool(data.get("unspecified", False)),
            assumed=bool(data.get("assumed", False)),
            note=str(data.get("note", "")),
        )


#: The error value of an answer whose code the RFCs leave open (the baseline's missing certificate): RFC 6750
#: §3 asks for an error attribute when a request with a token fails, and RFC 8705 §3 names none for this case.
UNSPECIFIED_ERROR = "unspecified"
#: The template values a request gives (:meth:`Interpretation.respond`), empty until it does.
_FROM_REQUEST = dict.fromkeys(("sub", "client_id", "nonce", "access_token"), "")
#: Every algorithm a DPoP challenge of mtlslab's lists in ``algs`` (RFC 9449 §7.1): those its server accepts.
_ALGS = ("algs", " ".join(DPOP_ALGS))


def reason_phrase(status: int) -> str:
    """The reason phrase HTTP/1.1 servers send with ``status`` (``Unauthorized``), or "" for a code without one."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _in_finding_order(answers: Mapping[Finding, Answer]) -> tuple[tuple[Finding, Answer], ...]:
    """``answers`` as an interpretation stores them: in the order findings are declared."""
    return tuple((finding, answers[finding]) for finding in Finding if finding in answers)


@dataclass(frozen=True, slots=True)
class _Row:
    """One finding's answer, ready to send: ``same_as`` resolved, the body and field templates parsed with
    the values the answer itself gives them."""

    answer: Answer
    body: string.Template
    values: Mapping[str, str] = field(default_factory=dict)
    fields: tuple[tuple[str, string.Template], ...] = ()
    fixed: tuple[str, tuple[tuple[str, str], ...]] | None = None


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
    _rows: dict[Finding, _Row] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        index = dict(self.answers)
        missing = [f.value for f in Finding if f not in index]
        if missing:
            raise InterpretationError(f"{self.name}.answers", f"no answer for {', '.join(missing)}")
        # Answers of their own first, so a fault is named where it is written, not at an alias of it.
        for finding, answer in index.items():
            if answer.same_as is None:
                self._rows[finding] = self._row(
                    finding, answer, f"{self.name}.answers.{finding.value}"
                )
        for finding, answer in index.items():
            if answer.same_as is not None:
                self._rows[finding] = self._alias(finding, index)
        try:  # the overrides as deployment_overrides reads them, from JSON or given as values
            object.__setattr__(self, "deployment", deployment_overrides(dict(self.deployment)))
        except ScenarioError as exc:
            why = f"{exc.field}: {exc.reason}"
            raise InterpretationError(f"{self.name}.deployment", why) from None

    def _alias(self, finding: Finding, index: Mapping[Finding, Answer]) -> _Row:
        """The row of a ``same_as`` answer: its target's (followed through further aliases), with the alias's
        own flags and note added."""
        seen = [finding]
        target = index[finding].same_as
        while target is not None and target not in seen and index[target].same_as is not None:
            seen.append(target)
            target = index[target].same_as
        if target is None or target in seen:
            raise InterpretationError(
                f"{self.name}.answers.{finding.value}",
                "same_as must lead to a finding with an answer of its own (not back to itself)",
            )
        own = self._rows[target]
        flags = [index[f] for f in seen]
        merged = replace(
            own.answer,
            assumed=own.answer.assumed or any(a.assumed for a in flags),
            unspecified=own.answer.unspecified or any(a.unspecified for a in flags),
            note=next((a.note for a in flags if a.note), own.answer.note),
        )
        return replace(own, answer=merged)

    def _row(self, finding: Finding, answer: Answer, where: str) -> _Row:
        if finding is Finding.TLS_REJECTED:
            if not answer.tls_alert:
                raise InterpretationError(
                    where, "a TLS rejection is answered by the alert itself (tls_alert=True)"
                )
            return _Row(answer=answer, body=string.Template(""))
        if answer.tls_alert:
            raise InterpretationError(
                where,
                "only tls_rejected is a TLS alert; to refuse at the TLS layer, set deployment "
                "client_auth to required",
            )
        if answer.status is None:
            raise InterpretationError(f"{where}.status", "an HTTP answer needs a status code")
        try:  # the usual challenge, and one in the DPoP scheme pointing at metadata
            _header(answer, self.realm, scope="read", dpop=False, metadata=None)
            _header(
                answer, self.realm, scope="read", dpop=True, metadata="https://rs.example/metadata"
            )
        except ChallengeError as exc:
            raise InterpretationError(where, str(exc)) from None
        body = string.Template(answer.body)
        fields = tuple((name, string.Template(value)) for name, value in answer.headers)
        values = {
            "error": answer.error or "",
            "description": answer.description or "",
            "status": str(answer.status),
            "reason": reason_phrase(answer.status),
        }
        for part, template in (("body", body), *((f"headers.{n}", t) for n, t in fields)):
            try:
                template.substitute(values, **_FROM_REQUEST)
            except (KeyError, ValueError) as exc:
                raise InterpretationError(
                    f"{where}.{part}", f"bad template placeholder {exc}"
                ) from None
        try:  # the body and fields, when nothing in them depends on the request
            fixed = (body.substitute(values), tuple((n, t.substitute(values)) for n, t in fields))
        except KeyError:  # a value only a request gives ($sub, $client_id...)
            fixed = None
        return _Row(answer=answer, body=body, values=values, fields=fields, fixed=fixed)

    def answer(self, finding: Finding) -> Answer:
        """The answer for ``finding``, with ``same_as`` resolved (flags of the alias kept)."""
        return self._rows[finding].answer

    def field_names(self) -> frozenset[str]:
        """The names of the further response fields its answers send (``Cache-Control``...)."""
        return frozenset(name for row in self._rows.values() for name, _ in row.answer.headers)

    def adapt(self, deployment: Deployment) -> Deployment:
        """The deployment as this interpretation runs it (its overrides applied); idempotent."""
        return deployment.overridden(dict(self.deployment)) if self.deployment else deployment

    def respond(self, decision: Decision | None, *, tls_alert: TlsAlert | None = None) -> Outcome:
        """The outcome for a decision (or for a TLS alert, when the handshake failed). The challenge follows
        the scheme the request used (RFC 9449 §7.1): a failed DPoP request gets a DPoP challenge where a
        Bearer one would come, and every DPoP challenge lists the algorithms this server accepts. A deployment
        that publishes RFC 9728 metadata names it in the first challenge (RFC 9728 §5.1)."""
        if tls_alert is not None or decision is None:
            if tls_alert is None:
                raise InterpretationError("respond", "give a decision or a TLS alert")
            answer = self.answer(Finding.TLS_REJECTED)
            return Outcome(finding=Finding.TLS_REJECTED, tls_alert=tls_alert, note=answer.note)
        row = self._rows[decision.finding]
        answer = row.answer
        assert answer.status is not None
        if row.fixed is not None:
            body, more = row.fixed
        else:
            values = {
                **row.values,
                "sub": _json_text(decision.subject or ""),
                "client_id": _json_text(decision.client_id or ""),
                "nonce": decision.dpop_nonce or "",
                "access_token": decision.issued_token or "",
            }
            body = row.body.substitute(values)
            more = tuple((name, t.substitute(values)) for name, t in row.fields)
        return Outcome(
            finding=decision.finding,
            status=answer.status,
            www_authenticate=_header(
                answer,
                self.realm,
                scope=decision.required_scope,
                dpop=decision.scheme == "dpop",
                metadata=decision.resource_metadata,
            ),
            error=answer.error,
            content_type=answer.content_type,
            body=body,
            headers_more=more,
            unspecified=answer.unspecified,
            assumed=answer.assumed,
            note=answer.note,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_json` loads back into an equal interpretation."""
        return {
            "name": self.name,
            "title": self.title,
            "stance": self.stance,
            "kind": self.kind,
            "base": self.base,
            "source": asdict(self.source),
            "departures": [
                {
                    "what": d.what,
                    "reason": d.reason,
                    **({"about": list(d.about)} if d.about else {}),
                }
                for d in self.departures
            ],
            "realm": self.realm,
            "deployment": {k: getattr(v, "value", v) for k, v in self.deployment},
            "answers": {f.value: a.to_json() for f, a in self.answers},
        }

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any] | str, *, known: Mapping[str, Interpretation] | None = None
    ) -> Interpretation:
        """Load an interpretation from JSON text or a parsed object: the one loader, for the built-ins and
        for a user's file alike. Findings it leaves out are inherited from its ``base`` (default: the
        baseline; ``known`` are those a base may name, default the built-ins) by :func:`inherit`. Anything
        unusable — not JSON, a name twice in one object, nesting or numbers beyond reason, a field of the
        wrong type, an unknown finding or field, CR or LF in a header value — is an
        :class:`InterpretationError` naming the field."""
        data = _object(_parse(data) if isinstance(data, str) else data, "json")
        name = _text(data.get("name"), "name") if "name" in data else None
        if not name:
            raise InterpretationError("name", "missing")
        _object(data, name, known=_TOP_FIELDS)
        kind = _choice(data.get("kind", "custom"), _KINDS, f"{name}.kind")
        given: dict[Finding, Answer] = {}
        for key, value in _object(data.get("answers", {}), f"{name}.answers").items():
            if key not in _FINDINGS:
                why = f"{key!r} is not a finding"
                raise InterpretationError(f"{name}.answers", why + _nearest(key, _FINDINGS))
            given[Finding(key)] = Answer.from_json(value, where=f"{name}.answers.{key}")
        base_name = _optional_text(data.get("base"), f"{name}.base")
        answers = dict(given)
        if len(given) < len(Finding):
            wanted = base_name or "baseline"
            known = BUILTINS if known is None else known
            if wanted not in known:
                why = f"{wanted!r} is not an interpretation to inherit answers from"
                raise InterpretationError(f"{name}.base", why + _nearest(wanted, known))
            answers = inherit(known[wanted], given, observed=kind == "observed")
        source = _object(data.get("source") or {}, f"{name}.source")
        source_kind = _choice(source.get("kind", "user"), _SOURCE_KINDS, f"{name}.source.kind")
        departures = data.get("departures", [])
        if not isinstance(departures, list):
            raise InterpretationError(f"{name}.departures", "a list of {what, reason} objects")
        deployment = _object(data.get("deployment", {}), f"{name}.deployment")
        return cls(
            name=name,
            title=_text(data.get("title", name), f"{name}.title"),
            stance=_text(data.get("stance", ""), f"{name}.stance"),
            kind=kind,  # type: ignore[arg-type]  # checked against _KINDS above
            base=base_name,
            source=Source(
                kind=source_kind,  # type: ignore[arg-type]  # checked against _SOURCE_KINDS above
                citation=_text(source.get("citation", "user-defined"), f"{name}.source.citation"),
                url=_text(source.get("url", ""), f"{name}.source.url"),
            ),
            departures=tuple(
                _departure(d, f"{name}.departures[{i}]") for i, d in enumerate(departures)
            ),
            realm=_optional_text(data.get("realm", "mtlslab"), f"{name}.realm"),
            deployment=tuple(deployment.items()),
            answers=_in_finding_order(answers),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Interpretation):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"<Interpretation {self.name} ({self.kind}): {self.stance}>"

    def _repr_html_(self) -> str:
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


#: The names an interpretation's JSON may hold: its public fields.
_TOP_FIELDS = tuple(f.name for f in fields(Interpretation) if not f.name.startswith("_"))


def _parse(text: str) -> object:
    """JSON text, strictly: no name twice in one object (two readers could keep different ones)."""
    try:
        return json.loads(text, object_pairs_hook=unique_names)
    except DuplicateName as exc:
        raise InterpretationError(
            "json", f"the name {exc.args[0]!r} occurs twice in one object"
        ) from None
    except RecursionError:
        raise InterpretationError("json", "nested too deep to be an interpretation") from None
    except ValueError as exc:  # JSONDecodeError; an integer of more digits than Python reads
        raise InterpretationError("json", f"not JSON ({shorten(str(exc), 160)})") from None


def _departure(data: object, where: str) -> Departure:
    found = _object(data, where, known=("what", "reason", "about"))
    return Departure(
        what=_text(found.get("what"), f"{where}.what"),
        reason=_text(found.get("reason"), f"{where}.reason"),
        about=_texts(found.get("about", []), f"{where}.about"),
    )


_FINDINGS = [f.value for f in Finding]


def _nearest(word: str, choices: Iterable[str]) -> str:
    """``; did you mean …?`` naming the choice nearest ``word``, or "" when none is near."""
    near = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {near[0]}?" if near else ""


#: Findings an observed server's inherited answer is not assumed for: the TLS alert is the TLS layer's,
#: and the resource itself is served alike by every reading.
_NEVER_ASSUMED = (Finding.TLS_REJECTED, Finding.ACCEPTED, Finding.ACCEPTED_ALTHOUGH_BOUND)


def inherit(
    base: Interpretation, given: Mapping[Finding, Answer], *, observed: bool
) -> dict[Finding, Answer]:
    """The one inheritance rule: ``given`` answers, and ``base``'s for every finding ``given`` leaves out.
    For an *observed* server an inherited answer is marked assumed — its source does not show it — and no
    longer unspecified (a real server answers something). The TLS alert and the acceptances are exempt: no
    server chooses them."""
    answers = dict(given)
    for finding, inherited in base.answers:
        if finding in answers:
            continue
        if observed and finding not in _NEVER_ASSUMED:
            inherited = replace(
                inherited,
                assumed=True,
                unspecified=False,
                note=f"not shown by the source: inherited from {base.name}",
            )
        answers[finding] = inherited
    return answers


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


# Made once for each answer, realm and request shape: the readings share most answers.
@functools.lru_cache(maxsize=1024)
def _header(
    answer: Answer, realm: str | None, *, scope: str, dpop: bool, metadata: str | None
) -> str | None:
    """The ``WWW-Authenticate`` value for ``answer`` (None when it sends no challenge)."""
    challenges: list[Challenge] = []
    if answer.scheme is not None:
        scheme = "Bearer" if answer.scheme.lower() == "bearer" else answer.scheme
        if dpop and scheme == "Bearer":
            scheme = "DPoP"
        challenges.append(
            bearer(
                scheme=scheme,
                realm=realm if answer.realm else None,
                scope=scope if answer.scope else None,
                error=answer.error,
                error_description=answer.description,
                error_uri=answer.error_uri,
                extra=answer.params,
            )
        )
    challenges += [c for raw in answer.extra_challenges for c in parse_www_authenticate(raw)]
    challenges = [_with_algs(c) for c in challenges]
    if metadata and challenges:
        first = challenges[0]
        challenges[0] = replace(first, params=(*first.params, ("resource_metadata", metadata)))
    return format_challenges(challenges, separator=answer.separator) if challenges else None


def _with_algs(challenge: Challenge) -> Challenge:
    """A DPoP challenge with ``algs`` (RFC 9449 §7.1: it SHOULD be there); others as they are."""
    if challenge.scheme.lower() != "dpop" or any(n.lower() == "algs" for n, _ in challenge.params):
        return challenge
    return replace(challenge, params=(*challenge.params, _ALGS))


def _json_text(value: str) -> str:
    return json.dumps(value)[1:-1]


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
    """A new interpretation: ``base`` with some findings answered differently (rules as data). The base's
    departures are kept, except those about a finding answered or a deployment field set anew here: they
    described the base's answers, not the new ones."""
    changed = {f.value for f in (answers or {})} | set(deployment or {})
    overrides = dict(base.deployment) | dict(deployment or {})
    kept = tuple(d for d in base.departures if not changed & set(d.about))
    return Interpretation(
        name=name,
        title=title or name,
        stance=stance or base.stance,
        source=source or Source(kind="user", citation=f"derived from {base.name}"),
        kind="custom",
        base=base.name,
        answers=_in_finding_order(inherit(base, answers or {}, observed=False)),
        departures=(*kept, *departures),
        realm=base.realm if realm == "inherit" else realm,
        deployment=tuple(overrides.items()),
    )


def _load_builtins() -> dict[str, Interpretation]:
    """The built-ins from ``mtlslab/data/interpretations.json``, in file order; each base is an earlier
    entry."""
    loaded: dict[str, Interpretation] = {}
    for entry in read_data("interpretations.json"):
        found = Interpretation.from_json(entry, known=loaded)
        loaded[found.name] = found
    return loaded


#: The built-in interpretations, by name, in display order.
BUILTINS: dict[str, Interpretation] = _load_builtins()


def get_interpretation(name: str) -> Interpretation:
    """A built-in interpretation by name; an unknown name suggests the nearest."""
    found = BUILTINS.get(name)
    if found is not None:
        return found
    near = difflib.get_close_matches(name, list(BUILTINS), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(near)}?" if near else f"; known: {', '.join(BUILTINS)}"
    raise InterpretationError("interpretation", f"unknown interpretation {name!r}{hint}")
