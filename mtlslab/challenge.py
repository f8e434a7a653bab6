"""Build and parse ``WWW-Authenticate`` field values (RFC 9110 §11.6.1, RFC 6750 §3).

A challenge is an auth-scheme followed either by a token68 or by a list of auth-params::

    challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]        RFC 9110 §11.6.1
    auth-param = token BWS "=" BWS ( token / quoted-string )          RFC 9110 §11.2

Building is strict: :meth:`Challenge.to_header` (and the builders :func:`bearer` and :func:`challenge`)
refuse anything that is not valid RFC 9110 syntax, any control character, CR, LF or NUL (header injection,
RFC 9110 §5.5), any non-ASCII character, a parameter named twice (RFC 9110 §11.2), and values of ``error``
/ ``error_description`` / ``error_uri`` / ``scope`` that break the RFC 6750 §3 character rules -- whatever
the scheme. Values are always quoted-strings.

Parsing is lenient about RFC 6750 (it reads what real servers send, duplicates and quotes included) but
strict about RFC 9110 syntax, and never accepts CR, LF, NUL or other control characters;
:func:`check_rfc6750` lists what a parsed challenge does wrong by RFC 6750 §3. This module chooses
nothing: which challenge a server sends is an interpretation's business. It raises :class:`ChallengeError`
(in the tree of :mod:`mtlslab.errors`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from mtlslab.errors import InputError

__all__ = [
    "TOKEN",
    "TOKEN68",
    "Challenge",
    "ChallengeError",
    "bearer",
    "challenge",
    "check_rfc6750",
    "format_challenges",
    "parse_www_authenticate",
    "sanitize_description",
]


class ChallengeError(InputError):
    """A challenge that cannot be emitted, or a field value that cannot be parsed: ``field`` names the bad
    part (``"scheme"``, ``"error_description"``, ``"header"``, ...), ``reason`` says why, citing the clause;
    ``str(error)`` is ``"field: reason"``."""


#: RFC 9110 §5.6.2 token: an auth-scheme, an auth-param's name, and a field name (§5.1).
TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: RFC 9110 §11.2 token68, the same characters as RFC 6750 §2.1 b64token (a Bearer or DPoP credential).
TOKEN68: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# A token68 that is all its list element holds (what follows it is OWS, then "," or the end).
_TOKEN68_ALONE_RE: Final = re.compile(rf"({TOKEN68.pattern})[ \t]*(?=,|\Z)")
_OWS_RE: Final = re.compile(r"[ \t]*")  # RFC 9110 §5.6.3 OWS / BWS
_LIST_SEP_RE: Final = re.compile(r"[ \t,]*")  # RFC 9110 §5.6.1: empty list elements are tolerated
# The inside of a quoted-string (RFC 9110 §5.6.4): qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E /
# obs-text, and quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ); any code point >= U+0080 is read
# as obs-text, whatever decoding the caller applied to the field bytes.
_QUOTED_RE: Final = re.compile("(?:[\t !#-\\[\\]-~\x80-\U0010ffff]+|\\\\[\t -~\x80-\U0010ffff])*")
_QUOTED_PAIR_RE: Final = re.compile(r"\\(.)", re.DOTALL)
_FORBIDDEN_IN_FIELD_RE: Final = re.compile("[\r\n\x00]")  # RFC 9110 §5.5

_VSCHAR: Final = frozenset(map(chr, range(0x20, 0x7F)))  # printable ASCII, what to_header may emit
# Named as in RFC 6749 Appendix A: NQCHAR = %x21 / %x23-5B / %x5D-7E; NQSCHAR adds %x20.
_NQCHAR: Final = frozenset(map(chr, [0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)]))
_NQSCHAR: Final = _NQCHAR | {" "}
_URI_CHARS: Final = frozenset(  # RFC 3986 §2: unreserved, reserved and "%" (pct-encoded)
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"
)
_BAD_PERCENT_RE: Final = re.compile("%(?![0-9A-Fa-f]{2})")  # RFC 3986 §2.1: "%" HEXDIG HEXDIG

# RFC 6750 §3 attribute character rules: attribute -> (allowed characters, the ABNF they come from).
# They apply whatever the scheme: RFC 9449 §7.1 (DPoP) reuses the same attributes.
_ATTRIBUTE_CHARSETS: Final[dict[str, tuple[frozenset[str], str]]] = {
    "error": (_NQSCHAR, "%x20-21 / %x23-5B / %x5D-7E"),
    "error_description": (_NQSCHAR, "%x20-21 / %x23-5B / %x5D-7E"),
    "error_uri": (_NQCHAR, "%x21 / %x23-5B / %x5D-7E"),
    "scope": (_NQSCHAR, "scope-tokens of %x21 / %x23-5B / %x5D-7E separated by %x20"),
}
# Schemes whose challenges carry auth-params, never a token68 (RFC 6750 §3, RFC 9449 §7.1).
_PARAM_ONLY_SCHEMES: Final = frozenset({"bearer", "dpop"})
_ELLIPSIS: Final = "..."
_QS: Final = "RFC 9110 §5.6.4"


def _fold(name: str) -> str:
    """Case-fold an ASCII token (RFC 9110 §11.1, §11.2); leave anything else as it is."""
    return name.lower() if name.isascii() else name


def _char(c: str) -> str:
    return f"character U+{ord(c):04X} {c!r}"


def _first_outside(value: str, allowed: frozenset[str]) -> str | None:
    return next((c for c in value if c not in allowed), None)


def _skip(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """The end of what ``pattern`` matches at ``pos`` (``pos`` itself when nothing does)."""
    m = pattern.match(text, pos)
    return pos if m is None else m.end()


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Challenge:
    """One challenge: ``scheme`` plus either ordered ``params`` or a ``token68``, never both.

    Construction checks only the shape; :meth:`to_header` validates the content, so a parsed (lenient)
    challenge can always be represented. Names keep their case; lookups ignore it.
    """

    scheme: str
    params: tuple[tuple[str, str], ...] = ()
    token68: str | None = None

    def __post_init__(self) -> None:
        try:
            params = tuple((name, value) for name, value in self.params)
        except (TypeError, ValueError):
            raise ChallengeError("params", "must be a sequence of (name, value) pairs") from None
        object.__setattr__(self, "params", params)
        if self.token68 is not None and params:
            reason = "a challenge carries a token68 or auth-params, not both (RFC 9110 §11.6.1)"
            raise ChallengeError("token68", reason)

    def __repr__(self) -> str:
        if self.token68 is not None:
            return f"Challenge({self.scheme!r}, token68={self.token68!r})"
        inner = [repr(self.scheme), *(f"{name}={value!r}" for name, value in self.params)]
        return f"Challenge({', '.join(inner)})"

    def get(self, name: str) -> str | None:
        """The value of the first parameter called ``name`` (case-insensitive), or ``None``."""
        key = _fold(name)
        return next((value for n, value in self.params if _fold(n) == key), None)

    @property
    def realm(self) -> str | None:
        """The ``realm`` attribute (RFC 9110 §11.5, RFC 6750 §3)."""
        return self.get("realm")

    @property
    def scope(self) -> str | None:
        """The ``scope`` attribute (RFC 6750 §3)."""
        return self.get("scope")

    @property
    def error(self) -> str | None:
        """The ``error`` attribute (RFC 6750 §3)."""
        return self.get("error")

    @property
    def error_description(self) -> str | None:
        """The ``error_description`` attribute (RFC 6750 §3)."""
        return self.get("error_description")

    @property
    def error_uri(self) -> str | None:
        """The ``error_uri`` attribute (RFC 6750 §3)."""
        return self.get("error_uri")

    def to_header(self, *, separator: str = ", ") -> str:
        """Serialise as one challenge, params joined by ``separator`` (``", "`` or ``","``); raises
        :class:`ChallengeError` for anything not valid to send, so nothing invalid is emitted."""
        if separator not in (", ", ","):
            reason = f"must be ', ' or ',' (RFC 9110 §5.6.1), not {separator!r}"
            raise ChallengeError("separator", reason)
        _raise_first(self)
        if self.token68 is not None:
            return f"{self.scheme} {self.token68}"
        if not self.params:
            return self.scheme
        pairs = (f'{name}="{_escape(value)}"' for name, value in self.params)
        return f"{self.scheme} {separator.join(pairs)}"


def _escape(value: str) -> str:
    """Backslash-escape the two characters a quoted-string cannot hold (RFC 9110 §5.6.4)."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _syntax_violations(ch: Challenge) -> Iterator[tuple[str, str]]:
    """What RFC 9110 forbids, or what this module never emits (controls, non-ASCII)."""
    if not TOKEN.fullmatch(ch.scheme):
        yield "scheme", f"{ch.scheme!r} is not a token (RFC 9110 §11.1)"
    if ch.token68 is not None and not TOKEN68.fullmatch(ch.token68):
        yield "token68", f"{ch.token68!r} is not a token68 (RFC 9110 §11.2)"
    for name, value in ch.params:
        if not TOKEN.fullmatch(name):
            yield "params", f"parameter name {name!r} is not a token (RFC 9110 §11.2)"
            continue
        bad = _first_outside(value, _VSCHAR)
        if bad is not None and bad.isascii():
            yield name, f"control {_char(bad)} is never emitted (header injection; RFC 9110 §5.5)"
        elif bad is not None:
            yield name, f"non-ASCII {_char(bad)} is never emitted (RFC 9110 §5.5)"


