"""How a probe report reads: the text, Markdown, JSON and HTML behind :class:`mtlslab.probe.ProbeReport`.

Pure presentation. Every string the server chose (fields, body, error codes, the first bytes of an answer
that is not HTTP) is made visible before it is printed: control and invisible characters as escapes
(``\\x1b``); in Markdown its markup and HTML escaped too, in HTML by :func:`html.escape`, in JSON DEL, C1
and the other invisible characters json leaves alone.
"""

from __future__ import annotations

import html
import json
import re
import textwrap
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from mtlslab.compare import ERROR_ABBREVIATIONS
from mtlslab.interpretations import Outcome
from mtlslab.live.client import MAX_BODY, Observed
from mtlslab.spec import shorten
from mtlslab.tls import ALERTS

if TYPE_CHECKING:
    from mtlslab.probe import Prediction, ProbeReport, ProbeResult, Score

__all__ = [
    "html_report",
    "json_report",
    "markdown_report",
    "text_report",
    "verdict_text",
    "visible",
]

_NOT_ASCII_OR_NEWLINE = re.compile(r"[^\x20-\x7e\n]")
#: What Markdown (CommonMark, GitHub's tables) reads as markup or HTML inside a line of text.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>&|~])")
#: How much of a server's field value a report shows.
_FIELD_SHOWN = 300


def visible(text: str, limit: int | None = None) -> str:
    """``text`` as a report prints it, through :func:`mtlslab.spec.shorten` (the one helper that shows a
    value someone else chose): every control or invisible character (ESC, 8-bit CSI, a line break, a
    bidirectional override...) and the backslash escaped; at most ``limit`` characters when given."""
    return shorten(text, max(16, limit if limit is not None else 10 * len(text)))


def verdict_text(verdict: tuple[str, ...]) -> str:
    """A verdict in words; the server's part made visible."""
    if verdict[0] == "tls":
        return f"TLS {verdict[1]} ({ALERTS.get(verdict[1], '?')})"
    if verdict[0] == "error":
        return f"no answer ({visible(verdict[1])})"
    return visible(f"{verdict[0]} {verdict[1]}".rstrip())


def _short(verdict: tuple[str, ...]) -> str:
    """A verdict in at most 7 characters: ``401 IT``, ``TLS 116``, ``200``, ``no ans``."""
    if verdict[0] == "tls":
        return f"TLS {ALERTS.get(verdict[1], '?')}"
    if verdict[0] == "error":
        return "no ans"
    status, error = verdict
    initials = "".join(c if c.isascii() and c.isalnum() else "?" for c in error[:2]).upper()
    return f"{status} {ERROR_ABBREVIATIONS.get(error) or initials}" if error else status


def _setup(report: ProbeReport) -> str:
    how = "bring-your-own token and certificate"
    if report.mode == "lab-issuer":
        how = "lab issuer"
        if report.issuer:
            how += f" {report.issuer} (JWKS {report.jwks_url}), audience {report.audience}"
    return (
        f"{how}; TLS {report.tls_version.value}; {len(report.results)} requests, sequential, in "
        f"{report.seconds:.1f} s. " + " ".join(report.assumptions)
    )


def _columns(
    report: ProbeReport,
) -> Iterator[tuple[int, Score, list[tuple[ProbeResult, Prediction]]]]:
    """Each interpretation's column: its number, its score and each probe with its prediction."""
    for n, score in enumerate(report.scores):
        yield n + 1, score, [(r, r.predictions[n]) for r in report.results]


_Wrap = Callable[..., list[str]]


def _wrapper(width: int) -> _Wrap:
    def wrap(text: str, indent: str = "", subsequent: str = "") -> list[str]:
        return textwrap.wrap(
            text,
            width=width,
            initial_indent=indent,
            subsequent_indent=subsequent,
            break_long_words=True,
            break_on_hyphens=False,
        ) or [indent.rstrip()]

    return wrap


