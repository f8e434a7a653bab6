"""Pure presentation for the widgets: HTML, Mermaid, SVG, raw HTTP and curl text from core values.

Nothing here imports ipywidgets or decides anything. Every piece of text that reaches HTML goes
through :func:`esc`, every piece that reaches a Mermaid diagram through :func:`mermaid_text`, so a
pasted ``<script>`` or a hostile ``Authorization`` value is shown, never run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from mtlslab.compare import ERROR_ABBREVIATIONS, Cell, Matrix, compact
from mtlslab.interpretations import Interpretation, Outcome
from mtlslab.live.terminal import curl_argv, curl_shown
from mtlslab.pki import x5t_s256
from mtlslab.rs import BindingCheck, TokenInspection
from mtlslab.scenarios import CertChoice, Deployment, Exchange, Request, Scenario, Topology
from mtlslab.spec import Clause, Step, cite, shorten
from mtlslab.tls import ClientAuth

if TYPE_CHECKING:
    from mtlslab.live import LiveRun

__all__ = [
    "SHOWN_LINE_CHARS",
    "Branch",
    "Group",
    "Message",
    "MessageKind",
    "SequenceDiagram",
    "answer_cards",
    "binding_html",
    "cell_detail_html",
    "curl_text",
    "description_html",
    "differences_html",
    "download_link",
    "error_html",
    "esc",
    "exchange_text",
    "group_cells",
    "link",
    "live_html",
    "matrix_html",
    "mermaid_text",
    "sequence_diagram",
    "thumbprint_html",
    "to_mermaid",
    "to_svg",
    "token_html",
    "trace_html",
]


_NEW_TAB = "target='_blank' rel='noopener noreferrer'"
_TABLE = "<table style='border-collapse:collapse;font-size:12px'>"
_CELL = "padding:2px 6px"
_MONO = "padding:2px 6px;font-family:monospace;word-break:break-all"
_WRAP = "white-space:pre-wrap;word-break:break-all"
_PRE = f"background:#f6f6f6;padding:4px;margin:2px 0;{_WRAP};font-size:12px"
#: Background and text colours by outcome class, for every view (the first five make the legend).
_COLOURS = {
    "2xx": ("#e6f4ea", "#1b5e20"),
    "400": ("#fff3e0", "#8a4b00"),
    "401": ("#fde7e9", "#8e1b25"),
    "403": ("#ede7f6", "#4527a0"),
    "TLS alert": ("#e8eaf6", "#1a237e"),
    "other": ("#f5f5f5", "#333333"),
}
_HIGHLIGHT = "background:#fff59d;outline:2px solid #f9a825"


def esc(text: object) -> str:
    """``text`` made safe for HTML (quotes included)."""
    return html.escape(str(text), quote=True)


def _muted(text: str) -> str:
    return f"<div style='color:#555'>{text}</div>"


def link(clause: Clause, title: str = "") -> str:
    """A link to ``clause``'s section at rfc-editor.org (``title``: its tooltip)."""
    tip = f" title='{esc(title)}'" if title else ""
    return f"<a href='{esc(clause.url)}' {_NEW_TAB}{tip}>{esc(clause.label)}</a>"


def _rows(rows: Iterable[Sequence[str]], *styles: str) -> str:
    """A small table, the ``n``-th cell of each row in ``styles[n]``, everything escaped."""
    tds = (
        "".join(f"<td style='{s}'>{esc(v)}</td>" for s, v in zip(styles, row, strict=True))
        for row in rows
    )
    return _TABLE + "".join(f"<tr>{cells}</tr>" for cells in tds) + "</table>"


def _colours(outcome: Outcome) -> tuple[str, str]:
    """Background and text colour: 2xx green, 400 orange, 401 red, 403 violet, TLS blue."""
    if outcome.tls_alert is not None:
        return _COLOURS["TLS alert"]
    status = str(outcome.status)
    return _COLOURS["2xx"] if status.startswith("2") else _COLOURS.get(status, _COLOURS["other"])


def _status_line(outcome: Outcome) -> str:
    """``HTTP/1.1 401 Unauthorized``, or the TLS alert and when the client notices it."""
    if outcome.tls_alert is not None:
        return f"no HTTP response: {outcome.tls_alert}"
    return outcome.http_text().split("\r\n", 1)[0]


def _body_text(outcome: Outcome) -> str:
    if outcome.tls_alert is not None:
        return "—"
    body = outcome.body if len(outcome.body) <= 600 else outcome.body[:600] + "…"
    kind = f"Content-Type: {outcome.content_type}\n" if outcome.content_type else ""
    return (kind + body) if (kind or body) else "(empty body)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """Interpretations that saw the same exchange and sent the same bytes back."""

    names: tuple[str, ...]
    cell: Cell
    exchange: Exchange


def group_cells(cells: Sequence[Cell], exchanges: Mapping[str, Exchange]) -> list[Group]:
    """Cells grouped by (the exchange as the interpretation deployed it, the outcome on the wire)."""
    groups: dict[tuple[object, ...], list[Cell]] = {}
    for cell in cells:
        key = (exchanges[cell.interpretation].scenario, cell.outcome.wire())
        groups.setdefault(key, []).append(cell)
    made = []
    for same in groups.values():
        names = tuple(c.interpretation for c in same)
        made.append(Group(names=names, cell=same[0], exchange=exchanges[names[0]]))
    return made


def _deployed(cell: Cell, deployment: Deployment | None) -> str:
    """How ``cell``'s reading deploys the scenario, when that differs from ``deployment`` (else empty)."""
    if deployment is None or cell.deployment is None or cell.deployment == deployment:
        return ""
    return cell.deployment.describe()


def answer_cards(
    cells: Sequence[Cell],
    interpretations: Mapping[str, Interpretation],
    *,
    deployment: Deployment | None = None,
) -> str:
    """One card per reading, side by side: status line, ``WWW-Authenticate``, body, note; a field
    that differs from the first card's is highlighted, a line above names the fields in dispute."""
    if not cells:
        return _muted("Pick at least one interpretation.")
    fields: dict[str, list[str]] = {
        "status": [_status_line(c.outcome) for c in cells],
        "WWW-Authenticate": [c.outcome.www_authenticate or "(none)" for c in cells],
        "body": [_body_text(c.outcome) for c in cells],
    }
    disputed = [name for name, values in fields.items() if len(set(values)) > 1]
    if len(cells) == 1:
        summary = "One reading selected."
    elif not disputed:
        summary = "All selected readings send the same bytes."
    else:
        verdict = (
            "they disagree on the verdict (status / error / TLS alert)"
            if len({c.outcome.verdict for c in cells}) > 1
            else "same verdict, different wording"
        )
        summary = (
            f"The readings differ in: <b>{esc(', '.join(disputed))}</b> — {verdict}. Highlighted: where a "
            f"reading differs from <b>{esc(cells[0].interpretation)}</b>, the first one selected."
        )
    cards = []
    for index, cell in enumerate(cells):
        interp = interpretations[cell.interpretation]
        bg, fg = _colours(cell.outcome)
        rows = []
        for name, values in fields.items():
            style = f"margin:2px 0;padding:3px;{_WRAP};font-family:monospace;font-size:11.5px"
            differs = index > 0 and values[index] != values[0]  # the first reading is the yardstick
            rows.append(
                f"<div style='color:#666;font-size:11px'>{esc(name)}</div>"
                f"<div class='mtlslab-field{' mtlslab-differs' if differs else ''}' "
                f"style='{style}{';' + _HIGHLIGHT if differs else ''}'>{esc(values[index])}</div>"
            )
        flags = ""
        if cell.outcome.unspecified:
            flags = "<span style='color:#8e1b25;font-weight:bold'> unspecified by the RFCs</span>"
        elif cell.outcome.assumed:
            flags = "<span style='color:#555;font-style:italic'> assumed (wholly or partly not shown by the source)</span>"
        small = "<div style='color:#555;font-size:11px{}'>{}</div>"
        adapted = _deployed(cell, deployment)
        adapted = small.format("", f"as this reading deploys it: {esc(adapted)}") if adapted else ""
        note = cell.outcome.note
        note = small.format(";margin-top:3px", f"note: {esc(note)}") if note else ""
        cards.append(
            "<div class='mtlslab-card' style='flex:1 1 230px;min-width:230px;max-width:440px;"
            "border:1px solid #ccc;border-radius:6px;padding:6px;background:#fff'>"
            f"<div title='{esc(interp.title)}'><b>{esc(cell.interpretation)}</b> "
            f"<span style='color:#777;font-size:11px'>{esc(interp.kind)}</span></div>"
            f"<div style='font-size:11px;color:#444'>{esc(interp.title)}</div>"
            f"<div class='mtlslab-verdict' style='display:inline-block;margin:4px 0;padding:2px 8px;"
            f"border-radius:10px;background:{bg};color:{fg};font-weight:bold;font-family:monospace'>"
            f"{esc(cell.outcome.summary())}</div>{flags}"
            f"<div style='font-size:11px;color:#555'>finding: <code>{esc(cell.finding.value)}</code></div>"
            f"{adapted}{''.join(rows)}{note}</div>"
        )
    return (
        f"<div style='margin:4px 0'>{summary}</div>"
        f"<div style='display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start'>{''.join(cards)}</div>"
    )


def live_html(runs: Sequence[LiveRun]) -> str:
    """One line per live run: whether the wire agrees with the simulated answer, and both answers."""
    if not runs:
        return _muted("Pick at least one interpretation.")
    return "".join(
        f"<div class='mtlslab-live-run' style='color:{'#1b5e20' if run.agree else '#b00020'}'>"
        f"<b>{esc(run.interpretation)}</b>: "
        f"{'✓ the wire agrees' if run.agree else '✗ the wire differs'} — observed"
        f"{esc(f' via {run.proxy}' if run.proxy else '')} {esc(run.outcome().summary())}, "
        f"simulated {esc(run.simulated.summary())}</div>"
        for run in runs
    )


def _step_html(step: Step) -> str:
    colour = {True: "#1b5e20", False: "#8e1b25", None: "#555"}[step.passed]
    title = step.clause.label + (f" — {step.clause.title}" if step.clause.title else "")
    top = "padding:1px 6px;vertical-align:top"
    return (
        f"<tr><td style='color:{colour};font-weight:bold;{top}'>{esc(step.mark)}</td>"
        f"<td style='{top};white-space:nowrap'>{esc(step.check)}</td>"
        f"<td style='{top};white-space:nowrap'>{link(step.clause, title)}</td>"
        f"<td style='padding:1px 6px;word-break:break-all'>{esc(step.detail)}</td></tr>"
    )


def trace_html(cells: Sequence[Cell], *, deployment: Deployment | None = None) -> str:
    """The RFC-linked trace of each distinct run (a reading that deploys otherwise has its own)."""
    runs: dict[tuple[str, ...], list[Cell]] = {}
    for cell in cells:
        runs.setdefault((*(str(s) for s in cell.trace), cell.finding.value), []).append(cell)
    parts = []
    for members in runs.values():
        cell, info = members[0], members[0].finding.info
        names = ", ".join(c.interpretation for c in members)
        how = _deployed(cell, deployment)
        how = f" — as deployed by this reading: {esc(how)}" if how else ""
        parts.append(
            f"<div style='margin:6px 0'><div style='font-weight:bold'>Trace for {esc(names)}{how}</div>"
            f"{_TABLE}{''.join(map(_step_html, cell.trace))}</table>"
            f"<div>→ finding <code>{esc(cell.finding.value)}</code> ({esc(info.title)}): {esc(info.meaning)} "
            f"[{link(info.clause)}]</div></div>"
        )
    return "".join(parts) or _muted("No trace.")


#: Lines of raw HTTP longer than this are shown shortened: the huge token is the point of its scenario, not
#: something to read (or to send to 40 browsers twice).
SHOWN_LINE_CHARS = 2048


def _wire(text: str) -> str:
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    return "\n".join(
        line if len(line) <= SHOWN_LINE_CHARS else shorten(line, SHOWN_LINE_CHARS) for line in lines
    )


