"""The MLP search space."""
from mlp.architecture import MlpArchitecture, MlpLayer
from mlp.search_space import MlpSearchSpace

__all__ = ["MlpArchitecture", "MlpLayer", "MlpSearchSpace"]
