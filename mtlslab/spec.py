"""Spec citations: the clauses mtlslab's checks enforce, and the trace steps that cite them.

Every check names its clause (``RFC 8705 §3``) in code and in the trace, with a link of the form
``https://www.rfc-editor.org/rfc/rfc8705#section-3``. :data:`CLAUSES` collects every clause cited so far,
so documentation can list them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CLAUSES", "Clause", "Step", "clause"]


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


#: Every clause mtlslab cites, by label.
CLAUSES: dict[str, Clause] = {}


def clause(rfc: int, section: str, title: str = "") -> Clause:
    """The clause ``RFC rfc §section``, registered in :data:`CLAUSES`.

    Modules declare the clauses they cite; one that names a section again must give it the same title (or
    none): two titles for one section is a mistake in mtlslab's tables, refused when the module loads.
    """
    found = Clause(rfc=rfc, section=section, title=title)
    known = CLAUSES.get(found.label)
    if known is None or (title and not known.title):
        CLAUSES[found.label] = found
        return found
    if title and title != known.title:
        raise ValueError(f"{found.label} is titled {known.title!r} already, not {title!r}")
    return known


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One check in a trace: what was checked, under which clause, whether it passed, and the detail.

    ``passed`` is ``None`` for a step that records a fact rather than a pass/fail check.
    """

    check: str
    clause: Clause
    passed: bool | None
    detail: str

    @property
    def mark(self) -> str:
        """``✓``, ``✗`` or ``·``."""
        return {True: "✓", False: "✗", None: "·"}[self.passed]

    def __str__(self) -> str:
        return f"{self.mark} {self.check} [{self.clause.label}] {self.detail}"

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "check": self.check,
            "clause": self.clause.label,
            "url": self.clause.url,
            "passed": self.passed,
            "detail": self.detail,
        }
