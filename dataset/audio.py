"""Read WAV clips and turn them into MFCC features with tf.signal.

The pipeline is the usual keyword-spotting front end: a Hann-windowed STFT, the power
spectrum, a mel filterbank, the log, and a DCT (`tf.signal.mfccs_from_log_mel_spectrograms`).
"""
from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from errors import DatasetError

logger = logging.getLogger(__name__)

#: Added to the mel power before the log so that silent frames stay finite.
LOG_OFFSET = 1e-6

#: Clips per tf.signal call, which bounds the memory of one STFT batch (an estimate:
#: 512 one-second clips at 16 kHz need about 100 MB).
FEATURE_BATCH_SIZE = 512


@dataclass(frozen=True)
class MfccSettings:
    """Sizes of the MFCC front end, in samples at ``sample_rate``.

    Attributes:
        sample_rate: samples per second of the input audio, in Hz.
        clip_samples: every clip is zero-padded or cropped at its end to this length.
        window_samples: STFT frame length.
        stride_samples: STFT frame step.
        num_mfccs: MFCCs kept per frame, the lowest first.
        num_mel_bins: triangular mel filters between the two edge frequencies.
        lower_edge_hertz: lowest frequency of the filterbank.
        upper_edge_hertz: highest frequency of the filterbank, at most ``sample_rate / 2``.
    """

    sample_rate: int
    clip_samples: int
    window_samples: int
    stride_samples: int
    num_mfccs: int = 40
    num_mel_bins: int = 40
    lower_edge_hertz: float = 20.0
    upper_edge_hertz: float = 4000.0

    @classmethod
    def from_milliseconds(cls, sample_rate: int, clip_ms: float, window_ms: float,
                          stride_ms: float, num_mfccs: int = 40) -> "MfccSettings":
        """Return the settings for durations in milliseconds, rounded down to whole samples."""
        settings = cls(sample_rate=sample_rate,
                       clip_samples=int(sample_rate * clip_ms / 1000),
                       window_samples=int(sample_rate * window_ms / 1000),
                       stride_samples=int(sample_rate * stride_ms / 1000),
                       num_mfccs=num_mfccs, num_mel_bins=max(40, num_mfccs))
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise `DatasetError` unless the sizes describe at least one frame of MFCCs."""
        if not 0 < self.window_samples <= self.clip_samples or self.stride_samples <= 0:
            raise DatasetError(
                f"Invalid MFCC settings: window {self.window_samples} samples, stride "
                f"{self.stride_samples} samples, clip {self.clip_samples} samples. The window "
                "and stride must be at least one sample, and the window at most the clip."
            )
        if not 0 < self.num_mfccs <= self.num_mel_bins:
            raise DatasetError(f"num_mfccs={self.num_mfccs} is invalid: expected 1 to "
                               f"{self.num_mel_bins} (the number of mel bins).")
        if self.upper_edge_hertz > self.sample_rate / 2:
            raise DatasetError(f"upper_edge_hertz={self.upper_edge_hertz} exceeds the Nyquist "
                               f"frequency {self.sample_rate / 2} Hz of {self.sample_rate} Hz "
                               "audio. Lower it to at most half the sample rate.")

    @property
    def fft_length(self) -> int:
        """The smallest power of two that is at least one window long."""
        return 1 << (self.window_samples - 1).bit_length()

    @property
    def num_frames(self) -> int:
        return 1 + (self.clip_samples - self.window_samples) // self.stride_samples

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """Shape of one example: (frames, MFCCs, 1 channel)."""
        return (self.num_frames, self.num_mfccs, 1)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Read a WAV file into float32 samples in [-1, 1] and its sample rate in Hz.

    Integer PCM is scaled by its full range, and several channels are averaged to mono.
    """
    from scipy.io import wavfile

    try:
        sample_rate, samples = wavfile.read(path)
    except (OSError, ValueError, EOFError, struct.error) as error:
        # scipy raises struct.error for a header cut short.
        raise DatasetError(f"Cannot read WAV file {path}: {error}. Delete or replace the file."
                           ) from error

    if samples.dtype == np.uint8:
        audio = (samples.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(samples.dtype, np.integer):
        audio = samples.astype(np.float32) / float(-np.iinfo(samples.dtype).min)
    else:
        audio = samples.astype(np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    return audio, int(sample_rate)


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad or crop ``samples`` at the end to exactly ``length`` samples."""
    if len(samples) >= length:
        return samples[:length]
    return np.pad(samples, (0, length - len(samples)))


def compute_mfccs(clips: np.ndarray, settings: MfccSettings) -> np.ndarray:
    """Return float32 MFCCs of shape (N, frames, num_mfccs) for float32 clips (N, samples)."""
    import tensorflow as tf

    settings.validate()
    if clips.ndim != 2 or clips.shape[1] != settings.clip_samples:
        raise ValueError(f"clips must have shape (N, {settings.clip_samples}), got {clips.shape}")

    mel_weights = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=settings.num_mel_bins,
        num_spectrogram_bins=settings.fft_length // 2 + 1,
        sample_rate=settings.sample_rate,
        lower_edge_hertz=settings.lower_edge_hertz,
        upper_edge_hertz=settings.upper_edge_hertz,
    )

    batches = []
    for start in range(0, len(clips), FEATURE_BATCH_SIZE):
        stft = tf.signal.stft(clips[start:start + FEATURE_BATCH_SIZE],
                              frame_length=settings.window_samples,
                              frame_step=settings.stride_samples,
                              fft_length=settings.fft_length)
        power = tf.math.square(tf.abs(stft))
        log_mel = tf.math.log(tf.tensordot(power, mel_weights, axes=1) + LOG_OFFSET)
        mfccs = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :settings.num_mfccs]
        batches.append(mfccs.numpy())

    if not batches:
        return np.zeros((0, settings.num_frames, settings.num_mfccs), np.float32)
    return np.concatenate(batches).astype(np.float32)


def standardise(train: np.ndarray, others: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Scale every feature array with each MFCC's mean and deviation over the training set.

    Statistics come from ``train`` only, so validation and test data do not leak into them.
    Returns ``[train, *others]`` standardised, as float32.
    """
    # float64 statistics, because float32 sums over 10^5 values lose about 4 digits.
    mean = train.mean(axis=(0, 1), keepdims=True, dtype=np.float64)
    deviation = train.std(axis=(0, 1), keepdims=True, dtype=np.float64)
    deviation = np.where(deviation > 0, deviation, 1.0)
    return [((features - mean) / deviation).astype(np.float32) for features in (train, *others)]
