"""μNAS's MNIST experiment without the peak-memory bound.

Bounds: validation error 3.5%, model size 4,500 B, 30M MACs; peak memory usage unbounded.
Training: 30 epochs, batch 128, SGD with momentum 0.9, learning rate 0.005 and weight decay
4e-5 (μNAS used TensorFlow Addons' SGDW; Keras 3's SGD applies the decay decoupled from the
gradient too, but scales it by the learning rate, so the effective decay differs).
Search: population 100, tournament sample 25, 2,000 rounds.

Data: the four MNIST IDX files in --data-dir, UNAS_DATA_DIR, or downloaded where online.
For a short trial: --rounds 8 --epochs 1 --parallel 2.
"""
import keras

from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import MNIST
from search_algorithms import AgingEvoSearch

search_algorithm = AgingEvoSearch

training_config = TrainingConfig(
    dataset=MNIST(),
    optimizer=lambda: keras.optimizers.SGD(learning_rate=0.005, momentum=0.9,
                                           weight_decay=4e-5),
    batch_size=128,
    epochs=30,
)

search_config = AgingEvoConfig(
    search_space=CnnSearchSpace(),
    population_size=100,
    sample_size=25,
    rounds=2000,
    max_parallel_evaluations=2,
)

bound_config = BoundConfig(
    error_bound=0.035,
    peak_mem_bound=None,
    model_size_bound=4_500,
    mac_bound=30_000_000,
)
