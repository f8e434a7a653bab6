"""mtlslab.widgets, without a browser: setting a control's value changes what is rendered; an error stays
inside the widget, which keeps working; whatever the user types is escaped."""

from __future__ import annotations

import ast
import base64
import dataclasses
import enum
import html
import inspect
import json
import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ipywidgets")

from mtlslab import compare
from mtlslab.compare import Simulator
from mtlslab.findings import Finding
from mtlslab.interpretations import BUILTINS, Answer, Interpretation, derive
from mtlslab.live.terminal import ARGUMENT_LIMIT_BYTES
from mtlslab.scenarios import (
    CATALOGUE,
    CertChoice,
    ClientAuth,
    Deployment,
    Endpoint,
    Placement,
    Presentation,
    ProofChoice,
    Scenario,
    Scheme,
    TlsVersion,
    Topology,
    Validation,
    get_scenario,
)
from mtlslab.widgets import (
    CertificateInspector,
    InterpretationEditor,
    MatrixView,
    ScenarioExplorer,
    TokenInspector,
    explorer_app,
)
from mtlslab.widgets import _render as render
from mtlslab.widgets.app import TAB_TITLES
from mtlslab.widgets.editor import EXPORT_FORMATS
from mtlslab.widgets.explorer import CUSTOM_ID, DEPLOYMENT_FIELDS, PRESENTATION_FIELDS
from mtlslab.widgets.inspectors import PASTE

HOSTILE = "<img src=x onerror=alert(1)>"
RFC_LINK = re.compile(r"https://www\.rfc-editor\.org/rfc/rfc\d+#section-[0-9A-Z.]+")


@pytest.fixture
def explorer(sim: Simulator) -> ScenarioExplorer:
    """A fresh explorer on the thread's case, over the shared (cached) simulator."""
    return ScenarioExplorer(sim)


def summaries(explorer: ScenarioExplorer) -> dict[str, str]:
    """What each selected reading answers, as the cards show it."""
    return {c.interpretation: c.outcome.summary() for c in explorer.cells}


def verdicts(explorer: ScenarioExplorer) -> dict[str, str]:
    """The verdict badge of each answer card, as the rendered HTML shows it (reading → badge text)."""
    names = re.findall(r"<div title='[^']*'><b>([^<]+)</b>", explorer.answers.value)
    badges = re.findall(r"<div class='mtlslab-verdict'[^>]*>([^<]*)</div>", explorer.answers.value)
    assert len(names) == len(badges)
    return {html.unescape(n): html.unescape(b) for n, b in zip(names, badges, strict=True)}


def live_lines(explorer: ScenarioExplorer) -> list[str]:
    """The lines of the live result, as text (tags stripped, entities decoded)."""
    found = re.findall(
        r"<div class='mtlslab-live-run'[^>]*>(.*?)</div>", explorer.live_status.value
    )
    return [html.unescape(re.sub(r"<[^>]+>", "", line)) for line in found]


def all_html(explorer: ScenarioExplorer) -> str:
    """Every HTML the explorer has rendered."""
    views = (explorer.heading, explorer.answers, explorer.trace, explorer.http, explorer.curl)
    return "".join(v.value for v in views)


def curl_argv(text: str) -> list[str]:
    """The curl command as the shell would split it (comments and line continuations removed)."""
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return shlex.split(" ".join(line.rstrip("\\") for line in lines))


# --------------------------------------------------------------------------------------------------
# The scenario explorer: controls.


def test_every_dimension_of_a_scenario_has_a_control(explorer: ScenarioExplorer) -> None:
    """Each init field of Deployment and Presentation, and the token, has exactly one control."""
    fields = {
        f.name
        for cls in (Deployment, Presentation)
        for f in dataclasses.fields(cls)
        if f.init and not f.name.startswith("_")
    }
    assert set(DEPLOYMENT_FIELDS) | set(PRESENTATION_FIELDS) == fields
    assert set(explorer.controls) == fields | {"token"}


def test_enum_controls_offer_every_member_of_their_enum(explorer: ScenarioExplorer) -> None:
    """A dropdown for an enum field lists every member (the core's vocabulary, not a copy)."""
    for name in (*DEPLOYMENT_FIELDS, *PRESENTATION_FIELDS):
        default = getattr(Deployment() if name in DEPLOYMENT_FIELDS else Presentation(), name)
        if isinstance(default, enum.Enum):
            values = [value for _label, value in explorer.controls[name].options]
            assert values == list(type(default)), name


def test_the_explorer_opens_on_the_threads_case_with_the_readings_split(
    explorer: ScenarioExplorer,
) -> None:
    """Default: no-cert-optional, and 400 invalid_request next to 401 invalid_token, differences marked."""
    assert explorer.picker.value == "no-cert-optional"
    answers = summaries(explorer)
    assert answers["thread-400"] == "400 invalid_request"
    assert answers["thread-401"] == "401 invalid_token"
    assert answers["baseline"].endswith("[unspecified]")
    assert "mtlslab-differs" in explorer.answers.value
    assert "they disagree on the verdict" in explorer.answers.value


def test_giving_the_client_its_certificate_makes_every_reading_answer_200(
    explorer: ScenarioExplorer,
) -> None:
    """certificate → client: every card says 200 and nothing is highlighted."""
    explorer.controls["certificate"].value = CertChoice.CLIENT
    assert set(summaries(explorer).values()) == {"200"}
    assert "mtlslab-differs" not in explorer.answers.value
    assert "All selected readings send the same bytes" in explorer.answers.value


def test_one_control_change_renders_exactly_once(explorer: ScenarioExplorer) -> None:
    """A control change re-renders once; loading a whole catalogue scenario also renders once."""
    before = explorer.renders
    explorer.controls["tls_version"].value = TlsVersion.TLS1_2
    assert explorer.renders == before + 1
    explorer.picker.value = "proxy-success"
    assert explorer.renders == before + 2


def test_picking_a_catalogue_scenario_loads_every_dimension(explorer: ScenarioExplorer) -> None:
    """Picking proxy-no-cert sets topology and certificate; the rendered scenario is the catalogue's."""
    explorer.picker.value = "proxy-no-cert"
    assert explorer.controls["topology"].value is Topology.PROXY
    assert explorer.controls["certificate"].value is CertChoice.NONE
    assert explorer.scenario == get_scenario("proxy-no-cert")


