"""The interpretation editor: start from any reading, change any answer, see where it differs."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import ipywidgets as widgets

from mtlslab.compare import Matrix, Simulator
from mtlslab.errors import InterpretationError
from mtlslab.findings import Finding
from mtlslab.interpretations import BUILTINS, Answer, Interpretation, derive, get_interpretation
from mtlslab.widgets import _render as render
from mtlslab.widgets._common import LABEL_STYLE, Adapter, checkbox, classed, root
from mtlslab.widgets._render import error_html, esc

__all__ = ["ERROR_CODES", "EXPORT_FORMATS", "SCHEMES", "InterpretationEditor"]

#: Error codes offered in the editor (any other may be typed).
ERROR_CODES = (
    "invalid_request",
    "invalid_token",
    "insufficient_scope",
    "invalid_dpop_proof",
    "invalid_client_certificate",
    "unauthorized_client",
)
#: Authentication schemes offered in the editor (empty: no WWW-Authenticate at all).
SCHEMES = ("Bearer", "DPoP", "MTLS")
#: What the export box can show.
EXPORT_FORMATS = ("interpretation JSON", "disagreements as Markdown", "disagreements as text")


class InterpretationEditor(Adapter):
    """Derive a reading from another, finding by finding, with a live diff against every other
    reading: ``interpretation`` is the current result, ``matrix`` its comparison."""

    def __init__(
        self,
        simulator: Simulator | None = None,
        *,
        base: str | Interpretation = "thread-401",
        name: str = "my-reading",
    ) -> None:
        super().__init__(simulator)
        self._known: dict[str, Interpretation] = dict(BUILTINS)
        start = base if isinstance(base, Interpretation) else get_interpretation(base)
        self._known.setdefault(start.name, start)
        self.overrides: dict[Finding, Answer] = {}
        self.interpretation: Interpretation = start
        self.matrix: Matrix | None = None

        labelled: dict[str, Any] = {"style": LABEL_STYLE}
        wide: dict[str, Any] = {**labelled, "layout": widgets.Layout(width="95%")}
        self.base = widgets.Dropdown(
            options=list(self._known), value=start.name, description="start from", **labelled
        )
        self.name = widgets.Text(value=name, description="name", **labelled)
        self.stance = widgets.Text(placeholder=start.stance, description="stance", **wide)
        self.tls_required = checkbox("require client certificates at the TLS layer")
        self.ignore_binding = checkbox("do not check the binding (cnf)")
        self.finding = widgets.Dropdown(
            options=[(f"{f.value} — {f.info.title}", f) for f in Finding],
            value=Finding.CERTIFICATE_MISSING,
            description="finding",
            **wide,
        )
        # The answer form (status, scheme, error, description) is filled by _load_form.
        self.status = widgets.BoundedIntText(min=100, max=599, description="status", **labelled)
        typed: dict[str, Any] = {"ensure_option": False, **labelled}  # any value may be typed
        self.scheme = widgets.Combobox(
            options=SCHEMES, placeholder="(no WWW-Authenticate)", description="scheme", **typed
        )
        self.error = widgets.Combobox(
            options=ERROR_CODES, placeholder="(no error code)", description="error", **typed
        )
        self.description = widgets.Text(
            placeholder="(no error_description)", description="description", **wide
        )
        # Typed text takes effect on Enter or when the field is left, not per keystroke: each change
        # recomputes the whole matrix with the edited reading (about 0.1 s).
        for text in (self.name, self.stance, self.scheme, self.error, self.description):
            text.continuous_update = False
        self.tls_alert = checkbox("answer with the TLS alert", disabled=True)
        for control in ("base", "name", "finding", "status", "error"):  # found by the browser test
            classed(getattr(self, control), f"mtlslab-control-{control}")
        self.reset = widgets.Button(
            description="back to the base's answer",
            icon="undo",
            layout=widgets.Layout(width="auto"),
        )
        self.current = widgets.HTML()
        self.problem = classed(widgets.HTML(), "mtlslab-error-box")
        self.diff = classed(widgets.HTML(), "mtlslab-diff")
        self.export_format = widgets.ToggleButtons(
            options=list(EXPORT_FORMATS), value=EXPORT_FORMATS[0], style={"button_width": "auto"}
        )
        self.export = widgets.Textarea(layout=widgets.Layout(width="98%", height="220px"))
        self.save = classed(widgets.HTML(), "mtlslab-save")
        self.load_box = widgets.Textarea(
            placeholder="paste an interpretation's JSON here, then Load",
            layout=widgets.Layout(width="70%", height="60px"),
        )
        self.load_button = widgets.Button(description="Load", icon="upload")
        classed(self.export, "mtlslab-export")
        classed(self.load_box, "mtlslab-load-box")
        classed(self.load_button, "mtlslab-load")
        self.widget = root(
            "editor",
            "Write your own interpretation",
            [
                widgets.HBox([self.base, self.name]),
                self.stance,
                widgets.HBox([self.tls_required, self.ignore_binding]),
                widgets.HTML("<b>Answer for one finding</b>"),
                self.finding,
                self.current,
                widgets.HBox([self.status, self.scheme]),
                widgets.HBox([self.error, self.tls_alert]),
                self.description,
                self.reset,
                self.problem,
                self.diff,
                widgets.HTML("<b>Export</b>"),
                self.export_format,
                self.export,
                widgets.HTML("<b>Save and load</b> (a saved file's JSON, pasted, loads back)"),
                self.save,
                widgets.HBox([self.load_box, self.load_button]),
            ],
        )
        self._observe(self.rebuild, self.name, self.stance, self.tls_required, self.ignore_binding)
        self._observe(self._base_changed, self.base)
        self._observe(self._load_form, self.finding)
        self._observe(self._form_changed, self.status, self.scheme, self.error, self.description)
        self._observe(self._show_export, self.export_format)
        self.reset.on_click(self._reset)
        self.load_button.on_click(self._load_clicked)
        self.rebuild()
        self._load_form()

    def _derive(self, overrides: dict[Finding, Answer]) -> Interpretation:
        name = self.name.value.strip()
        if not name:
            raise InterpretationError("name", "give the interpretation a name")
        if name in self._known:
            raise InterpretationError("name", f"{name!r} is taken by another interpretation")
        deployment: dict[str, Any] = {}
        if self.tls_required.value:
            deployment["client_auth"] = "required-as-deployed"
        if self.ignore_binding.value:
            deployment["checks_binding"] = False
        base, stance = self._known[self.base.value], self.stance.value
        return derive(base, name=name, stance=stance, answers=overrides, deployment=deployment)

    def rebuild(self, overrides: dict[Finding, Answer] | None = None) -> bool:
        """Derive the interpretation (one core call) and compare it over the catalogue; False on error."""
        candidate = self.overrides if overrides is None else overrides
        try:
            mine = self._derive(candidate)
            others = [i for i in self._known.values() if i.name != mine.name]
            matrix = self.simulator.matrix(interpretations=[mine, *others])
        except Exception as exc:  # shown inside the widget, which keeps working
            self.problem.value = error_html(exc)
            return False
        self.problem.value = ""
        self.overrides = dict(candidate)
        self.interpretation, self.matrix = mine, matrix
        self.diff.value = render.differences_html(matrix, mine.name)
        self._show_current()
        self._show_export()
        saved = self.exported(EXPORT_FORMATS[0])
        self.save.value = render.download_link(f"{mine.name}.json", saved)
        return True

    def _load_form(self) -> None:
        finding = self.finding.value
        answer = self.interpretation.answer(finding)
        is_tls = finding is Finding.TLS_REJECTED
        with self.held():
            self.status.value = answer.status if answer.status is not None else 401
            self.scheme.value = answer.scheme or ""
            self.error.value = answer.error or ""
            self.description.value = answer.description or ""
            self.tls_alert.value = answer.tls_alert
            for control in (self.status, self.scheme, self.error, self.description):
                control.disabled = is_tls
        self._show_current()

    def _form_changed(self) -> None:
        finding = self.finding.value
        if finding is Finding.TLS_REJECTED:
            return
        answer = dataclasses.replace(
            self.interpretation.answer(finding),
            status=self.status.value,
            scheme=self.scheme.value.strip() or None,
            error=self.error.value.strip() or None,
            description=self.description.value or None,
            same_as=None,
            unspecified=False,
            assumed=False,
            note="edited in the interpretation editor",
        )
        self.rebuild({**self.overrides, finding: answer})

    def _show_current(self) -> None:
        finding = self.finding.value
        base = self._known[self.base.value].answer(finding)
        mine = self.interpretation.answer(finding)
        info = finding.info
        hint = info.hint or "none (the RFCs are silent)"
        changed = " <b>(changed)</b>" if finding in self.overrides else ""
        self.current.value = (
            f"<div style='font-size:12px;color:#444'>{esc(info.meaning)} — "
            f"{render.link(info.clause)}; the RFC text points to: <code>{esc(hint)}</code></div>"
            f"<div style='font-size:12px'>{esc(self.base.value)} answers "
            f"<code>{esc(_answer_text(base))}</code>; yours: <code>{esc(_answer_text(mine))}</code>"
            f"{changed}</div>"
        )

    def _reset(self, _button: Any) -> None:
        finding = self.finding.value
        if finding in self.overrides:
            self.rebuild({f: a for f, a in self.overrides.items() if f is not finding})
        self._load_form()

    def _base_changed(self) -> None:
        if self.rebuild():
            self._load_form()

    def exported(self, what: str | None = None) -> str:
        """The export: the interpretation as JSON, or the disagreements as Markdown or text."""
        chosen = what or self.export_format.value
        if chosen == EXPORT_FORMATS[0]:
            return json.dumps(self.interpretation.to_json(), indent=2, ensure_ascii=False) + "\n"
        if self.matrix is None:
            return ""
        disputed = self.matrix.disagreements()
        return disputed.to_markdown() if chosen == EXPORT_FORMATS[1] else disputed.to_text()

    def _show_export(self) -> None:
        self.export.value = self.exported()

    def load(self, interpretation: Interpretation) -> None:
        """Continue from a saved interpretation: it becomes the base, under a new name."""
        self._known[interpretation.name] = interpretation
        with self.held():
            self.base.options = list(self._known)
            self.base.value = interpretation.name
            if self.name.value.strip() == interpretation.name:
                self.name.value = interpretation.name + "-2"
        self.overrides = {}
        self._base_changed()

    def _load_clicked(self, _button: Any) -> None:
        try:
            loaded = Interpretation.from_json(self.load_box.value)
        except Exception as exc:
            self.problem.value = error_html(exc)
            return
        self.load(loaded)


def _answer_text(answer: Answer) -> str:
    if answer.tls_alert:
        return "the TLS alert"
    challenge = f"{answer.scheme} challenge" if answer.scheme else "no WWW-Authenticate"
    text = f"{answer.status}, {challenge}"
    if answer.error:
        text += f" error={answer.error}"
    if answer.description:
        text += f' description="{answer.description}"'
    if answer.unspecified or answer.assumed:
        text += " [unspecified]" if answer.unspecified else " [assumed]"
    return text
