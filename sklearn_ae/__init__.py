"""Autoencoders, sparse autoencoders, stacked RBMs and VAEs as scikit-learn estimators."""

from ._autoencoder import AutoencoderTransformer
from ._dask import dask_apply
from ._engine import DivergenceError
from ._outlier import LikelihoodOutlierDetector

__version__ = "0.1.0.dev0"

__all__ = ["AutoencoderTransformer", "DivergenceError", "LikelihoodOutlierDetector", "dask_apply",
           "__version__"]
