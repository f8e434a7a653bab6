"""Spec citations: the one table of the clauses mtlslab cites, and the trace steps that cite them; and the
one reader of the package's data files (this table, the findings, the catalogue, the built-ins, the exercises).

Every check names its clause in code and in the trace, linked as :attr:`Clause.url` shows. :data:`CLAUSES` is
the table (rules as data, ``mtlslab/data/clauses.json``): a module cites a clause by its label,
``cite("RFC 8705 §3")``, and a label the table does not hold is an error where it is written, not a link to
nowhere.
"""

from __future__ import annotations

import difflib
import importlib.resources
import itertools
import json
import reprlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from mtlslab.errors import InputError

__all__ = [
    "CLAUSES",
    "Clause",
    "DuplicateName",
    "Step",
    "cite",
    "keep_latest",
    "read_data",
    "shorten",
    "unique_names",
]


_K = TypeVar("_K")
_V = TypeVar("_V")


class DuplicateName(ValueError):
    """A JSON object names a member (``args[0]``) twice. RFC 8259 §4 leaves what a reader does then open, and
    readers differ (most keep the last), so mtlslab refuses rather than pick one."""


def unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json`` hook: an object naming a member twice raises :class:`DuplicateName`, at any depth."""
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise DuplicateName(name)
        found[name] = value
    return found


def keep_latest(store: dict[_K, _V], key: _K, value: _V, *, most: int = 1024) -> _V:
    """``store[key] = value``, letting the oldest entries go past ``most``: every store a client or a person
    at the controls can fill (a live token endpoint, the explorer's composed scenarios) stays bounded."""
    store[key] = value
    while len(store) > most:
        del store[next(iter(store))]
    return value


def read_data(name: str) -> Any:
    """The package's data file ``mtlslab/data/NAME`` as JSON, read strictly (no name twice in one object)."""
    text = importlib.resources.files("mtlslab").joinpath(f"data/{name}").read_text("utf-8")
    return json.loads(text, object_pairs_hook=unique_names)


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


def _load_table() -> tuple[Clause, ...]:
    """The clauses in ``mtlslab/data/clauses.json``, each row ``[rfc, section, title]``; a row of another
    shape is an error."""
    rows: list[Clause] = []
    for row in read_data("clauses.json"):
        match row:
            case [int() as rfc, str() as section, str() as title] if not isinstance(rfc, bool):
                rows.append(Clause(rfc=rfc, section=section, title=title))
            case _:
                raise InputError("clauses.json", f"{row!r} is not [rfc, section, title]")
    return tuple(rows)


_TABLE = _load_table()

#: Every clause mtlslab cites, by label (``RFC 8705 §3``).
CLAUSES: dict[str, Clause] = {c.label: c for c in _TABLE}


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
