"""The statistics behind the report's error bars and its change flags.  Pure functions, standard library.

* :func:`wilson` — the 95% Wilson score interval of a proportion.  Chosen over the textbook (Wald)
  interval because the report's proportions are often near 0 or 1 and counted over a few dozen answers,
  where Wald collapses to a zero-width interval (0 of 20 mentions is not "exactly 0%").
* :func:`two_proportion_test` — is the difference between two proportions (the same metric in two
  batches) unlikely to be noise?  A pooled two-sided z-test when every expected cell count is at least
  5, Fisher's exact test otherwise (the z-test's normal approximation is poor there).  A change is
  flagged when p < :data:`ALPHA`.

docs/metrics.md states both with their formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ALPHA", "Z95", "TestResult", "fisher_exact", "two_proportion_test", "wilson"]

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal distribution
ALPHA = 0.05  # a change is flagged when its two-sided p-value is below this
MIN_EXPECTED = 5.0  # below this expected count in any cell the exact test replaces the z-test


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes / n``; None when ``n`` is 0 (no proportion to bound).

    centre = (p + z²/2n) / (1 + z²/n);  half-width = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²).
    """
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..{n}, got {successes}")
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # Clamp the rounding error at the ends (0/n gives a low bound of -1e-17, not 0).
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class TestResult:
    """A two-proportion comparison: ``p_value`` two-sided, ``method`` ``"z"`` or ``"fisher"``."""

    p_value: float
    method: str
    significant: bool
    z: float | None = None  # the z statistic (z-test only)


def _norm_sf2(z: float) -> float:
    """Two-sided tail probability of the standard normal: P(|Z| >= |z|)."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p-value of Fisher's exact test on the 2x2 table [[a, b], [c, d]].

    Sums the hypergeometric probabilities of every table with the same margins that is no more likely
    than the observed one (the usual two-sided definition, as R's fisher.test).
    """
    row1, row2, col1 = a + b, c + d, a + c
    n = row1 + row2
    total = math.comb(n, col1)
    lo, hi = max(0, col1 - row2), min(row1, col1)

    def prob(x: int) -> float:
        return math.comb(row1, x) * math.comb(row2, col1 - x) / total

    observed = prob(a)
    # A relative tolerance so that tables exactly as likely as the observed one count despite rounding.
    p = sum(q for x in range(lo, hi + 1) if (q := prob(x)) <= observed * (1 + 1e-7))
    return min(1.0, p)


def two_proportion_test(x1: int, n1: int, x2: int, n2: int, alpha: float = ALPHA) -> TestResult | None:
    """Compare x1/n1 with x2/n2; None when either sample is empty.

    z = (p2 - p1) / sqrt(p̂(1-p̂)(1/n1 + 1/n2)) with the pooled p̂ = (x1+x2)/(n1+n2); when an expected
    count n·p̂ or n·(1-p̂) of either sample is below 5, Fisher's exact test on
    [[x1, n1-x1], [x2, n2-x2]] instead.
    """
    if n1 <= 0 or n2 <= 0:
        return None
    for x, n in ((x1, n1), (x2, n2)):
        if not 0 <= x <= n:
            raise ValueError(f"successes must be within 0..{n}, got {x}")
    pooled = (x1 + x2) / (n1 + n2)
    expected = min(n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled))
    if expected < MIN_EXPECTED:
        p_value = fisher_exact(x1, n1 - x1, x2, n2 - x2)
        return TestResult(p_value, "fisher", p_value < alpha)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x2 / n2 - x1 / n1) / se
    p_value = _norm_sf2(z)
    return TestResult(p_value, "z", p_value < alpha, z)
