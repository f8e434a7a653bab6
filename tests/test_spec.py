"""The clause registry: every clause cited once, with one title."""

from __future__ import annotations

import pytest

from mtlslab.spec import CLAUSES, clause


def test_a_clause_named_again_is_the_same_clause() -> None:
    """Naming a section again, with its title or without one, gives the registered clause back."""
    first = clause(1, "99.1", "A section for this test")
    assert clause(1, "99.1", "A section for this test") is first
    assert clause(1, "99.1") is first
    assert CLAUSES["RFC 1 §99.1"] is first
    assert first.url == "https://www.rfc-editor.org/rfc/rfc1#section-99.1"


def test_a_title_given_later_completes_a_clause_named_without_one() -> None:
    """A clause first named without a title takes the title it is later given."""
    bare = clause(1, "99.2")
    titled = clause(1, "99.2", "Titled later")
    assert bare.title == ""
    assert titled.title == "Titled later"
    assert CLAUSES["RFC 1 §99.2"] is titled


def test_two_titles_for_one_section_are_refused() -> None:
    """Two modules that title one section differently are a mistake in the tables: ValueError."""
    clause(1, "99.3", "One title")
    with pytest.raises(ValueError, match=r"RFC 1 §99.3 is titled 'One title' already"):
        clause(1, "99.3", "Another title")
