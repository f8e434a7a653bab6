"""Workshop exercises (notebook 06) as data, checked against the core, and a mailing-list export.

Each :class:`Exercise` holds a question, what the attendee supplies, how the correct answer is *computed*
from the core (a seeded lab, the scenario catalogue, the interpretations — never typed in), and what the
recognisable wrong answers mean, each citing its RFC clause::

    from mtlslab import workshop
    workshop.EXERCISES["thumbprint"]             # the question; renders in a notebook
    workshop.check("thumbprint", "0a1b...")      # CheckResult: .ok, .explanation; renders green or red

A wrong answer is a returned :class:`CheckResult` with ``ok=False``, never an exception; an unknown
exercise id raises :class:`~mtlslab.errors.InputError` with the nearest ids.

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

from cryptography.hazmat.primitives import serialization

from mtlslab.compare import Cell, Matrix, Simulator
from mtlslab.errors import InputError
from mtlslab.findings import Finding
from mtlslab.interpretations import BUILTINS
from mtlslab.pki import Lab
from mtlslab.scenarios import get_scenario
from mtlslab.spec import Clause, cite

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

#: The seed every attendee's lab uses (the notebooks' and the widgets'), so the thumbprints on the slides
#: match every laptop.
LAB_SEED = "workshop"


@functools.lru_cache(maxsize=8)
def simulator(seed: str = LAB_SEED) -> Simulator:
    """The workshop's simulator (``Lab(seed=LAB_SEED)``; the widgets' for another seed), made once per
    process: its caches make every later question cheap."""
    return Simulator(Lab(seed=seed))


# --------------------------------------------------------------------------------------------------
# Reading answers.


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


_MOMENTS = {"handshake": "handshake", "first_read": "first_read", "first-read": "first_read"}


def parse_alert(answer: Any) -> tuple[str, str]:
    """A TLS alert and when the client notices it: ``("certificate_required", "first_read")``, from
    ``"certificate_required first_read"``, ``"certificate_required at the first read"`` or a pair."""
    if isinstance(answer, (tuple, list)) and len(answer) == 2:
        name, moment = (str(p).strip().lower() for p in answer)
    elif isinstance(answer, str):
        text = answer.lower().replace("first read", "first_read").replace(" at the ", " ")
        words = [w for w in text.replace(",", " ").split() if w not in ("at", "the", "during")]
        if len(words) != 2:
            raise _answer_error("give the alert name and 'handshake' or 'first_read'")
        name, moment = words
    else:
        raise _answer_error("give the alert name and 'handshake' or 'first_read'")
    if moment not in _MOMENTS:
        raise _answer_error(
            f"{moment!r}: the client notices at the 'handshake' or at its 'first_read'"
        )
    return (name, _MOMENTS[moment])


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


# --------------------------------------------------------------------------------------------------
# Exercises as data.


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
    mistakes: Callable[[Simulator], Mapping[Any, Mistake]] = field(repr=False, compare=False)
    otherwise: str

    def answer(self) -> Any:
        """The correct answer, computed from the core with the workshop's lab."""
        return self.solve(simulator())

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
        mark = "✓ correct" if self.ok else "✗ not yet"
        return (
            f"{mark} ({self.exercise}): {self.explanation} [{self.clause.label}: {self.clause.url}]"
        )

    def _repr_html_(self) -> str:
        colour, background, mark = (
            ("#1b5e20", "#e6f4ea", "✓ correct") if self.ok else ("#8e1b25", "#fde7e9", "✗ not yet")
        )
        link = (
            f"<a href='{html.escape(self.clause.url)}' target='_blank' rel='noopener noreferrer'>"
            f"{html.escape(self.clause.label)}</a>"
        )
        return (
            f"<div style='border:1px solid {colour};background:{background};color:{colour};padding:6px;"
            f"border-radius:4px'><b>{mark}</b> — {html.escape(self.exercise)}<div>{html.escape(self.explanation)} "
            f"({link})</div></div>"
        )


_8705_3 = cite("RFC 8705 §3")
_8705_31 = cite("RFC 8705 §3.1")
_8705_72 = cite("RFC 8705 §7.2")
_6750_31 = cite("RFC 6750 §3.1")
_8446 = cite("RFC 8446 §4.4.2.4")
_5246 = cite("RFC 5246 §7.4.6")
_9440_24 = cite("RFC 9440 §2.4")
_9440_4 = cite("RFC 9440 §4")
_9449_72 = cite("RFC 9449 §7.2")
_4648_5 = cite("RFC 4648 §5")


