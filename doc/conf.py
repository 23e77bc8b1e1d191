"""Sphinx configuration for the skae documentation."""

import os
import re
import sys
from pathlib import Path

sys.path.insert(0, os.path.abspath(".."))

import skae  # noqa: E402

project = "skae"
author = "the skae developers"
copyright = "2026, the skae developers"
version = release = skae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosectionlabel",
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
# Code lines wrap instead of running off the page (custom.css).
html_css_files = ["custom.css"]

# MathJax is vendored in _static/mathjax (see its README.md): formulas render
# without internet access. _check_offline below fails the build if a page
# still loads a script or a stylesheet from another host.
mathjax_path = "mathjax/tex-chtml-full.js"

# Section titles are link targets, prefixed by their document, e.g.
# :ref:`user_guide:Denoising autoencoders`.
autosectionlabel_prefix_document = True
autosectionlabel_maxdepth = 2

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
    # The timing pages load jQuery and DataTables from CDNs: not offline.
    "write_computation_times": False,
}


# Each API page links to the user-guide section that explains the class.
_USER_GUIDE = {
    "skae.AutoencoderTransformer": [
        "user_guide:Reconstruction losses",
        "user_guide:Input normalisation",
        "user_guide:Tied weights",
        "user_guide:Sparse autoencoders",
    ],
    "skae.DenoisingAE": ["user_guide:Denoising autoencoders"],
    "skae.ContractiveAE": ["user_guide:Contractive autoencoders"],
    "skae.VariationalAE": ["user_guide:Variational autoencoders"],
    "skae.StackedAE": ["user_guide:Stacked and deep autoencoders"],
    "skae.load": ["user_guide:Saving and loading models"],
}


def _link_user_guide(app, what, name, obj, options, lines):
    targets = _USER_GUIDE.get(name)
    if not targets or what not in ("class", "function"):
        return
    links = ", ".join(f":ref:`{t.split(':', 1)[1]} <{t}>`" for t in targets)
    # After the one-line summary, as scikit-learn's "Read more in the User Guide".
    cut = lines.index("") if "" in lines else len(lines)
    lines[cut:cut] = ["", f"Read more in the user guide: {links}."]


def _check_offline(app, exception):
    """Fail the build when a page loads a script or stylesheet from the network."""
    if exception is not None or app.builder.format != "html":
        return
    tags = re.compile(r"<(?:script|link)\b[^>]*>", re.IGNORECASE)
    url = re.compile(r"\b(?:src|href)=[\"']((?:https?:)?//[^\"']+)", re.IGNORECASE)
    found = []
    for page in sorted(Path(app.outdir).rglob("*.html")):
        for tag in tags.findall(page.read_text(encoding="utf-8")):
            remote = url.search(tag)
            if remote is None:
                continue
            if tag.lower().startswith("<link") and not re.search(
                r"rel=[\"'](stylesheet|preload|modulepreload)", tag, re.IGNORECASE
            ):
                continue  # a plain link, e.g. rel="canonical": nothing is loaded
            found.append(f"{page.relative_to(app.outdir)}: {remote.group(1)}")
    if found:
        raise RuntimeError(
            "These pages load resources from the network (the docs must work "
            "offline):\n  " + "\n  ".join(found[:20])
        )
    guide = Path(app.outdir) / "user_guide.html"
    if guide.exists() and "_static/mathjax/tex-chtml-full.js" not in guide.read_text(
        encoding="utf-8"
    ):
        raise RuntimeError("user_guide.html does not load the vendored MathJax.")


def setup(app):
    app.connect("autodoc-process-docstring", _link_user_guide)
    app.connect("build-finished", _check_offline)
