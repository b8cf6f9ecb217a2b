"""A short MLP search on scikit-learn's 8x8 digits (no downloaded data needed)."""
import keras

from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import Digits
from mlp import MlpSearchSpace
from search_algorithms import AgingEvoSearch

search_algorithm = AgingEvoSearch

training_config = TrainingConfig(
    dataset=Digits(),
    optimizer=lambda: keras.optimizers.Adam(learning_rate=0.01),
    batch_size=32,
    epochs=15,
)

search_config = AgingEvoConfig(
    search_space=MlpSearchSpace(),
    population_size=10,
    sample_size=5,
    rounds=30,
    max_parallel_evaluations=2,
)

bound_config = BoundConfig(
    error_bound=0.08,
    peak_mem_bound=500,
    model_size_bound=10_000,
    mac_bound=10_000,
)