def test_changing_a_control_composes_a_custom_scenario_and_back(
    explorer: ScenarioExplorer,
) -> None:
    """After a change the picker shows "composed"; undoing it shows the catalogue entry again."""
    explorer.controls["placement"].value = Placement.QUERY
    assert explorer.picker.value == ""
    assert explorer.scenario is not None
    assert explorer.scenario.id == CUSTOM_ID
    explorer.controls["placement"].value = Placement.HEADER
    assert explorer.picker.value == "no-cert-optional"
    assert explorer.scenario == get_scenario("no-cert-optional")


def test_the_readings_control_chooses_the_cards(explorer: ScenarioExplorer) -> None:
    """One reading selected: one card; two: two cards; none: a prompt instead of cards."""
    explorer.interpretations.value = ("baseline",)
    assert list(summaries(explorer)) == ["baseline"]
    assert explorer.answers.value.count("mtlslab-card") == 1
    explorer.interpretations.value = ("thread-401", "spring-security")
    assert list(summaries(explorer)) == ["thread-401", "spring-security"]
    explorer.interpretations.value = ()
    assert "Pick at least one" in explorer.answers.value


def test_a_reading_from_the_editor_can_join_the_explorer(explorer: ScenarioExplorer) -> None:
    """add_interpretation offers and selects a user's reading; its card shows its answer."""
    mine = derive(
        BUILTINS["baseline"],
        name="forbid",
        answers={Finding.CERTIFICATE_MISSING: Answer(status=403, scheme=None)},
    )
    explorer.add_interpretation(mine)
    assert "forbid" in explorer.interpretations.value
    assert summaries(explorer)["forbid"] == "403"


#: One change per control of the explorer, from a starting point where it matters, and what a person then
#: sees: (control, new value, starting controls, view, the text that view shows afterwards and not before).
#: For "answers" the text is "reading: verdict badge" ("*: badge" for every card).
CONTROL_EFFECTS = [
    ("client_auth", ClientAuth.REQUIRED, {}, "answers", "*: TLS certificate_required (116)"),
    (
        "tls_version",
        TlsVersion.TLS1_2,
        {"client_auth": ClientAuth.REQUIRED},
        "answers",
        "*: TLS handshake_failure (40)",
    ),
    (
        "topology",
        Topology.PROXY,
        {"certificate": CertChoice.CLIENT},
        "http",
        "# the proxy forwards to the resource server",
    ),
    (
        "proxy_trusted",
        False,
        {"topology": Topology.PROXY, "certificate": CertChoice.CLIENT},
        "answers",
        "thread-400: 400 invalid_request",
    ),
    (
        "proxy_strips_client_cert",
        False,
        {"topology": Topology.PROXY, "forged_client_cert": CertChoice.CLIENT},
        "answers",
        "thread-400: 200",
    ),
    ("checks_binding", False, {}, "answers", "thread-401: 200"),
    (
        "requires_binding",
        True,
        {"token": "unbound", "certificate": CertChoice.CLIENT},
        "answers",
        "*: 401 invalid_token",
    ),
    (
        "validation",
        Validation.INTROSPECTION,
        {"token": "opaque-bound", "certificate": CertChoice.CLIENT},
        "answers",
        "baseline: 200",
    ),
    (
        "mtls_scheme",
        True,
        {"scheme": Scheme.MTLS, "certificate": CertChoice.CLIENT},
        "answers",
        "baseline: 200",
    ),
    (
        "dpop",
        False,
        {"scheme": Scheme.DPOP, "token": "dpop-bound"},
        "answers",
        "baseline: 401 (no error)",
    ),
    (
        "endpoint",
        Endpoint.TOKEN_PKI,
        {"certificate": CertChoice.NONE},
        "answers",
        "baseline: 400 invalid_client",
    ),
    (
        "http2",
        True,
        {"client_auth": ClientAuth.POST_HANDSHAKE, "certificate": CertChoice.CLIENT},
        "answers",
        "baseline: 401 (error code unspecified) [unspecified]",
    ),
    (
        "query_tokens",
        False,
        {"placement": Placement.QUERY, "certificate": CertChoice.CLIENT},
        "answers",
        "baseline: 400 invalid_request",
    ),
    (
        "ignores_unknown_cnf",
        True,
        {"token": "cnf-unknown-method", "certificate": CertChoice.CLIENT},
        "answers",
        "baseline: 200",
    ),
    (
        "dpop_nonce",
        True,
        {"scheme": Scheme.DPOP, "token": "dpop-bound"},
        "answers",
        "baseline: 401 use_dpop_nonce",
    ),
    ("resource_metadata", True, {}, "http", "resource_metadata="),
    (
        "origin_validates_chain",
        True,
        {
            "topology": Topology.PROXY,
            "client_auth": ClientAuth.OPTIONAL_NO_CA,
            "certificate": CertChoice.UNTRUSTED_CA,
        },
        "answers",
        "baseline: 401 (error code unspecified) [unspecified]",
    ),
    (
        "post_handshake_auth",
        False,
        {"client_auth": ClientAuth.POST_HANDSHAKE, "certificate": CertChoice.CLIENT},
        "answers",
        "baseline: 401 (error code unspecified) [unspecified]",
    ),
    ("certificate", CertChoice.CLIENT, {}, "answers", "*: 200"),
    (
        "scheme",
        Scheme.NONE,
        {"certificate": CertChoice.CLIENT},
        "answers",
        "baseline: 401 (no error)",
    ),
    (
        "placement",
        Placement.HEADER_AND_QUERY,
        {"certificate": CertChoice.CLIENT},
        "answers",
        "thread-401: 400 invalid_request",
    ),
    ("forged_client_cert", CertChoice.CLIENT, {}, "http", "Client-Cert: :"),
    (
        "dpop_proof",
        ProofChoice.WRONG_ATH,
        {"scheme": Scheme.DPOP, "token": "dpop-bound"},
        "answers",
        "baseline: 401 invalid_dpop_proof",
    ),
    (
        "raw_authorization",
        "Bearer  two  spaces",
        {"raw_enabled": True, "certificate": CertChoice.CLIENT},
        "http",
        "Authorization: Bearer  two  spaces",
    ),
    (
        "token",
        "expired",
        {"certificate": CertChoice.CLIENT},
        "answers",
        "baseline: 401 invalid_token",
    ),
]


