"""Sphinx configuration for the skae documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import skae  # noqa: E402

project = "skae"
author = "the skae developers"
copyright = "2026, the skae developers"
version = release = skae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
html_theme = "pydata_sphinx_theme"
html_static_path = ["_static"]
html_title = "skae"

autosummary_generate = True
# sklearn internals whose docstrings link to labels of sklearn's own docs.
autodoc_default_options = {
    "members": True,
    "inherited-members": "_SetOutputMixin,_MetadataRequester",
}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Cross-references to torch/skorch types in docstrings resolve through
# intersphinx when it is online; offline they stay plain text.
numpydoc_xref_param_type = False
nitpicky = False

# No network at build time: intersphinx inventories are optional. Set
# SKAE_DOCS_INTERSPHINX=1 to link to scikit-learn, PyTorch and skorch.
intersphinx_mapping = {}
if os.environ.get("SKAE_DOCS_INTERSPHINX"):
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "torch": ("https://pytorch.org/docs/stable", None),
        "skorch": ("https://skorch.readthedocs.io/en/stable", None),
    }

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "backreferences_dir": "generated",
    "doc_module": ("skae",),
    "reference_url": {"skae": None},
    # SKAE_DOCS_EXAMPLES: a regular expression of the examples to execute
    # (default: all of them); the others are rendered without running.
    "filename_pattern": os.environ.get("SKAE_DOCS_EXAMPLES", r"/plot_"),
    "remove_config_comments": True,
    "matplotlib_animations": False,
}
