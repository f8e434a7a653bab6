"""Workshop exercises (notebook 06) as data, checked against the core, and a mailing-list export.

Each :class:`Exercise` holds a question, what the attendee supplies, how the correct answer is *computed*
from the core (never typed in), and what recognisable wrong answers mean, citing the clause.
``check("thumbprint", "0a1b...")`` returns a :class:`CheckResult` (``ok=False`` for a wrong answer, never
an exception; an unknown exercise id raises :class:`~mtlslab.errors.InputError` naming the nearest).
:func:`mailing_list_text` turns a matrix into a plain-text message body no wider than 72 columns.
"""

from __future__ import annotations

import base64
import difflib
import functools
import hashlib
import html
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mtlslab.compare import Cell, Matrix, Simulator
from mtlslab.errors import InputError
from mtlslab.findings import Finding
from mtlslab.interpretations import BUILTINS
from mtlslab.pki import Lab
from mtlslab.scenarios import get_scenario
from mtlslab.spec import Clause, cite, read_data

__all__ = [
    "EXERCISES",
    "LAB_SEED",
    "CheckResult",
    "Exercise",
    "Mistake",
    "check",
    "mailing_list_text",
    "parse_alert",
    "parse_finding",
    "parse_verdict",
    "simulator",
    "solution",
]

#: The seed of every attendee's lab (notebooks, widgets): slides and laptops show one thumbprint.
LAB_SEED = "workshop"


@functools.cache
def simulator() -> Simulator:
    """The workshop's simulator (``Lab(seed=LAB_SEED)``), made once: the widgets' when given none."""
    return Simulator(Lab(seed=LAB_SEED))


def _answer_error(reason: str) -> InputError:
    return InputError("answer", reason)


def parse_verdict(answer: Any) -> tuple[str, ...]:
    """An HTTP verdict as :attr:`Outcome.verdict` has it: ``("401", "invalid_token")``, ``("403", "")``,
    or ``("tls", "certificate_required")``, from ``"401 invalid_token"``, ``(401, "invalid_token")``,
    ``401`` or ``"TLS certificate_required"``."""
    if isinstance(answer, bool):
        raise _answer_error("give a status code and an error code, e.g. '401 invalid_token'")
    if isinstance(answer, int):
        return (str(answer), "")
    if isinstance(answer, (tuple, list)):
        parts = [str(p).strip() for p in answer if p is not None and str(p).strip()]
    elif isinstance(answer, str):
        parts = answer.replace(",", " ").split()
    else:
        raise _answer_error(f"expected text like '401 invalid_token', got {type(answer).__name__}")
    if not parts:
        raise _answer_error("empty answer")
    head = parts[0].lower()
    if head == "tls":
        if len(parts) != 2:
            raise _answer_error("a TLS answer is 'TLS <alert name>', e.g. 'TLS handshake_failure'")
        return ("tls", parts[1].lower())
    if not re.fullmatch(r"[1-5]\d\d", head):
        raise _answer_error(f"{parts[0]!r} is not an HTTP status code")
    if len(parts) > 2:
        raise _answer_error("give one status code and at most one error code")
    return (head, parts[1] if len(parts) == 2 else "")


def parse_alert(answer: Any) -> tuple[str, str]:
    """A TLS alert and when the client notices it: ``("certificate_required", "first_read")``, from
    ``"certificate_required first_read"``, ``"certificate_required at the first read"`` or a pair."""
    words: list[str] = []
    if isinstance(answer, (tuple, list)) and len(answer) == 2:
        words = [str(p).strip().lower() for p in answer]
    elif isinstance(answer, str):
        text = answer.lower().replace("first read", "first_read")
        words = [w for w in text.replace(",", " ").split() if w not in ("at", "the", "during")]
    if len(words) != 2:
        raise _answer_error("give the alert name and 'handshake' or 'first_read'")
    name, moment = words[0], words[1].replace("-", "_")
    if moment not in ("handshake", "first_read"):
        raise _answer_error(
            f"{words[1]!r}: the client notices at the 'handshake' or at its 'first_read'"
        )
    return (name, moment)


