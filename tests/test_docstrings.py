"""The shared parameter text: filled in at one indentation, braces as written."""

import inspect

import pytest
from _helpers import public_estimators

from skae._docstrings import BASE_ATTRIBUTES, BASE_PARAMETERS, fill_doc


@pytest.mark.parametrize("cls", public_estimators(), ids=lambda c: c.__name__)
def test_shared_text_sits_at_the_parameter_indentation(cls):
    doc = inspect.cleandoc(cls.__doc__)
    lines = doc.splitlines()
    # Every shared entry starts at column 0 of the cleaned docstring, as the
    # class's own entries do (help() and numpydoc see one list).
    for entry in (BASE_PARAMETERS + "\n" + BASE_ATTRIBUTES).splitlines():
        if entry and not entry.startswith(" "):
            assert entry in lines, (cls.__name__, entry)
    assert "{base_" not in doc and "{{" not in doc and "}}" not in doc
    own = set(inspect.signature(cls).parameters) - set(inspect.signature(
        public_estimators()[0]).parameters)
    for name in own:
        assert any(line.startswith(f"{name} : ") for line in lines), (cls.__name__, name)


def test_fill_doc_keeps_braces_and_uses_the_placeholder_indent():
    class Example:
        """Math ``\\min_{f, g}`` and a set {'a', 'b'}.

        Parameters
        ----------
            {base_parameters}
        """

    fill_doc(Example)
    assert "\\min_{f, g}" in Example.__doc__ and "{'a', 'b'}" in Example.__doc__
    assert "\n            n_components : int, default=2\n" in Example.__doc__
