"""Autoencoders, sparse autoencoders, stacked RBMs and VAEs as scikit-learn estimators."""

from ._autoencoder import AutoencoderTransformer
from ._dask import dask_apply
from ._engine import DivergenceError
from ._outlier import LikelihoodOutlierDetector
from ._rbm import BernoulliRBMStack
from ._sparse import SparseAutoencoder
from ._vae import VAETransformer

__version__ = "0.1.0.dev0"

__all__ = [
    "AutoencoderTransformer",
    "BernoulliRBMStack",
    "DivergenceError",
    "LikelihoodOutlierDetector",
    "SparseAutoencoder",
    "VAETransformer",
    "dask_apply",
    "__version__",
]