def _value_violations(ch: Challenge) -> Iterator[tuple[str, str]]:
    """RFC 6750 §3 rules on attribute values and repetition; refused on emit, reported on parse."""
    if ch.token68 is not None and _fold(ch.scheme) in _PARAM_ONLY_SCHEMES:
        reason = f"{ch.scheme} carries auth-params, not a token68 (RFC 6750 §3; RFC 9449 §7.1)"
        yield "token68", reason
    seen: dict[str, str] = {}
    for name, value in ch.params:
        key = _fold(name)
        if key in seen:
            reason = f"repeats {seen[key]!r}; each may occur once (RFC 9110 §11.2; RFC 6750 §3)"
            yield name, reason
            continue
        seen[key] = name
        rule = _ATTRIBUTE_CHARSETS.get(key)
        if rule is None:
            continue
        allowed, abnf = rule
        bad = _first_outside(value, allowed)
        if bad is not None:
            yield name, f"{_char(bad)} is not allowed by RFC 6750 §3 ({key} is {abnf})"
        elif key == "error" and not value:
            yield name, "an error code cannot be empty (RFC 6750 §3)"
        elif key == "scope" and "" in value.split(" "):
            reason = f"{value!r} is not scope-tokens joined by single spaces (RFC 6749 §3.3)"
            yield name, reason
        elif key == "error_uri" and (bad := _first_outside(value, _URI_CHARS)) is not None:
            yield name, f"{_char(bad)} is not allowed in a URI-reference (RFC 3986 §2; RFC 6750 §3)"
        elif key == "error_uri" and (pct := _BAD_PERCENT_RE.search(value)) is not None:
            at = pct.start()
            yield name, f"'%' at index {at} does not start a pct-encoded octet (RFC 3986 §2.1)"


