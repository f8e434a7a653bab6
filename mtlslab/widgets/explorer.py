"""The scenario explorer: compose a scenario from every dimension, every reading side by side."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from typing import Any, Literal

import ipywidgets as widgets

from mtlslab.compare import Cell, Simulator
from mtlslab.errors import ScenarioError
from mtlslab.interpretations import BUILTINS, Interpretation, get_interpretation
from mtlslab.live import LiveRun, run_scenario
from mtlslab.scenarios import (
    CATALOGUE,
    CertChoice,
    Deployment,
    Exchange,
    Presentation,
    Scenario,
    get_scenario,
)
from mtlslab.tokens import TOKEN_VARIANTS
from mtlslab.widgets import _render as render
from mtlslab.widgets._common import Adapter, checkbox, classed, root
from mtlslab.widgets._render import error_html, esc

__all__ = [
    "CUSTOM_ID",
    "DEFAULT_INTERPRETATIONS",
    "DEPLOYMENT_FIELDS",
    "PRESENTATION_FIELDS",
    "ScenarioExplorer",
]

#: The readings the explorer compares unless told otherwise: the RFC text, the thread, the TLS answer,
#: and the one real server that splits the cases.
DEFAULT_INTERPRETATIONS = ("baseline", "thread-400", "thread-401", "tls-required", "auth0")
#: The id of a scenario composed in the controls (not a catalogue entry).
CUSTOM_ID = "custom"
#: Every field of a deployment, in the order of the controls.
DEPLOYMENT_FIELDS = tuple(f.name for f in dataclasses.fields(Deployment))
#: Every field of a presentation, in the order of the controls.
PRESENTATION_FIELDS = tuple(f.name for f in dataclasses.fields(Presentation))

_LABELS = {
    "client_auth": "TLS client auth",
    "tls_version": "TLS version",
    "proxy_trusted": "origin trusts the proxy's Client-Cert",
    "proxy_strips_client_cert": "proxy strips a client's own Client-Cert",
    "checks_binding": "RS checks the binding (cnf)",
    "requires_binding": "RS requires bound tokens",
    "validation": "token validation",
    "mtls_scheme": "RS knows an MTLS scheme (hypothetical)",
    "dpop": "RS supports DPoP",
    "placement": "token placement",
    "forged_client_cert": "client adds Client-Cert",
    "dpop_proof": "DPoP proof",
    "raw_enabled": "send this exact Authorization",
    "raw_authorization": "Authorization:",
}
_CATALOGUE_IDS = frozenset(s.id for s in CATALOGUE)
_PRE = "white-space:pre-wrap;word-break:break-all;font-size:12px;background:#f6f6f6;padding:6px"
_NO_READING = "Pick at least one reading to see the exchange."
_RUNNING = "<span style='color:#555'>running over real TLS on 127.0.0.1 …</span>"


def _control(name: str, default: Any) -> Any:
    """A control for one dataclass field, from its default: a dropdown for an enum, a checkbox for a bool."""
    label = _LABELS.get(name, name.replace("_", " "))
    wide: dict[str, Any] = {"layout": widgets.Layout(width="98%")}
    labelled = {"description": label, "style": {"description_width": "120px"}, **wide}
    control: Any
    if isinstance(default, enum.Enum):
        options = [(member.value, member) for member in type(default)]
        control = widgets.Dropdown(options=options, value=default, **labelled)
    elif isinstance(default, bool):
        control = checkbox(label, value=default, **wide)
    elif name == "forged_client_cert":  # CertChoice | None: "none" stands for None
        options = [("(no header)" if c is CertChoice.NONE else c.value, c) for c in CertChoice]
        control = widgets.Dropdown(options=options, value=CertChoice.NONE, **labelled)
    elif name == "raw_authorization":  # str | None: a text field, used when its checkbox is ticked
        control = widgets.Text(value="", placeholder="e.g. Bearer  two  spaces", **labelled)
    else:  # the token variant (a field of a new kind fails the tests of every control)
        control = widgets.Dropdown(options=list(TOKEN_VARIANTS), value=default, **labelled)
    return classed(control, "mtlslab-control-" + name.replace("_", "-"))


class ScenarioExplorer(Adapter):
    """Controls for every dimension of a scenario, each reading's answer side by side: ``controls``
    maps each field name (and ``token``) to its widget, ``interpretations`` picks the readings."""

    def __init__(
        self,
        simulator: Simulator | None = None,
        *,
        scenario: str | Scenario = "no-cert-optional",
        interpretations: Iterable[str | Interpretation] = DEFAULT_INTERPRETATIONS,
        diagram: Literal["mermaid", "svg"] = "mermaid",
    ) -> None:
        super().__init__(simulator)
        self.diagram_format = diagram
        self._known: dict[str, Interpretation] = dict(BUILTINS)
        chosen = [get_interpretation(i) if isinstance(i, str) else i for i in interpretations]
        for interp in chosen:
            self._known.setdefault(interp.name, interp)
        self._picked: Scenario | None = None
        #: The last rendered scenario, cells and exchanges (for tests and notebooks).
        self.scenario: Scenario | None = None
        self.cells: list[Cell] = []
        self.exchanges: dict[str, Exchange] = {}
        self.diagram_source = self.curl_text = self.http_text = ""
        self.renders = 0
        self.live_runs: list[LiveRun] = []  # the runs of the last "Run live"

        fields = (*dataclasses.fields(Deployment), *dataclasses.fields(Presentation))
        self.controls: dict[str, Any] = {f.name: _control(f.name, f.default) for f in fields}
        self.controls["token"] = _control("token", "bound")
        self.raw_enabled = _control("raw_enabled", False)
        self.picker = widgets.Dropdown(
            options=[("— composed in the controls —", "")]
            + [(f"{s.id}: {s.title}", s.id) for s in CATALOGUE],
            value="",
            description="catalogue",
            style={"description_width": "80px"},
            layout=widgets.Layout(width="98%"),
        )
        self.interpretations = widgets.SelectMultiple(
            options=self._reading_options(),
            value=tuple(interp.name for interp in chosen),
            rows=9,
            description="readings",
            style={"description_width": "60px"},
            layout=widgets.Layout(width="98%"),
        )
        classed(self.picker, "mtlslab-control-picker")
        classed(self.interpretations, "mtlslab-control-interpretations")
        self.heading = widgets.HTML()
        self.error = classed(widgets.HTML(), "mtlslab-error-box")
        self.answers = classed(widgets.HTML(), "mtlslab-answers")
        self.trace = classed(widgets.HTML(), "mtlslab-trace")
        self.http = classed(widgets.HTML(), "mtlslab-http")
        self.curl = classed(widgets.HTML(), "mtlslab-curl")
        self.diagram: Any = widgets.Output() if diagram == "mermaid" else widgets.HTML()
        self.diagram.add_class("mtlslab-diagram")
        self.tabs = widgets.Tab(
            children=[self.diagram, self.trace, self.http, self.curl],
            titles=("Sequence diagram", "Trace", "Raw HTTP", "curl"),
        )
        tip = "send this request over real mutual TLS on 127.0.0.1, once per reading"
        self.live_button = widgets.Button(description="Run live", icon="bolt", tooltip=tip)
        classed(self.live_button, "mtlslab-live")
        self.live_button.on_click(self._run_live)
        self.live_status = classed(widgets.HTML(), "mtlslab-live-status")

        column = widgets.Layout(flex="1 1 0", min_width="260px", padding="0 6px")
        shown = [self.controls[n] for n in PRESENTATION_FIELDS if n != "raw_authorization"]
        shown += [self.raw_enabled, self.controls["raw_authorization"]]
        boxes = [
            widgets.VBox([widgets.HTML(f"<b>{title}</b>"), *children], layout=column)
            for title, children in (
                ("Deployment", [self.controls[n] for n in DEPLOYMENT_FIELDS]),
                ("Presentation", shown),
                ("Token and readings", [self.controls["token"], self.interpretations]),
            )
        ]
        self.widget = root(
            "explorer",
            "Scenario explorer",
            [
                self.picker,
                widgets.HBox(boxes, layout=widgets.Layout(flex_flow="row wrap")),
                self.heading,
                self.error,
                self.answers,
                self.tabs,
                widgets.HBox([self.live_button, self.live_status]),
            ],
        )
        self._observe(self._controls_changed, *self.controls.values(), self.raw_enabled)
        self._observe(self.render, self.interpretations)
        self._observe(self._picked_changed, self.picker)
        self.load(scenario)

    def load(self, scenario: str | Scenario) -> None:
        """Put a scenario (a catalogue id or a :class:`Scenario`) into the controls and render once."""
        found = get_scenario(scenario) if isinstance(scenario, str) else scenario
        with self.held():
            self._picked = found
            self.picker.value = found.id if found.id in _CATALOGUE_IDS else ""
            for name in DEPLOYMENT_FIELDS:
                self.controls[name].value = getattr(found.deployment, name)
            for name in PRESENTATION_FIELDS:
                value = getattr(found.presentation, name)
                if name == "forged_client_cert":
                    value = value or CertChoice.NONE
                elif name == "raw_authorization":
                    self.raw_enabled.value = value is not None
                    value = value or ""
                self.controls[name].value = value
            self.controls["token"].value = found.token
        self.render()

    def compose(self) -> Scenario:
        """The scenario the controls describe: the picked catalogue entry if they still match it."""
        values = {n: self.controls[n].value for n in PRESENTATION_FIELDS}
        forged = values["forged_client_cert"]
        values["forged_client_cert"] = None if forged is CertChoice.NONE else forged
        values["raw_authorization"] = (
            values["raw_authorization"] if self.raw_enabled.value else None
        )
        composed: dict[str, Any] = {
            "deployment": Deployment(**{n: self.controls[n].value for n in DEPLOYMENT_FIELDS}),
            "presentation": Presentation(**values),
            "token": self.controls["token"].value,
        }
        picked = self._picked
        if picked is not None and all(getattr(picked, k) == v for k, v in composed.items()):
            return picked
        return Scenario(
            id=CUSTOM_ID, title="Composed in the controls", tags=(CUSTOM_ID,), **composed
        )

    def _reading_options(self) -> list[tuple[str, str]]:
        return [(f"{i.name} — {i.title}", i.name) for i in self._known.values()]

    def chosen(self) -> list[Interpretation]:
        """The selected interpretations, in display order."""
        return [self._known[name] for name in self.interpretations.value]

    def add_interpretation(self, interpretation: Interpretation, *, select: bool = True) -> None:
        """Offer one more interpretation (e.g. from the editor), selected unless told otherwise."""
        self._known[interpretation.name] = interpretation
        with self.held():
            self.interpretations.options = self._reading_options()
            if select:
                kept = [n for n in self.interpretations.value if n != interpretation.name]
                self.interpretations.value = (*kept, interpretation.name)
        self.render()

    def _picked_changed(self) -> None:
        if self.picker.value:
            self.load(self.picker.value)

    def _controls_changed(self) -> None:
        # The catalogue picker shows the picked scenario while the controls still describe it.
        try:
            still = self._picked if self.compose() is self._picked else None
        except ScenarioError:
            still = None
        with self.held():
            self.picker.value = still.id if still and still.id in _CATALOGUE_IDS else ""
        self.render()

    def render(self) -> None:
        """One core call (the composed scenario under the chosen readings), then render every view."""
        sim = self.simulator
        try:
            scenario = self.compose()
            chosen = self.chosen()
            cells = list(sim.row(scenario, chosen))
            exchanges = {i.name: sim.exchange(scenario, i) for i in chosen}
        except Exception as exc:  # shown inside the widget, which keeps working
            self.error.value = error_html(exc)
            return
        self.error.value = ""
        self.live_status.value, self.live_runs = "", []  # a live result belongs to what was run
        self.scenario, self.cells, self.exchanges = scenario, cells, exchanges
        variant = TOKEN_VARIANTS.get(scenario.token)
        about = f": {esc(variant.description)}" if variant else ""
        self.heading.value = (
            f"<div style='margin-top:6px'><b>{esc(scenario.id)}</b>: {esc(scenario.title)} "
            f"<span style='color:#777'>[{esc(', '.join(scenario.tags))}]</span></div>"
            f"{render.description_html(scenario)}<div style='font-size:12px;color:#555'>"
            f"{esc(scenario.describe())}<br>token <code>{esc(scenario.token)}</code>{about}</div>"
        )
        self.answers.value = render.answer_cards(cells, self._known, deployment=scenario.deployment)
        self.trace.value = render.trace_html(cells, deployment=scenario.deployment)
        groups = render.group_cells(cells, exchanges)
        exchange = next(iter(exchanges.values()), None) or sim.exchange(scenario)
        self.http_text = render.exchange_text(groups)
        self.curl_text = render.curl_text(exchange, seed=sim.lab.seed)
        self.http.value = f"<pre style='{_PRE}'>{esc(self.http_text)}</pre>"
        self.curl.value = f"<pre style='{_PRE}'>{esc(self.curl_text)}</pre>"
        sequence = render.sequence_diagram(scenario, groups) if groups else None
        self.diagram_source = render.to_mermaid(sequence) if sequence else ""
        if self.diagram_format == "svg":
            self.diagram.value = render.to_svg(sequence) if sequence else esc(_NO_READING)
        else:
            # a fenced mermaid block (JupyterLab ≥ 4.1 renders it), shown without a kernel
            shown = f"```mermaid\n{self.diagram_source}```\n" if sequence else _NO_READING
            data = {"text/markdown": shown, "text/plain": shown}
            self.diagram.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)
        self.renders += 1

    def _run_live(self, _button: Any) -> None:
        """Send the scenario over real TLS once per chosen reading; show each run or the failure."""
        self.live_button.disabled = True
        self.live_status.value = _RUNNING
        self.live_runs = []
        try:
            scenario = self.compose()
            runs = [run_scenario(scenario, i, simulator=self.simulator) for i in self.chosen()]
        except Exception as exc:  # shown inside the widget, which keeps working
            self.live_status.value = error_html(exc)
            return
        finally:
            self.live_button.disabled = False
        self.live_runs = runs
        self.live_status.value = render.live_html(runs)
