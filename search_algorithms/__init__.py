"""Search algorithms, written as ask/tell steps over plain journal records."""
from search_algorithms.aging_evolution import AgingEvolution


class AgingEvoSearch:
    """Marker that a config file names as ``search_algorithm`` to select aging evolution.

    The search itself is `AgingEvolution`; the driver runs it.
    """

    algorithm = AgingEvolution


__all__ = ["AgingEvoSearch", "AgingEvolution"]
