"""ipywidgets explorers over the core: thin adapters whose callbacks make one core call and render.

::

    from mtlslab.widgets import ScenarioExplorer, MatrixView, InterpretationEditor
    ScenarioExplorer(scenario="no-cert-optional")     # every dimension, every reading side by side
    MatrixView()                                      # scenarios × readings, filter, select a cell
    InterpretationEditor(base="thread-401")           # write your own reading, see where it differs
    CertificateInspector(), TokenInspector()          # decode, thumbprint step by step, binding
    explorer_app()                                    # all of them in tabs (the Voilà app)

Needs the ``notebook`` extra (ipywidgets 8). Presentation helpers that need no ipywidgets live in
:mod:`mtlslab.widgets._render`.
"""

from __future__ import annotations

from mtlslab.widgets.app import explorer_app
from mtlslab.widgets.editor import InterpretationEditor
from mtlslab.widgets.explorer import ScenarioExplorer
from mtlslab.widgets.inspectors import CertificateInspector, TokenInspector
from mtlslab.widgets.matrix import MatrixView

__all__ = [
    "CertificateInspector",
    "InterpretationEditor",
    "MatrixView",
    "ScenarioExplorer",
    "TokenInspector",
    "explorer_app",
]
