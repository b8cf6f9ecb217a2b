"""The embedded default: a short real search on scikit-learn's 8x8 digits.

It needs no downloaded data and finishes in a few minutes on 2 cores, so it shows the whole
tool working: random architectures, morphisms, real training, resource objectives, the journal
and the Pareto front. The bounds are sized for 8x8 inputs, not for a microcontroller product.
"""
import keras

from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import Digits
from search_algorithms import AgingEvoSearch

search_algorithm = AgingEvoSearch

training_config = TrainingConfig(
    dataset=Digits(),
    optimizer=lambda: keras.optimizers.Adam(learning_rate=0.01),
    batch_size=32,
    epochs=15,
)

search_config = AgingEvoConfig(
    search_space=CnnSearchSpace(),
    population_size=10,
    sample_size=5,
    rounds=30,
    max_parallel_evaluations=2,
)

bound_config = BoundConfig(
    error_bound=0.10,
    peak_mem_bound=4_000,
    model_size_bound=50_000,
    mac_bound=1_000_000,
)
