"""mtlslab benchmarks: each cost measured side by side with a baseline in the same run, as a ratio.

Timings on a shared machine are noisy, so every figure is a *ratio* against a baseline measured in the
same process, interleaved sample by sample (mtlslab, baseline, mtlslab, baseline, ...), each figure the
median of the samples. Absolute times are printed too, but only the ratios compare across machines.

    python benchmarks/run.py            # a table
    python benchmarks/run.py --quick    # fewer repetitions
    python benchmarks/run.py --json     # machine-readable

A section is a function ``(Settings) -> list[Result]`` in :data:`SECTIONS`; later sections (the engine,
live TLS, the widgets) add theirs to the list.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How many samples to take, and how many calls make one sample."""

    samples: int
    batch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """One measured cost: mtlslab against its baseline, per call, medians of the samples."""

    section: str
    name: str
    what: str
    baseline: str
    mtlslab_s: float
    baseline_s: float
    target: float | None = None

    @property
    def ratio(self) -> float:
        """mtlslab's median time divided by the baseline's (< 1.0: mtlslab is faster)."""
        return self.mtlslab_s / self.baseline_s

    def as_dict(self) -> dict[str, object]:
        """The result with its ratio, for ``--json``."""
        return {**asdict(self), "ratio": self.ratio}


def side_by_side(
    subject: Callable[[], object], baseline: Callable[[], object], settings: Settings
) -> tuple[float, float]:
    """Median seconds per call of ``subject`` and ``baseline``, sampled alternately after a warm-up."""
    subject()
    baseline()
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(settings.samples):
        for fn, into in ((subject, ours), (baseline, theirs)):
            start = time.perf_counter()
            for _ in range(settings.batch):
                fn()
            into.append((time.perf_counter() - start) / settings.batch)
    return statistics.median(ours), statistics.median(theirs)


# --------------------------------------------------------------------------------------------------
# Section: the lab PKI and tokens (the foundation).


def foundation(settings: Settings) -> list[Result]:
    """CA + client certificate against trustme, a seeded Lab, and minting a token."""
    import jwt
    import trustme
    from cryptography.hazmat.primitives.asymmetric import ec

    from mtlslab.pki import Lab
    from mtlslab.tokens import LAB_AUDIENCE, LAB_ISSUER, AuthorizationServer

    results: list[Result] = []

    # (a) A fresh CA and one EC client certificate for a DNS name, as trustme's front door makes them.
    def mtlslab_ca_and_client() -> object:
        return Lab().ca.issue_client("client", san_dns=("client.example",))

    def trustme_ca_and_client() -> object:
        return trustme.CA().issue_cert("client.example")

    ours, theirs = side_by_side(mtlslab_ca_and_client, trustme_ca_and_client, settings)
    results.append(
        Result(
            section="foundation",
            name="ca_and_client",
            what='Lab().ca.issue_client("client", san_dns=("client.example",)) — unseeded, EC P-256',
            baseline='trustme.CA().issue_cert("client.example")',
            mtlslab_s=ours,
            baseline_s=theirs,
            target=1.0,
        )
    )

    # (b) A seeded lab with every named identity, against trustme making the same number of certificates.
    def seeded_lab() -> object:
        lab = Lab(seed="benchmark")
        return [lab.ca, lab.rogue_ca, lab.server, *lab.identities().values()]

    probe = Lab(seed="benchmark")
    leaves = len(probe.identities()) + 1  # + the server
    roots = 2  # ca and rogue_ca

    def trustme_lab() -> object:
        cas = [trustme.CA() for _ in range(roots)]
        return [cas[0].issue_cert(f"leaf{i}.example") for i in range(leaves)]

    ours, theirs = side_by_side(seeded_lab, trustme_lab, settings)
    results.append(
        Result(
            section="foundation",
            name="seeded_lab",
            what=f"Lab(seed=...) with ca, rogue_ca, server and {leaves - 1} named client identities",
            baseline=f"{roots} × trustme.CA() + {leaves} × issue_cert",
            mtlslab_s=ours,
            baseline_s=theirs,
        )
    )

    # (c) Minting one bound access token from a fresh authorization server (nothing cached).
    lab = Lab(seed="benchmark")
    _ = lab.client.x5t_s256

    def mint() -> object:
        return AuthorizationServer(lab).mint("bound")

    now = int(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    claims = {"iss": LAB_ISSUER, "aud": LAB_AUDIENCE, "sub": "alice", "iat": now, "exp": now + 3600}

    def bare_es256() -> object:
        key = ec.generate_private_key(ec.SECP256R1())
        return jwt.encode(claims, key, algorithm="ES256")

    ours, theirs = side_by_side(mint, bare_es256, settings)
    results.append(
        Result(
            section="foundation",
            name="mint_token",
            what='AuthorizationServer(lab).mint("bound") — derived ES256 key, deterministic signature',
            baseline='ec.generate_private_key(SECP256R1) + jwt.encode(claims, key, "ES256")',
            mtlslab_s=ours,
            baseline_s=theirs,
        )
    )
    return results


#: The benchmark sections, run in this order; later modules append theirs.
SECTIONS: list[Callable[[Settings], list[Result]]] = [foundation]


# --------------------------------------------------------------------------------------------------


def _table(results: list[Result], settings: Settings) -> str:
    lines = [
        f"mtlslab benchmarks — median of {settings.samples} samples × {settings.batch} calls, "
        f"interleaved with the baseline (Python {platform.python_version()})",
        "",
    ]
    for r in results:
        verdict = ""
        if r.target is not None:
            verdict = "  (target ≤ {:.1f}×: {})".format(
                r.target, "met" if r.ratio <= r.target else "MISSED"
            )
        lines += [
            f"[{r.section}] {r.name}: {r.ratio:.2f}×{verdict}",
            f"    mtlslab   {r.mtlslab_s * 1e3:8.3f} ms  {r.what}",
            f"    baseline  {r.baseline_s * 1e3:8.3f} ms  {r.baseline}",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every section and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke test)")
    args = parser.parse_args(argv)
    settings = Settings(samples=5, batch=2) if args.quick else Settings(samples=31, batch=10)
    results = [result for section in SECTIONS for result in section(settings)]
    if args.json:
        payload = {
            "settings": asdict(settings),
            "python": platform.python_version(),
            "results": [r.as_dict() for r in results],
        }
        print(json.dumps(payload, indent=2))
    else:
        print(_table(results, settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
