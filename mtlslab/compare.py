"""Compare interpretations side by side: the scenarios × interpretations :class:`Matrix`.

::

    sim = Simulator(Lab(seed="workshop"))
    matrix = sim.matrix()                      # the catalogue under every built-in interpretation
    matrix.disagreements()                     # the rows where the readings differ
    print(matrix.to_text())                    # ≤ 72 columns, for an Internet-Draft
    matrix.to_markdown(), matrix.to_csv(), matrix.to_json()

A cell: the interpretation adapts the scenario's deployment (e.g. client certificates required), the
scenario is realised once per distinct deployment, the resource server decides once per distinct (request,
configuration), and the interpretation answers the finding. Readings *agree* when their verdicts — the TLS
alert, or the HTTP status and error code — are equal, whatever the descriptions, realms and bodies
(:meth:`Matrix.disagreements` with ``strict=True`` compares everything on the wire).
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import textwrap
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mtlslab.errors import InterpretationError, ScenarioError
from mtlslab.findings import Finding
from mtlslab.interpretations import BUILTINS, UNSPECIFIED_ERROR, Interpretation, Outcome
from mtlslab.pki import LAB_NOW, Lab
from mtlslab.rs import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    Decision,
    Jwks,
    Registration,
    RsConfig,
    config_for,
    evaluate,
)
from mtlslab.scenarios import (
    CATALOGUE,
    LAB_CLIENT_ID,
    Deployment,
    Endpoint,
    Exchange,
    Request,
    Scenario,
    arrival,
    arrival_key,
    realize,
    redeploy,
)
from mtlslab.spec import Step, cite, keep_latest
from mtlslab.tls import TlsResult
from mtlslab.tokens import LAB_RESOURCE, AuthorizationServer

__all__ = [
    "ERROR_ABBREVIATIONS",
    "Cell",
    "Matrix",
    "Simulator",
    "compact",
    "lab_configs",
    "md_escape",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    """One scenario under one interpretation: the finding, the outcome, and the trace behind them."""

    scenario: str
    interpretation: str
    finding: Finding
    outcome: Outcome
    trace: tuple[Step, ...] = ()
    deployment: Deployment | None = None  # the deployment as the interpretation ran it

    def explain(self) -> str:
        """The trace, the finding, and the answer as raw HTTP."""
        lines = [str(s) for s in self.trace]
        lines.append(f"→ finding: {self.finding.value} ({self.finding.info.title})")
        lines.append(f"→ {self.interpretation} answers: {self.outcome.summary()}")
        if self.outcome.note:
            lines.append(f"  note: {self.outcome.note}")
        lines.append("")
        lines.append(self.outcome.http_text())
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """``scenario``, ``interpretation``, ``finding``, ``outcome`` and the trace."""
        return {
            "scenario": self.scenario,
            "interpretation": self.interpretation,
            "finding": self.finding.value,
            "outcome": self.outcome.to_json(),
            "trace": [s.to_json() for s in self.trace],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Cell:
        """The inverse of :meth:`to_json`."""
        finding = Finding(data["finding"])
        return cls(
            scenario=data["scenario"],
            interpretation=data["interpretation"],
            finding=finding,
            outcome=Outcome.from_json(finding, data["outcome"]),
            trace=tuple(_step_from_json(s) for s in data.get("trace", ())),
        )


def _step_from_json(data: Mapping[str, Any]) -> Step:
    return Step(
        check=data["check"],
        clause=cite(str(data["clause"])),  # "RFC 8705 §3", with its title from the one table
        passed=data["passed"],
        detail=data["detail"],
    )


def lab_configs(
    lab: Lab,
    asrv: AuthorizationServer,
    *,
    now: dt.datetime | None = LAB_NOW,
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_body_bytes: int = MAX_BODY_BYTES,
    required_scope: str = "read",
    jwks: Jwks | None = None,
) -> Callable[[Deployment], RsConfig]:
    """The lab's resource server (or token endpoint), for any deployment: trusting ``asrv`` (its JWKS,
    introspection, issuer and audience) and the lab CA, knowing the lab client's registrations, issuing lab
    tokens, pointing at the RFC 9728 metadata of the resource the audience names (RFC 9728 §3: the
    well-known path after the host). ``now=None`` is the wall clock. What is the lab's is worked out once;
    each call gives one deployment's configuration."""

    def clock() -> dt.datetime:
        return now or dt.datetime.now(dt.timezone.utc)

    holders = {identity.der: identity for identity in lab.identities().values()}

    def issue(der: bytes) -> str:
        return asrv.mint("bound", bound_to=holders[der], now=clock()).value

    resource = urllib.parse.urlsplit(asrv.audience)
    common: dict[str, Any] = {
        "jwks": jwks or Jwks.from_dict(asrv.jwks()),
        "introspect": lambda token: asrv.introspect(token, now=clock()),
        "issuer": asrv.issuer,
        "audience": asrv.audience,
        "required_scope": required_scope,
        "max_header_bytes": max_header_bytes,
        "max_body_bytes": max_body_bytes,
        "roots": (lab.ca.certificate,),
        "registrations": {
            Endpoint.TOKEN_PKI: Registration(
                client_id=LAB_CLIENT_ID, subject_dn=lab.client.certificate.subject.rfc4514_string()
            ),
            Endpoint.TOKEN_SELF_SIGNED: Registration(
                client_id=LAB_CLIENT_ID, x5t=lab.self_signed_client.x5t_s256
            ),
        },
        "issue": issue,
        "resource_metadata": (
            f"{resource.scheme}://{resource.netloc}/.well-known/oauth-protected-resource"
            f"{resource.path.rstrip('/')}"  # RFC 9728 §3.1: the resource's path follows the well-known one
        ),
    }
    return lambda deployment: config_for(deployment, **common)


