"""μNAS's Visual Wake Words experiment (person / no person), with aging evolution.

μNAS searched this task with Bayesian optimisation; this config uses aging evolution.
Bounds: validation error 10%, peak memory usage 250,000 B, model size 250,000 B, 30M MACs.
Training: 30 epochs, batch 64, SGD with learning rate 0.001 and weight decay 5e-5, early
stopping after 15 epochs without improvement.
Data: an image-folder layout (person/ and non_person/ folders); no data ships with the tool.
"""
import keras

from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import VisualWakeWords
from search_algorithms import AgingEvoSearch

search_algorithm = AgingEvoSearch

training_config = TrainingConfig(
    dataset=VisualWakeWords(),
    optimizer=lambda: keras.optimizers.SGD(learning_rate=0.001, weight_decay=5e-5),
    batch_size=64,
    epochs=30,
    callbacks=lambda: [keras.callbacks.EarlyStopping(patience=15)],
)

search_config = AgingEvoConfig(
    search_space=CnnSearchSpace(),
    population_size=100,
    sample_size=25,
    rounds=2000,
    max_parallel_evaluations=2,
)

bound_config = BoundConfig(
    error_bound=0.1,
    peak_mem_bound=250_000,
    model_size_bound=250_000,
    mac_bound=30_000_000,
)