def exchange_text(groups: Sequence[Group]) -> str:
    """The raw exchange: the client's request, what a proxy forwards, each distinct answer."""
    if not groups:
        return ""
    lines = ["# the client sends", _wire(groups[0].exchange.client_request.http_text()), ""]
    forwarded = "# the proxy forwards to the resource server (RFC 9440 Client-Cert)"
    for request in dict.fromkeys(g.exchange.request for g in groups if g.exchange.via_proxy):
        if request is not None:
            lines += [forwarded, _wire(request.http_text()), ""]
    for group in groups:
        answer = _wire(group.cell.outcome.http_text())
        lines += [f"# answer of {', '.join(group.names)}", answer, ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def curl_text(exchange: Exchange, *, seed: object = "mtlslab") -> str:
    """The curl command that sends the same request, one option a line, after comments that say where the
    lab's files come from (:func:`~mtlslab.live.terminal.curl_shown`: what a command line cannot carry is
    shortened or escaped, with a note)."""
    scenario = exchange.scenario
    choice = scenario.presentation.certificate
    args = curl_argv(
        exchange.client_request,
        certificate=choice,
        tls_version=scenario.deployment.tls_version,
        folder=".",
    )
    seed_arg = shlex.quote(str(seed))
    head = [f"# ca.pem, client.pem, client.key: python -m mtlslab certs --seed {seed_arg} --out ."]
    if choice not in (CertChoice.NONE, CertChoice.CLIENT):
        head.append(
            f"# {choice.value}.pem / {choice.value}.key: mtlslab.live.write_lab_folder(Lab(seed=...), '.') "
            "writes every lab identity"
        )
    head.append(
        "# rs.mtlslab.test is the simulation's host: against a live lab server "
        "(python -m mtlslab serve) use its URL"
    )
    shown, notes = curl_shown(args)
    if notes:
        head += [
            *notes,
            "# (in Python the full request is in the explorer's exchanges[...].client_request)",
        ]
    quoted = [shlex.quote(a) for a in shown]
    lines = [quoted[0]]
    for arg in quoted[1:-1]:
        if arg.startswith("--"):
            lines.append("  " + arg)
        else:
            lines[-1] += " " + arg
    lines.append("  " + quoted[-1])
    return "\n".join(head) + "\n" + " \\\n".join(lines) + "\n"


# Sequence diagrams: one data model, two renderings (Mermaid for JupyterLab, SVG for Voilà).

MessageKind = Literal["tls", "request", "response", "alert", "note"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One arrow (or note) in a sequence diagram."""

    source: str
    target: str
    text: str
    kind: MessageKind


@dataclass(frozen=True, slots=True, kw_only=True)
class Branch:
    """What happens for some of the readings."""

    label: str
    messages: tuple[Message, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SequenceDiagram:
    """Participants, the messages every reading shares, then one branch per distinct outcome."""

    participants: tuple[tuple[str, str], ...]
    prelude: tuple[Message, ...]
    branches: tuple[Branch, ...]


def _request_label(request: Request) -> str:
    parts = [f"{request.method} {shorten(request.target, 30)}"]
    for name, value in request.headers:
        lowered = name.lower()
        if lowered == "authorization":
            scheme, _, credentials = value.partition(" ")
            shown = (
                f"{shorten(scheme, 16)} {credentials[:10]}…" if credentials else shorten(value, 20)
            )
            parts.append(f"Authorization: {shown}")
        elif lowered in ("dpop", "client-cert"):
            parts.append(f"{name}: {value[:10]}…")
    if request.body:
        parts.append("access_token in the body")
    return ", ".join(parts)


def _branch(exchange: Exchange, outcome: Outcome, *, tls_end: str) -> list[Message]:
    def say(source: str, target: str, text: str, kind: MessageKind = "tls") -> None:
        messages.append(Message(source=source, target=target, text=text, kind=kind))

    messages: list[Message] = []
    client_auth = exchange.scenario.deployment.client_auth
    if client_auth is ClientAuth.NONE:
        say(tls_end, "C", "no CertificateRequest (client auth none)")
    else:
        say(tls_end, "C", f"CertificateRequest ({client_auth.value})")
        sent = exchange.scenario.presentation.certificate
        none = sent is CertChoice.NONE
        say("C", tls_end, "empty Certificate (none sent)" if none else f"Certificate: {sent.value}")
    alert, request = outcome.tls_alert, _request_label(exchange.client_request)
    if alert is not None:
        when = "during the handshake"
        if alert.when == "first_read":
            say("C", tls_end, f"{request} (sent, never answered)", "request")
            when = "at the client's first read"
        say(tls_end, "C", f"alert {alert.name} ({alert.code}) {when}", "alert")
        return messages
    say("C", tls_end, request, "request")
    forwarded = exchange.request
    if exchange.via_proxy and forwarded is not None:
        extra = "with Client-Cert" if forwarded.header_values("Client-Cert") else "no Client-Cert"
        say("P", "RS", f"{forwarded.method} {shorten(forwarded.target, 30)}, {extra}", "request")
    say("RS", "RS", f"finding: {outcome.finding.value}", "note")
    hops = [("RS", "P"), ("P", "C")] if exchange.via_proxy else [("RS", "C")]
    for source, target in hops:
        say(source, target, outcome.summary(), "response")
    return messages


def sequence_diagram(scenario: Scenario, groups: Sequence[Group]) -> SequenceDiagram:
    """The exchange as a sequence diagram: client, proxy if any, resource server; where it stops (a TLS
    alert at the handshake or at the first read, or an HTTP answer), one branch per distinct outcome."""
    proxy = scenario.deployment.topology is Topology.PROXY
    participants = (("C", "Client"), *([("P", "TLS-terminating proxy")] if proxy else []))
    participants += (("RS", "Resource server"),)
    tls_end = "P" if proxy else "RS"
    version = scenario.deployment.tls_version.value
    hello = Message(source="C", target=tls_end, text=f"ClientHello (TLS {version})", kind="tls")
    merged: dict[tuple[Message, ...], list[str]] = {}
    for group in groups:  # readings whose diagrams would be identical share one branch
        messages = tuple(_branch(group.exchange, group.cell.outcome, tls_end=tls_end))
        merged.setdefault(messages, []).extend(group.names)
    paths = list(merged)
    first, shared = paths[0], 0  # the messages all branches start with move up, before them
    while len(paths) > 1 and all(len(p) > shared + 1 and p[shared] == first[shared] for p in paths):
        shared += 1
    branches = tuple(
        Branch(label=", ".join(names), messages=path[shared:]) for path, names in merged.items()
    )
    return SequenceDiagram(
        participants=participants, prelude=(hello, *first[:shared]), branches=branches
    )


_MERMAID_ESCAPES = str.maketrans({c: f"#{ord(c)};" for c in '#;<>"`%{}\\'})
_ARROWS = {"tls": "->>", "request": "->>", "response": "-->>", "alert": "--x"}
_SVG_COLOURS = {
    "tls": "#1a237e",
    "request": "#222",
    "response": "#333",
    "alert": "#b00020",
    "note": "#555",
}


def mermaid_text(text: str) -> str:
    """``text`` safe inside a Mermaid statement: one line, entity codes for ``# ; < > " ` % { } \\``."""
    flat = "".join(c if c.isprintable() else " " for c in text)
    return flat.translate(_MERMAID_ESCAPES)


def _mermaid_message(message: Message, indent: str) -> str:
    text = mermaid_text(message.text)
    if message.kind == "note":
        return f"{indent}Note over {message.source}: {text}"
    return f"{indent}{message.source}{_ARROWS[message.kind]}{message.target}: {text}"


def to_mermaid(diagram: SequenceDiagram) -> str:
    """Mermaid ``sequenceDiagram`` source (``alt`` / ``else`` when the readings part ways)."""
    heads = [
        f"    participant {pid} as {mermaid_text(label)}" for pid, label in diagram.participants
    ]
    lines = ["sequenceDiagram", *heads, *(_mermaid_message(m, "    ") for m in diagram.prelude)]
    if len(diagram.branches) == 1:
        branch = diagram.branches[0]
        lines.append(f"    Note over C: {mermaid_text(branch.label)}")
        lines += [_mermaid_message(m, "    ") for m in branch.messages]
    else:
        for index, branch in enumerate(diagram.branches):
            lines.append(f"    {'alt' if index == 0 else 'else'} {mermaid_text(branch.label)}")
            lines += [_mermaid_message(m, "        ") for m in branch.messages]
        lines.append("    end")
    return "\n".join(lines) + "\n"


def to_svg(diagram: SequenceDiagram) -> str:
    """The same diagram as a self-contained inline SVG (for front ends without Mermaid, such as Voilà)."""
    column, left = 400, 160
    xs = {pid: left + i * column for i, (pid, _) in enumerate(diagram.participants)}
    width = left * 2 + column * (len(diagram.participants) - 1)
    rows: list[str] = []
    y = 56

    def arrow(message: Message, y: int) -> str:
        colour = _SVG_COLOURS[message.kind]
        if message.kind == "note":
            x = xs[message.source]
            return (
                f"<rect x='{x - 120}' y='{y - 15}' width='240' height='21' fill='#fffde7' stroke='#bbb'/>"
                f"<text x='{x}' y='{y}' text-anchor='middle' font-size='12' fill='{colour}'>"
                f"{esc(shorten(message.text, 40))}</text>"
            )
        x1, x2 = xs[message.source], xs[message.target]
        dash = " stroke-dasharray='5,3'" if message.kind in ("response", "alert") else ""
        head = "url(#mtlslab-cross)" if message.kind == "alert" else "url(#mtlslab-arrow)"
        return (
            f"<line x1='{x1}' y1='{y}' x2='{x2}' y2='{y}' stroke='{colour}' stroke-width='1.5'{dash} marker-end='{head}'/>"
            f"<text x='{(x1 + x2) / 2}' y='{y - 5}' text-anchor='middle' font-size='12' fill='{colour}'>{esc(shorten(message.text, 60))}</text>"
        )

    for message in diagram.prelude:
        y += 30
        rows.append(arrow(message, y))
    for branch in diagram.branches:
        y += 30
        top = y - 14
        rows.append(
            f"<text x='12' y='{y}' font-size='12' font-weight='bold' fill='#444'>{esc(shorten(branch.label, 100))}</text>"
        )
        for message in branch.messages:
            y += 30
            rows.append(arrow(message, y))
        y += 10
        if len(diagram.branches) > 1:
            rows.append(
                f"<rect x='6' y='{top - 6}' width='{width - 12}' height='{y - top + 6}' fill='none' stroke='#999' stroke-dasharray='4,3'/>"
            )
    height = y + 30
    heads = "".join(
        f"<rect x='{xs[pid] - 95}' y='8' width='190' height='28' rx='4' fill='#eceff1' stroke='#607d8b'/>"
        f"<text x='{xs[pid]}' y='27' text-anchor='middle' font-size='13'>{esc(label)}</text>"
        f"<line x1='{xs[pid]}' y1='36' x2='{xs[pid]}' y2='{height - 6}' stroke='#90a4ae' stroke-dasharray='3,3'/>"
        for pid, label in diagram.participants
    )
    defs = (
        "<defs><marker id='mtlslab-arrow' markerWidth='10' markerHeight='8' refX='9' refY='4' orient='auto'>"
        "<path d='M0,0 L10,4 L0,8 z' fill='#333'/></marker>"
        "<marker id='mtlslab-cross' markerWidth='12' markerHeight='12' refX='6' refY='6' orient='auto'>"
        "<path d='M1,1 L11,11 M11,1 L1,11' stroke='#b00020' stroke-width='2'/></marker></defs>"
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' font-family='sans-serif' role='img'>{defs}{heads}{''.join(rows)}</svg>"
    )


#: The matrix table's onclick inside a MatrixView: the clicked cell's scenario and reading are written, as
#: one value, into the view's hidden pick field, whose one change reaches the kernel, which selects the cell
#: and renders once. Our own script, with no user text in it: the ids come from the cell's data attributes.
_PICK_CELL = (
    'const td=event.target.closest("td.mtlslab-cell");const box=this.closest(".mtlslab-matrix");'
    'const f=box&&box.querySelector(".mtlslab-pick input");if(!td||!f)return;'
    'f.value=td.dataset.scenario+"\\t"+td.dataset.reading;f.dispatchEvent(new Event("input",{bubbles:true}));'
)


def matrix_html(matrix: Matrix, *, selected: tuple[str, str] | None = None) -> str:
    """Scenarios × interpretations coloured by outcome; rows where the readings disagree marked ``≠``;
    the selected cell outlined. Inside a :class:`~mtlslab.widgets.MatrixView` a click on a cell selects it."""
    if not matrix.scenarios:
        return _muted("No scenario matches this filter.")
    head = "".join(
        f"<th style='padding:2px 4px;font-size:11px;font-weight:normal;writing-mode:vertical-rl;"
        f"transform:rotate(180deg);text-align:left' title='{esc(i.title)}'>{esc(i.name)}</th>"
        for i in matrix.interpretations
    )
    rows = []
    for scenario in matrix.scenarios:
        tds = []
        for cell in matrix.row(scenario.id):
            bg, fg = _colours(cell.outcome)
            style = f"background:{bg};color:{fg};padding:1px 5px;font-family:monospace;font-size:11px;white-space:nowrap;text-align:center"
            if cell.outcome.unspecified:  # the RFCs leave the answer unspecified
                style += ";border:2px dashed #8e1b25"
            elif cell.outcome.assumed:  # not shown by the reading's source
                style += ";font-style:italic"
            if selected == (cell.scenario, cell.interpretation):
                style += ";outline:3px solid #000;outline-offset:-2px"
            tip = f"{cell.interpretation}: {cell.outcome.summary()} ({cell.finding.value}); click to see why"
            tds.append(
                f"<td class='mtlslab-cell' data-scenario='{esc(cell.scenario)}' "
                f"data-reading='{esc(cell.interpretation)}' style='{style};cursor:pointer' "
                f"title='{esc(tip)}'>{esc(compact(cell.outcome))}</td>"
            )
        weight = "bold" if selected is not None and selected[0] == scenario.id else "normal"
        mark = "≠" if matrix.consensus(scenario.id) is None else ""
        rows.append(
            f"<tr><td style='color:#b00020;font-weight:bold;padding:0 3px'>{mark}</td>"
            f"<td style='padding:1px 6px;font-family:monospace;font-size:11px;font-weight:{weight};white-space:nowrap' "
            f"title='{esc(scenario.title)}'>{esc(scenario.id)}</td>{''.join(tds)}</tr>"
        )
    legend = " ".join(
        f"<span style='background:{bg};color:{fg};padding:1px 6px;border-radius:3px'>{esc(label)}</span>"
        for label, (bg, fg) in list(_COLOURS.items())[:5]
    )
    codes = ", ".join(f"{short} {code}" for code, short in ERROR_ABBREVIATIONS.items())
    return (
        f"<div style='overflow-x:auto'><table style='border-collapse:collapse' onclick='{esc(_PICK_CELL)}'>"
        f"<tr><th></th><th style='text-align:left;padding:2px 6px'>scenario</th>{head}</tr>{''.join(rows)}</table></div>"
        f"<div style='font-size:11px;color:#555;margin-top:4px'>{legend} · ≠ readings disagree · dashed: unspecified "
        "by the RFCs (placeholder status) · italic / ?: assumed (wholly or partly not shown by the source) · "
        f"{esc(codes)}</div>"
    )


def description_html(scenario: Scenario) -> str:
    """The scenario's description, if it has one."""
    return (
        f"<div style='color:#444'>{esc(scenario.description)}</div>" if scenario.description else ""
    )


def cell_detail_html(cell: Cell, scenario: Scenario, interpretation: Interpretation) -> str:
    """One cell: the scenario, the reading's answer card and the trace behind it."""
    deployment = scenario.deployment
    return (
        f"<div><b>{esc(scenario.id)}</b>: {esc(scenario.title)}</div>{description_html(scenario)}"
        f"<div style='font-size:11px;color:#555'>{esc(scenario.describe())}</div>"
        + answer_cards([cell], {interpretation.name: interpretation}, deployment=deployment)
        + trace_html([cell], deployment=deployment)
    )


def differences_html(matrix: Matrix, name: str, *, limit: int = 6) -> str:
    """:meth:`Matrix.differences` as a table, both answers for the first ``limit`` scenarios."""
    rows = []
    for other, differing in matrix.differences(name).items():
        if not differing:
            rows.append(
                f"<tr><td style='padding:2px 6px'><code>{esc(other)}</code></td><td style='padding:2px 6px;color:#1b5e20'>"
                "same verdict on every scenario</td></tr>"
            )
            continue
        shown = ", ".join(
            f"{esc(s)} ({esc(compact(matrix.cell(s, name).outcome))} vs {esc(compact(matrix.cell(s, other).outcome))})"
            for s in differing[:limit]
        )
        more = f" … and {len(differing) - limit} more" if len(differing) > limit else ""
        rows.append(
            f"<tr><td style='padding:2px 6px;vertical-align:top'><code>{esc(other)}</code></td>"
            f"<td style='padding:2px 6px'><b>{len(differing)}</b> scenario(s): {shown}{more}</td></tr>"
        )
    return (
        f"<div><b>Where <code>{esc(name)}</code> differs</b> (verdict: status and error code, or TLS alert; "
        f"{len(matrix.scenarios)} catalogue scenarios)</div>"
        f"{_TABLE}{''.join(rows)}</table>"
    )


def download_link(filename: str, text: str) -> str:
    """A link that makes the browser save the JSON ``text`` (UTF-8) as ``filename``: a ``data:`` URL, so it
    works in JupyterLab and Voilà alike with no server route. The file name keeps only ``A-Z a-z 0-9 . _ -``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", filename)
    safe = re.sub(r"-*\.-*", ".", safe).strip("-.") or "download"
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return (
        f"<a class='mtlslab-download' download='{esc(safe)}' "
        f"href='data:application/json;charset=utf-8;base64,{payload}' "
        "style='display:inline-block;padding:3px 10px;border:1px solid #1565c0;border-radius:3px;"
        f"color:#1565c0;text-decoration:none'>⬇ Save {esc(safe)}</a>"
    )


def error_html(exc: BaseException) -> str:
    """An error shown inside a widget: its type and message, escaped."""
    return (
        "<div class='mtlslab-error' style='border:1px solid #b00020;background:#fde7e9;color:#8e1b25;"
        f"padding:6px;border-radius:4px'><b>{esc(type(exc).__name__)}</b>: {esc(exc)}</div>"
    )


def thumbprint_html(der: bytes) -> str:
    """RFC 8705 §3.1 by hand, as a small table: the DER bytes, their SHA-256, its base64url without
    padding; checked against the library's :func:`~mtlslab.pki.x5t_s256`."""
    digest = hashlib.sha256(der).digest()
    encoded = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    agrees = encoded == x5t_s256(der)
    colour, word = ("#1b5e20", "✓ equals") if agrees else ("#b00020", "✗ differs from")
    verdict = f"<span style='color:{colour}'>{word} mtlslab.pki.x5t_s256</span>"
    shown = f"{len(der)} bytes: {der[:24].hex(' ')} …"
    table = _rows(
        (
            ("1 · DER", shown, "the certificate's DER encoding, not the PEM text"),
            ("2 · SHA-256", digest.hex(), "32 bytes, shown in hex"),
            ("3 · base64url", encoded, "RFC 4648 §5 alphabet (- and _), no '=' padding"),
        ),
        f"{_CELL};white-space:nowrap",
        _MONO,
        f"{_CELL};color:#555",
    )
    return (
        "<div><b>x5t#S256, step by step</b> "
        f"({link(cite('RFC 8705 §3.1'))})</div>{table}<div>{verdict}</div>"
    )


def binding_html(binding: BindingCheck) -> str:
    """Whether the binding holds: method, expected and presented thumbprints, verdict."""
    colour = {True: "#1b5e20", False: "#b00020", None: "#555"}[binding.holds]
    word = {True: "holds", False: "does NOT hold", None: "not decided"}[binding.holds]
    rows = (
        ("method", binding.method),
        ("expected (cnf)", binding.expected or "—"),
        ("presented", binding.presented or "—"),
    )
    return (
        f"<div class='mtlslab-binding' style='color:{colour};font-weight:bold'>binding {word}: {esc(binding.reason)}</div>"
        + _rows(rows, f"{_CELL};color:#555", _MONO)
    )


def token_html(inspection: TokenInspection) -> str:
    """A decoded JWT: header, claims, signature check, binding check."""
    ok = "#1b5e20" if inspection.signature.valid else "#b00020"
    parts = (("header", inspection.header), ("claims", inspection.claims))
    return (
        "".join(
            f"<div><b>{title}</b></div><pre style='{_PRE}'>{esc(json.dumps(dict(value), indent=2))}</pre>"
            for title, value in parts
        )
        + f"<div class='mtlslab-signature' style='color:{ok}'>signature: {esc(inspection.signature.reason)}</div>"
        + binding_html(inspection.binding)
    )