@dataclass(frozen=True, slots=True)
class _Run:
    """One resource server a row runs: its deployment, what reaches it, its decision and trace."""

    deployment: Deployment
    tls: TlsResult
    request: Request | None
    config: RsConfig
    decision: Decision | None
    trace: tuple[Step, ...]

    def serves(self, tls: TlsResult, request: Request | None, config: RsConfig) -> bool:
        """Whether ``request`` after ``tls`` at ``config`` makes this run's decision: the same request (and
        TLS outcome) reaching a configuration that agrees on every field the decision was made from."""
        if self.tls.alert != tls.alert or self.request != request:
            return False
        consulted = self.decision.consulted if self.decision else ()
        return all(getattr(self.config, name) == getattr(config, name) for name in consulted)


class Simulator:
    """Runs scenarios through the TLS model, the engine and the interpretations: each scenario is realised
    once (its exchange is remembered); decisions are made afresh, shared within a row (:meth:`row`)."""

    def __init__(
        self,
        lab: Lab | None = None,
        *,
        seed: str | int | bytes = "mtlslab",
        asrv: AuthorizationServer | None = None,
        now: dt.datetime = LAB_NOW,
        resource_url: str = LAB_RESOURCE,
    ) -> None:
        self.lab = lab or Lab(seed=seed)
        self.asrv = asrv or AuthorizationServer(self.lab)
        self.now = now
        self.resource_url = resource_url
        self.jwks = Jwks.from_dict(self.asrv.jwks())
        self._configs = lab_configs(self.lab, self.asrv, now=now, jwks=self.jwks)
        self._exchanges: dict[Scenario, Exchange] = {}

    def introspect(self, token: str) -> Mapping[str, Any]:
        """The lab authorization server's RFC 7662 answer at the simulator's clock."""
        return self.asrv.introspect(token, now=self.now)

    def exchange(
        self, scenario: Scenario, interpretation: Interpretation | None = None
    ) -> Exchange:
        """``scenario`` realised: TLS result and requests, made once per scenario (the latest 1,024 kept);
        with ``interpretation``, as it runs it: the same request sent to its deployment."""
        found = self._exchanges.get(scenario)
        if found is None:
            made = realize(
                scenario, self.lab, self.asrv, resource_url=self.resource_url, now=self.now
            )
            found = keep_latest(self._exchanges, scenario, made)
        if interpretation is None:
            return found
        deployment = interpretation.adapt(scenario.deployment)
        return redeploy(found, deployment, lab=self.lab, now=self.now)

    def config(self, deployment: Deployment) -> RsConfig:
        """The lab resource server's configuration for ``deployment``."""
        return self._configs(deployment)

    def decide(
        self, scenario: Scenario, interpretation: Interpretation
    ) -> tuple[Exchange, Decision | None]:
        """The exchange as ``interpretation`` runs it, and the resource server's decision (``None`` when TLS
        aborted)."""
        exchange = self.exchange(scenario, interpretation)
        if exchange.request is None:
            return exchange, None
        return exchange, evaluate(
            exchange.request, self.config(exchange.scenario.deployment), now=self.now
        )

    def cell(self, scenario: Scenario, interpretation: Interpretation) -> Cell:
        """One scenario under one interpretation."""
        return self.row(scenario, (interpretation,))[0]

    def row(
        self, scenario: Scenario, interpretations: Iterable[Interpretation] | None = None
    ) -> tuple[Cell, ...]:
        """``scenario`` under each interpretation (default: the built-ins), in their order. The readings that
        run the same resource server — the same request reaching the same configuration — share one decision
        and its trace, and differ only in how they answer the finding."""
        chosen = tuple(interpretations) if interpretations is not None else tuple(BUILTINS.values())
        realised = self.exchange(scenario)
        arrivals = {arrival_key(scenario.deployment): (realised.tls, realised.request)}
        runs: list[_Run] = []  # few enough to scan: equality, not hashing, finds a shared run
        cells = []
        for interpretation in chosen:
            deployment = interpretation.adapt(scenario.deployment)
            run = next((r for r in runs if r.deployment == deployment), None)
            if run is None:
                key = arrival_key(deployment)
                if key not in arrivals:
                    arrivals[key] = arrival(realised, deployment, lab=self.lab, now=self.now)
                tls, request = arrivals[key]
                config = self.config(deployment)
                same = next((r for r in runs if r.serves(tls, request, config)), None)
                if same is not None:
                    decision = same.decision
                elif request is None:
                    decision = None
                else:
                    decision = evaluate(request, config, now=self.now)
                trace = tls.steps + (decision.trace if decision else ())
                if same is not None and same.trace == trace:
                    trace = same.trace
                run = _Run(deployment, tls, request, config, decision, trace)
                runs.append(run)
            outcome = interpretation.respond(run.decision, tls_alert=run.tls.alert)
            cells.append(
                Cell(
                    scenario=scenario.id,
                    interpretation=interpretation.name,
                    finding=outcome.finding,
                    outcome=outcome,
                    trace=run.trace,
                    deployment=deployment,
                )
            )
        return tuple(cells)

    def matrix(
        self,
        scenarios: Iterable[Scenario] = CATALOGUE,
        interpretations: Iterable[Interpretation] | None = None,
    ) -> Matrix:
        """Every scenario under every interpretation (default: the catalogue and the built-ins)."""
        scenario_list = tuple(scenarios)
        chosen = tuple(interpretations) if interpretations is not None else tuple(BUILTINS.values())
        cells = {
            (scenario.id, cell.interpretation): cell
            for scenario in scenario_list
            for cell in self.row(scenario, chosen)
        }
        return Matrix(scenarios=scenario_list, interpretations=chosen, cells=cells)