def _raise_first(ch: Challenge) -> None:
    for field, reason in (*_syntax_violations(ch), *_value_violations(ch)):
        raise ChallengeError(field, reason)


def check_rfc6750(ch: Challenge) -> list[str]:
    """The RFC 6750 §3 violations of ``ch`` as ``"field: reason"`` strings (``[]`` if none): repeated
    attributes, characters outside the §3 sets in ``error`` / ``error_description`` / ``error_uri`` /
    ``scope`` (any scheme), a token68 on Bearer or DPoP, and a bare ``Bearer`` (which
    :meth:`Challenge.to_header` still emits: real servers send it)."""
    violations = [f"{field}: {reason}" for field, reason in _value_violations(ch)]
    if _fold(ch.scheme) == "bearer" and not ch.params and ch.token68 is None:
        violations.append(
            "params: a Bearer challenge MUST have one or more auth-param values (RFC 6750 §3)"
        )
    return violations


def challenge(scheme: str, *params: tuple[str, str]) -> Challenge:
    """A challenge with auth-params in the order given; validated now (:class:`ChallengeError`)."""
    ch = Challenge(scheme=scheme, params=params)
    _raise_first(ch)
    return ch


def bearer(
    *,
    scheme: str = "Bearer",
    realm: str | None = None,
    scope: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
    error_uri: str | None = None,
    extra: tuple[tuple[str, str], ...] = (),
) -> Challenge:
    """A ``Bearer`` challenge: RFC 6750 §3 attributes in that order, then ``extra``; validated now.

    Another ``scheme`` takes the same attributes: DPoP does (RFC 9449 §7.1), and so does the hypothetical
    ``MTLS`` scheme of the DPoP analogy. With no attribute at all the result is a bare ``Bearer``, which
    real servers send and :func:`check_rfc6750` reports.
    """
    named = (
        ("realm", realm),
        ("scope", scope),
        ("error", error),
        ("error_description", error_description),
        ("error_uri", error_uri),
    )
    present = ((name, value) for name, value in named if value is not None)
    return challenge(scheme, *present, *extra)


