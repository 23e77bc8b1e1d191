"""``python -m skae``: the help is plain text and the demo writes its figure."""

import re

import pytest

from skae.__main__ import main


def test_help_is_plain_text(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "PCA" in out and "--output" in out and "--widths" in out
    # No reStructuredText roles or literals leak into the terminal.
    assert "``" not in out
    assert not re.search(r":\w+:`", out)


def test_demo_prints_the_table_and_writes_the_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out_png = tmp_path / "demo.png"
    main(["--widths", "2", "--max-iter", "2", "--output", str(out_png)])
    out = capsys.readouterr().out
    row = re.search(r"^\s+2 \|\s+([\d.]+)\s+[\d.]+ \|\s+([\d.]+)\s+[\d.]+$", out, re.M)
    assert row, out
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