#: Two-letter abbreviations of error codes in compact cells (``401 IT``).
ERROR_ABBREVIATIONS = {
    UNSPECIFIED_ERROR: "??",
    "invalid_token": "IT",
    "invalid_request": "IR",
    "insufficient_scope": "IS",
    "invalid_dpop_proof": "DP",
    "invalid_client_certificate": "CC",
    "unauthorized_client": "UC",
    "invalid_client": "IC",
    "use_dpop_nonce": "UN",
}


def compact(outcome: Outcome) -> str:
    """A cell in at most 8 characters: ``401 ??*``, ``401 IT``, ``TLS 116``, ``200``; ``!`` a bound token
    accepted without a binding check, ``*`` unspecified, ``?`` assumed."""
    if outcome.tls_alert is not None:
        text = f"TLS {outcome.tls_alert.code}"
    else:
        text = str(outcome.status)
        if outcome.error:
            text += " " + ERROR_ABBREVIATIONS.get(outcome.error, outcome.error[:2].upper())
    if outcome.finding is Finding.ACCEPTED_ALTHOUGH_BOUND:
        text += "!"
    elif outcome.unspecified:
        text += "*"
    elif outcome.assumed:
        text += "?"
    return text


#: The columns of :meth:`Matrix.to_csv`, each with what a cell gives for it.
_CSV_COLUMNS: tuple[tuple[str, Callable[[Cell], object]], ...] = (
    ("scenario", lambda c: c.scenario),
    ("interpretation", lambda c: c.interpretation),
    ("finding", lambda c: c.finding.value),
    ("tls_alert", lambda c: c.outcome.tls_alert.name if c.outcome.tls_alert else ""),
    ("tls_alert_code", lambda c: c.outcome.tls_alert.code if c.outcome.tls_alert else ""),
    ("status", lambda c: c.outcome.status if c.outcome.status is not None else ""),
    ("error", lambda c: c.outcome.error or ""),
    ("www_authenticate", lambda c: c.outcome.www_authenticate or ""),
    ("content_type", lambda c: c.outcome.content_type or ""),
    ("body", lambda c: c.outcome.body),
    ("unspecified", lambda c: int(c.outcome.unspecified)),
    ("assumed", lambda c: int(c.outcome.assumed)),
)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Matrix:
    """Scenarios × interpretations, with the questions a spec author asks of it and its exports."""

    scenarios: tuple[Scenario, ...]
    interpretations: tuple[Interpretation, ...]
    cells: Mapping[tuple[str, str], Cell] = field(repr=False)

    def cell(self, scenario: str, interpretation: str) -> Cell:
        """One cell by scenario id and interpretation name."""
        try:
            return self.cells[(scenario, interpretation)]
        except KeyError:
            raise ScenarioError("cell", f"no cell for {scenario!r} × {interpretation!r}") from None

    def row(self, scenario: str) -> list[Cell]:
        """Every interpretation's cell for one scenario, in column order."""
        return [self.cells[(scenario, i.name)] for i in self.interpretations]

    def column(self, interpretation: str) -> list[Cell]:
        """One interpretation's cells, in row order."""
        return [self.cells[(s.id, interpretation)] for s in self.scenarios]

    def select(
        self,
        *,
        scenarios: Iterable[str] | None = None,
        interpretations: Iterable[str] | None = None,
        tags: Iterable[str] = (),
    ) -> Matrix:
        """A sub-matrix: some scenario ids and/or interpretation names, and/or scenarios with all ``tags``."""
        wanted = set(scenarios) if scenarios is not None else None
        tag_set = set(tags)
        chosen_s = tuple(
            s
            for s in self.scenarios
            if (wanted is None or s.id in wanted) and tag_set <= set(s.tags)
        )
        chosen_i = self.interpretations if interpretations is None else self._named(interpretations)
        cells = {(s.id, i.name): self.cells[(s.id, i.name)] for s in chosen_s for i in chosen_i}
        return Matrix(scenarios=chosen_s, interpretations=chosen_i, cells=cells)

    def _named(self, names: Iterable[str]) -> tuple[Interpretation, ...]:
        """The interpretations called ``names``, in that order; every one must be in this matrix."""
        by_name = {i.name: i for i in self.interpretations}
        wanted = list(names)
        unknown = [n for n in wanted if n not in by_name]
        if unknown:
            raise InterpretationError("interpretation", f"not in this matrix: {', '.join(unknown)}")
        return tuple(by_name[n] for n in wanted)

    def disagreements(self, *, strict: bool = False) -> Matrix:
        """Only the scenarios whose interpretations disagree (on the verdict; on every wire byte if ``strict``)."""
        keep = [
            s.id
            for s in self.scenarios
            if len({c.outcome.wire() if strict else c.outcome.verdict for c in self.row(s.id)}) > 1
        ]
        return self.select(scenarios=keep)

    def differences(self, interpretation: str) -> dict[str, tuple[str, ...]]:
        """For every other interpretation, in column order: the scenario ids, in row order, where its verdict
        (status and error code, or TLS alert) differs from ``interpretation``'s. An empty tuple: the same
        verdict everywhere."""
        self._named([interpretation])
        mine = {s.id: self.cells[(s.id, interpretation)].outcome.verdict for s in self.scenarios}
        return {
            other.name: tuple(
                s.id
                for s in self.scenarios
                if self.cells[(s.id, other.name)].outcome.verdict != mine[s.id]
            )
            for other in self.interpretations
            if other.name != interpretation
        }

    def consensus(self, scenario: str) -> tuple[str, ...] | None:
        """The verdict all interpretations share on ``scenario``, or ``None``."""
        verdicts = {c.outcome.verdict for c in self.row(scenario)}
        return next(iter(verdicts)) if len(verdicts) == 1 else None

    def majority(
        self, scenario: str, *, exclude_unspecified: bool = True
    ) -> tuple[tuple[str, ...], int, int]:
        """The most common verdict on ``scenario``: ``(verdict, votes, voters)``; unspecified cells abstain."""
        outs = [
            c.outcome
            for c in self.row(scenario)
            if not (exclude_unspecified and c.outcome.unspecified)
        ]
        if not outs:
            return ("",), 0, 0
        counts = Counter(o.verdict for o in outs)
        verdict, votes = max(counts.items(), key=lambda kv: (kv[1], kv[0] == outs[0].verdict))
        return verdict, votes, len(outs)

    def let_through(self, *, tag: str = "attack") -> dict[str, list[str]]:
        """Which interpretations (readings or real servers) let each ``tag`` scenario's attack through.

        Every scenario with the tag, in row order, maps to the names of the interpretations, in column order,
        whose answer serves the request (a 2xx status): an empty list means every one stops the attack. For a
        scenario also tagged ``response-splitting`` the attacker is after the answer, not access: there an
        outcome lets the attack through when a response header value holds CR, LF or NUL, and serving the
        (genuine) request is the right answer.
        """
        found: dict[str, list[str]] = {}
        for scenario in (s for s in self.scenarios if tag in s.tags):
            splitting = "response-splitting" in scenario.tags
            found[scenario.id] = [
                cell.interpretation
                for cell in self.row(scenario.id)
                if (_split(cell.outcome) if splitting else _served(cell.outcome))
            ]
        return found

    def summary(self) -> list[dict[str, Any]]:
        """Per interpretation: statuses given, agreement with the majority, unspecified/assumed cells,
        and security findings (bound tokens accepted without a binding check)."""
        majorities = {s.id: self.majority(s.id)[0] for s in self.scenarios}  # once a row
        rows = []
        for interp in self.interpretations:
            cells = self.column(interp.name)
            statuses = Counter(
                f"TLS {c.outcome.tls_alert.name}" if c.outcome.tls_alert else str(c.outcome.status)
                for c in cells
            )
            rows.append(
                {
                    "interpretation": interp.name,
                    "kind": interp.kind,
                    "cells": len(cells),
                    "agrees_with_majority": sum(
                        c.outcome.verdict == majorities[c.scenario] for c in cells
                    ),
                    "unspecified": sum(c.outcome.unspecified for c in cells),
                    "assumed": sum(c.outcome.assumed for c in cells),
                    "accepted_although_bound": sum(
                        c.finding is Finding.ACCEPTED_ALTHOUGH_BOUND for c in cells
                    ),
                    "statuses": dict(sorted(statuses.items())),
                }
            )
        return rows

    def borrowed(self, scenario: str) -> dict[str, Finding]:
        """The cells of a row that give another reading's answer for another reason, by interpretation:
        their verdict is that of a cell reaching the row's own finding (the scenario's expected one, else the
        most common), while they reach a different finding — the DPoP analogy's 401 invalid_token for a
        certificate-bound token sent as Bearer beside thread-401's for a missing certificate. Exports mark
        them, so equal answers are not read as agreement."""
        row = self.row(scenario)
        reference = next((s.expect for s in self.scenarios if s.id == scenario), None)
        if reference is None or all(c.finding is not reference for c in row):
            reference = Counter(c.finding for c in row).most_common(1)[0][0]
        by_reference = {c.outcome.verdict for c in row if c.finding is reference}
        return {
            c.interpretation: c.finding
            for c in row
            if c.finding is not reference and c.outcome.verdict in by_reference
        }

    def to_markdown(self, *, legend: bool = True) -> str:
        """A Markdown table: scenarios down, interpretations across; ``*(unspecified)*``, ``*(assumed)*``, and
        † for an answer equal to another reading's but reached by another finding (:meth:`borrowed`)."""
        head = "| scenario | " + " | ".join(f"`{i.name}`" for i in self.interpretations) + " |"
        rule = "|---|" + "---|" * len(self.interpretations)
        lines = [head, rule]
        for s in self.scenarios:
            borrowed = self.borrowed(s.id)
            cells = []
            for c in self.row(s.id):
                o = c.outcome
                if o.tls_alert is not None:
                    text = f"TLS `{o.tls_alert.name}`"
                elif o.error == UNSPECIFIED_ERROR:
                    text = f"{o.status} *(error code unspecified)*"
                else:
                    text = f"{o.status}" + (f" `{o.error}`" if o.error else "")
                    text += " *(unspecified)*" if o.unspecified else ""
                text += " *(assumed)*" if o.assumed and not o.unspecified else ""
                if c.interpretation in borrowed:
                    text += f" † *({borrowed[c.interpretation].value})*"
                if c.finding is Finding.ACCEPTED_ALTHOUGH_BOUND:
                    text += " ⚠ *binding not checked*"
                cells.append(text)
            lines.append(f"| `{s.id}` — {md_escape(s.title)} | " + " | ".join(cells) + " |")
        if legend:
            lines += [
                "",
                "*(error code unspecified)*: RFC 6750 §3 asks for an error attribute and the RFCs name no code "
                '(the cell sends error="unspecified"); *(unspecified)*: the RFCs name no answer; *(assumed)*: '
                "wholly or partly not shown by the source (see the cell's note), inherited from the baseline; "
                "† *(finding)*: the same answer as another reading's, reached by another finding (so not "
                "agreement); ⚠ *binding not checked*: a certificate- or DPoP-bound token accepted without any "
                "binding check (anyone holding it can use it). Sources: "
                + "; ".join(
                    f"`{i.name}` — {md_escape(str(i.source))}" for i in self.interpretations
                ),
            ]
        return "\n".join(lines) + "\n"

    def to_text(self, *, width: int = 72, columns: int | None = None) -> str:
        """Plain-text tables no wider than ``width`` for an Internet-Draft, split into column groups."""
        numbered = list(enumerate(self.interpretations, start=1))
        label_width = min(max((len(s.id) for s in self.scenarios), default=8), 28)
        per_group = columns or max(1, (width - label_width - 1) // 9)
        borrowed = {s.id: self.borrowed(s.id) for s in self.scenarios}

        def text_row(label: str, cells: Iterable[str]) -> str:  # cells 9 characters wide
            return (label.ljust(label_width) + " " + "".join(c.rjust(9) for c in cells)).rstrip()

        out: list[str] = []
        for start in range(0, len(numbered), per_group):
            group = numbered[start : start + per_group]
            header = text_row("scenario", (f"[{n}]" for n, _ in group))
            out += [header, "-" * min(width, len(header))]
            for s in self.scenarios:
                label = s.id if len(s.id) <= label_width else s.id[: label_width - 1] + "~"
                cells = [
                    compact(self.cells[(s.id, i.name)].outcome)
                    + ("+" if i.name in borrowed[s.id] else "")
                    for _, i in group
                ]
                out.append(text_row(label, cells))
            out.append("")
        out.append("Columns:")
        for n, i in numbered:
            out += textwrap.wrap(
                f"[{n}] {i.name}: {i.title}", width=width, subsequent_indent="     "
            )
        out.append("")
        codes = ", ".join(f"{v}={k}" for k, v in ERROR_ABBREVIATIONS.items())
        out += textwrap.wrap(
            f"Cells: status and error code ({codes}); TLS nnn = TLS alert number; "
            "* = the RFCs name no answer (unspecified); ? = wholly or partly not shown by the source "
            "(assumed); ! = a bound token accepted without any binding check; + = the same answer as "
            "another reading's, reached by another finding (not agreement):",
            width=width,
        )
        for i in self.interpretations:  # every column with a borrowed cell, and the findings
            found = {row[i.name].value for row in borrowed.values() if i.name in row}
            if found:
                legend = f"+ in {i.name}: {', '.join(sorted(found))}"
                out += textwrap.wrap(legend, width=width, subsequent_indent="    ")
        text = "\n".join(out) + "\n"
        if any(len(line) > width for line in text.splitlines()):  # a check that survives python -O
            raise RuntimeError(f"internal error: a line is wider than {width} columns")
        return text

    def to_csv(self) -> str:
        """One line per cell (long format), with a header line."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(name for name, _ in _CSV_COLUMNS)
        for s in self.scenarios:
            for c in self.row(s.id):
                writer.writerow(value(c) for _, value in _CSV_COLUMNS)
        return buffer.getvalue()

    def to_json(self, *, indent: int | None = 2) -> str:
        """JSON with ``scenarios``, ``interpretations`` and ``cells``; :meth:`from_json` loads it back."""
        data = {
            "format": "mtlslab-matrix/1",
            "scenarios": [s.to_json() for s in self.scenarios],
            "interpretations": [
                {
                    "name": i.name,
                    "title": i.title,
                    "stance": i.stance,
                    "kind": i.kind,
                    "source": asdict(i.source),
                    "definition": i.to_json(),
                }
                for i in self.interpretations
            ],
            "cells": [
                self.cells[(s.id, i.name)].to_json()
                for s in self.scenarios
                for i in self.interpretations
            ],
        }
        return json.dumps(data, indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Matrix:
        """Load a matrix written by :meth:`to_json`."""
        try:
            data = json.loads(text)
            scenarios = tuple(Scenario.from_json(s) for s in data["scenarios"])
            interpretations = tuple(
                Interpretation.from_json(i["definition"]) for i in data["interpretations"]
            )
            cells = {(c["scenario"], c["interpretation"]): Cell.from_json(c) for c in data["cells"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise ScenarioError("matrix", f"not an mtlslab matrix ({exc})") from None
        return cls(scenarios=scenarios, interpretations=interpretations, cells=cells)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Matrix):
            return NotImplemented
        return (
            self.scenarios == other.scenarios
            and self.interpretations == other.interpretations  # equal as their JSON is
            and {k: (c.finding, c.outcome) for k, c in self.cells.items()}
            == {k: (c.finding, c.outcome) for k, c in other.cells.items()}
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Matrix {len(self.scenarios)} scenarios × {len(self.interpretations)} interpretations>"

    def _repr_html_(self) -> str:
        """A plain table (the colours are the widgets'): each answer, ``*`` where the RFCs leave it
        unspecified, ``?`` where it is assumed."""
        head = "".join(
            f"<th style='padding:3px 6px;font-size:11px;writing-mode:vertical-rl;text-align:left' "
            f"title='{html.escape(i.title)}'>{html.escape(i.name)}</th>"
            for i in self.interpretations
        )
        body = []
        for s in self.scenarios:
            tds = "".join(
                f"<td style='padding:2px 6px;font-family:monospace;font-size:11px;white-space:nowrap' "
                f"title='{html.escape(c.finding.value)}'>{html.escape(c.outcome.summary())}"
                f"{'*' if c.outcome.unspecified else '?' if c.outcome.assumed else ''}</td>"
                for c in self.row(s.id)
            )
            body.append(
                f"<tr><td style='padding:2px 6px;font-family:monospace;font-size:11px' "
                f"title='{html.escape(s.title)}'>{html.escape(s.id)}</td>{tds}</tr>"
            )
        return (
            "<table style='border-collapse:collapse'>"
            f"<tr><th style='text-align:left;padding:3px 6px'>scenario</th>{head}</tr>{''.join(body)}</table>"
            "<div style='font-size:11px;color:#555'>*: unspecified by the RFCs; ?: assumed (not shown by "
            "the source)</div>"
        )


def _served(outcome: Outcome) -> bool:
    return outcome.status is not None and 200 <= outcome.status < 300


def _split(outcome: Outcome) -> bool:
    return any(set(value) & {"\r", "\n", "\0"} for _name, value in outcome.headers())


def md_escape(text: str) -> str:
    """``text`` made safe for a Markdown table cell (``|`` escaped)."""
    return text.replace("|", "\\|")
