"""μNAS's Speech Commands experiment: 12-class keyword spotting on MFCC features.

Bounds: validation error 8.5%, peak memory usage 60,000 B, model size 40,000 B, 20M MACs.
Training: 45 epochs, batch 50, AdamW with weight decay 1e-5, learning rate 5e-4, then 1e-4
from epoch 20 and 2e-5 from epoch 40.
Features: 40 MFCCs over 30 ms windows with a 10 ms stride of 1 s clips at 16 kHz, (98, 40, 1).
Data: the official layout (<word>/<speaker>_nohash_<n>.wav, with the split lists).
"""
import keras

from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import SpeechCommands
from search_algorithms import AgingEvoSearch


def learning_rate(epoch: int) -> float:
    """Return the learning rate of an epoch (a step schedule)."""
    if epoch < 20:
        return 0.0005
    if epoch < 40:
        return 0.0001
    return 2e-05


search_algorithm = AgingEvoSearch

training_config = TrainingConfig(
    dataset=SpeechCommands(stride_ms=10.0),
    optimizer=lambda: keras.optimizers.AdamW(learning_rate=0.0005, weight_decay=1e-5),
    batch_size=50,
    epochs=45,
    callbacks=lambda: [keras.callbacks.LearningRateScheduler(learning_rate)],
)

search_config = AgingEvoConfig(
    search_space=CnnSearchSpace(),
    population_size=100,
    sample_size=25,
    rounds=2000,
    max_parallel_evaluations=2,
)

bound_config = BoundConfig(
    error_bound=0.085,
    peak_mem_bound=60_000,
    model_size_bound=40_000,
    mac_bound=20_000_000,
)
