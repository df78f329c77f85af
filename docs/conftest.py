"""pytest settings for the doctests of the user guide: ``python -m pytest --doctest-glob="*.rst" docs``."""

import pytest
import torch

# Sphinx's configuration and the generated pages are not tests.
collect_ignore = ["conf.py", "check_docstrings.py"]
collect_ignore_glob = ["_build/*", "auto_examples/*", "generated/*"]


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Small models train fastest with one intra-op thread on the CPU."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
