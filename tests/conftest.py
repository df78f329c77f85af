import os
from pathlib import Path

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

# Small models train faster with one intra-op thread, and results are reproducible across runs.
torch.set_num_threads(1)

SHARED_DATA = Path(os.environ.get("SKLEARN_AE_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data():
    """The project's real data sets (``../shared/data``); tests that need them skip without."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def digits_split():
    """Digits, standardized on the training part, one third held out (stratified, seeded)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=1 / 3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


@pytest.fixture
def rng():
    return np.random.RandomState(0)


class EpochCounter(Callback):
    """A skorch callback that counts the epochs it sees (from the net's initialisation)."""

    def initialize(self):
        self.epochs = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs += 1


@pytest.fixture
def epoch_counter():
    """The ``EpochCounter`` callback class, for tests to instantiate."""
    return EpochCounter
