"""The documentation works offline: vendored MathJax, and a build check that no page loads
a script or stylesheet from another host (doc/conf.py runs it at the end of every HTML build)."""

import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

DOC = Path(__file__).resolve().parents[1] / "doc"


@pytest.fixture(scope="module")
def conf():
    pytest.importorskip("sphinx")
    return runpy.run_path(str(DOC / "conf.py"))


def _site(tmp_path, pages):
    for name, body in pages.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"<html><head>{body}</head><body></body></html>")
    return SimpleNamespace(outdir=str(tmp_path), builder=SimpleNamespace(format="html"))


def test_mathjax_is_vendored(conf):
    script = DOC / "_static" / conf["mathjax_path"]
    assert script.is_file() and script.stat().st_size > 500_000
    fonts = DOC / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert (fonts / "MathJax_Main-Regular.woff").is_file()
    assert (fonts / "MathJax_Math-Italic.woff").is_file()


LOCAL_MATH = '<script defer src="_static/mathjax/tex-chtml-full.js?v=1"></script>'


@pytest.mark.parametrize(
    "head",
    [
        '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>',
        "<script async src='//cdn.example.org/x.js'></script>",
        '<link href="https://cdn.datatables.net/x.css" rel="stylesheet" />',
    ],
)
def test_remote_scripts_and_styles_fail_the_build(conf, tmp_path, head):
    app = _site(tmp_path, {"user_guide.html": LOCAL_MATH, "sub/page.html": head})
    with pytest.raises(RuntimeError, match="network"):
        conf["_check_offline"](app, None)


def test_local_pages_and_plain_links_pass(conf, tmp_path):
    app = _site(
        tmp_path,
        {
            "user_guide.html": LOCAL_MATH,
            "index.html": '<link rel="canonical" href="https://example.org/">'
            '<a href="https://ml.dask.org">dask-ml</a><script src="_static/x.js"></script>',
        },
    )
    conf["_check_offline"](app, None)


def test_user_guide_must_load_the_vendored_mathjax(conf, tmp_path):
    app = _site(tmp_path, {"user_guide.html": "<script src='_static/other.js'></script>"})
    with pytest.raises(RuntimeError, match="vendored MathJax"):
        conf["_check_offline"](app, None)