def _cell(sim: Simulator, scenario: str, interpretation: str = "baseline") -> Cell:
    return sim.cell(get_scenario(scenario), BUILTINS[interpretation])


def _b64(digest: bytes, *, url: bool, pad: bool) -> str:
    text = (base64.urlsafe_b64encode if url else base64.b64encode)(digest).decode("ascii")
    return text if pad else text.rstrip("=")


def _thumbprint_mistakes(sim: Simulator) -> Mapping[Any, Mistake]:
    client = sim.lab.client
    der = client.der
    digest = hashlib.sha256(der).digest()
    spki = client.certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sha1 = hashlib.sha1(der, usedforsecurity=False).digest()
    candidates = [
        (
            digest.hex(),
            Mistake(
                explanation="That is the SHA-256 digest in hex; x5t#S256 encodes the digest with base64url.",
                clause=_8705_31,
            ),
        ),
        (
            _b64(digest, url=True, pad=True),
            Mistake(
                explanation="Right digest, but with '=' padding: x5t#S256 is base64url without padding, and "
                "resource servers compare it exactly.",
                clause=_8705_31,
            ),
        ),
        (
            _b64(digest, url=False, pad=True),
            Mistake(
                explanation="Standard base64 ('+', '/', '='): x5t#S256 uses the URL-safe alphabet ('-', '_') "
                "without padding.",
                clause=_4648_5,
            ),
        ),
        (
            _b64(digest, url=False, pad=False),
            Mistake(
                explanation="Standard base64 alphabet ('+', '/'): x5t#S256 uses base64url ('-', '_').",
                clause=_4648_5,
            ),
        ),
        (
            _b64(hashlib.sha256(client.cert_pem.bytes()).digest(), url=True, pad=False),
            Mistake(
                explanation="You hashed the PEM text; the thumbprint is over the certificate's DER bytes.",
                clause=_8705_31,
            ),
        ),
        (
            _b64(hashlib.sha256(client.cert_chain_pem.bytes()).digest(), url=True, pad=False),
            Mistake(
                explanation="You hashed the PEM chain file; the thumbprint is over the leaf certificate's DER.",
                clause=_8705_31,
            ),
        ),
        (
            _b64(sha1, url=True, pad=False),
            Mistake(
                explanation="That is a SHA-1 thumbprint (the JOSE 'x5t'); x5t#S256 is SHA-256.",
                clause=_8705_31,
            ),
        ),
        (
            _b64(hashlib.sha256(spki).digest(), url=True, pad=False),
            Mistake(
                explanation="You hashed the public key only; the binding covers the whole certificate.",
                clause=_8705_72,
            ),
        ),
        (
            sim.lab.other_client.x5t_s256,
            Mistake(
                explanation="That is the thumbprint of other_client's certificate, not the lab client's.",
                clause=_8705_31,
            ),
        ),
    ]
    correct = client.x5t_s256
    out: dict[Any, Mistake] = {}
    # The first explanation of a value wins (the candidates can coincide); the right answer has none.
    for value, mistake in candidates:
        if value != correct:
            out.setdefault(value, mistake)
    return out


def _verdict_of(sim: Simulator, scenario: str, interpretation: str = "baseline") -> tuple[str, ...]:
    return _cell(sim, scenario, interpretation).outcome.verdict


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


