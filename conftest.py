"""Collection rules for ``python -m pytest`` run from the repository root.

``skae/_onnx_graph.py`` and ``skae/_onnx_modules.py`` import onnx at the top
(``skae._onnx`` imports them only when a model is converted). Without the
optional onnx packages, ``--doctest-modules`` must not import them; the ONNX
tests skip themselves (``pytest.importorskip``).
"""

try:
    import onnx  # noqa: F401
except ImportError:
    collect_ignore = ["skae/_onnx_graph.py", "skae/_onnx_modules.py"]