def format_challenges(challenges: Sequence[Challenge], *, separator: str = ", ") -> str:
    """One field value holding every challenge, in order, joined by ``", "`` (RFC 9110 §11.6.1);
    ``separator`` goes between the params inside each one."""
    if not challenges:
        reason = "a WWW-Authenticate value holds at least one challenge (RFC 9110 §11.6.1)"
        raise ChallengeError("challenges", reason)
    return ", ".join(ch.to_header(separator=separator) for ch in challenges)


def sanitize_description(text: str, *, max_length: int = 200) -> str:
    """Make arbitrary text a valid ``error_description`` (RFC 6750 §3) of ``max_length`` at most.

    Whitespace runs become one space and the ends are stripped; every other character outside
    ``%x20-21 / %x23-5B / %x5D-7E`` becomes ``"?"``; a text that is cut ends in ``"..."`` within the
    limit. May return ``""`` (then leave the attribute out)."""
    if max_length < len(_ELLIPSIS):
        raise ChallengeError("max_length", f"must leave room for {_ELLIPSIS!r}, not {max_length}")
    collapsed = " ".join(text.split())
    clean = "".join(c if c in _NQSCHAR else "?" for c in collapsed)
    if len(clean) <= max_length:
        return clean
    return clean[: max_length - len(_ELLIPSIS)].rstrip() + _ELLIPSIS


def parse_www_authenticate(value: str) -> tuple[Challenge, ...]:
    """Every challenge in one ``WWW-Authenticate`` field value, in order (RFC 9110 §11.6.1); ``()`` for an
    empty one (or one of empty list elements). Malformed input raises :class:`ChallengeError` with
    ``field="header"`` and the position."""
    parser = _Parser(value)
    forbidden = _FORBIDDEN_IN_FIELD_RE.search(value)
    if forbidden is not None:
        reason = f"{_char(forbidden.group())} is never valid in a field value"
        raise parser.fail(forbidden.start(), reason, "RFC 9110 §5.5")
    return parser.run()


