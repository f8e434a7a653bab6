"""What the widgets share: one cached :class:`~mtlslab.compare.Simulator` per seed, and small ipywidgets helpers."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

from mtlslab.compare import Simulator
from mtlslab.pki import Lab

__all__ = [
    "STYLE",
    "WORKSHOP_SEED",
    "Adapter",
    "markdown_output",
    "shared_simulator",
    "style_widget",
]

#: The seed the notebooks and the app use, so every attendee sees the same thumbprints.
WORKSHOP_SEED = "workshop"


#: One stylesheet for every mtlslab widget (scoped to ``.mtlslab-root``): ipywidgets' HTML widget inherits
#: the controls' 28 px line height, which spreads rendered text; cards and tables read better tighter.
STYLE = (
    "<style>.mtlslab-root .widget-html-content{line-height:1.4}"
    ".mtlslab-root .widget-html{align-items:flex-start}</style>"
)


def style_widget() -> Any:
    """An (invisible) HTML widget holding :data:`STYLE`; put it in each root box."""
    import ipywidgets as widgets

    return widgets.HTML(STYLE, layout=widgets.Layout(height="0px", margin="0"))


@functools.lru_cache(maxsize=8)
def shared_simulator(seed: str = WORKSHOP_SEED) -> Simulator:
    """The simulator for ``seed``, made once per process: its caches make re-rendering cheap."""
    return Simulator(Lab(seed=seed))


def markdown_output(output: Any, text: str) -> None:
    """Replace what an ``ipywidgets.Output`` shows with one Markdown document (no kernel needed)."""
    output.outputs = (
        {
            "output_type": "display_data",
            "data": {"text/markdown": text, "text/plain": text},
            "metadata": {},
        },
    )


class Adapter:
    """Base of the widgets: a root ipywidgets box in ``.widget``, displayed in place of the object.

    Subclasses wire controls to one core call and a render; :meth:`held` suspends the callbacks while
    several controls are set at once, so a change of scenario renders once.
    """

    widget: Any

    def __init__(self) -> None:
        self._holding = 0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Set several controls without a render after each."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1

    def _on_change(self, callback: Callable[[], None]) -> Callable[[Any], None]:
        def handler(_change: Any) -> None:
            if not self._holding:
                callback()

        return handler

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
