"""The explorer as one app: every widget in tabs, for Voilà (``make voila``) or a notebook cell."""

from __future__ import annotations

from typing import Any, Literal

import ipywidgets as widgets

from mtlslab.compare import Simulator
from mtlslab.widgets._common import classed
from mtlslab.widgets.editor import InterpretationEditor
from mtlslab.widgets.explorer import ScenarioExplorer
from mtlslab.widgets.inspectors import CertificateInspector, TokenInspector
from mtlslab.widgets.matrix import MatrixView

__all__ = ["TAB_TITLES", "explorer_app"]

#: The app's tabs, in order.
TAB_TITLES = ("Explorer", "Matrix", "Your interpretation", "Certificates", "Tokens")


def explorer_app(
    simulator: Simulator | None = None,
    *,
    scenario: str = "no-cert-optional",
    diagram: Literal["mermaid", "svg"] = "svg",
) -> Any:
    """The scenario explorer, the matrix, the editor and both inspectors in one ``ipywidgets.Tab``
    (the diagram in inline SVG by default: Voilà has no Mermaid renderer, JupyterLab has)."""
    parts = [
        ScenarioExplorer(simulator, scenario=scenario, diagram=diagram),
        MatrixView(simulator, tag="debate"),
        InterpretationEditor(simulator),
        CertificateInspector(simulator),
        TokenInspector(simulator),
    ]
    tabs = widgets.Tab(children=[part.widget for part in parts], titles=TAB_TITLES)
    return classed(tabs, "mtlslab-app")