def _exercises() -> dict[str, Exercise]:
    items = [
        Exercise(
            id="thumbprint",
            title="Compute x5t#S256 by hand",
            question="Take the lab client's certificate (Lab(seed='workshop').client) and compute its "
            "x5t#S256 yourself, with hashlib and base64 — not with mtlslab.",
            supplies="the thumbprint, as a string",
            clause=_8705_31,
            solve=lambda sim: sim.lab.client.x5t_s256,
            read=_text,
            mistakes=_thumbprint_mistakes,
            otherwise="Not the lab client's thumbprint: SHA-256 over the certificate's DER bytes, then "
            "base64url without padding.",
        ),
        Exercise(
            id="mismatch",
            title="The case RFC 8705 does name",
            question="The client presents a valid certificate, but not the one the token is bound to. "
            "What does the resource server answer, by RFC 8705 as written?",
            supplies="a status code and an error code, e.g. '400 invalid_request'",
            clause=_8705_3,
            solve=lambda sim: _verdict_of(sim, "mismatch"),
            read=parse_verdict,
            mistakes=lambda _sim: {
                ("400", "invalid_request"): Mistake(
                    explanation="invalid_request is for malformed requests; for a thumbprint mismatch "
                    "RFC 8705 §3 points to RFC 6750's invalid_token.",
                    clause=_8705_3,
                ),
                ("403", "insufficient_scope"): Mistake(
                    explanation="insufficient_scope (403) means the token is valid but lacks scope; here "
                    "the token cannot be used by this client at all.",
                    clause=_6750_31,
                ),
                ("403", ""): Mistake(
                    explanation="RFC 8705 §3 rejects a mismatch the RFC 6750 way: 401 with "
                    "error=invalid_token, not a bare 403.",
                    clause=_8705_3,
                ),
                ("401", ""): Mistake(
                    explanation="401 is right, but the challenge should carry the error code RFC 8705 §3 "
                    "names.",
                    clause=_8705_3,
                ),
            },
            otherwise="RFC 8705 §3 answers a thumbprint mismatch as an invalid token, the RFC 6750 §3.1 way.",
        ),
        Exercise(
            id="missing-code",
            title="The case RFC 8705 does not name",
            question="The token is certificate-bound, TLS client auth is optional, and the client sent no "
            "certificate at all. Which error code does RFC 8705 itself assign to this request?",
            supplies="an error code, or 'none' if the RFC names none",
            clause=_8705_3,
            solve=_missing_code,
            read=_code,
            mistakes=lambda _sim: {
                "invalid_token": Mistake(
                    explanation="That is Justin Richer's reading (and what most servers do), not the RFC "
                    "text: RFC 8705 §3 names invalid_token only for a mismatch.",
                    clause=_8705_3,
                ),
                "invalid_request": Mistake(
                    explanation="That is Dmitry Telegin's reading (auth0's SDK does it), not the RFC text: "
                    "RFC 8705 §3 says nothing about a request without a certificate.",
                    clause=_6750_31,
                ),
            },
            otherwise="RFC 8705 §3 covers a certificate that does not match, not a missing one: the text "
            "names no error here — that gap is the debate.",
        ),
        Exercise(
            id="tls13-alert",
            title="Required at the TLS layer, TLS 1.3",
            question="TLS client auth is required, the version is TLS 1.3, the client sends no "
            "certificate. Which alert does the client get, and when does it notice it?",
            supplies="the alert name and 'handshake' or 'first_read', e.g. 'bad_certificate handshake'",
            clause=_8446,
            solve=_tls13_alert,
            read=parse_alert,
            mistakes=lambda _sim: {
                ("handshake_failure", "handshake"): Mistake(
                    explanation="That is what a TLS 1.2 server typically sends; TLS 1.3 has a dedicated "
                    "alert, and the client meets it later.",
                    clause=_5246,
                ),
                ("handshake_failure", "first_read"): Mistake(
                    explanation="The moment is right, the alert is TLS 1.2's: TLS 1.3 defines its own alert "
                    "for a missing certificate.",
                    clause=_8446,
                ),
                ("certificate_required", "handshake"): Mistake(
                    explanation="Right alert, wrong moment: in TLS 1.3 the client has already sent its "
                    "Finished and believes the handshake succeeded; it sees the alert at its first read.",
                    clause=_8446,
                ),
            },
            otherwise="RFC 8446 §4.4.2.4: a TLS 1.3 server that requires a certificate and gets none may "
            "abort with a dedicated alert, which the client sees only after it starts using the connection.",
        ),
        Exercise(
            id="forged-client-cert",
            title="A Client-Cert header from the client itself",
            question="No TLS client certificate, but the client adds a Client-Cert header holding the bound "
            "certificate, straight to the resource server (no proxy). What does the server find?",
            supplies="a finding, e.g. 'certificate_mismatch' (see mtlslab.findings.Finding)",
            clause=_9440_24,
            solve=lambda sim: _cell(sim, "forged-client-cert").finding.value,
            read=parse_finding,
            mistakes=lambda _sim: {
                Finding.ACCEPTED.value: Mistake(
                    explanation="Certificates are public: anyone who stole the token can paste the victim's "
                    "certificate into a header. Only a trusted proxy may set Client-Cert.",
                    clause=_9440_4,
                ),
                Finding.CERTIFICATE_MISSING.value: Mistake(
                    explanation="Close — the header is ignored, so no certificate counts; but the server "
                    "also notices that someone tried to supply one in a header it must not trust.",
                    clause=_9440_24,
                ),
            },
            otherwise="RFC 9440 §2: a Client-Cert header is trusted only from a configured proxy; one sent "
            "by the client itself is ignored.",
        ),
        Exercise(
            id="binding-ignored",
            title="A resource server that ignores cnf",
            question="The resource server validates the JWT but never looks at cnf. A certificate-bound "
            "token arrives without any certificate. What does mtlslab find?",
            supplies="a finding (see mtlslab.findings.Finding)",
            clause=_8705_3,
            solve=lambda sim: _cell(sim, "binding-ignored-no-cert").finding.value,
            read=parse_finding,
            mistakes=lambda _sim: {
                Finding.ACCEPTED.value: Mistake(
                    explanation="It is accepted, yes — but the token was bound and nobody checked: anyone "
                    "holding it can use it. mtlslab reports that separately, as a security finding.",
                    clause=_8705_3,
                ),
                Finding.CERTIFICATE_MISSING.value: Mistake(
                    explanation="That is what a server that checks binding finds; this one never looks.",
                    clause=_8705_3,
                ),
            },
            otherwise="RFC 8705 §3: the resource server MUST check the binding; one that does not accepts "
            "a stolen token from anyone.",
        ),
        Exercise(
            id="dpop-as-bearer",
            title="DPoP for contrast",
            question="A DPoP-bound token (cnf.jkt) is sent with 'Authorization: Bearer' to a resource server "
            "that supports DPoP. What does it answer, by RFC 9449?",
            supplies="a status code and an error code",
            clause=_9449_72,
            solve=lambda sim: _verdict_of(sim, "dpop-token-as-bearer"),
            read=parse_verdict,
            mistakes=lambda _sim: {
                ("200", ""): Mistake(
                    explanation="RFC 9449 §7.2: a server that supports DPoP MUST NOT accept a DPoP-bound "
                    "token as a bearer token — otherwise binding it would be pointless.",
                    clause=_9449_72,
                ),
                ("401", "invalid_dpop_proof"): Mistake(
                    explanation="No proof was even looked at: the token itself is unusable under the Bearer "
                    "scheme, so the error is about the token.",
                    clause=_9449_72,
                ),
                ("400", "invalid_request"): Mistake(
                    explanation="The request is well-formed Bearer; it is the token that must be refused.",
                    clause=_9449_72,
                ),
            },
            otherwise="RFC 9449 §7.2: refuse a DPoP-bound token presented as Bearer, as an invalid token.",
        ),
        Exercise(
            id="servers-majority",
            title="What real servers do",
            question="Among the real servers mtlslab models (the interpretations of kind 'observed'), "
            "what is the most common answer to a bound token with no certificate?",
            supplies="a status code and an error code",
            clause=_8705_3,
            solve=_servers_majority,
            read=parse_verdict,
            mistakes=lambda _sim: {
                ("400", "invalid_request"): Mistake(
                    explanation="Only one server found splits the cases that way (auth0's SDK); most treat "
                    "a missing certificate like a mismatch.",
                    clause=_6750_31,
                ),
                ("403", ""): Mistake(
                    explanation="403 is the Duende documentation sample's outlier, not the common answer.",
                    clause=_6750_31,
                ),
            },
            otherwise="Count the observed column of the matrix for no-cert-optional: most servers answer "
            "it as they answer a mismatch.",
        ),
    ]
    return {e.id: e for e in items}


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
    if answer is None or answer is Ellipsis:
        return CheckResult(
            exercise=exercise.id,
            ok=False,
            given=answer,
            explanation=f"No answer yet. You supply: {exercise.supplies}.",
            clause=exercise.clause,
        )
    expected = exercise.answer()
    try:
        given = exercise.read(answer)
    except InputError as exc:
        return CheckResult(
            exercise=exercise.id,
            ok=False,
            given=answer,
            explanation=f"Cannot read this answer: {exc.reason}. You supply: {exercise.supplies}.",
            clause=exercise.clause,
            expected=expected,
        )
    if given == expected:
        return CheckResult(
            exercise=exercise.id,
            ok=True,
            given=given,
            explanation=f"Correct. {exercise.otherwise}",
            clause=exercise.clause,
            expected=expected,
        )
    mistake = exercise.mistakes(simulator()).get(given)
    if mistake is not None:
        return CheckResult(
            exercise=exercise.id,
            ok=False,
            given=given,
            explanation=mistake.explanation,
            clause=mistake.clause,
            expected=expected,
        )
    return CheckResult(
        exercise=exercise.id,
        ok=False,
        given=given,
        explanation=exercise.otherwise,
        clause=exercise.clause,
        expected=expected,
    )


# --------------------------------------------------------------------------------------------------
# A matrix for a mailing-list message.


def mailing_list_text(matrix: Matrix, *, intro: str | None = None, width: int = 72) -> str:
    """A plain-text message body no wider than ``width``: an intro naming the thread's two readings, the
    matrix table, its legend, and the RFC sections and archived messages it rests on (each link on a line
    of its own)."""
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