def parse_finding(answer: Any) -> str:
    """A finding's value (``"certificate_missing"``) from a :class:`Finding` or its value."""
    if isinstance(answer, Finding):
        return answer.value
    if not isinstance(answer, str) or not answer.strip():
        raise _answer_error(
            "give a finding, e.g. 'certificate_missing' (see mtlslab.findings.Finding)"
        )
    value = answer.strip().lower().replace("-", "_").replace(" ", "_")
    known = [f.value for f in Finding]
    if value not in known:
        near = difflib.get_close_matches(value, known, n=2)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        raise _answer_error(f"{answer!r} is not a finding{hint}")
    return value


def _text(answer: Any) -> str:
    if not isinstance(answer, str):
        raise _answer_error(f"expected a string, got {type(answer).__name__}")
    return answer.strip()


def _code(answer: Any) -> str:
    text = _text(answer).lower()
    return "none" if text in ("none", "unspecified", "nothing", "no error", "") else text


@dataclass(frozen=True, slots=True, kw_only=True)
class Mistake:
    """What a recognisable wrong answer means, and the clause that says so."""

    explanation: str
    clause: Clause


@dataclass(frozen=True, slots=True, kw_only=True)
class Exercise:
    """One question: what the attendee supplies, how the answer is computed, what wrong answers mean."""

    id: str
    title: str
    question: str
    supplies: str
    clause: Clause
    solve: Callable[[Simulator], Any] = field(repr=False, compare=False)
    read: Callable[[Any], Any] = field(repr=False, compare=False)
    # its entries of recognisable wrong answers in exercises.json, read by mistakes()
    wrong: tuple[Mapping[str, str], ...] = field(repr=False, compare=False)
    otherwise: str

    def answer(self) -> Any:
        """The correct answer, computed from the core with the workshop's lab."""
        return self.solve(simulator())

    def mistakes(self, sim: Simulator) -> Mapping[Any, Mistake]:
        """What each recognisable wrong answer means: an answer as an attendee writes it (read as the
        exercise reads answers), or a look-alike computed for the lab (left out if seen before); never the
        right one."""
        found: dict[Any, Mistake] = {}
        for entry in self.wrong:
            mistake = Mistake(explanation=entry["explanation"], clause=cite(entry["clause"]))
            if "answer" in entry:
                found[self.read(entry["answer"])] = mistake
            else:
                found.setdefault(_LOOK_ALIKES[entry["look_alike"]](sim), mistake)
        found.pop(self.solve(sim), None)
        return found

    def _repr_html_(self) -> str:
        return (
            "<div style='border-left:4px solid #1a237e;padding:4px 10px;margin:4px 0'>"
            f"<div><b>Exercise {html.escape(self.id)}</b>: {html.escape(self.title)}</div>"
            f"<div>{html.escape(self.question)}</div>"
            f"<div style='color:#555'>You supply: {html.escape(self.supplies)}</div></div>"
        )

    def __str__(self) -> str:
        return f"Exercise {self.id}: {self.title}\n{self.question}\nYou supply: {self.supplies}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """The verdict on one answer: ok or not, and why, citing the clause."""

    exercise: str
    ok: bool
    given: Any
    explanation: str
    clause: Clause
    expected: Any = field(default=None, repr=False)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        mark, clause = "✓ correct" if self.ok else "✗ not yet", self.clause
        return f"{mark} ({self.exercise}): {self.explanation} [{clause.label}: {clause.url}]"

    def _repr_html_(self) -> str:
        colour, background, mark = (
            ("#1b5e20", "#e6f4ea", "✓ correct") if self.ok else ("#8e1b25", "#fde7e9", "✗ not yet")
        )
        return (
            f"<div style='border:1px solid {colour};background:{background};color:{colour};padding:6px;"
            f"border-radius:4px'><b>{mark}</b> — {html.escape(self.exercise)}<div>{html.escape(self.explanation)} "
            f"(<a href='{html.escape(self.clause.url)}' target='_blank' rel='noopener noreferrer'>"
            f"{html.escape(self.clause.label)}</a>)</div></div>"
        )


def _cell(sim: Simulator, scenario: str) -> Cell:
    return sim.cell(get_scenario(scenario), BUILTINS["baseline"])


def _missing_code(sim: Simulator) -> str:
    outcome = _cell(sim, "no-cert-optional").outcome
    return "none" if outcome.unspecified or not outcome.error else str(outcome.error)


def _tls13_alert(sim: Simulator) -> tuple[str, str]:
    alert = _cell(sim, "required-no-cert-tls13").outcome.tls_alert
    assert alert is not None, "the catalogue's required-no-cert-tls13 must end in a TLS alert"
    return (alert.name, alert.when)


def _servers_majority(sim: Simulator) -> tuple[str, ...]:
    observed = [i for i in BUILTINS.values() if i.kind == "observed"]
    matrix = sim.matrix([get_scenario("no-cert-optional")], observed)
    return matrix.majority("no-cert-optional")[0]


#: How each exercise's answer is computed from the core (never typed in), by exercise id.
_SOLUTIONS: dict[str, Callable[[Simulator], Any]] = {
    "thumbprint": lambda sim: sim.lab.client.x5t_s256,
    "mismatch": lambda sim: _cell(sim, "mismatch").outcome.verdict,
    "missing-code": _missing_code,
    "tls13-alert": _tls13_alert,
    "forged-client-cert": lambda sim: _cell(sim, "forged-client-cert").finding.value,
    "binding-ignored": lambda sim: _cell(sim, "binding-ignored-no-cert").finding.value,
    "dpop-as-bearer": lambda sim: _cell(sim, "dpop-token-as-bearer").outcome.verdict,
    "servers-majority": _servers_majority,
}

#: How an answer is read, by the name ``exercises.json`` gives it.
_READERS: dict[str, Callable[[Any], Any]] = {
    "text": _text,
    "verdict": parse_verdict,
    "alert": parse_alert,
    "finding": parse_finding,
    "code": _code,
}


def _b64(data: bytes, *, url: bool = True, pad: bool = False, digest: str = "sha256") -> str:
    raw = hashlib.new(digest, data, usedforsecurity=False).digest()
    text = (base64.urlsafe_b64encode if url else base64.b64encode)(raw).decode("ascii")
    return text if pad else text.rstrip("=")


def _spki(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


#: Look-alikes an attendee may compute instead of the client's ``x5t#S256``, by their JSON name.
_LOOK_ALIKES: dict[str, Callable[[Simulator], str]] = {
    "sha256-hex": lambda sim: hashlib.sha256(sim.lab.client.der).hexdigest(),
    "base64url-padded": lambda sim: _b64(sim.lab.client.der, pad=True),
    "base64-padded": lambda sim: _b64(sim.lab.client.der, url=False, pad=True),
    "base64-unpadded": lambda sim: _b64(sim.lab.client.der, url=False),
    "pem-text": lambda sim: _b64(sim.lab.client.cert_pem.bytes()),
    "pem-chain": lambda sim: _b64(sim.lab.client.cert_chain_pem.bytes()),
    "sha1": lambda sim: _b64(sim.lab.client.der, digest="sha1"),
    "public-key": lambda sim: _b64(_spki(sim.lab.client.certificate)),
    "other-client": lambda sim: sim.lab.other_client.x5t_s256,
}


def _exercises() -> dict[str, Exercise]:
    """The exercises of ``mtlslab/data/exercises.json``, each with how it is solved and read."""
    found = {}
    for entry in read_data("exercises.json"):
        texts = {key: entry[key] for key in ("id", "title", "question", "supplies", "otherwise")}
        found[entry["id"]] = Exercise(
            **texts,
            clause=cite(entry["clause"]),
            solve=_SOLUTIONS[entry["id"]],
            read=_READERS[entry["answer"]],
            wrong=tuple(entry["mistakes"]),
        )
    return found


#: The exercises of notebook 06, by id, in order.
EXERCISES: dict[str, Exercise] = _exercises()


def _exercise(exercise_id: str) -> Exercise:
    found = EXERCISES.get(exercise_id)
    if found is None:
        near = difflib.get_close_matches(exercise_id, list(EXERCISES), n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(near)}?" if near else f"; known: {', '.join(EXERCISES)}"
        raise InputError("exercise", f"unknown exercise {exercise_id!r}{hint}")
    return found


def solution(exercise_id: str) -> Any:
    """The correct answer to an exercise, computed from the core (for trainers and tests)."""
    return _exercise(exercise_id).answer()


def check(exercise_id: str, answer: Any) -> CheckResult:
    """Check an attendee's answer; a wrong or unreadable answer is explained, citing the clause."""
    exercise = _exercise(exercise_id)
    result = functools.partial(CheckResult, exercise=exercise.id, ok=False, clause=exercise.clause)
    if answer is None or answer is Ellipsis:
        return result(given=answer, explanation=f"No answer yet. You supply: {exercise.supplies}.")
    expected = exercise.answer()
    try:
        given = exercise.read(answer)
    except InputError as exc:
        why = f"Cannot read this answer: {exc.reason}. You supply: {exercise.supplies}."
        return result(given=answer, explanation=why, expected=expected)
    result = functools.partial(result, given=given, expected=expected)
    if given == expected:
        return result(ok=True, explanation=f"Correct. {exercise.otherwise}")
    mistake = exercise.mistakes(simulator()).get(given)
    if mistake is not None:
        return result(explanation=mistake.explanation, clause=mistake.clause)
    return result(explanation=exercise.otherwise)


