"""The matrix view: scenarios × readings coloured by outcome; filter; select a cell to see why."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets

from mtlslab.compare import Matrix, Simulator
from mtlslab.interpretations import Interpretation
from mtlslab.scenarios import CATALOGUE, Scenario
from mtlslab.widgets import _render as render
from mtlslab.widgets._common import Adapter, checkbox, classed, root

__all__ = ["ALL_TAGS", "MatrixView"]

#: The filter's "no tag" choice.
ALL_TAGS = "(all)"


class MatrixView(Adapter):
    """Scenarios × interpretations, filtered by tag and to disagreements; the selected cell
    (``scenario`` and ``interpretation``) explained. ``shown`` is the matrix displayed."""

    def __init__(
        self,
        simulator: Simulator | None = None,
        *,
        scenarios: Iterable[Scenario] = CATALOGUE,
        interpretations: Iterable[Interpretation] | None = None,
        tag: str = ALL_TAGS,
        disagreements_only: bool = False,
    ) -> None:
        super().__init__(simulator)
        self.full: Matrix = self.simulator.matrix(tuple(scenarios), interpretations)
        self.shown: Matrix = self.full

        def dropdown(name: str, description: str, label: int, width: int, **options: Any) -> Any:
            style = {"description_width": f"{label}px"}
            layout = widgets.Layout(width=f"{width}px")
            options |= {"description": description, "style": style, "layout": layout}
            return classed(widgets.Dropdown(**options), f"mtlslab-control-{name}")

        tags = sorted({t for s in self.full.scenarios for t in s.tags})
        names = [i.name for i in self.full.interpretations]
        self.tag = dropdown("tag", "tag", 40, 200, options=[ALL_TAGS, *tags], value=tag)
        self.disagreements_only = checkbox("only where readings disagree", value=disagreements_only)
        classed(self.disagreements_only, "mtlslab-control-disagreements")
        self.strict = checkbox("compare every byte (not only the verdict)")
        self.scenario = dropdown("cell-scenario", "scenario", 70, 420)
        self.interpretation = dropdown(
            "cell-interpretation", "reading", 60, 320, options=names, value=names[0]
        )
        self.count = widgets.HTML()
        # A click on a cell writes "scenario<TAB>reading" here: one change, so the table renders once.
        self.pick = classed(widgets.Text(layout=widgets.Layout(display="none")), "mtlslab-pick")
        self.error = widgets.HTML()
        self.table = classed(widgets.HTML(), "mtlslab-matrix-table")
        self.detail = classed(widgets.HTML(), "mtlslab-cell-detail")
        self.widget = root(
            "matrix",
            "Scenarios × readings",
            [
                widgets.HBox([self.tag, self.disagreements_only, self.strict, self.count]),
                self.error,
                self.pick,
                self.table,
                widgets.HTML("<b>Selected cell</b> (click a cell, or pick a row and a reading)"),
                widgets.HBox([self.scenario, self.interpretation]),
                self.detail,
            ],
        )
        self._observe(self.filter, self.tag, self.disagreements_only, self.strict)
        self._observe(self.show_cell, self.scenario, self.interpretation)
        self._observe(self._clicked, self.pick)
        self.filter()

    def filter(self) -> None:
        """Apply the tag and disagreement filters (core calls: select, disagreements), then render."""
        tags = () if self.tag.value == ALL_TAGS else (self.tag.value,)
        shown = self.full.select(tags=tags)  # only tags the matrix holds: nothing to refuse
        if self.disagreements_only.value:
            shown = shown.disagreements(strict=self.strict.value)
        self.shown = shown
        ids = [s.id for s in shown.scenarios]
        with self.held():
            current = self.scenario.value
            self.scenario.options = [(f"{s.id}: {s.title}", s.id) for s in shown.scenarios]
            self.scenario.value = current if current in ids else (ids[0] if ids else None)
        total = len(self.full.scenarios)
        self.count.value = f"<span style='color:#555'>{len(ids)} of {total} scenarios</span>"
        self.show_cell()

    def selected(self) -> tuple[str, str] | None:
        """The selected cell as ``(scenario id, interpretation name)``."""
        return (self.scenario.value, self.interpretation.value) if self.scenario.value else None

    def show_cell(self) -> None:
        """Render the matrix with the selected cell outlined, and that cell's answer and trace."""
        selected = self.selected()
        self.table.value = render.matrix_html(self.shown, selected=selected)
        if selected is None:
            self.detail.value = "<div style='color:#555'>No cell selected.</div>"
            return
        cell = self.full.cell(*selected)  # both dropdowns offer only what the matrix holds
        scenario = next(s for s in self.full.scenarios if s.id == selected[0])
        interp = next(i for i in self.full.interpretations if i.name == selected[1])
        self.detail.value = render.cell_detail_html(cell, scenario, interp)

    def _clicked(self) -> None:
        scenario, _, reading = self.pick.value.partition("\t")
        with self.held():
            self.pick.value = ""  # the same cell clicked again is a change again
        if (
            scenario in [s.id for s in self.shown.scenarios]
            and reading in self.interpretation.options
        ):
            self.select_cell(scenario, reading)

    def select_cell(self, scenario: str, interpretation: str) -> None:
        """Select a cell (the scenario must pass the current filters), rendering once."""
        with self.held():
            self.interpretation.value = interpretation
            self.scenario.value = scenario
        self.show_cell()
