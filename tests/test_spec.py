"""The clause table (one truth for every citation), the one reader of the package's data files, and the one
helper that shortens shown values."""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path

import pytest

import mtlslab
from mtlslab.spec import (
    _TABLE,
    CLAUSES,
    DuplicateName,
    cite,
    keep_latest,
    read_data,
    shorten,
    unique_names,
)

PACKAGE = Path(mtlslab.__file__).parent
#: A clause label as code and data write it: a whole string, "RFC 8705 §3".
LABEL = re.compile(r"""["'](RFC \d+ §[\d.]+)["']""")


def test_cite_gives_the_tables_clause_with_its_link() -> None:
    """cite("RFC 8705 §3") is the table's clause, titled, linked to its section on rfc-editor.org."""
    found = cite("RFC 8705 §3")
    assert found is CLAUSES["RFC 8705 §3"]
    assert found.title == "Mutual-TLS Client Certificate-Bound Access Tokens"
    assert found.url == "https://www.rfc-editor.org/rfc/rfc8705#section-3"


def test_a_label_the_table_lacks_is_an_error_naming_the_nearest() -> None:
    """A mistyped label fails where it is written, with the nearest labels: never a link to nowhere."""
    with pytest.raises(
        KeyError, match=r"'RFC 8705 §33' is not in mtlslab's clause table.*RFC 8705 §3"
    ):
        cite("RFC 8705 §33")


def test_every_section_is_in_the_table_once_with_a_title() -> None:
    """No section twice (a second row would silently win), and every row has its RFC title."""
    labels = [c.label for c in _TABLE]
    assert len(labels) == len(set(labels)) == len(CLAUSES)
    assert all(c.title for c in _TABLE)


def test_every_clause_the_package_cites_is_in_the_table() -> None:
    """Every label the package's code and data files write as a string names a row of the table."""
    cited: set[str] = set()
    for path in [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.json")]:
        cited |= set(LABEL.findall(path.read_text(encoding="utf-8")))
    assert len(cited) > 20
    assert sorted(cited - set(CLAUSES)) == []


def test_a_name_twice_in_one_object_is_refused_at_any_depth() -> None:
    """RFC 8259 §4 leaves a repeated name to the reader: the one hook refuses it, naming it; once is fine."""
    assert json.loads('{"a": {"b": 1, "c": 2}}', object_pairs_hook=unique_names) == {
        "a": {"b": 1, "c": 2}
    }
    with pytest.raises(DuplicateName) as caught:
        json.loads('{"a": {"b": 1, "b": 2}}', object_pairs_hook=unique_names)
    assert caught.value.args == ("b",)


def test_the_package_data_is_read_strictly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A data file that names a member twice is refused by the one reader, not read as its last value."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data/one.json").write_text('[{"id": "a"}]', encoding="utf-8")
    (tmp_path / "data/two.json").write_text('[{"id": "a", "id": "b"}]', encoding="utf-8")
    monkeypatch.setattr(importlib.resources, "files", lambda _package: tmp_path)
    assert read_data("one.json") == [{"id": "a"}]
    with pytest.raises(DuplicateName):
        read_data("two.json")


def test_a_bounded_store_keeps_its_latest_entries() -> None:
    """keep_latest stores the value and lets the oldest entries go past its bound, newest last."""
    store: dict[int, str] = {}
    assert [keep_latest(store, i, str(i), most=3) for i in range(5)] == ["0", "1", "2", "3", "4"]
    assert store == {2: "2", 3: "3", 4: "4"}
    keep_latest(store, 5, "5", most=1)
    assert store == {5: "5"}


def test_short_text_is_shown_as_it_is() -> None:
    """Printable text within the limit is unchanged."""
    assert shorten("x5t#S256 abc-_") == "x5t#S256 abc-_"
    assert shorten("x" * 120) == "x" * 120


def test_control_characters_and_backslashes_are_escaped() -> None:
    """ESC, the 8-bit CSI, CR/LF and the backslash cannot reach a terminal raw, nor pass for each other."""
    assert shorten("a\x1b[31mb") == "a\\x1b[31mb"
    assert shorten("\x9b2J") == "\\x9b2J"
    assert shorten("line\r\nSet-Cookie: x") == "line\\r\\nSet-Cookie: x"
    assert shorten("\\x1b") == "\\\\x1b"


def test_long_text_keeps_both_ends_and_says_how_much_is_left_out() -> None:
    """A long value keeps its start and end around a count of what is left out, within the limit."""
    text = "a" * 500 + "z" * 500
    shown = shorten(text, 120)
    assert len(shown) <= 120
    assert shown.startswith("aaaa")
    assert shown.endswith("zzzz")
    head, count, tail = re.fullmatch(r"(a+)…\[([\d,]+) characters left out\]…(z+)", shown).groups()  # type: ignore[union-attr]
    assert len(head) + int(count.replace(",", "")) + len(tail) == 1000


def test_a_cut_never_splits_an_escape() -> None:
    """The cut keeps whole escapes only: no half of \\x1b before the mark."""
    shown = shorten("\x1b" * 200, 100)
    assert len(shown) <= 100
    head, tail = shown.split("…[")[0], shown.split("]…")[1]
    assert re.fullmatch(r"(\\x1b)+", head)
    assert re.fullmatch(r"(\\x1b)+", tail)


def test_a_short_limit_marks_the_cut_without_a_count() -> None:
    """Below 80 characters there is no room for the count: an ellipsis marks the cut."""
    assert shorten("abcdefghijklmnopqrstuvwxyz", 16) == "abcdefghijk…wxyz"


def test_values_that_are_not_text_are_shown_shallow() -> None:
    """A 4,000-digit number and a list nested 900 deep are shown short, and quickly."""
    assert len(shorten(10**4000, 160)) <= 160
    nested: list[object] = []
    for _ in range(900):
        nested = [nested]
    assert shorten(nested) == "[[[[...]]]]"


def test_a_limit_below_sixteen_is_refused() -> None:
    """A limit too small to show both ends and the mark is a misuse: ValueError."""
    with pytest.raises(ValueError, match="below 16"):
        shorten("abc", 15)
