"""The statistics behind every "does this differ beyond chance?" of the toolkit, vectorised over a few hundred rows.

Counts come from SQL; these turn them into intervals, tests and false-discovery-rate corrections. Closed forms in
numpy and the standard library, not scipy: the nightly marts use them, and importing scipy loads argparse and
unittest (scipy._lib._testutils -> numpy.testing), which the nightly path must not (tests/test_layers.py). Each is
tested against published values and against scipy and statsmodels as references (tests/test_analysis_stats.py).
Definitions and the choices made: docs/analysis/drivers.md ("The statistics").

A 2x2 table is (a, b, c, d) = (with & converted, with & not converted, without & converted, without & not).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

# Cochran's rule: the chi-square approximation needs every expected count of the 2x2 table to be at least 5;
# below that the p-value is Fisher's exact test's.
MIN_EXPECTED_FOR_CHI2 = 5.0
FISHER, CHI2 = "fisher", "chi2"


def _floats(x: Any) -> Floats:
    return np.atleast_1d(np.asarray(x, dtype=np.float64))


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def normal_two_sided_p(z: Any) -> Floats:
    """P(|Z| >= |z|) for a standard normal Z, elementwise (NaN stays NaN)."""
    return np.asarray(_erfc(np.abs(_floats(z)) / math.sqrt(2)), dtype=np.float64)


def wilson_interval(successes: Any, trials: Any, confidence: float = 0.95) -> tuple[Floats, Floats]:
    """Wilson score interval of successes / trials, elementwise; NaN where trials is 0.

    Wilson rather than the normal (Wald) interval: it stays inside [0, 1] and keeps its coverage at rates near 0 or
    1 and on small counts, which is where segments and drivers live.
    """
    k, n, z = _floats(successes), _floats(trials), _z(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At p = 0 (p = 1) the lower (upper) end is exactly 0 (1); rounding must not move it, not even to 1e-18.
    low = np.where(k == 0, 0.0, np.clip(centre - half, 0, 1))
    high = np.where(k == n, 1.0, np.clip(centre + half, 0, 1))
    return np.where(n > 0, low, np.nan), np.where(n > 0, high, np.nan)


def two_proportion_test(x1: Any, n1: Any, x2: Any, n2: Any) -> tuple[Floats, Floats]:
    """Two-sided z-test of x1/n1 = x2/n2 with the pooled proportion: (z, p_value), elementwise.

    The same p-value as R's prop.test(correct = FALSE) and as the chi-square test of the 2x2 table (z² = χ²).
    NaN where a group is empty or the pooled proportion is 0 or 1 (nothing to compare).
    """
    x1, n1, x2, n2 = _floats(x1), _floats(n1), _floats(x2), _floats(n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (x1 + x2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (x1 / n1 - x2 / n2) / se
    z = np.where((n1 > 0) & (n2 > 0) & (se > 0), z, np.nan)
    return z, normal_two_sided_p(z)


def expected_counts(a: Any, b: Any, c: Any, d: Any) -> Floats:
    """The smallest expected count of each 2x2 table under independence (row total x column total / n)."""
    a, b, c, d = _floats(a), _floats(b), _floats(c), _floats(d)
    n = a + b + c + d
    with np.errstate(divide="ignore", invalid="ignore"):
        smallest: Floats = np.minimum(a + b, c + d) * np.minimum(a + c, b + d) / n
    return smallest


def table_2x2_test(a: Any, b: Any, c: Any, d: Any) -> tuple[Floats, npt.NDArray[np.object_]]:
    """Two-sided p-value of independence in each 2x2 table and the test that gave it ("fisher" or "chi2").

    Fisher's exact test where an expected count is below 5 (fisher_exact_p), else Pearson's chi-square without
    continuity correction (R's chisq.test(correct = FALSE)); Yates' correction is left out because small tables
    already go to Fisher. NaN (test None) where a margin is 0.
    """
    a, b, c, d = _floats(a), _floats(b), _floats(c), _floats(d)
    smallest = expected_counts(a, b, c, d)
    testable = (a + b > 0) & (c + d > 0) & (a + c > 0) & (b + d > 0)
    fisher = testable & (smallest < MIN_EXPECTED_FOR_CHI2)
    chi2 = testable & ~fisher
    p = np.full_like(a, np.nan)
    test = np.full(a.shape, None, dtype=object)
    _, p_chi2 = two_proportion_test(a, a + b, c, c + d)
    p[chi2], test[chi2] = p_chi2[chi2], CHI2
    for i in np.flatnonzero(fisher):
        table = [[int(a[i]), int(b[i])], [int(c[i]), int(d[i])]]
        p[i] = fisher_exact_p(*table[0], *table[1])
        test[i] = FISHER
    return p, test


def _log_choose(n: Any, k: Any) -> Any:
    return np.vectorize(math.lgamma)(n + 1) - np.vectorize(math.lgamma)(k + 1) - np.vectorize(math.lgamma)(n - k + 1)


def fisher_exact_p(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p-value of Fisher's exact test of one 2x2 table, as R's fisher.test and scipy's fisher_exact.

    With the margins fixed, a follows a hypergeometric distribution; the p-value sums the probabilities of every
    table no more likely than the one observed (with R's relative tolerance of 1e-7 for ties).
    """
    row1, row2, col1 = a + b, c + d, a + c
    x = np.arange(max(0, col1 - row2), min(row1, col1) + 1, dtype=np.float64)
    log_p = _log_choose(row1, x) + _log_choose(row2, col1 - x) - _log_choose(row1 + row2, col1)
    observed = log_p[int(a - x[0])]
    probabilities = np.exp(log_p - observed)  # relative to the observed table's, for precision
    total = float(np.exp(observed) * probabilities[probabilities <= 1 + 1e-7].sum())
    return min(1.0, total)


def _haldane(a: Floats, b: Floats, c: Floats, d: Floats) -> tuple[Floats, Floats, Floats, Floats]:
    # Haldane–Anscombe: a table with a zero cell gets 0.5 added to every cell, so the ratio and its interval are
    # finite; tables without a zero are left as they are.
    add = np.where((a == 0) | (b == 0) | (c == 0) | (d == 0), 0.5, 0.0)
    return a + add, b + add, c + add, d + add


def odds_ratio(a: Any, b: Any, c: Any, d: Any, confidence: float = 0.95) -> tuple[Floats, Floats, Floats]:
    """Sample odds ratio (a·d)/(b·c) with Woolf's (log) interval: (odds_ratio, ci_low, ci_high), elementwise.

    A table with a zero cell gets the Haldane–Anscombe correction (0.5 added to every cell). NaN where a row or a
    column of the table is empty.
    """
    a, b, c, d = _floats(a), _floats(b), _floats(c), _floats(d)
    empty = (a + b == 0) | (c + d == 0) | (a + c == 0) | (b + d == 0)
    a, b, c, d = _haldane(a, b, c, d)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_or = np.log(a * d / (b * c))
        half = _z(confidence) * np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    nan = np.where(empty, np.nan, 1.0)
    return np.exp(log_or) * nan, np.exp(log_or - half) * nan, np.exp(log_or + half) * nan


def risk_ratio(a: Any, b: Any, c: Any, d: Any, confidence: float = 0.95) -> tuple[Floats, Floats, Floats]:
    """Risk ratio (a/(a+b)) / (c/(c+d)) with the Katz log interval: (risk_ratio, ci_low, ci_high), elementwise.

    Zero cells get the same Haldane–Anscombe correction as odds_ratio. NaN where a group is empty or nobody
    converted at all.
    """
    a, b, c, d = _floats(a), _floats(b), _floats(c), _floats(d)
    empty = (a + b == 0) | (c + d == 0) | (a + c == 0)
    a, b, c, d = _haldane(a, b, c, d)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_rr = np.log((a / (a + b)) / (c / (c + d)))
        half = _z(confidence) * np.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))
    nan = np.where(empty, np.nan, 1.0)
    return np.exp(log_rr) * nan, np.exp(log_rr - half) * nan, np.exp(log_rr + half) * nan


def benjamini_hochberg(pvalues: Any) -> Floats:
    """Benjamini–Hochberg adjusted p-values (q-values, R's p.adjust(method = "BH")), elementwise.

    NaN p-values (nothing was tested) stay NaN and do not count in the number of tests.
    """
    p = _floats(pvalues)
    q = np.full_like(p, np.nan)
    tested = ~np.isnan(p)
    if tested.any():
        ps = p[tested]
        m = len(ps)
        order = np.argsort(ps)
        # q_(i) = min over j >= i of p_(j) * m / j, in ascending order of p, capped at 1
        scaled = ps[order] * m / np.arange(1, m + 1)
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
        q[tested] = adjusted
    return q