def text_report(report: ProbeReport, *, width: int, details: bool) -> str:
    """:meth:`mtlslab.probe.ProbeReport.to_text`."""
    wrap = _wrapper(width)
    out = [*wrap(f"mtlslab probe of {report.target}"), *wrap(report.headline), ""]
    out.append("SECURITY WARNINGS" if report.warnings else "Security warnings: none")
    for w in report.warnings:
        out += wrap(f"! {w}", "  ", "    ")
    out += ["", *_grid(report, wrap, width)]
    if report.skipped:
        out += ["", f"Skipped ({len(report.skipped)} probes):"]
        grouped: dict[str, list[str]] = {}
        for skip in report.skipped:
            grouped.setdefault(skip.reason, []).append(skip.probe.id)
        for reason, ids in grouped.items():
            out += wrap(f"{', '.join(ids)}: {reason}", "  ", "    ")
    if details:
        out += ["", *wrap("Setup: " + _setup(report)), "", "Mismatches, per interpretation:"]
        closest = report.closest
        for n, s, column in _columns(report):
            head = f"[{n}] {s.interpretation}: verdict {s.verdict}/{s.probes}, exact "
            out += wrap(f"{head}{s.exact}/{s.probes}", "", "    ")
            for r, p in column:
                out += _mismatch_text(r, p, wrap, detailed=s.interpretation in closest)
        out += ["", "Requests sent and answers received:"]
        for n, r in enumerate(report.results, start=1):
            title = f"{r.probe.id} — {r.probe.title} [certificate: {r.sent.certificate}]"
            out += wrap(f"{n:>2} {title}", "", "   ")
            for line in r.sent.lines():
                out += wrap(line, "     ", "       ")
            out += wrap("→ " + _observed_text(r.observed), "     ", "       ")
    text = "\n".join(out).rstrip("\n") + "\n"
    if any(len(line) > width for line in text.splitlines()):  # a check that survives python -O
        raise RuntimeError(f"internal error: a line is wider than {width} columns")
    return text


def _grid(report: ProbeReport, wrap: _Wrap, width: int) -> list[str]:
    label = max([len(r.probe.id) for r in report.results] + [len("probe")])
    columns = list(_columns(report))
    per_group = max(1, (width - label - 9) // 3)
    out: list[str] = []
    for start in range(0, len(columns), per_group):
        group = columns[start : start + per_group]
        out += [""] if start else []
        out.append(f"{'probe'.ljust(label)} server  {''.join(f'{n:>3}' for n, _, _ in group)}")
        for i, r in enumerate(report.results):
            marks = "".join(f"{column[i][1].mark:>3}" for _, _, column in group)
            out.append(f"{r.probe.id.ljust(label)} {_short(r.verdict):<7} {marks}".rstrip())
        for total in ("verdict", "exact"):
            figures = "".join(f"{getattr(s, total):>3}" for _, s, _ in group)
            out.append(total.rjust(label) + " " * 9 + figures)
    closest = set(report.closest)
    legend = "; ".join(
        f"{n} {s.interpretation}" + (" (closest)" if s.interpretation in closest else "")
        for n, s, _ in columns
    )
    used = {r.verdict[1] for r in report.results if r.verdict[0] not in ("tls", "error")}
    codes = "".join(f"{v} {k}, " for k, v in ERROR_ABBREVIATIONS.items() if k in used)
    return [
        *out,
        "",
        *wrap(
            "= same on the wire (the realm's value aside: it is the server's own), ~ same verdict "
            "(status and error code, or TLS alert), x different; scores out of "
            f"{len(report.results)}. {legend}. Server: {codes}TLS n = alert number."
        ),
    ]


def _mismatch_text(r: ProbeResult, p: Prediction, wrap: _Wrap, *, detailed: bool) -> list[str]:
    """One probe an interpretation did not predict exactly (none when it did); ``detailed``: with the
    predicted and the observed answer."""
    if p.exact:
        return []
    if p.verdict:
        text = f"~ {r.probe.id}: {', '.join(p.differences)} differ"
    else:
        text = f"x {r.probe.id}: predicted {p.outcome.summary()}, server {verdict_text(r.verdict)}"
    lines = wrap(text, "    ", "      ")
    if detailed:
        lines += wrap("predicted: " + _outcome_text(p.outcome), "      ", "        ")
        lines += wrap("observed:  " + _observed_text(r.observed), "      ", "        ")
    return lines


def _outcome_text(outcome: Outcome) -> str:
    if outcome.tls_alert is not None:
        return str(outcome.tls_alert)
    parts = [str(outcome.status)]
    if outcome.www_authenticate:
        parts.append(f"WWW-Authenticate: {outcome.www_authenticate}")
    if outcome.content_type:
        parts.append(f"Content-Type: {outcome.content_type}")
    parts += [f"{name}: {value}" for name, value in outcome.headers_more]
    parts.append(f"body {_body_text(outcome.body)}")
    return visible("; ".join(parts))


def _observed_text(observed: Observed) -> str:
    """The answer in one line, every part of it the server's made visible and shortened."""
    if observed.tls_alert is not None or observed.status is None:
        return visible(observed.summary(), _FIELD_SHOWN)
    parts = [str(observed.status)]
    for name in ("WWW-Authenticate", "Content-Type"):
        value = observed.header(name)
        if value:
            parts.append(f"{name}: {visible(value, _FIELD_SHOWN)}")
    parts.append(f"body {_body_text(observed.body)}")
    if observed.truncated:
        total = "" if observed.body_length is None else f" of {observed.body_length}"
        parts.append(f"only the first {MAX_BODY} bytes{total} read")
    if observed.error:
        parts.append(visible(observed.error, _FIELD_SHOWN))
    return "; ".join(parts)


def _body_text(body: str) -> str:
    if not body:
        return "empty"
    flat = " ".join(body[:4096].split())
    shown = repr(flat) if len(flat) <= 60 else f"{repr(flat[:48])[:-1]}…' ({len(body)} chars)"
    return visible(shown)


def _md_text(text: str) -> str:
    """``text`` for a line (or a table cell) of Markdown: visible, and markup or HTML escaped."""
    return _MARKDOWN.sub(r"\\\1", visible(text))


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall("`+", text)), default=0)


