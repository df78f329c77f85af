"""Sphinx configuration of the sklearn_ae documentation.

Build the whole site, gallery included, with warnings as errors::

    make -C docs html

(``python -m sphinx -W --keep-going -b html docs docs/_build/html`` is the same thing.)
``make -C docs html-noplot`` skips running the examples. ``EXAMPLES_PATTERN=plot_vae`` runs only
the examples whose file name matches the pattern.
"""

import os
import re
import sys
import warnings
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # document the working tree, installed or not

import sklearn_ae  # noqa: E402

# -- project ------------------------------------------------------------------------------------
project = "sklearn_ae"
author = "the sklearn_ae developers"
copyright = "2026, the sklearn_ae developers"
version = release = sklearn_ae.__version__

# -- extensions ---------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "sg_execution_times.rst"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
default_role = "literal"  # `x` in prose renders as code

# -- autodoc / autosummary / numpydoc -----------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"  # the numpydoc Parameters section says it all
autodoc_default_options = {"members": True}
numpydoc_show_class_members = False  # the class template lists members itself
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# Checks that fail the build (warnings are errors): every parameter documented, none invented,
# and every documented object has a docstring. The full report of the remaining numpydoc checks
# (See Also, Examples on every method, ...) is printed by ``python docs/check_docstrings.py``.
numpydoc_validation_checks = {"PR01", "PR02", "GL08"}
numpydoc_validation_exclude = {
    r"\.__init__$",
    # inherited from Python's Exception
    r"DivergenceError\.(add_note|with_traceback)$",
}

# -- HTML: the PyData theme, as in scikit-learn-contrib projects --------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn_ae {release}"
html_static_path = []
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"index": [], "install": [], "api": []}
html_show_sourcelink = False

# -- the example gallery ------------------------------------------------------------------------
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", category=UserWarning,
                        message="Matplotlib is currently using agg, which is a non-GUI backend")

sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    # run every plot_*.py (or only those matching $EXAMPLES_PATTERN, for quick iterations)
    "filename_pattern": re.escape(os.sep) + os.environ.get("EXAMPLES_PATTERN", "plot_"),
    "ignore_pattern": r"__init__\.py|conftest\.py",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("sklearn_ae",),
    "backreferences_dir": "generated/backreferences",
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
    "download_all_examples": False,
    "matplotlib_animations": False,
}


# -- every public name is in the API reference --------------------------------------------------
def _check_api_reference(app):
    """Warn (an error under ``-W``) for a public name that api.rst does not document."""
    text = (DOCS / "api.rst").read_text()
    listed = set(re.findall(r"^\s{3,}(\w+)\s*$", text, flags=re.M))
    for name in sklearn_ae.__all__:
        if not name.startswith("__") and name not in listed:
            from sphinx.util import logging

            logging.getLogger(__name__).warning(
                "sklearn_ae.%s is public (in __all__) but not listed in docs/api.rst", name)


# -- shapes written with fitted attributes --------------------------------------------------------
# In reST a word ending in "_" is a link target: "shape (n_samples, n_features_in_)" in a docstring
# would be an "Unknown target name" error. Quote such names inside shapes before numpydoc parses
# the docstring, as scikit-learn's docstrings do by hand.
_SHAPE_ATTRIBUTE = re.compile(r"(?<![`\w])([a-z][a-z0-9_]*[a-z0-9]_)(?=\s*[,)])")


def _quote_shape_attributes(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if "(" in line:
            lines[i] = _SHAPE_ATTRIBUTE.sub(r"`\1`", line)


def setup(app):
    app.connect("builder-inited", _check_api_reference)
    app.connect("autodoc-process-docstring", _quote_shape_attributes, priority=400)
