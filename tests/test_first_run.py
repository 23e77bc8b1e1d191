"""A user's first run: the README's and the quick start's first models are clean."""

import re
import warnings
from pathlib import Path

import pytest
from sklearn.exceptions import ConvergenceWarning

ROOT = Path(__file__).resolve().parents[1]


def _first_block(path, pattern):
    text = path.read_text()
    match = re.search(pattern, text, re.S)
    assert match, f"no code block in {path.name}"
    lines = match.group(1).splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return "\n".join(line[indent:] for line in lines)


@pytest.mark.parametrize(
    "path, pattern",
    [
        (ROOT / "README.md", r"```python\n(.*?)\n```"),
        (ROOT / "doc" / "quick_start.rst", r"\.\. code-block:: python\n\n(.*?)\n\n(?=\S)"),
    ],
    ids=["README", "quick_start"],
)
def test_first_model_converges_without_warnings(path, pattern):
    code = _first_block(path, pattern)
    assert "AutoencoderTransformer(" in code
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        namespace = {}
        exec(compile(code, str(path), "exec"), namespace)
