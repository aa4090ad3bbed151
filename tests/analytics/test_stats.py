"""The Wilson interval and the two-proportion test against published and hand-computed values."""

from __future__ import annotations

import math

import pytest

from prompt_analyzer.analytics.stats import fisher_exact, two_proportion_test, wilson


def test_wilson_known_values() -> None:
    # 0/10: the lower bound is 0 and the upper z²/(n+z²) = 3.8415/13.8415
    low, high = wilson(0, 10) or (None, None)
    assert low == 0.0 and high == pytest.approx(0.27753, abs=1e-5)
    # 10/10 mirrors it
    low, high = wilson(10, 10) or (None, None)
    assert low == pytest.approx(1 - 0.27753, abs=1e-5) and high == pytest.approx(1.0)
    # 50/100: centre 0.5, half-width 1.96/(1+0.038415) * sqrt(0.0025 + 0.000096) = 0.09617
    low, high = wilson(50, 100) or (None, None)
    assert low == pytest.approx(0.40383, abs=1e-5) and high == pytest.approx(0.59617, abs=1e-5)
    # 3/7 (the seeded batch's visibility)
    low, high = wilson(3, 7) or (None, None)
    assert low == pytest.approx(0.15822, abs=1e-5) and high == pytest.approx(0.74954, abs=1e-5)
    assert wilson(0, 0) is None
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_z_test_known_value() -> None:
    # 40/100 vs 60/100: pooled 0.5, se = sqrt(0.25 * 0.02) = 0.070711, z = 2.828427, p = erfc(2) = 0.0046777
    t = two_proportion_test(40, 100, 60, 100)
    assert t is not None and t.method == "z"
    assert t.z == pytest.approx(2.828427, abs=1e-6)
    assert t.p_value == pytest.approx(math.erfc(2.0)) and t.p_value == pytest.approx(0.0046777, abs=1e-7)
    assert t.significant
    # 45/100 vs 50/100 is noise: pooled 0.475, se = 0.070622, z = 0.70799, p = 2(1 - 0.760525) = 0.47895
    noise = two_proportion_test(45, 100, 50, 100)
    assert noise is not None and not noise.significant and noise.p_value == pytest.approx(0.47895, abs=2e-4)


def test_fisher_known_values() -> None:
    # Wikipedia's example (Fisher's exact test): [[1, 9], [11, 3]], two-sided p = 0.002759
    assert fisher_exact(1, 9, 11, 3) == pytest.approx(0.002759, abs=1e-6)
    # [[0, 3], [3, 4]]: P(x) = 35, 63, 21, 1 / 120; p = 57/120
    assert fisher_exact(0, 3, 3, 4) == pytest.approx(57 / 120)
    # 0/8 vs 5/8: pooled 5/16, expected 8 * 5/16 = 2.5 < 5, so the exact test on [[0, 8], [5, 3]]:
    # P(x = 0..5) = 56, 560, 1568, 1568, 560, 56 / 4368; p = (56 + 56) / 4368
    t = two_proportion_test(0, 8, 5, 8)
    assert t is not None and t.method == "fisher" and t.significant
    assert t.p_value == pytest.approx(112 / 4368)
    # 1/10 vs 11/14: every expected count is at least 5 (pooled 0.5), so the z-test
    t = two_proportion_test(1, 10, 11, 14)
    assert t is not None and t.method == "z" and t.significant


def test_empty_samples_have_no_test() -> None:
    assert two_proportion_test(0, 0, 1, 2) is None
    with pytest.raises(ValueError):
        two_proportion_test(3, 2, 1, 2)
