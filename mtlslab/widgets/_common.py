"""What the widgets share: the workshop's simulator, the root box, and small ipywidgets helpers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import ipywidgets as widgets

from mtlslab import workshop
from mtlslab.compare import Simulator

__all__ = ["LABEL_STYLE", "STYLE", "Adapter", "checkbox", "classed", "root"]

#: One stylesheet for every mtlslab widget (scoped to ``.mtlslab-root``): ipywidgets' HTML widget inherits
#: the controls' 28 px line height, which spreads rendered text; cards and tables read better tighter.
STYLE = (
    "<style>.mtlslab-root .widget-html-content{line-height:1.4}"
    ".mtlslab-root .widget-html{align-items:flex-start}</style>"
)
#: The editor's and the inspectors' controls: descriptions 110 px wide.
LABEL_STYLE = {"description_width": "110px"}

_Widget = TypeVar("_Widget", bound=widgets.DOMWidget)


def classed(widget: _Widget, *names: str) -> _Widget:
    """``widget`` with the CSS classes ``names`` (the browser tests and the matrix's click find it by them)."""
    for name in names:
        widget.add_class(name)
    return widget


def checkbox(description: str, **options: Any) -> widgets.Checkbox:
    """A checkbox with its description beside it (not indented as if it had a label column)."""
    return widgets.Checkbox(description=description, indent=False, **options)


def root(name: str, title: str, children: Iterable[Any]) -> widgets.VBox:
    """The root box (classes mtlslab-NAME and mtlslab-root): stylesheet, ``h3`` title, children."""
    style = widgets.HTML(STYLE, layout=widgets.Layout(height="0px", margin="0"))
    heading = widgets.HTML(f"<h3 style='margin:4px 0'>{title}</h3>")
    return classed(widgets.VBox([style, heading, *children]), f"mtlslab-{name}", "mtlslab-root")


class Adapter:
    """Base of the widgets: a root box in ``.widget``, displayed in place of the object, over
    ``simulator`` (by default the workshop's, whose caches make re-rendering cheap)."""

    widget: Any

    def __init__(self, simulator: Simulator | None) -> None:
        self.simulator = simulator or workshop.simulator()
        self._holding = 0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Set several controls without a render after each (a change of scenario renders once)."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1

    def _observe(self, callback: Callable[[], object], *controls: Any) -> None:
        """Call ``callback`` (unless held) when any of ``controls`` changes its value."""

        def handler(_change: Any) -> None:
            if not self._holding:
                callback()

        for control in controls:
            control.observe(handler, names="value")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
