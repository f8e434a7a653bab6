"""Regenerate the README's generated sections from the library's own tables (rules as data).

    python tools/readme.py           # rewrite README.md in place
    python tools/readme.py --check   # exit 1 if README.md is stale (the test suite runs this)

A generated section sits between ``<!-- generated:NAME -->`` and ``<!-- end:NAME -->``; everything else
in the README is prose and is left alone.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from collections.abc import Callable
from pathlib import Path

from mtlslab.compare import Simulator, md_escape
from mtlslab.findings import FINDINGS
from mtlslab.interpretations import BUILTINS
from mtlslab.scenarios import CATALOGUE, scenarios_tagged
from mtlslab.tokens import TOKEN_VARIANTS

README = Path(__file__).resolve().parent.parent / "README.md"


@functools.cache
def _simulator() -> Simulator:
    """One simulator for every section: the README's figures come from the same lab and caches."""
    return Simulator(seed="mtlslab")


def debate_matrix() -> str:
    """The debate's rows under every built-in interpretation (Markdown)."""
    sim = _simulator()
    return sim.matrix(scenarios_tagged("debate")).to_markdown()


_CORE_SCENARIOS = (
    "no-cert-optional",
    "mismatch",
    "required-unbound-no-cert",
    "proxy-no-cert",
    "forged-client-cert",
    "mtls-scheme-no-cert",
    "success",
)
_CORE_READINGS = (
    "baseline",
    "thread-400",
    "thread-401",
    "dpop-analogy",
    "tls-required",
    "keycloak",
    "spring-security",
    "auth0",
    "apicast",
    "duende-sample",
)


def debate_text() -> str:
    """The debate's core rows as ≤ 72-column text, ready for a mail or an Internet-Draft, with the command
    that prints exactly this."""
    from mtlslab.scenarios import get_scenario

    sim = _simulator()
    matrix = sim.matrix(
        [get_scenario(i) for i in _CORE_SCENARIOS], [BUILTINS[n] for n in _CORE_READINGS]
    )
    command = (
        "python -m mtlslab matrix --format text \\\n    "
        + " ".join(f"-s {i}" for i in _CORE_SCENARIOS)
        + " \\\n    "
        + " ".join(f"-i {n}" for n in _CORE_READINGS)
    )
    return "```sh\n" + command + "\n```\n\n```text\n" + matrix.to_text() + "```\n"


def findings_table() -> str:
    """Every finding with its clause and the RFC 6750 code the text points to."""
    lines = [
        "| finding | meaning | clause | RFC 6750 code the text points to |",
        "|---|---|---|---|",
    ]
    for finding, info in FINDINGS.items():
        hint = f"`{info.hint}`" if info.hint else "*(none)*"
        security = " **(security)**" if info.security else ""
        lines.append(
            f"| `{finding.value}`{security} | {md_escape(info.meaning)} | "
            f"[{info.clause.label}]({info.clause.url}) | {hint} |"
        )
    return "\n".join(lines) + "\n"


def interpretations_table() -> str:
    """The built-in interpretations: name, kind, stance, source."""
    lines = ["| name | kind | stance | source |", "|---|---|---|---|"]
    for interp in BUILTINS.values():
        source = (
            f"[{md_escape(interp.source.citation)}]({interp.source.url})"
            if interp.source.url
            else md_escape(interp.source.citation)
        )
        lines.append(f"| `{interp.name}` | {interp.kind} | {md_escape(interp.stance)} | {source} |")
    return "\n".join(lines) + "\n"


def tokens_table() -> str:
    """The token variants the lab mints."""
    lines = ["| variant | what it is | clause |", "|---|---|---|"]
    for variant in TOKEN_VARIANTS.values():
        lines.append(f"| `{variant.name}` | {md_escape(variant.description)} | {variant.cite} |")
    return "\n".join(lines) + "\n"


def attacks_table() -> str:
    """Every attack scenario: what it tries, what the baseline finds, who lets it through."""
    sim = _simulator()
    attacks = scenarios_tagged("attack")
    matrix = sim.matrix(attacks)
    through = matrix.let_through(tag="attack")
    lines = ["| attack | baseline finding | let through by |", "|---|---|---|"]
    for scenario in attacks:
        finding = matrix.cell(scenario.id, "baseline").finding.value
        who = ", ".join(f"`{n}`" for n in through[scenario.id]) or "nobody"
        lines.append(f"| `{scenario.id}` — {md_escape(scenario.title)} | `{finding}` | {who} |")
    return "\n".join(lines) + "\n"


def catalogue_summary() -> str:
    """How many scenarios, by tag."""
    tags: dict[str, int] = {}
    for scenario in CATALOGUE:
        for tag in scenario.tags:
            tags[tag] = tags.get(tag, 0) + 1
    listed = ", ".join(f"`{t}` ({n})" for t, n in sorted(tags.items()))
    return f"{len(CATALOGUE)} scenarios; tags: {listed}.\n"


SECTIONS: dict[str, Callable[[], str]] = {
    "debate-matrix": debate_matrix,
    "debate-text": debate_text,
    "findings": findings_table,
    "interpretations": interpretations_table,
    "tokens": tokens_table,
    "catalogue": catalogue_summary,
    "attacks": attacks_table,
}


def render(text: str) -> str:
    """``text`` with every generated section regenerated."""
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n)(.*?)(<!-- end:{name} -->)", re.DOTALL)
        if not pattern.search(text):
            continue
        body = make()
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(3), text)
    return text


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md, or with --check report whether it is stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if README.md is not up to date"
    )
    args = parser.parse_args(argv)
    current = README.read_text(encoding="utf-8")
    fresh = render(current)
    if args.check:
        if fresh != current:
            print("README.md is stale: run python tools/readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