def shows(explorer: ScenarioExplorer, view: str, text: str) -> bool:
    """Whether ``view`` shows ``text`` (for "answers": a reading's badge, or every badge with "*")."""
    if view != "answers":
        return text in html.unescape(getattr(explorer, view).value)
    reading, _, badge = text.partition(": ")
    shown = verdicts(explorer)
    if reading == "*":
        return set(shown.values()) == {badge}
    return shown.get(reading) == badge


def test_every_control_of_the_explorer_has_an_effect_under_test() -> None:
    """CONTROL_EFFECTS covers each control of the explorer (every dimension and the token) once."""
    covered = [name for name, *_ in CONTROL_EFFECTS]
    assert sorted(covered) == sorted({*DEPLOYMENT_FIELDS, *PRESENTATION_FIELDS, "token"})


@pytest.mark.parametrize(
    ("name", "value", "start", "view", "text"),
    CONTROL_EFFECTS,
    ids=[case[0] for case in CONTROL_EFFECTS],
)
def test_each_control_changes_what_the_explorer_shows(
    explorer: ScenarioExplorer,
    name: str,
    value: object,
    start: dict[str, object],
    view: str,
    text: str,
) -> None:
    """Setting the control changes the rendered answers or exchange as the spec says; before, they did not show it."""
    for control, setting in start.items():
        target = explorer.raw_enabled if control == "raw_enabled" else explorer.controls[control]
        target.value = setting
    assert explorer.error.value == ""
    assert not shows(explorer, view, text)
    renders = explorer.renders
    explorer.controls[name].value = value
    assert explorer.error.value == ""
    assert explorer.renders == renders + 1
    assert shows(explorer, view, text), (verdicts(explorer), getattr(explorer, view).value[:400])


def test_the_explorer_names_its_tabs_and_fills_each(explorer: ScenarioExplorer) -> None:
    """The four tabs: sequence diagram, trace (with RFC links), raw HTTP (the request line), curl."""
    assert tuple(explorer.tabs.titles) == ("Sequence diagram", "Trace", "Raw HTTP", "curl")
    assert explorer.diagram.outputs
    assert "rfc8705#section-3" in explorer.trace.value
    assert "GET /resource HTTP/1.1" in explorer.http.value
    assert "curl" in explorer.curl.value


@pytest.mark.live
def test_run_live_shows_that_the_wire_agrees_with_every_card(explorer: ScenarioExplorer) -> None:
    """Pressing "Run live" on the thread's case: one line per card, each "the wire agrees" with the card's
    verdict observed on real TLS; with the certificate given, the wire answers 200 for every reading."""
    cards = verdicts(explorer)
    explorer.live_button.click()
    lines = live_lines(explorer)
    assert len(lines) == len(cards) == len(explorer.live_runs)
    for line, (reading, badge) in zip(lines, cards.items(), strict=True):
        assert line.startswith(f"{reading}: ✓ the wire agrees — observed ")
        assert f"simulated {badge}" in line
    assert "observed 400 invalid_request" in lines[1]
    assert "observed TLS certificate_required (116)" in lines[3]
    assert not explorer.live_button.disabled
    explorer.controls["certificate"].value = CertChoice.CLIENT
    assert explorer.live_status.value == ""  # the result belonged to the scenario that ran
    explorer.live_button.click()
    assert [line.split(" — ")[1] for line in live_lines(explorer)] == [
        "observed 200, simulated 200"
    ] * len(cards)


@pytest.mark.live
def test_run_live_goes_through_the_proxy_when_the_topology_has_one(
    explorer: ScenarioExplorer,
) -> None:
    """Behind a proxy, each line says which proxy carried the request, and the wire still agrees."""
    explorer.controls["topology"].value = Topology.PROXY
    explorer.interpretations.value = ("thread-400",)
    explorer.live_button.click()
    (line,) = live_lines(explorer)
    assert re.fullmatch(
        r"thread-400: ✓ the wire agrees — observed via (haproxy|builtin) 400 invalid_request, "
        r"simulated 400 invalid_request",
        line,
    )


@pytest.mark.live
def test_a_live_result_that_differs_is_marked_as_differing(explorer: ScenarioExplorer) -> None:
    """A run whose wire is not the card's answer is shown red with "the wire differs" and both answers."""
    explorer.interpretations.value = ("thread-400",)
    explorer.live_button.click()
    (run,) = explorer.live_runs
    assert "✓ the wire agrees" in render.live_html([run])
    other = explorer.simulator.cell(
        get_scenario("no-cert-optional"), BUILTINS["thread-401"]
    ).outcome
    shown = render.live_html([dataclasses.replace(run, simulated=other)])
    assert "✗ the wire differs" in shown
    assert "observed 400 invalid_request, simulated 401 invalid_token" in shown
    assert "#b00020" in shown