def mailing_list_text(matrix: Matrix, *, intro: str | None = None, width: int = 72) -> str:
    """A plain-text message body no wider than ``width``: an intro naming the thread's two readings, the
    matrix table and legend, and the RFC sections and archived messages it rests on (one link a line)."""
    if intro is None:
        intro = (
            f"Below, for {len(matrix.scenarios)} requests with certificate-bound access tokens "
            "(RFC 8705) — above all one that carries a bound token but no client certificate — what "
            "each reading answers: Dmitry Telegin's (400 invalid_request) and Justin Richer's (401 "
            "invalid_token) from the 2021 OAuth WG thread, the RFC text, and the observed behaviour of "
            "real servers. The table was generated by mtlslab; '*' marks what the RFCs leave unspecified."
        )
    lines = textwrap.wrap(intro, width=width)
    lines.append("")
    lines += matrix.to_text(width=width).rstrip("\n").splitlines()
    lines += [
        "",
        "References:",
        "  RFC 8705 §3  https://www.rfc-editor.org/rfc/rfc8705#section-3",
        "  RFC 6750 §3.1  https://www.rfc-editor.org/rfc/rfc6750#section-3.1",
        "  RFC 8446 §4.4.2.4",
        "    https://www.rfc-editor.org/rfc/rfc8446#section-4.4.2.4",
        "  Justin Richer, 10 Nov 2021 (quoting Dmitry Telegin's messages):",
        "https://mailarchive.ietf.org/arch/msg/oauth/XfeH2q0Rwa2YocsR484xk-8LMqc/",
        "  Justin Richer, 17 Nov 2021 (one Authorization scheme per token kind):",
        "https://mailarchive.ietf.org/arch/msg/oauth/0AqJC-xFPFBrz_CxC08I2tJ49ws/",
    ]
    text = "\n".join(lines) + "\n"
    too_wide = [line for line in text.splitlines() if len(line) > width]
    if too_wide:
        raise InputError("width", f"{len(too_wide)} line(s) wider than {width} columns")
    return text
