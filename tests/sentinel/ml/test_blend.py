from __future__ import annotations

import numpy as np
import pytest

from sentinel.ml import blend, return_to_score


def test_return_to_score_anchor_points_and_clipping():
    assert return_to_score(-0.10) == 0.0
    assert return_to_score(0.0) == pytest.approx(0.5)
    assert return_to_score(0.10) == pytest.approx(1.0)
    np.testing.assert_allclose(return_to_score([-0.5, 0.05, 0.5]), [0.0, 0.75, 1.0])
    assert np.isnan(return_to_score(np.nan))


def test_blend_ratio_extremes_and_middle():
    assert blend(0.2, 0.8, 0.0) == pytest.approx(0.2)
    assert blend(0.2, 0.8, 1.0) == pytest.approx(0.8)
    assert blend(0.2, 0.8, 0.3) == pytest.approx(0.7 * 0.2 + 0.3 * 0.8)
    with pytest.raises(ValueError, match="ratio"):
        blend(0.2, 0.8, 1.5)


def test_importing_the_package_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, sentinel.ml; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