def test_a_failing_live_run_is_explained_inside_the_widget(
    explorer: ScenarioExplorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live run that raises (here: no port to listen on) shows its type and message, escaped, in the live
    status; the cards stay and the button can be pressed again."""

    def no_port(*_args: object, **_kwargs: object) -> None:
        raise OSError("[Errno 98] Address already in use <127.0.0.1:0>")

    monkeypatch.setattr("mtlslab.widgets.explorer.run_scenario", no_port)
    cards = verdicts(explorer)
    explorer.live_button.click()
    assert "<b>OSError</b>: [Errno 98] Address already in use &lt;127.0.0.1:0&gt;" in (
        explorer.live_status.value
    )
    assert explorer.live_runs == []
    assert not explorer.live_button.disabled
    assert verdicts(explorer) == cards


@pytest.mark.live
def test_run_live_sends_an_injected_header_line_as_the_catalogue_attack_does(
    explorer: ScenarioExplorer,
) -> None:
    """The header-injection attack picked in the catalogue: "Run live" sends its CR LF bytes, and the wire
    agrees with every card (the server reads the injected Client-Cert as untrusted)."""
    explorer.picker.value = "header-injection"
    assert explorer.scenario.id == "header-injection"
    explorer.live_button.click()
    lines = live_lines(explorer)
    assert len(lines) == len(explorer.cells) == len(explorer.live_runs)
    assert all(" ✓ the wire agrees — " in line for line in lines)
    assert not explorer.live_button.disabled


# --------------------------------------------------------------------------------------------------
# The scenario explorer: the views.


def test_required_client_auth_in_tls13_stops_at_the_clients_first_read(
    explorer: ScenarioExplorer,
) -> None:
    """TLS 1.3, required, no certificate: the diagram sends the request, then the alert crosses it out."""
    explorer.picker.value = "required-no-cert-tls13"
    assert "RS--xC: alert certificate_required (116) at the client's first read" in (
        explorer.diagram_source
    )
    assert "(sent, never answered)" in explorer.diagram_source
    assert "no HTTP response" in explorer.http_text
    # issue 14 item 4: an alert at the first read can be lost to a server that does not read first
    assert "the client may see only the connection close" in explorer.http_text


def test_required_client_auth_in_tls12_stops_during_the_handshake(
    explorer: ScenarioExplorer,
) -> None:
    """TLS 1.2, required, no certificate: the alert comes during the handshake; no request is sent."""
    explorer.picker.value = "required-no-cert-tls12"
    assert "alert handshake_failure (40) during the handshake" in explorer.diagram_source
    assert "never answered" not in explorer.diagram_source
    assert (
        "connection close" not in explorer.http_text
    )  # in the handshake: nothing sent to lose it with


def test_behind_a_proxy_the_views_show_the_proxy_and_the_forwarded_header(
    explorer: ScenarioExplorer,
) -> None:
    """proxy-success: a proxy participant, the forwarded Client-Cert in the diagram and the raw HTTP."""
    explorer.picker.value = "proxy-success"
    assert "participant P as TLS-terminating proxy" in explorer.diagram_source
    assert "P->>RS: GET /resource, with Client-Cert" in explorer.diagram_source
    assert "# the proxy forwards to the resource server" in explorer.http_text
    assert "Client-Cert: :" in explorer.http_text


def test_readings_with_the_same_exchange_share_one_branch_of_the_diagram(
    explorer: ScenarioExplorer,
) -> None:
    """thread-400 and auth0 answer alike (in the diagram's terms): one alt branch names both."""
    assert "else thread-400, auth0" in explorer.diagram_source
    assert explorer.diagram_source.count("\n    end") == 1


def test_the_diagram_is_a_fenced_mermaid_block_in_a_markdown_output(
    explorer: ScenarioExplorer,
) -> None:
    """JupyterLab renders Mermaid from a Markdown output: the output holds one ```mermaid block."""
    (output,) = explorer.diagram.outputs
    markdown = output["data"]["text/markdown"]
    assert markdown.startswith("```mermaid\nsequenceDiagram\n")
    assert markdown.endswith("```\n")


def test_the_svg_diagram_for_voila_is_well_formed(sim: Simulator) -> None:
    """diagram="svg" draws inline SVG that parses as XML and names every participant."""
    svg_explorer = ScenarioExplorer(sim, scenario="proxy-no-cert", diagram="svg")
    tree = ET.fromstring(svg_explorer.diagram.value)  # noqa: S314 - the SVG our renderer just made
    texts = {t.text for t in tree.iter("{http://www.w3.org/2000/svg}text")}
    assert {"Client", "TLS-terminating proxy", "Resource server"} <= texts


def test_the_trace_links_each_clause_to_its_rfc_section(explorer: ScenarioExplorer) -> None:
    """Every link in the trace is an rfc-editor.org section link; RFC 8705 §3 is among them."""
    links = re.findall(r"href='([^']+)'", explorer.trace.value)
    assert links
    assert all(RFC_LINK.fullmatch(link) for link in links), links
    assert "https://www.rfc-editor.org/rfc/rfc8705#section-3" in links


def test_the_curl_command_uses_the_lab_file_names_and_the_same_request(
    explorer: ScenarioExplorer,
) -> None:
    """With the bound certificate: --cacert ca.pem, --cert client.pem --key client.key, the same header."""
    explorer.controls["certificate"].value = CertChoice.CLIENT
    argv = curl_argv(explorer.curl_text)
    assert argv[0] == "curl"
    assert argv[argv.index("--cacert") + 1] == "ca.pem"
    assert argv[argv.index("--cert") + 1] == "client.pem"
    assert argv[argv.index("--key") + 1] == "client.key"
    (authorization,) = explorer.exchanges["baseline"].client_request.header_values("Authorization")
    assert argv[argv.index("--header") + 1] == f"Authorization: {authorization}"
    assert argv[-1] == "https://rs.mtlslab.test/resource"


def test_the_curl_command_follows_the_certificate_version_and_placement(
    explorer: ScenarioExplorer,
) -> None:
    """No certificate: no --cert; another: its file; TLS 1.2: --tlsv1.2; form body: --data-raw."""
    assert "--cert" not in curl_argv(explorer.curl_text)
    explorer.controls["certificate"].value = CertChoice.OTHER
    assert "other-client.pem" in curl_argv(explorer.curl_text)
    explorer.controls["tls_version"].value = TlsVersion.TLS1_2
    assert "--tlsv1.2" in curl_argv(explorer.curl_text)
    explorer.controls["placement"].value = Placement.FORM
    argv = curl_argv(explorer.curl_text)
    assert argv[argv.index("--data-raw") + 1].startswith("access_token=")
    assert "--request" not in argv  # a body means POST to curl already


def test_a_huge_token_is_shown_shortened_and_its_curl_command_says_it_cannot_run(
    explorer: ScenarioExplorer,
) -> None:
    """The huge token (over 1 MiB): the raw HTTP view shows it shortened, and the curl view says the command
    cannot run as printed (Linux caps one argument at 128 KiB) and gives no argument near that size."""
    explorer.controls["token"].value = "huge-token"
    (authorization,) = explorer.exchanges["baseline"].client_request.header_values("Authorization")
    assert len(authorization) > ARGUMENT_LIMIT_BYTES
    assert len(explorer.http_text) < 20_000
    assert "characters left out]" in explorer.http_text
    assert "431 Request Header Fields Too Large" in explorer.http_text
    assert "NOT RUNNABLE AS SHOWN" in explorer.curl_text
    argv = curl_argv(explorer.curl_text)
    assert max(len(a) for a in argv) < render.SHOWN_LINE_CHARS
    shown = argv[argv.index("--header") + 1]
    assert f"Authorization: {authorization}".startswith(shown.partition("…[")[0])
    explorer.controls["token"].value = "bound"
    assert "NOT RUNNABLE" not in explorer.curl_text
    assert "characters left out" not in explorer.http_text


# --------------------------------------------------------------------------------------------------
# Errors and escaping.


def test_an_injected_header_line_is_simulated_and_its_curl_marked_not_runnable(
    explorer: ScenarioExplorer,
) -> None:
    """CR LF in the exact Authorization (the catalogue's header-injection attacks): the engine answers it,
    and curl sends the two lines as two fields. A lone CR or a NUL, which RFC 9110 §5.5 forbids in a value
    and curl cannot send, is shown escaped under a note; a valid value renders again."""
    explorer.controls["raw_authorization"].value = "Bearer x\r\nX-Injected: 1"  # not used yet
    renders = explorer.renders
    explorer.raw_enabled.value = True
    assert explorer.error.value == ""
    assert explorer.renders == renders + 1
    assert explorer.scenario.presentation.raw_authorization == "Bearer x\r\nX-Injected: 1"
    assert "--header 'Authorization: Bearer x' \\\n  --header 'X-Injected: 1'" in explorer.curl_text
    assert "NOT RUNNABLE" not in explorer.curl_text
    for raw, shown in (("Bearer x\ry", "x\\ry"), ("Bearer x\0y", "x\\x00y")):
        explorer.controls["raw_authorization"].value = raw
        assert explorer.error.value == ""
        assert "# NOT RUNNABLE AS SHOWN: one argument holds CR, LF or NUL" in explorer.curl_text
        assert f"'Authorization: Bearer {shown}'" in explorer.curl_text
        assert "\r" not in explorer.curl_text
        assert "\0" not in explorer.curl_text
    explorer.controls["raw_authorization"].value = "Bearer abc"
    assert explorer.error.value == ""
    assert explorer.renders == renders + 4
    assert "Authorization: Bearer abc" in explorer.http_text
    assert "NOT RUNNABLE" not in explorer.curl_text


def test_a_control_change_realises_the_new_scenario_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Readings that deploy differently get the same request sent to their server (as the row does), not
    a scenario realised again for each: one realisation for a new scenario, none for one met before."""
    explorer = ScenarioExplorer(Simulator(seed="mtlslab-explorer-realised"))  # nothing met before
    explorer.interpretations.value = ("baseline", "thread-400", "tls-required", "keycloak")
    real = compare.realize
    made: list[str] = []

    def counting(scenario: Scenario, *args: Any, **kwargs: Any) -> Any:
        made.append(scenario.id)
        return real(scenario, *args, **kwargs)

    monkeypatch.setattr(compare, "realize", counting)
    explorer.controls["tls_version"].value = TlsVersion.TLS1_2
    assert len(made) == 1
    assert {e.scenario.deployment.tls_version for e in explorer.exchanges.values()} == {
        TlsVersion.TLS1_2
    }
    explorer.controls["tls_version"].value = TlsVersion.TLS1_3
    assert len(made) == 1


def test_every_catalogue_scenario_can_be_picked_and_is_shown(sim: Simulator) -> None:
    """The picker offers the whole catalogue, attacks included: each one picked is the one shown, without
    an error box, its answers the simulator's."""
    explorer = ScenarioExplorer(sim)
    for scenario in CATALOGUE:
        explorer.picker.value = scenario.id
        assert (explorer.scenario.id, explorer.error.value) == (scenario.id, ""), scenario.id
        assert f"<b>{scenario.id}</b>" in explorer.heading.value
        assert explorer.cells == list(sim.row(scenario, explorer.chosen()))


def test_hostile_text_is_escaped_in_every_view(explorer: ScenarioExplorer) -> None:
    """A typed <img onerror> reaches no HTML or Mermaid unescaped, yet is shown (escaped)."""
    explorer.raw_enabled.value = True
    explorer.controls["raw_authorization"].value = f"Bearer {HOSTILE}"
    assert explorer.error.value == ""
    assert HOSTILE not in all_html(explorer)
    assert "&lt;img src=x onerror=alert(1)&gt;" in explorer.http.value
    assert "<img" not in explorer.diagram_source


def test_mermaid_text_leaves_no_statement_breaking_character() -> None:
    """mermaid_text turns ; # < > " ` % { } \\ and line breaks into entity codes or spaces."""
    text = render.mermaid_text('a;b#c<d>e"f`g%h{i}j\\k\nl')
    bare = re.sub(r"#\d+;", "", text)
    assert not set(bare) & set(';#<>"`%{}\\\n')
    assert render.mermaid_text("plain text") == "plain text"


def test_render_helpers_need_no_ipywidgets() -> None:
    """_render is pure presentation: it imports neither ipywidgets nor IPython."""
    tree = ast.parse(inspect.getsource(render))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert not {name for name in imported if name.split(".")[0] in ("ipywidgets", "IPython")}


# --------------------------------------------------------------------------------------------------
# The matrix view.


def test_the_matrix_view_filters_by_tag(sim: Simulator) -> None:
    """tag=dpop keeps only scenarios tagged dpop, and says how many of all."""
    view = MatrixView(sim)
    view.tag.value = "dpop"
    assert view.shown.scenarios
    assert all("dpop" in s.tags for s in view.shown.scenarios)
    assert f"{len(view.shown.scenarios)} of {len(view.full.scenarios)}" in view.count.value


def test_disagreements_only_hides_the_rows_where_every_reading_agrees(sim: Simulator) -> None:
    """In the debate rows, required-no-cert-tls13 (a TLS alert for all) disappears; the thread's case stays."""
    view = MatrixView(sim, tag="debate")
    assert "required-no-cert-tls13" in [s.id for s in view.shown.scenarios]
    view.disagreements_only.value = True
    ids = [s.id for s in view.shown.scenarios]
    assert "required-no-cert-tls13" not in ids
    assert "no-cert-optional" in ids
    view.strict.value = True
    assert len(view.shown.scenarios) >= len(ids)


def test_selecting_a_cell_shows_its_answer_and_trace(sim: Simulator) -> None:
    """proxy-no-cert × auth0: the detail shows 400 invalid_request and the trace; the cell is outlined."""
    view = MatrixView(sim, tag="debate")
    view.select_cell("proxy-no-cert", "auth0")
    assert "400 invalid_request" in view.detail.value
    assert "https://www.rfc-editor.org/rfc/rfc8705#section-3" in view.detail.value
    assert view.table.value.count("outline:3px") == 1


def test_comparing_every_byte_adds_the_rows_that_differ_only_in_wording(sim: Simulator) -> None:
    """Presentation rows, disagreements only: token-in-header-and-query (same verdict, different bytes)
    appears only when "compare every byte" is ticked, and the count follows."""
    row = "token-in-header-and-query"
    view = MatrixView(sim, tag="presentation", disagreements_only=True)
    assert row not in [s.id for s in view.shown.scenarios]
    assert f">{row}<" not in view.table.value
    view.strict.value = True
    assert row in [s.id for s in view.shown.scenarios]
    assert f">{row}<" in view.table.value
    assert f"{len(view.shown.scenarios)} of {len(view.full.scenarios)}" in view.count.value


def test_picking_a_row_and_a_reading_in_the_dropdowns_shows_that_cell(sim: Simulator) -> None:
    """The two cell dropdowns, set one after the other: the detail follows each, the outline moves."""
    view = MatrixView(sim, tag="debate")
    view.scenario.value = "mismatch"
    assert "<b>mismatch</b>" in view.detail.value
    assert "401 invalid_token" in view.detail.value  # the first reading, baseline
    view.interpretation.value = "auth0-default"
    assert "accepted_although_bound" in view.detail.value
    assert "HTTP/1.1 200 OK" in view.detail.value
    (outlined,) = re.findall(r"<td class='mtlslab-cell' ([^>]*outline:3px[^>]*)>", view.table.value)
    assert "data-scenario='mismatch' data-reading='auth0-default'" in outlined


def test_every_cell_of_the_table_says_what_a_click_on_it_selects(sim: Simulator) -> None:
    """Each shown cell carries its scenario and reading, and the table's click handler writes them into the
    view's own pick field (the browser test clicks one)."""
    view = MatrixView(sim, tag="debate")
    cells = re.findall(r"data-scenario='([^']+)' data-reading='([^']+)'", view.table.value)
    assert len(cells) == len(view.shown.scenarios) * len(view.shown.interpretations)
    assert set(cells) == {
        (s.id, i.name) for s in view.shown.scenarios for i in view.shown.interpretations
    }
    (handler,) = re.findall(r"<table [^>]*onclick='([^']+)'", view.table.value)
    assert "&quot;.mtlslab-pick input&quot;" in handler
    assert "td.dataset.scenario+&quot;\\t&quot;+td.dataset.reading" in handler
    assert "mtlslab-pick" in view.pick._dom_classes
    assert view.pick.layout.display == "none"
    assert "mtlslab-control-cell-scenario" in view.scenario._dom_classes
    assert "mtlslab-control-cell-interpretation" in view.interpretation._dom_classes


def test_a_click_on_a_cell_selects_it_and_renders_the_table_once(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a click writes (scenario TAB reading) selects that cell with one table render, not one per
    dropdown (the table is the whole matrix, hundreds of kilobytes); the field is emptied for the next
    click, and a value naming no shown cell selects nothing."""
    view = MatrixView(sim)
    real, renders = render.matrix_html, []

    def counting(*args: Any, **kwargs: Any) -> str:
        renders.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(render, "matrix_html", counting)
    view.pick.value = "mismatch\tauth0-default"
    assert len(renders) == 1
    assert view.selected() == ("mismatch", "auth0-default")
    assert "data-scenario='mismatch' data-reading='auth0-default'" in view.table.value
    assert view.pick.value == ""
    view.pick.value = "no-such-scenario\tbaseline"
    assert (len(renders), view.selected()) == (1, ("mismatch", "auth0-default"))


def test_an_empty_matrix_says_so_instead_of_breaking(sim: Simulator) -> None:
    """A filter that leaves nothing: a message, no selected cell, no error."""
    view = MatrixView(
        sim, scenarios=[get_scenario("success")], interpretations=[BUILTINS["baseline"]]
    )
    view.disagreements_only.value = True
    assert "No scenario matches" in view.table.value
    assert "No cell selected" in view.detail.value
    assert view.error.value == ""


# --------------------------------------------------------------------------------------------------
# The interpretation editor.


@pytest.fixture
def editor(sim: Simulator) -> InterpretationEditor:
    """An editor starting from thread-401, on the missing-certificate finding."""
    return InterpretationEditor(sim, base="thread-401", name="my-reading")


def test_typed_text_takes_effect_when_entered_not_per_keystroke(
    editor: InterpretationEditor,
) -> None:
    """Each edit recomputes the whole matrix: the typed fields send their value on Enter or when left."""
    typed = [editor.name, editor.stance, editor.scheme, editor.error, editor.description]
    assert [control.continuous_update for control in typed] == [False] * len(typed)


def test_changing_the_status_changes_the_reading_and_the_diff(editor: InterpretationEditor) -> None:
    """status → 403: the derived reading answers 403 and the diff against thread-401 lists the scenario."""
    assert editor.finding.value is Finding.CERTIFICATE_MISSING
    editor.status.value = 403
    assert editor.interpretation.answer(Finding.CERTIFICATE_MISSING).status == 403
    assert editor.interpretation.name == "my-reading"
    assert editor.matrix is not None
    differing = editor.matrix.differences("my-reading")
    assert "no-cert-optional" in differing["thread-401"]
    assert "no-cert-optional (403 IT vs 401 IT)" in editor.diff.value


def test_a_description_rfc_6750_forbids_is_refused_inside_the_editor(
    editor: InterpretationEditor,
) -> None:
    """A '"' in error_description: the error shows, the reading is unchanged; a valid text is applied."""
    before = editor.interpretation
    editor.description.value = 'say "hello"'
    assert "RFC 6750" in editor.problem.value
    assert editor.interpretation is before
    editor.description.value = "no certificate"
    assert editor.problem.value == ""
    assert editor.interpretation.answer(Finding.CERTIFICATE_MISSING).description == "no certificate"


def test_a_name_another_reading_has_is_refused(editor: InterpretationEditor) -> None:
    """Naming it "baseline" is an error shown in the editor; a fresh name works again."""
    editor.name.value = "baseline"
    assert "taken" in editor.problem.value
    editor.name.value = "fresh"
    assert editor.problem.value == ""
    assert editor.interpretation.name == "fresh"


def test_the_json_export_loads_back_into_an_equal_reading(editor: InterpretationEditor) -> None:
    """The JSON export is what Interpretation.from_json reads back, equal to the editor's result."""
    editor.error.value = "invalid_request"
    loaded = Interpretation.from_json(editor.exported(EXPORT_FORMATS[0]))
    assert loaded == editor.interpretation
    assert editor.export.value == editor.exported()


def test_the_matrix_exports_are_markdown_and_72_column_text(editor: InterpretationEditor) -> None:
    """Markdown starts with the table header; the text export never exceeds 72 columns."""
    editor.status.value = 403
    assert editor.exported(EXPORT_FORMATS[1]).startswith("| scenario |")
    text = editor.exported(EXPORT_FORMATS[2])
    assert max(len(line) for line in text.splitlines()) <= 72
    editor.export_format.value = EXPORT_FORMATS[2]
    assert editor.export.value == text


def test_only_tls_rejected_is_answered_with_the_tls_alert(editor: InterpretationEditor) -> None:
    """On tls_rejected the HTTP fields are disabled and the alert is the answer; elsewhere the reverse."""
    editor.finding.value = Finding.TLS_REJECTED
    assert editor.tls_alert.value is True
    assert editor.status.disabled
    editor.finding.value = Finding.CERTIFICATE_MISMATCH
    assert editor.tls_alert.value is False
    assert not editor.status.disabled
    assert editor.status.value == 401


def test_the_tls_switch_moves_the_missing_certificate_to_the_tls_layer(
    editor: InterpretationEditor,
) -> None:
    """ "Require client certificates at the TLS layer": the thread's case becomes a TLS alert."""
    editor.tls_required.value = True
    assert editor.interpretation.adapt(Deployment()).client_auth is ClientAuth.REQUIRED
    assert editor.matrix is not None
    outcome = editor.matrix.cell("no-cert-optional", "my-reading").outcome
    assert outcome.tls_alert is not None


def test_switching_the_tls_requirement_back_gives_the_http_answer_again(
    editor: InterpretationEditor,
) -> None:
    """The edited reading keeps its name while its deployment changes: on, off, on again, each matrix
    follows the switch (the shared simulator keys its caches by deployment, not by name)."""
    for required in (True, False, True, False):
        editor.tls_required.value = required
        assert editor.matrix is not None
        outcome = editor.matrix.cell("no-cert-optional", "my-reading").outcome
        assert (outcome.tls_alert is not None) is required
        assert (outcome.status is None) is required


def text_of(markup: str) -> str:
    """What a person reads in rendered HTML: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_starting_from_another_reading_changes_the_answer_and_the_diff(
    editor: InterpretationEditor,
) -> None:
    """start from → thread-400: the form, the answer line and the diff all follow the new base."""
    assert "thread-401 answers 401, Bearer challenge error=invalid_token" in text_of(
        editor.current.value
    )
    editor.base.value = "thread-400"
    assert editor.status.value == 400
    assert editor.error.value == "invalid_request"
    assert "thread-400 answers 400, Bearer challenge error=invalid_request" in text_of(
        editor.current.value
    )
    assert "no-cert-optional (400 IR vs 401 IT)" in text_of(editor.diff.value)


def test_the_stance_and_the_scheme_reach_the_saved_reading(editor: InterpretationEditor) -> None:
    """A typed stance is in the JSON export; scheme → DPoP makes the answer a DPoP challenge."""
    editor.stance.value = "403 for a missing certificate <b>"
    assert json.loads(editor.export.value)["stance"] == "403 for a missing certificate <b>"
    editor.scheme.value = "DPoP"
    assert "yours: 401, DPoP challenge error=invalid_token (changed)" in text_of(
        editor.current.value
    )
    assert editor.interpretation.answer(Finding.CERTIFICATE_MISSING).scheme == "DPoP"


def test_not_checking_the_binding_lets_the_mismatch_through(editor: InterpretationEditor) -> None:
    """ "do not check the binding": the mismatch is answered 200 (flagged !), and the diff says so."""
    assert "mismatch (200! vs 401 IT)" not in text_of(editor.diff.value)
    editor.ignore_binding.value = True
    assert editor.matrix is not None
    assert editor.matrix.cell("mismatch", "my-reading").outcome.status == 200
    assert "mismatch (200! vs 401 IT)" in text_of(editor.diff.value)


def saved_file(editor: InterpretationEditor) -> tuple[str, str]:
    """The save link's file name and the text it downloads."""
    (name, payload) = re.findall(
        r"download='([^']+)' href='data:application/json;charset=utf-8;base64,([^']+)'",
        editor.save.value,
    )[0]
    return name, base64.b64decode(payload).decode("utf-8")


def test_save_downloads_the_current_reading_as_json_that_loads_back(
    editor: InterpretationEditor,
) -> None:
    """The save link names the file after the reading and holds its JSON; after an edit it holds the edit,
    and the file loads back (Load) into an equal reading."""
    assert "⬇ Save my-reading.json" in text_of(editor.save.value)
    editor.status.value = 403
    name, text = saved_file(editor)
    assert name == "my-reading.json"
    assert Interpretation.from_json(text) == editor.interpretation
    assert Interpretation.from_json(text).answer(Finding.CERTIFICATE_MISSING).status == 403
    editor.load_box.value = text
    editor.load_button.click()
    assert editor.base.value == "my-reading"
    assert editor.name.value == "my-reading-2"
    assert "my-reading answers 403" in text_of(editor.current.value)


def test_the_saved_file_name_keeps_only_safe_characters(editor: InterpretationEditor) -> None:
    """A reading named with quotes, slashes and markup still saves under a plain file name."""
    editor.name.value = "../it's <mine>"
    name, text = saved_file(editor)
    assert name == "it-s-mine.json"
    assert json.loads(text)["name"] == "../it's <mine>"
    assert "<mine>" not in editor.save.value


def test_reset_returns_a_finding_to_the_bases_answer(editor: InterpretationEditor) -> None:
    """After an edit, "back to the base's answer" restores thread-401's answer and the form."""
    editor.status.value = 418
    editor.reset.click()
    assert editor.interpretation.answer(Finding.CERTIFICATE_MISSING).status == 401
    assert editor.status.value == 401
    assert Finding.CERTIFICATE_MISSING not in editor.overrides


def test_pasted_json_is_loaded_and_garbage_is_explained(editor: InterpretationEditor) -> None:
    """Valid JSON becomes the new base; text that is not JSON is explained inside the editor."""
    saved = derive(BUILTINS["thread-400"], name="saved-reading")
    editor.load_box.value = json.dumps(saved.to_json())
    editor.load_button.click()
    assert editor.base.value == "saved-reading"
    assert editor.interpretation.answer(Finding.CERTIFICATE_MISSING).status == 400
    editor.load_box.value = "{"
    editor.load_button.click()
    assert "not JSON" in editor.problem.value


# --------------------------------------------------------------------------------------------------
# The inspectors.


def test_the_certificate_inspector_computes_the_thumbprint_step_by_step(sim: Simulator) -> None:
    """The lab client: DER → SHA-256 → base64url equals x5t_s256, and the bound token's binding holds."""
    view = CertificateInspector(sim)
    assert sim.lab.client.x5t_s256 in view.steps.value
    assert "✓ equals mtlslab.pki.x5t_s256" in view.steps.value
    assert "binding holds" in view.binding.value
    view.source.value = "other-client"
    assert "binding does NOT hold" in view.binding.value


def test_the_certificate_inspector_compares_with_the_chosen_token(sim: Simulator) -> None:
    """ "compare with token": unbound says there is nothing to compare; the self-signed client's token does
    not match the lab client's certificate."""
    view = CertificateInspector(sim)
    view.token.value = "unbound"
    assert "binding not decided: unbound (no cnf claim)" in view.binding.value
    view.token.value = "bound-self-signed"
    assert "binding does NOT hold" in view.binding.value
    assert sim.lab.client.x5t_s256 in view.binding.value


def test_a_pasted_non_certificate_is_explained_and_escaped(sim: Simulator) -> None:
    """Pasted garbage: an escaped error inside the widget; picking a lab certificate works again."""
    view = CertificateInspector(sim)
    view.pem.value = HOSTILE
    assert view.source.value == PASTE
    assert "CertificateError" in view.error.value
    assert HOSTILE not in view.error.value
    view.source.value = "self-signed-client"
    assert view.error.value == ""
    assert sim.lab.self_signed_client.x5t_s256 in view.steps.value


def test_a_pasted_pem_gives_the_lab_certificates_thumbprint_steps(sim: Simulator) -> None:
    """The lab client's PEM pasted with other line breaks: the same DER, SHA-256 and unpadded base64url."""
    view = CertificateInspector(sim)
    picked = view.steps.value
    view.pem.value = sim.lab.client.cert_pem.text().replace("\n", "\r\n")
    assert view.source.value == PASTE
    assert view.steps.value == picked
    assert "✓ equals mtlslab.pki.x5t_s256" in picked
    assert sim.lab.client.x5t_s256 in picked
    assert sim.lab.client.x5t_s256 + "=" not in picked


def test_the_token_inspector_checks_signature_and_binding(sim: Simulator) -> None:
    """The bound token with the client's certificate: valid, binding holds; with another: it does not."""
    view = TokenInspector(sim)
    assert "verifies with kid" in view.decoded.value
    assert "binding holds" in view.decoded.value
    view.certificate.value = "other-client"
    assert "binding does NOT hold" in view.decoded.value


def test_the_token_inspector_covers_dpop_pasted_and_opaque_tokens(sim: Simulator) -> None:
    """DPoP key presented: holds; a pasted unbound JWT: unbound; an opaque token: introspection shown."""
    view = TokenInspector(sim)
    view.source.value = "dpop-bound"
    view.dpop.value = True
    assert "key thumbprints match" in view.decoded.value
    view.token.value = sim.asrv.mint("unbound").value
    assert view.source.value == PASTE
    assert "not DPoP-bound" in view.decoded.value  # under the DPoP scheme, as the engine judges it
    view.dpop.value = False
    assert "unbound (no cnf claim)" in view.decoded.value
    view.source.value = "opaque-bound"
    assert "Not a JWT" in view.error.value
    assert "&quot;active&quot;: true" in view.error.value


def test_a_pasted_hostile_token_is_escaped(sim: Simulator) -> None:
    """Whatever is pasted in the token box comes back escaped in the error."""
    view = TokenInspector(sim)
    view.token.value = HOSTILE
    assert "TokenError" in view.error.value
    assert HOSTILE not in view.error.value + view.decoded.value


# --------------------------------------------------------------------------------------------------
# The app.


def test_the_app_puts_every_widget_in_a_tab(sim: Simulator) -> None:
    """explorer_app: five tabs, the explorer first (with the SVG diagram Voilà can show)."""
    app = explorer_app(sim)
    assert tuple(app.titles) == TAB_TITLES
    assert len(app.children) == len(TAB_TITLES)
    assert "mtlslab-explorer" in app.children[0]._dom_classes


def test_the_app_notebook_only_shows_the_app() -> None:
    """explorer-app.ipynb: one code cell, which calls explorer_app() (what `make voila` serves)."""
    notebook = json.loads(
        (Path(__file__).parent.parent / "notebooks" / "explorer-app.ipynb").read_text()
    )
    code = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    assert len(code) == 1
    assert code[0].strip().endswith("explorer_app()")
