"""The engines behind generator products, their licences, and which of them this deployment may host.

SDV is licensed under the Business Source License 1.1, whose additional use grant excludes offering its
functionality to third parties as a synthetic-data service: a production deployment that fits or samples
SDV models for providers and buyers needs an SDV commercial licence. The tree engines are Synthex's own code
on numpy and pandas (BSD-3-Clause) and, for the DP one, OpenDP (MIT). ``SYNTHEX_HOSTED_ENGINES`` lists the
engines this deployment runs for others; production defaults to the permissive ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from marketplace.generators.errors import GeneratorError
from marketplace.generators.models import GeneratorModel, Synthesizer

SDV = "sdv"
SYNTHEX_TREE = "synthex_tree"
SYNTHEX_MST = "synthex_mst"


@dataclass(frozen=True)
class Engine:
    """An engine: its id, the licence of the code that runs a product's fit and draws, and whether that
    licence permits a hosted service for third parties without a further agreement."""

    id: str
    name: str
    licence: str
    is_permissive: bool
    licence_note: str
    is_differentially_private: bool


ENGINES = {
    SDV: Engine(
        SDV,
        "SDV 2.0",
        "BUSL-1.1",
        False,
        "Business Source License 1.1: offering SDV to third parties as a synthetic-data service needs a "
        "commercial licence from DataCebo.",
        False,
    ),
    SYNTHEX_TREE: Engine(
        SYNTHEX_TREE,
        "Synthex Chow-Liu tree",
        "BSD-3-Clause",
        True,
        "Synthex's own code on numpy and pandas (BSD-3-Clause); no restriction on hosted use.",
        False,
    ),
    SYNTHEX_MST: Engine(
        SYNTHEX_MST,
        "Synthex MST (differentially private)",
        "MIT AND BSD-3-Clause",
        True,
        "Synthex's own MST on OpenDP (MIT), numpy and pandas (BSD-3-Clause); no restriction on hosted use.",
        True,
    ),
}

NATIVE_SYNTHESIZERS: dict[str, str] = {
    Synthesizer.CHOW_LIU.value: SYNTHEX_TREE,
    Synthesizer.DP_MST.value: SYNTHEX_MST,
}
PERMISSIVE = tuple(engine.id for engine in ENGINES.values() if engine.is_permissive)


class EngineNotAllowed(GeneratorError):
    """This deployment does not host the engine (403); ``message`` says which engines it does."""

    def __init__(self, engine: Engine) -> None:
        allowed = ", ".join(hosted_engines()) or "none"
        super().__init__(
            "engine_not_allowed",
            f"This deployment does not host {engine.name} ({engine.licence}) for fitting or sampling; "
            f"it hosts: {allowed}.",
            403,
        )


def engine_of(synthesizer: str) -> Engine:
    """The engine that fits and samples ``synthesizer`` (SDV for the SDV synthesizers and uploaded files)."""
    return ENGINES[NATIVE_SYNTHESIZERS.get(synthesizer, SDV)]


def is_native(synthesizer: str) -> bool:
    """Whether ``synthesizer`` is one of Synthex's JSON-model engines (sampled in the worker, no sandbox)."""
    return synthesizer in NATIVE_SYNTHESIZERS


def hosted_engines() -> list[str]:
    """The engine ids of ``SYNTHEX_HOSTED_ENGINES``."""
    return list(settings.SYNTHEX_HOSTED_ENGINES)


def ensure_hosted(synthesizer: str) -> Engine:
    """Return the engine of ``synthesizer``, or raise ``EngineNotAllowed`` when this deployment does not
    host it."""
    engine = engine_of(synthesizer)
    if engine.id not in hosted_engines():
        raise EngineNotAllowed(engine)
    return engine


def describe_engine(generator: GeneratorModel) -> dict[str, Any]:
    """The engine fields every generator shows: ``engine``, ``engine_licence`` and whether it is hosted."""
    engine = engine_of(generator.synthesizer)
    return {
        "engine": engine.id,
        "engine_name": engine.name,
        "engine_licence": engine.licence,
        "engine_licence_note": engine.licence_note,
        "engine_is_permissive": engine.is_permissive,
        "engine_is_hosted_here": engine.id in hosted_engines(),
    }