def _md_code(text: str) -> str:
    """``text`` as a Markdown code span, safe in a table cell."""
    shown = visible(text).replace("|", "\\|")
    ticks = "`" * (1 + _longest_backtick_run(shown))
    pad = " " if shown.startswith("`") or shown.endswith("`") else ""
    return f"{ticks}{pad}{shown}{pad}{ticks}"


def _md_cell(p: Prediction) -> str:
    """A prediction in the Markdown grid: ✓ exact, ≈ and what differs, or the other verdict in bold."""
    if p.exact:
        return "✓"
    if p.verdict:
        return "≈ " + _md_text(", ".join(p.differences))
    return f"**{_md_text(verdict_text(p.outcome.verdict))}**"


def markdown_report(report: ProbeReport) -> str:
    """:meth:`mtlslab.probe.ProbeReport.to_markdown`."""
    md = _md_text
    out = [f"**mtlslab probe of {_md_code(report.target)}: {md(report.headline)}**", ""]
    out.append("**Security warnings**" if report.warnings else "Security warnings: none")
    out += [f"- ⚠ {md(w.text)} (`{w.probe}`)" for w in report.warnings]
    names = " | ".join(_md_code(s.interpretation) for s in report.scores)
    out += ["", md(_setup(report)), "", f"| probe | certificate | server | {names} |"]
    out.append("|---|---|---|" + "---|" * len(report.scores))
    for r in report.results:
        cells = [_md_cell(p) for p in r.predictions]
        head = f"`{r.probe.id}` | {r.sent.certificate} | {md(verdict_text(r.verdict))}"
        out.append(f"| {head} | {' | '.join(cells)} |")
    totals = " | ".join(f"{s.verdict} / {s.exact}" for s in report.scores)
    out += [
        f"| **verdict / exact** | | | {totals} |",
        "",
        "✓ same on the wire (the realm's value aside: it is the server's own); ≈ same verdict "
        "(status and error code, or TLS alert), other bytes; **bold**: the verdict this "
        "interpretation predicts, where it differs from the server's.",
    ]
    if report.skipped:
        out += ["", "**Skipped**", ""]
        out += [f"- `{s.probe.id}`: {md(s.reason)}" for s in report.skipped]
    out += ["", "**Mismatches**", ""]
    for _, s, column in _columns(report):
        misses = [
            f"`{r.probe.id}` ({md(', '.join(p.differences)) if p.verdict else 'verdict'})"
            for r, p in column
            if not p.exact
        ]
        scores = f"verdict {s.verdict}/{s.probes}, exact {s.exact}/{s.probes}"
        out.append(f"- {_md_code(s.interpretation)} — {scores}: {', '.join(misses) or 'none'}")
    block = []
    for n, r in enumerate(report.results, start=1):
        block.append(f"{n:>2} {r.probe.id} [certificate: {r.sent.certificate}]")
        block += [f"   {visible(line)}" for line in r.sent.lines()]
        block.append(f"   → {_observed_text(r.observed)}")
    fence = "`" * max(3, 1 + _longest_backtick_run("\n".join(block)))
    out += ["", "**Requests sent**", "", fence, *block, fence]
    return "\n".join(out) + "\n"


