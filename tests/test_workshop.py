"""mtlslab.workshop: each exercise's computed answer passes, each known wrong answer is explained with its
clause, and the mailing-list export fits in 72 columns."""

from __future__ import annotations

import re

import pytest

from mtlslab import workshop
from mtlslab.errors import InputError
from mtlslab.findings import Finding
from mtlslab.interpretations import BUILTINS
from mtlslab.pki import Lab
from mtlslab.scenarios import get_scenario, scenarios_tagged

IDS = list(workshop.EXERCISES)
RFC_LINK = re.compile(r"https://www\.rfc-editor\.org/rfc/rfc\d+#section-[0-9A-Z.]+")


def _mistakes() -> list[tuple[str, object]]:
    return [
        (exercise.id, wrong)
        for exercise in workshop.EXERCISES.values()
        for wrong in exercise.mistakes(workshop.simulator())
    ]


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_computed_answer_passes(exercise_id: str) -> None:
    """check(id, solution(id)) is ok and renders as correct, with its clause linked."""
    result = workshop.check(exercise_id, workshop.solution(exercise_id))
    assert result.ok
    assert bool(result)
    assert "✓ correct" in result._repr_html_()
    assert RFC_LINK.fullmatch(result.clause.url)


@pytest.mark.parametrize(("exercise_id", "wrong"), _mistakes())
def test_each_known_wrong_answer_is_explained_with_its_clause(
    exercise_id: str, wrong: object
) -> None:
    """A recognised wrong answer is not ok and gets its own explanation and clause, not the generic one."""
    mistake = workshop.EXERCISES[exercise_id].mistakes(workshop.simulator())[wrong]
    result = workshop.check(exercise_id, wrong)
    assert not result.ok
    assert result.explanation == mistake.explanation
    assert result.clause == mistake.clause
    assert RFC_LINK.fullmatch(result.clause.url)
    assert "✗ not yet" in result._repr_html_()


@pytest.mark.parametrize("exercise_id", IDS)
def test_no_known_wrong_answer_is_the_right_one(exercise_id: str) -> None:
    """The table of mistakes never contains the correct answer."""
    exercise = workshop.EXERCISES[exercise_id]
    assert exercise.read(exercise.answer()) not in exercise.mistakes(workshop.simulator())


def test_an_unrecognised_wrong_answer_gets_the_general_explanation() -> None:
    """418 for a mismatch: not ok, explained by the exercise's general text and clause."""
    result = workshop.check("mismatch", "418 teapot")
    assert not result.ok
    assert result.explanation == workshop.EXERCISES["mismatch"].otherwise
    assert result.clause.label == "RFC 8705 §3"


def test_no_answer_and_unreadable_answers_are_explained_not_raised() -> None:
    """None says what to supply; 'banana' for a status says why it cannot be read."""
    empty = workshop.check("mismatch", None)
    assert not empty.ok
    assert empty.explanation.startswith("No answer yet")
    unreadable = workshop.check("mismatch", "banana")
    assert not unreadable.ok
    assert "not an HTTP status code" in unreadable.explanation


def test_an_unknown_exercise_id_raises_with_the_nearest_ids() -> None:
    """A typo in the id is misuse: InputError naming the nearest exercise."""
    with pytest.raises(InputError, match="did you mean thumbprint"):
        workshop.check("thumbprnt", "x")


@pytest.mark.parametrize(
    "answer",
    ["401 invalid_token", "401, invalid_token", (401, "invalid_token"), ["401", "invalid_token"]],
)
def test_a_verdict_may_be_written_several_ways(answer: object) -> None:
    """Text with a space or comma, a tuple or a list: all read as the same verdict."""
    assert workshop.check("mismatch", answer).ok


@pytest.mark.parametrize(
    "answer",
    [
        "certificate_required first_read",
        "certificate_required at the first read",
        ("certificate_required", "first_read"),
    ],
)
def test_an_alert_may_be_written_several_ways(answer: object) -> None:
    """The TLS 1.3 alert and its moment, as text or a pair."""
    assert workshop.check("tls13-alert", answer).ok


def test_a_finding_may_be_given_as_the_enum_or_its_value() -> None:
    """Finding.UNTRUSTED_CLIENT_CERT_HEADER and 'untrusted-client-cert-header' both pass."""
    assert workshop.check("forged-client-cert", Finding.UNTRUSTED_CLIENT_CERT_HEADER).ok
    assert workshop.check("forged-client-cert", "untrusted-client-cert-header").ok
    unknown = workshop.check("forged-client-cert", "certificate_mismach")
    assert "did you mean certificate_mismatch" in unknown.explanation


def test_the_solutions_come_from_the_core() -> None:
    """The answers are what the lab and the engine say, not text typed into the module."""
    sim = workshop.simulator()
    assert workshop.solution("thumbprint") == Lab(seed=workshop.LAB_SEED).client.x5t_s256
    mismatch = sim.cell(get_scenario("mismatch"), BUILTINS["baseline"]).outcome
    assert workshop.solution("mismatch") == mismatch.verdict
    missing = sim.cell(get_scenario("no-cert-optional"), BUILTINS["baseline"]).outcome
    assert missing.unspecified
    assert workshop.solution("missing-code") == "none"


def test_the_thumbprint_mistakes_cover_hex_padding_alphabet_pem_and_sha1() -> None:
    """The classic slips are each recognised: hex digest, '=' padding, '+/' alphabet, PEM, SHA-1."""
    explanations = " ".join(
        m.explanation
        for m in workshop.EXERCISES["thumbprint"].mistakes(workshop.simulator()).values()
    )
    for slip in ("hex", "padding", "PEM", "SHA-1", "public key"):
        assert slip in explanations


def test_an_exercise_renders_its_question_and_what_to_supply() -> None:
    """An exercise shows its question and what the attendee supplies, escaped."""
    exercise = workshop.EXERCISES["tls13-alert"]
    html = exercise._repr_html_()
    assert "TLS 1.3" in html
    assert "You supply" in html
    assert "&#x27;handshake&#x27;" in html


def test_the_mailing_list_text_fits_72_columns_and_names_every_row() -> None:
    """The export: every line ≤ 72 columns, every scenario id present, the RFC references listed."""
    matrix = workshop.simulator().matrix(scenarios_tagged("debate"))
    text = workshop.mailing_list_text(matrix)
    assert max(len(line) for line in text.splitlines()) <= 72
    for scenario in matrix.scenarios:
        assert scenario.id in text
    assert "https://www.rfc-editor.org/rfc/rfc8705#section-3" in text
