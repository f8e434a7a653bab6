"""Shared, cached lab material for the engine tests: one seeded lab, one simulator, one full matrix."""

from __future__ import annotations

import pytest

from mtlslab.compare import Matrix, Simulator
from mtlslab.pki import Lab
from mtlslab.rs import Jwks, RsConfig, config_for
from mtlslab.scenarios import Deployment
from mtlslab.tokens import AuthorizationServer

ENGINE_SEED = "mtlslab-engine-tests"


@pytest.fixture(scope="session")
def engine_seed() -> str:
    """The seed of the shared lab (for command-line runs that must see the same material)."""
    return ENGINE_SEED


@pytest.fixture(scope="session")
def sim() -> Simulator:
    """A simulator over a seeded lab (its realisations and decisions are cached)."""
    return Simulator(seed=ENGINE_SEED)


@pytest.fixture(scope="session")
def lab(sim: Simulator) -> Lab:
    """The simulator's lab."""
    return sim.lab


@pytest.fixture(scope="session")
def asrv(sim: Simulator) -> AuthorizationServer:
    """The simulator's authorization server."""
    return sim.asrv


@pytest.fixture(scope="session")
def jwks(sim: Simulator) -> Jwks:
    """The issuer's keys as the resource server holds them."""
    return sim.jwks


@pytest.fixture(scope="session")
def matrix(sim: Simulator) -> Matrix:
    """The whole catalogue under every built-in interpretation."""
    return sim.matrix()


@pytest.fixture(scope="session")
def rs_config(sim: Simulator) -> RsConfig:
    """The default deployment's resource-server configuration (local JWT, binding checked)."""
    return config_for(Deployment(), jwks=sim.jwks, introspect=sim.introspect)