def json_report(report: ProbeReport, *, indent: int | None) -> str:
    """:meth:`mtlslab.probe.ProbeReport.to_json`."""
    data = {
        "format": "mtlslab-probe/2",
        "target": report.target,
        "mode": report.mode,
        "tls_version": report.tls_version.value,
        "issuer": report.issuer,
        "jwks_url": report.jwks_url,
        "audience": report.audience,
        "assumptions": list(report.assumptions),
        "seconds": round(report.seconds, 3),
        "headline": report.headline,
        "inconclusive": report.inconclusive,
        "closest": list(report.closest),
        "unique": report.unique,
        "warnings": [{"probe": w.probe, "text": w.text} for w in report.warnings],
        "probes": [r.to_json() for r in report.results],
        "skipped": [{"probe": s.probe.id, "reason": s.reason} for s in report.skipped],
        "scores": [s.to_json() for s in report.scores],
    }
    text = json.dumps(data, indent=indent, ensure_ascii=False)
    # Outside its strings JSON text is ASCII and newlines; inside, json escapes C0 but not DEL, C1
    # or other invisible characters: escape those too, as json.dumps spells them for ASCII output (a
    # UTF-16 pair beyond the BMP).
    return _NOT_ASCII_OR_NEWLINE.sub(
        lambda m: m.group() if m.group().isprintable() else json.dumps(m.group())[1:-1], text
    )


def html_report(report: ProbeReport) -> str:
    """:meth:`mtlslab.probe.ProbeReport._repr_html_`."""

    def esc(text: str) -> str:
        return html.escape(visible(text))

    def cell(text: str, title: str, style: str) -> str:
        return f"<td style='{style}' title='{esc(title)}'>{esc(text)}</td>"

    small = "font-family:monospace;font-size:11px;padding:2px"
    colours = {"=": "#e6f4ea", "~": "#fff3e0", "x": "#fde7e9"}
    head = "".join(
        "<th style='padding:2px 4px;font-size:11px;writing-mode:vertical-rl'>"
        f"{esc(s.interpretation)}</th>"
        for s in report.scores
    )
    rows = []
    for r in report.results:
        tds = "".join(
            cell(
                p.mark if p.exact else _short(p.outcome.verdict),
                p.outcome.summary(),
                f"background:{colours[p.mark]};padding:2px 4px;font-family:monospace;"
                "font-size:11px;text-align:center",
            )
            for p in r.predictions
        )
        probe_td = cell(r.probe.id, r.probe.title, f"{small} 6px")
        bold = f"{small} 6px;font-weight:bold"
        server_td = cell(verdict_text(r.verdict), _observed_text(r.observed), bold)
        rows.append(f"<tr>{probe_td}{server_td}{tds}</tr>")
    warn = "".join(
        f"<div style='color:#b00020;font-weight:bold'>⚠ {esc(str(w))}</div>"
        for w in report.warnings
    )
    skipped = "".join(
        f"<li><code>{esc(s.probe.id)}</code>: {esc(s.reason)}</li>" for s in report.skipped
    )
    return (
        f"<div><b>{esc(report.target)}</b>: {esc(report.headline)}</div>{warn}"
        "<table style='border-collapse:collapse'><tr><th style='text-align:left'>probe</th>"
        f"<th style='text-align:left'>server</th>{head}</tr>{''.join(rows)}</table>"
        "<div style='font-size:11px;color:#555'>= same on the wire (the realm's value aside); a "
        "status: the interpretation predicts something else (amber: same verdict, other bytes; "
        "red: another verdict)</div>"
        + (f"<div>Skipped:</div><ul>{skipped}</ul>" if skipped else "")
    )
