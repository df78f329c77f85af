"""Apply a fitted estimator to a Dask array chunk by chunk, lazily (optional: needs Dask)."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

#: methods that return one value per row; the others return one row per row
_ROW_METHODS = ("score_samples", "decision_function", "predict")
_WIDE_METHODS = ("transform", "inverse_transform", "predict_proba", "predict_log_proba")

_INSTALL = "pip install sklearn-ae[dask]"


def _import_dask_array():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - exercised by monkeypatching in the tests
        raise ImportError(
            f"dask_apply needs Dask, which is an optional dependency of sklearn-ae: {_INSTALL} "
            "(or pip install 'dask[distributed]' dask-ml)."
        ) from exc
    return dask, da


def _apply_block(block, estimator, method, width, dtype):
    """Run ``estimator.<method>`` on one chunk; an empty chunk gives an empty result."""
    if block.shape[0] == 0:
        return np.empty((0,) if width is None else (0, width), dtype=dtype)
    return np.asarray(getattr(estimator, method)(block), dtype=dtype)


def dask_apply(estimator, X, method="transform"):
    """Apply a fitted estimator's ``method`` to a Dask array, one row-chunk at a time, lazily.

    Returns a Dask array at once, without computing anything; each chunk of rows is processed
    by its own task when the result is computed (on the workers of a ``dask.distributed``
    cluster when a client is active). The fitted estimator enters the task graph once, as a
    single key, so a cluster ships it to each worker by pickling once, not once per chunk.
    Works with any fitted scikit-learn estimator or ``Pipeline``, and it covers what
    ``dask_ml.wrappers.ParallelPostFit`` does not: that wrapper does not forward
    ``score_samples`` or ``inverse_transform``, and it declares the result of ``transform``
    with the input's number of columns rather than the output's.

    Parameters
    ----------
    estimator : fitted estimator
        Any fitted estimator that has ``method``.
    X : dask.array.Array of shape (n_samples, n_columns)
        Input, chunked along rows. Chunks along columns are merged first. For a Dask
        DataFrame, pass ``df.to_dask_array(lengths=True)``.
    method : {"transform", "inverse_transform", "score_samples", "decision_function", \
"predict", "predict_proba", "predict_log_proba"}, default="transform"
        The method to apply.

    Returns
    -------
    result : dask.array.Array
        Of shape ``(n_samples,)`` for ``score_samples``, ``decision_function`` and
        ``predict``, and ``(n_samples, n_outputs)`` otherwise, chunked along rows like X.
        Call ``.compute()`` for a NumPy array, or keep working lazily
        (``dask_apply(model, X, "score_samples").mean()`` is the model's ``score``).

    Raises
    ------
    ImportError
        When Dask is not installed; the message names ``pip install sklearn-ae[dask]``.
    ValueError
        When ``method`` is not one of those listed, or X is not 2-D.
    AttributeError
        When the estimator has no ``method``.
    sklearn.exceptions.NotFittedError
        When the estimator is not fitted.
    TypeError
        When X is not a ``dask.array.Array``.

    See Also
    --------
    dask.array.map_blocks : The Dask primitive that applies a function to each chunk.
    dask_ml.wrappers.ParallelPostFit : Dask-ML's wrapper for block-wise prediction.
    LikelihoodOutlierDetector : Its ``score_samples`` and ``predict`` can be applied this way.

    Notes
    -----
    The output's width and dtype are found by applying ``method`` to one row of zeros on the
    calling machine when the graph is built; no chunk of X is computed then. Chunks are
    processed independently, so the result is the same as applying ``method`` to the whole
    array for estimators that treat rows independently (all of this package's, within float
    rounding). A model fitted on a GPU is unpickled by the workers; on a worker without CUDA
    its weights load on the CPU (skorch warns that it does so).

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from sklearn_ae import dask_apply
    >>> X = np.random.RandomState(0).randn(100, 4)
    >>> pca = PCA(n_components=2).fit(X)
    >>> dX = da.from_array(X, chunks=(25, 4))
    >>> scores = dask_apply(pca, dX, "score_samples")  # lazy: nothing computed yet
    >>> scores.shape, scores.numblocks
    ((100,), (4,))
    >>> codes = dask_apply(pca, dX, "transform").compute()
    >>> codes.shape
    (100, 2)
    """
    dask, da = _import_dask_array()
    if method not in _ROW_METHODS + _WIDE_METHODS:
        raise ValueError(f"method must be one of {_ROW_METHODS + _WIDE_METHODS}; got {method!r}.")
    if not hasattr(estimator, method):
        raise AttributeError(f"{type(estimator).__name__} has no method {method!r}.")
    check_is_fitted(estimator)
    if not isinstance(X, da.Array):
        raise TypeError(
            f"X must be a dask.array.Array; got {type(X).__name__}. Use dask.array.from_array "
            "for an in-memory array, or df.to_dask_array(lengths=True) for a Dask DataFrame.")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_columns); got {X.ndim} dimension(s).")
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})

    probe = np.asarray(getattr(estimator, method)(np.zeros((1, X.shape[1]), dtype=X.dtype)))
    dtype = probe.dtype
    model = dask.delayed(estimator, pure=True, traverse=False)
    if method in _ROW_METHODS:
        return X.map_blocks(_apply_block, model, method, None, dtype, drop_axis=1, dtype=dtype,
                            meta=np.empty((0,), dtype=dtype))
    width = probe.shape[1]
    return X.map_blocks(_apply_block, model, method, width, dtype, chunks=(X.chunks[0], (width,)),
                        dtype=dtype, meta=np.empty((0, 0), dtype=dtype))