class _Parser:
    """Single pass over the field value; every character is looked at a bounded number of times."""

    __slots__ = ("challenges", "n", "params", "pos", "scheme", "text", "token68")

    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.pos = 0
        self.challenges: list[Challenge] = []
        self.scheme: str | None = None
        self.params: list[tuple[str, str]] = []
        self.token68: str | None = None

    def fail(self, pos: int, reason: str, clause: str = "RFC 9110 §11.6.1") -> ChallengeError:
        return ChallengeError("header", f"position {pos}: {reason} ({clause})")

    def found(self, pos: int) -> str:
        return _char(self.text[pos]) if pos < self.n else "end of field value"

    def ows(self, pos: int) -> int:
        return _skip(_OWS_RE, self.text, pos)

    def run(self) -> tuple[Challenge, ...]:
        self.pos = _skip(_LIST_SEP_RE, self.text, 0)
        while self.pos < self.n:
            self.element()
        self.close()
        return tuple(self.challenges)

    def close(self) -> None:
        if self.scheme is not None:
            done = Challenge(scheme=self.scheme, params=tuple(self.params), token68=self.token68)
            self.challenges.append(done)
        self.scheme, self.params, self.token68 = None, [], None

    def element(self) -> None:
        """One list element: an auth-param of the open challenge, or a new challenge."""
        start = self.pos
        m = TOKEN.match(self.text, start)
        if m is None:
            raise self.fail(start, f"expected auth-scheme or auth-param, found {self.found(start)}")
        after = self.ows(m.end())
        if after < self.n and self.text[after] == "=":
            if self.scheme is None:
                raise self.fail(start, f"auth-param {m.group()!r} before any auth-scheme")
            if self.token68 is not None:
                raise self.fail(start, f"auth-param {m.group()!r} after a token68")
            self.param_value(m.group(), after + 1)
        else:
            self.new_challenge(m.group(), m.end(), after)
        pos = self.ows(self.pos)  # the end of the element
        if pos < self.n and self.text[pos] != ",":
            raise self.fail(pos, f"expected ',' or end of field value, found {self.found(pos)}")
        self.pos = _skip(_LIST_SEP_RE, self.text, pos)

    def new_challenge(self, scheme: str, end: int, after: int) -> None:
        self.close()
        self.scheme = scheme
        if end < self.n and self.text[end] not in " \t,":
            raise self.fail(end, f"expected SP or ',' after {scheme!r}, found {self.found(end)}")
        self.pos = after
        if after >= self.n or self.text[after] == ",":
            return
        m68 = _TOKEN68_ALONE_RE.match(self.text, after)
        if m68 is not None:
            self.token68, self.pos = m68.group(1), m68.end()
            return
        m = TOKEN.match(self.text, after)
        if m is None:
            raise self.fail(after, f"expected token68 or auth-param, found {self.found(after)}")
        eq = self.ows(m.end())
        if eq >= self.n or self.text[eq] != "=":
            raise self.fail(eq, f"expected '=' after {m.group()!r}, found {self.found(eq)}")
        self.param_value(m.group(), eq + 1)

    def param_value(self, name: str, pos: int) -> None:
        pos = self.ows(pos)
        if pos < self.n and self.text[pos] == '"':
            value, self.pos = self.quoted_string(pos)
        else:
            m = TOKEN.match(self.text, pos)
            if m is None:
                found = self.found(pos)
                raise self.fail(pos, f"{name!r} needs a token or quoted-string, found {found}")
            value, self.pos = m.group(), m.end()
        self.params.append((name, value))

    def quoted_string(self, start: int) -> tuple[str, int]:
        """Unescape the quoted-string opening at ``start``; return it and the position after it."""
        end = _skip(_QUOTED_RE, self.text, start + 1)
        stop = self.text[end : end + 2]  # the closing quote, or what cannot come where it does
        if stop[:1] == '"':
            return _QUOTED_PAIR_RE.sub(lambda pair: pair[1], self.text[start + 1 : end]), end + 1
        if stop in ("", "\\"):
            raise self.fail(start, "unterminated quoted-string", _QS)
        if stop[0] == "\\":
            raise self.fail(end + 1, f"{_char(stop[1])} cannot be escaped in a quoted-pair", _QS)
        raise self.fail(end, f"{_char(stop[0])} is not allowed in a quoted-string", _QS)
