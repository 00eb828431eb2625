"""The one Wilson interval, in both of its reported forms.

PYTHONPATH=src .venv/bin/python -m pytest tests/test_stats.py -q
"""

import pytest

from reverie.stats import wilson


def test_wilson_percent_and_fraction_agree() -> None:
    assert wilson(0, 50)[0] == 0.0 and wilson(0, 50)[1] == pytest.approx(7.13, abs=0.015)
    lo, hi = wilson(18, 20)
    flo, fhi = wilson(18, 20, percent=False)
    assert (lo, hi) == pytest.approx((100 * flo, 100 * fhi), abs=0.01)
    assert wilson(0, 0) == (0.0, 100.0) and wilson(0, 0, percent=False) == (0.0, 1.0)
    assert wilson(7, 9, percent=False) == (0.4526, 0.9368)  # the physics suite's 4 places
