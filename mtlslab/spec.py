"""Spec citations: the one table of the clauses mtlslab cites, and the trace steps that cite them.

Every check names its clause in code and in the trace, linked as :attr:`Clause.url` shows. :data:`CLAUSES` is
the table (rules as data): a module cites a clause by its label, ``cite("RFC 8705 §3")``, and a label the
table does not hold is an error where it is written, not a link to nowhere.
"""

from __future__ import annotations

import difflib
import itertools
import reprlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["CLAUSES", "Clause", "Step", "cite", "shorten"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Clause:
    """One section of one RFC."""

    rfc: int
    section: str
    title: str = ""

    @property
    def label(self) -> str:
        """``RFC 8705 §3``."""
        return f"RFC {self.rfc} §{self.section}"

    @property
    def url(self) -> str:
        """The rfc-editor.org link to the section."""
        return f"https://www.rfc-editor.org/rfc/rfc{self.rfc}#section-{self.section}"

    def __str__(self) -> str:
        return self.label

    def __repr__(self) -> str:
        return f"<Clause {self.label}>"


_TABLE: tuple[tuple[int, str, str], ...] = (
    (3986, "5.2.4", "Remove Dot Segments"),
    (3986, "6.2.2", "Syntax-Based Normalization"),
    (4648, "5", "Base 64 Encoding with URL and Filename Safe Alphabet"),
    (5246, "7.2.2", "Error Alerts"),
    (5246, "7.4.1.1", "Hello Request"),
    (5246, "7.4.6", "Client Certificate"),
    (6585, "5", "431 Request Header Fields Too Large"),
    (6749, "5.1", "Successful Response"),
    (6749, "5.2", "Error Response"),
    (6750, "1.2", "Terminology"),
    (6750, "2", "Authenticated Requests"),
    (6750, "2.1", "Authorization Request Header Field"),
    (6750, "2.2", "Form-Encoded Body Parameter"),
    (6750, "2.3", "URI Query Parameter"),
    (6750, "3", "The WWW-Authenticate Response Header Field"),
    (6750, "3.1", "Error Codes"),
    (7515, "2", "Terminology"),
    (7515, "4", "JOSE Header"),
    (7515, "7.1", "JWS Compact Serialization"),
    (7519, "4", "JWT Claims"),
    (7519, "4.1.5", '"nbf" (Not Before) Claim'),
    (7519, "7.2", "Validating a JWT"),
    (7662, "2.2", "Introspection Response"),
    (7662, "4", "Security Considerations"),
    (7800, "3", "Representations for Proof-of-Possession Keys"),
    (7800, "3.1", "Confirmation Claim"),
    (7800, "3.4", "Representation of a Key ID for a Proof-of-Possession Key"),
    (8446, "2.2", "Resumption and Pre-Shared Key (PSK)"),
    (8446, "4.4.2.4", "Receiving a Certificate Message"),
    (8446, "4.6.2", "Post-Handshake Authentication"),
    (8446, "6.2", "Error Alerts"),
    (8705, "2", "Mutual TLS for OAuth Client Authentication"),
    (8705, "2.1", "PKI Mutual-TLS Method"),
    (8705, "2.2", "Self-Signed Certificate Mutual-TLS Method"),
    (8705, "3", "Mutual-TLS Client Certificate-Bound Access Tokens"),
    (8705, "3.1", "JWT Certificate Thumbprint Confirmation Method"),
    (8705, "3.2", "Confirmation Method for Token Introspection"),
    (8705, "6.2", "Resource Server"),
    (8705, "6.3", "Certificate Expiration and Bound Access Tokens"),
    (8705, "7.2", "Certificate Thumbprint Binding"),
    (8725, "2.1", "Weak Signatures and Insufficient Signature Validation"),
    (8725, "3.1", "Perform Algorithm Verification"),
    (8725, "3.10", "Do Not Trust Received Claims"),
    (8941, "4.2", "Parsing Structured Fields"),
    (9068, "4", "Validating JWT Access Tokens"),
    (9110, "5.3", "Field Order"),
    (9110, "5.5", "Field Values"),
    (9110, "5.6.4", "Quoted Strings"),
    (9110, "11.1", "Authentication Scheme"),
    (9110, "11.4", "Credentials"),
    (9110, "11.6.1", "WWW-Authenticate"),
    (9110, "15.5.14", "413 Content Too Large"),
    (9113, "9.2.1", "TLS 1.2 Features"),
    (9113, "9.2.3", "TLS 1.3 Features"),
    (9440, "2", "HTTP Header Fields and Processing Rules"),
    (9440, "2.1", "Encoding"),
    (9440, "2.2", "Client-Cert HTTP Header Field"),
    (9440, "2.3", "Client-Cert-Chain HTTP Header Field"),
    (9440, "2.4", "Processing Rules"),
    (9440, "4", "Security Considerations"),
    (9449, "4.3", "Checking DPoP Proofs"),
    (9449, "6.1", "JWK Thumbprint Confirmation Method in JWTs"),
    (9449, "7.1", "The DPoP Authentication Scheme"),
    (9449, "7.2", "Compatibility with the Bearer Authentication Scheme"),
    (9449, "9", "Resource Server-Provided Nonce"),
    (9728, "2", "Protected Resource Metadata"),
    (9728, "5.1", "WWW-Authenticate Response"),
)

#: Every clause mtlslab cites, by label (``RFC 8705 §3``).
CLAUSES: dict[str, Clause] = {
    c.label: c for c in (Clause(rfc=r, section=s, title=t) for r, s, t in _TABLE)
}


def cite(label: str) -> Clause:
    """The clause labelled ``label``; for a label not in the table, a :class:`KeyError` naming the nearest."""
    found = CLAUSES.get(label)
    if found is None:
        near = difflib.get_close_matches(label, list(CLAUSES), n=3)
        raise KeyError(f"{label!r} is not in mtlslab's clause table; nearest: {', '.join(near)}")
    return found


#: How a value that is not text appears: its repr, kept shallow (a 4,000-digit number shows its first and
#: last digits, a list nested 900 deep its outer levels), so that making it cannot take long.
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlong = 60
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = 4


def shorten(value: object, limit: int = 120, *, quote: bool = False) -> str:
    """``value`` as a person may be shown it, whoever chose it (a client, a token, a server).

    Text as it is, with every unprintable character (ESC, CR, the 8-bit CSI...) and the backslash escaped,
    so no control sequence gets through and no escape passes for a character; anything else as its shallow
    repr. At most ``limit`` (≥ 16) characters: a longer value keeps its start and end around a mark (with the
    count left out where there is room), so it cannot pass for the whole, and only those ends are looked at
    (megabytes cost no more). ``quote`` puts text between single quotes, as for a token's values.
    """
    if limit < 16:
        raise ValueError(f"limit: {limit} is below 16")
    if quote and isinstance(value, str):
        return f"'{shorten(value, limit - 2)}'"
    show: Callable[[str], str] = _escaped if isinstance(value, str) else str
    text = value if isinstance(value, str) else _REPR.repr(value)
    if len(text) <= limit:
        whole = "".join(map(show, text))
        if len(whole) <= limit:
            return whole
    return _cut(text, limit, show)


def _escaped(c: str) -> str:
    return c if c.isprintable() and c != "\\" else repr(c)[1:-1]


def _cut(text: str, limit: int, show: Callable[[str], str]) -> str:
    """``text`` shown by ``show``, its start and end kept around a mark, in at most ``limit`` characters."""
    counted = limit >= 80
    mark = f"…[{len(text):,} characters left out]…" if counted else "…"
    room = limit - len(mark)
    head, used = _take(text, room * 3 // 4, show)
    tail, _ = _take(itertools.islice(reversed(text), len(text) - len(head)), room - used, show)
    if counted:
        mark = f"…[{len(text) - len(head) - len(tail):,} characters left out]…"
    return "".join(map(show, head)) + mark + "".join(map(show, reversed(tail)))


def _take(chars: Iterable[str], room: int, show: Callable[[str], str]) -> tuple[str, int]:
    """The longest run of ``chars`` whose shown forms fit in ``room`` (whole escapes only), and their size."""
    taken: list[str] = []
    used = 0
    for c in chars:
        size = len(show(c))
        if used + size > room:
            break
        taken.append(c)
        used += size
    return "".join(taken), used


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One check in a trace: what was checked, under which clause, whether it passed, and the detail."""

    check: str
    clause: Clause
    passed: bool | None  # None: the step records a fact rather than a pass/fail check
    detail: str

    @property
    def mark(self) -> str:
        """``✓``, ``✗`` or ``·``."""
        return {True: "✓", False: "✗", None: "·"}[self.passed]

    def __str__(self) -> str:
        return f"{self.mark} {self.check} [{self.clause.label}] {self.detail}"

    def to_json(self) -> dict[str, object]:
        return {
            "check": self.check,
            "clause": self.clause.label,
            "url": self.clause.url,
            "passed": self.passed,
            "detail": self.detail,
        }
