"""The README's example runs as written, with no warnings."""

import re
import warnings
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs_without_warnings():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python example"
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(compile(blocks[0], str(README), "exec"), namespace)
    search, X = namespace["search"], namespace["X"]
    # the chosen RBM's held-out log-likelihood beats independent pixels on the same folds
    independent = []
    for train, test in KFold(3).split(X):
        p = X[train].mean(0).clip(1e-3, 1 - 1e-3)
        independent.append((X[test] * np.log(p) + (1 - X[test]) * np.log1p(-p)).sum(1).mean())
    assert search.best_score_ > np.mean(independent) + 3
    assert len(namespace["most_unusual"]) == 10
    assert namespace["accuracy"] > 0.8
