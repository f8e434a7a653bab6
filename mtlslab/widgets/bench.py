"""How long the explorer takes to re-render after one control change (Python time, no front end)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from mtlslab.compare import Simulator
from mtlslab.scenarios import CertChoice, ClientAuth, Placement, Scheme, TlsVersion, Topology
from mtlslab.widgets.explorer import ScenarioExplorer

__all__ = ["CHANGES", "bench_explorer_rerender"]

#: The controls the benchmark flips, each between two values: every sample is a real one-control change.
CHANGES: tuple[tuple[str, Any, Any], ...] = (
    ("certificate", CertChoice.CLIENT, CertChoice.NONE),
    ("tls_version", TlsVersion.TLS1_2, TlsVersion.TLS1_3),
    ("certificate", CertChoice.OTHER, CertChoice.NONE),
    ("client_auth", ClientAuth.REQUIRED, ClientAuth.OPTIONAL),
    ("topology", Topology.PROXY, Topology.DIRECT),
    ("placement", Placement.FORM, Placement.HEADER),
    ("scheme", Scheme.DPOP, Scheme.BEARER),
    ("token", "unbound", "bound"),
    ("checks_binding", False, True),
)


def bench_explorer_rerender(*, rounds: int = 4, warm: bool = False) -> float:
    """The median seconds from setting one control's ``.value`` to the end of the explorer's re-render.

    A fresh explorer (the default readings, every view rendered) over a fresh :class:`Simulator` flips the
    controls of :data:`CHANGES` in turn, ``rounds`` times over. Early samples meet composed scenarios for
    the first time (realised and evaluated, then cached); later ones find them cached, as in a workshop
    where attendees go back and forth. ``warm=True`` runs one untimed round first: the cached case only.
    """
    explorer = ScenarioExplorer(Simulator(seed="benchmark"))
    samples: list[float] = []
    total = (rounds + (1 if warm else 0)) * len(CHANGES)
    for index in range(total):
        name, first, second = CHANGES[index % len(CHANGES)]
        control = explorer.controls[name]
        value = second if control.value == first else first
        before = explorer.renders
        start = time.perf_counter()
        control.value = value
        elapsed = time.perf_counter() - start
        if explorer.renders != before + 1 or explorer.error.value:
            raise RuntimeError(f"changing {name} to {value!r} did not re-render cleanly")
        if not warm or index >= len(CHANGES):
            samples.append(elapsed)
    return statistics.median(samples)
