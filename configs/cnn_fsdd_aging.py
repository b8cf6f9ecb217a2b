"""Spoken digits (Free Spoken Digit Dataset): aging evolution over the CNN space.

μNAS had no FSDD experiment; these bounds are sized for a small keyword-spotting MCU (a
Cortex-M4 class part with 64 KB of RAM): validation error 5%, peak memory usage 20,000 B,
model size 20,000 B, 5M MACs. Inputs are 40 MFCCs per 30 ms window (20 ms stride) of 1 s
clips at 8 kHz.
Training: 40 epochs, batch 32, Adam with learning rate 0.001, then 0.0002 from epoch 30.
Data: recordings/<digit>_<speaker>_<n>.wav; clips n = 0-4 are the official test set.
"""
import keras

from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import FreeSpokenDigits
from search_algorithms import AgingEvoSearch


def learning_rate(epoch: int) -> float:
    """Return the learning rate of an epoch (a step schedule)."""
    if epoch < 30:
        return 0.001
    return 0.0002


search_algorithm = AgingEvoSearch

training_config = TrainingConfig(
    dataset=FreeSpokenDigits(),
    optimizer=lambda: keras.optimizers.Adam(learning_rate=0.001),
    batch_size=32,
    epochs=40,
    callbacks=lambda: [keras.callbacks.LearningRateScheduler(learning_rate)],
)

search_config = AgingEvoConfig(
    search_space=CnnSearchSpace(dropout=0.1),
    population_size=50,
    sample_size=10,
    rounds=500,
    max_parallel_evaluations=2,
)

bound_config = BoundConfig(
    error_bound=0.05,
    peak_mem_bound=20_000,
    model_size_bound=20_000,
    mac_bound=5_000_000,
)
