import numpy as np
import pytest

from dataset.audio import MfccSettings, compute_mfccs, fit_length, read_wav, standardise
from dataset.testing import load_tiny, write_wav
from errors import DatasetError


@pytest.mark.parametrize("sample_rate, stride_ms, frames, fft_length", [
    (16000, 20, 49, 512),
    (16000, 10, 98, 512),
    (8000, 20, 49, 256),
])
def test_mfcc_frame_counts(sample_rate, stride_ms, frames, fft_length):
    settings = MfccSettings.from_milliseconds(sample_rate, 1000, 30, stride_ms)
    assert settings.num_frames == frames
    assert settings.fft_length == fft_length
    assert settings.feature_shape == (frames, 40, 1)


def test_mfcc_window_in_samples_at_8k():
    settings = MfccSettings.from_milliseconds(8000, 1000, 30, 20)
    assert settings.window_samples == 240
    assert settings.stride_samples == 160


def test_compute_mfccs_shape_and_dtype():
    clips = load_tiny("sc12_120_16k")["x"][:3].astype(np.float32) / 32768
    features = compute_mfccs(clips, MfccSettings.from_milliseconds(16000, 1000, 30, 20))
    assert features.shape == (3, 49, 40)
    assert features.dtype == np.float32
    assert np.isfinite(features).all()


def test_compute_mfccs_distinguishes_tones():
    time = np.arange(16000) / 16000
    clips = np.stack([np.sin(2 * np.pi * 440 * time), np.sin(2 * np.pi * 440 * time),
                      np.sin(2 * np.pi * 2000 * time)]).astype(np.float32) * 0.5
    features = compute_mfccs(clips, MfccSettings.from_milliseconds(16000, 1000, 30, 20))
    same_tone = np.abs(features[0] - features[1]).max()
    other_tone = np.abs(features[0] - features[2]).mean()
    assert same_tone < 1e-4
    assert other_tone > 1.0


def test_compute_mfccs_silence_finite():
    features = compute_mfccs(np.zeros((1, 8000), np.float32),
                             MfccSettings.from_milliseconds(8000, 1000, 30, 20))
    assert np.isfinite(features).all()


def test_read_wav_scales_int16(tmp_path):
    samples = np.array([-32768, 0, 16384, 32767], dtype=np.int16)
    write_wav(tmp_path / "clip.wav", samples, 8000)
    audio, sample_rate = read_wav(tmp_path / "clip.wav")
    assert sample_rate == 8000
    assert audio.dtype == np.float32
    assert np.allclose(audio, [-1.0, 0.0, 0.5, 32767 / 32768])


def test_read_wav_corrupt_file(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x00\x00")
    with pytest.raises(DatasetError, match="Cannot read WAV file .*broken.wav"):
        read_wav(path)


def test_fit_length_pads_and_crops():
    samples = np.arange(1, 6, dtype=np.float32)
    assert fit_length(samples, 3).tolist() == [1, 2, 3]
    assert fit_length(samples, 7).tolist() == [1, 2, 3, 4, 5, 0, 0]


def test_standardise_uses_train_statistics():
    rng = np.random.default_rng(0)
    train = rng.normal(5.0, 2.0, size=(50, 4, 3)).astype(np.float32)
    test = np.full((2, 4, 3), 5.0, np.float32)
    scaled_train, scaled_test = standardise(train, [test])
    expected = (5.0 - train.mean(axis=(0, 1), dtype=np.float64)) \
        / train.std(axis=(0, 1), dtype=np.float64)
    assert np.allclose(scaled_test[0, 0], expected, atol=1e-5)
    assert np.allclose(scaled_train.std(axis=(0, 1)), 1.0, atol=1e-4)


@pytest.mark.parametrize("settings, fragment", [
    (dict(sample_rate=16000, clip_samples=100, window_samples=480, stride_samples=160),
     "window"),
    (dict(sample_rate=8000, clip_samples=8000, window_samples=240, stride_samples=160,
          upper_edge_hertz=6000.0), "Nyquist"),
    (dict(sample_rate=8000, clip_samples=8000, window_samples=240, stride_samples=160,
          num_mfccs=50), "num_mfccs=50"),
])
def test_mfcc_settings_invalid(settings, fragment):
    with pytest.raises(DatasetError, match=fragment):
        MfccSettings(**settings).validate()
