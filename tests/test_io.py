import os
import stat

import pandas as pd
import pytest

from analysis.io import atomic_path, write_table


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_version(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_text("new, partial")
            raise ValueError
    assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_table_format_is_fixed_and_permissions_usual(tmp_path):
    p = tmp_path / "t.csv"
    write_table(pd.DataFrame({"x": [0.1 + 0.2, 1 / 3, 2.0], "s": ["a", "b", None]}), p)
    assert p.read_bytes() == b"x,s\n0.3,a\n0.333333333333,b\n2,\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask
