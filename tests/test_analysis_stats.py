"""The statistics of analysis/stats.py against published values and hand computations.

References: Newcombe (1998), "Two-sided confidence intervals for the single proportion", Stat Med 17:857, table I
(Wilson score intervals, = R's prop.test(x, n, correct = FALSE)$conf.int); Agresti, Categorical Data Analysis
(2nd ed.), section 2.2: the Physicians' Health Study aspirin table (myocardial infarction 189 of 11,034 on
placebo, 104 of 11,037 on aspirin), X² = 25.01, odds ratio 1.83 (1.44, 2.33), relative risk 1.82 (1.43, 2.30);
Fisher's tea-tasting table (p = 34/70, as R's fisher.test(matrix(c(3, 1, 1, 3), 2))); Benjamini & Hochberg (1995),
the 15 p-values of their section 4, where the procedure at 0.05 rejects the four smallest.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cjm_analytics.analysis import stats
from cjm_analytics.analysis.segments import compare_segments


def test_wilson_interval_matches_newcombe() -> None:
    low, high = stats.wilson_interval([81, 15, 0, 1], [263, 148, 20, 29])
    np.testing.assert_allclose(low, [0.2553, 0.0624, 0.0, 0.0061], atol=5e-5)
    np.testing.assert_allclose(high, [0.3662, 0.1605, 0.1611, 0.1718], atol=5e-5)


def test_wilson_interval_of_nothing_is_unknown_and_a_series_works() -> None:
    low, high = stats.wilson_interval(pd.Series([0, 3, 0]), pd.Series([0, 3, 141]))
    assert math.isnan(low[0]) and math.isnan(high[0])
    assert low[2] == 0.0  # exactly, not a rounding error above it
    # 3 of 3: the upper end is 1 and the lower end z²-based: n / (n + z²) = 3 / (3 + 3.8415)
    assert high[1] == pytest.approx(1.0)
    assert low[1] == pytest.approx(3 / (3 + 1.959964**2), abs=1e-6)


def test_wilson_interval_other_confidence() -> None:
    # 90%: z = 1.644854; 81/263 by the closed form (centre ± half) / (1 + z²/n), computed by hand.
    z, n, p = 1.6448536, 263, 81 / 263
    centre, half = p + z**2 / (2 * n), z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n * n))
    low, high = stats.wilson_interval(81, 263, confidence=0.90)
    assert (low[0], high[0]) == pytest.approx(((centre - half) / (1 + z**2 / n), (centre + half) / (1 + z**2 / n)))


ASPIRIN = (189, 11034 - 189, 104, 11037 - 104)  # (placebo MI, placebo no MI, aspirin MI, aspirin no MI)


def test_chi_square_and_two_proportion_test_on_the_aspirin_table() -> None:
    p, test = stats.table_2x2_test(*ASPIRIN)
    assert test.tolist() == ["chi2"]
    z, p_z = stats.two_proportion_test(189, 11034, 104, 11037)
    assert z[0] ** 2 == pytest.approx(25.01, abs=0.005)
    # P(chi-square with 1 df > 25.01) = erfc(sqrt(25.01 / 2))
    assert p[0] == pytest.approx(math.erfc(math.sqrt(z[0] ** 2 / 2)))
    assert p_z[0] == pytest.approx(p[0])


def test_odds_and_risk_ratio_on_the_aspirin_table() -> None:
    odds, low, high = stats.odds_ratio(*ASPIRIN)
    assert (odds[0], low[0], high[0]) == pytest.approx((1.83, 1.44, 2.33), abs=0.005)
    rr, rr_low, rr_high = stats.risk_ratio(*ASPIRIN)
    assert (rr[0], rr_low[0], rr_high[0]) == pytest.approx((1.82, 1.43, 2.30), abs=0.007)


@pytest.mark.parametrize(("table", "p_value"), [
    pytest.param((3, 1, 1, 3), 34 / 70, id="tea-tasting"),
    # margins 5/5 of 10: P(a=0) = P(a=5) = 1/C(10,5) = 1/252, the only tables as extreme
    pytest.param((0, 5, 5, 0), 2 / 252, id="all-or-nothing"),
    pytest.param((5, 0, 0, 5), 2 / 252, id="all-or-nothing-mirrored"),
])
def test_small_tables_go_to_fisher(table: tuple[int, int, int, int], p_value: float) -> None:
    p, test = stats.table_2x2_test(*table)
    assert test.tolist() == ["fisher"]
    assert p[0] == pytest.approx(p_value)


def test_cochrans_rule_decides_the_test() -> None:
    # Smallest expected count: row total x column total / n. 10 x 10 / 20 = 5 -> chi-square; 9 x 10 / 19 < 5 -> Fisher
    assert stats.expected_counts(5, 5, 5, 5)[0] == 5
    _, test = stats.table_2x2_test([5, 4], [5, 5], [5, 5], [5, 5])
    assert test.tolist() == ["chi2", "fisher"]


def test_a_table_with_an_empty_margin_is_not_tested() -> None:
    p, test = stats.table_2x2_test([0, 3], [0, 0], [4, 5], [6, 0])
    assert np.isnan(p).all() and test.tolist() == [None, None]
    assert np.isnan(stats.odds_ratio(0, 0, 4, 6)[0][0])


def test_haldane_correction_for_a_zero_cell() -> None:
    # (0, 10, 5, 5) -> (0.5, 10.5, 5.5, 5.5): odds ratio 0.5 x 5.5 / (10.5 x 5.5) = 1/21
    odds, low, high = stats.odds_ratio(0, 10, 5, 5)
    se = math.sqrt(1 / 0.5 + 1 / 10.5 + 1 / 5.5 + 1 / 5.5)
    assert odds[0] == pytest.approx(1 / 21)
    assert (low[0], high[0]) == pytest.approx((math.exp(math.log(1 / 21) - 1.959964 * se),
                                               math.exp(math.log(1 / 21) + 1.959964 * se)), rel=1e-6)
    # No zero cell: no correction, the plain (a d) / (b c)
    assert stats.odds_ratio(2, 4, 3, 9)[0][0] == pytest.approx(2 * 9 / (4 * 3))


BH_PAPER = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719,
            0.6528, 0.7590, 1.000]


def test_benjamini_hochberg_on_the_papers_example() -> None:
    q = stats.benjamini_hochberg(BH_PAPER)
    assert (q < 0.05).sum() == 4  # the paper: four hypotheses rejected
    # q_i = min over j >= i of p_j * m / j (by hand): q_4 = 0.0095 * 15 / 4; q_5 = 0.0201 * 15 / 5 (smaller than
    # every later p_j * 15 / j); q_15 = 1
    assert q[3] == pytest.approx(0.0095 * 15 / 4)
    assert q[4] == pytest.approx(0.0201 * 15 / 5)
    assert q[6] == pytest.approx(0.0298 * 15 / 7) and q[5] == q[6]  # 0.0278 * 15/6 > 0.0298 * 15/7
    assert q[-1] == 1.0


def test_benjamini_hochberg_leaves_untested_out_of_the_count() -> None:
    q = stats.benjamini_hochberg([0.01, np.nan, 0.04])
    np.testing.assert_allclose(q, [0.02, np.nan, 0.04])


# ---- compare_segments ----------------------------------------------------------------------------------------

def test_compare_segments_counted_by_hand() -> None:
    frame = pd.DataFrame({"segment": ["a", "b", "c", "tiny"], "reached": [100, 100, 200, 5],
                          "converted": [50, 20, 60, 5]})
    out = compare_segments(frame, min_size=30)
    assert out.columns.tolist() == ["segment", "reached", "converted", "rate", "ci_low", "ci_high", "rest_reached",
                                    "rest_converted", "rest_rate", "p_value", "test", "q_value", "differs",
                                    "too_small"]
    # a: 50/100 against the rest 85/305; b: 20/100 against 115/305; c: 60/200 against 75/205
    assert out.rest_reached.tolist() == [305, 305, 205, 400]
    assert out.rest_converted.tolist() == [85, 115, 75, 130]
    assert out.rate.tolist() == [0.5, 0.2, 0.3, 1.0]
    for i, (x1, n1, x2, n2) in enumerate([(50, 100, 85, 305), (20, 100, 115, 305), (60, 200, 75, 205)]):
        pooled = (x1 + x2) / (n1 + n2)
        z = (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        assert out.p_value[i] == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))
    p = out.p_value[:3].to_numpy()
    order = np.argsort(p)
    by_hand = np.minimum.accumulate((p[order] * 3 / np.arange(1, 4))[::-1])[::-1]
    np.testing.assert_allclose(out.q_value[:3].to_numpy()[order], by_hand)
    # The tiny segment converted 5 of 5 (against 130 of 400), a "difference" that is never tested or flagged.
    assert out.too_small.tolist() == [False, False, False, True]
    assert math.isnan(out.p_value[3]) and math.isnan(out.q_value[3]) and not out.differs[3]
    assert out.ci_low[3] == pytest.approx(5 / (5 + 1.959964**2), abs=1e-6)  # but its interval is shown
    assert out.differs.tolist() == [True, True, False, False]


def test_compare_segments_within_a_stage_compares_with_the_same_stage_only() -> None:
    frame = pd.DataFrame({"stage": ["s1", "s1", "s2", "s2"], "segment": ["a", "b", "a", "b"],
                          "reached": [40, 60, 30, 50], "converted": [30, 30, 10, 40]})
    out = compare_segments(frame, min_size=1, within="stage")
    assert out.rest_reached.tolist() == [60, 40, 50, 30]
    assert out.rest_converted.tolist() == [30, 30, 40, 10]
    assert out.q_value.notna().all()  # one correction over all four tests


def test_compare_segments_with_one_segment_has_nothing_to_compare() -> None:
    out = compare_segments(pd.DataFrame({"segment": ["all"], "reached": [100], "converted": [30]}))
    assert math.isnan(out.p_value[0]) and not out.differs[0] and out.rest_reached[0] == 0


# ---- against scipy and statsmodels, the references the closed forms are checked with ---------------------------

def random_tables(seed: int, n: int = 300) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 8, (n // 2, 4))  # Fisher's territory, zeros included
    large = rng.integers(0, 400, (n - n // 2, 4))
    return np.vstack([small, large])


def test_fisher_exact_matches_scipy() -> None:
    from scipy.stats import fisher_exact

    for a, b, c, d in random_tables(1):
        if min(a + b, c + d, a + c, b + d) == 0:
            continue
        assert stats.fisher_exact_p(a, b, c, d) == pytest.approx(fisher_exact([[a, b], [c, d]]).pvalue,
                                                                 rel=1e-9, abs=1e-300)


def test_chi_square_matches_scipy() -> None:
    from scipy.stats import chi2_contingency

    tables = random_tables(2)
    p, test = stats.table_2x2_test(*tables.T)
    for (a, b, c, d), p_i, t in zip(tables, p, test, strict=True):
        if t == "chi2":
            assert p_i == pytest.approx(chi2_contingency([[a, b], [c, d]], correction=False).pvalue, rel=1e-9)
    assert {"chi2", "fisher"} <= set(test)


def test_wilson_and_two_proportion_test_match_statsmodels() -> None:
    from statsmodels.stats.proportion import proportion_confint, proportions_ztest

    t = random_tables(3)
    k, n = t[:, 0], t[:, 0] + t[:, 1]
    ok = n > 0
    low, high = stats.wilson_interval(k[ok], n[ok], confidence=0.9)
    ref_low, ref_high = proportion_confint(k[ok], n[ok], alpha=0.1, method="wilson")
    np.testing.assert_allclose(low, ref_low, atol=1e-12)
    np.testing.assert_allclose(high, ref_high, atol=1e-12)
    for x1, n1, x2, n2 in zip(t[:, 0], t[:, 0] + t[:, 1], t[:, 2], t[:, 2] + t[:, 3], strict=True):
        z, p = stats.two_proportion_test(x1, n1, x2, n2)
        if not np.isnan(p[0]):
            ref_z, ref_p = proportions_ztest([x1, x2], [n1, n2])
            assert (z[0], p[0]) == pytest.approx((ref_z, ref_p), rel=1e-9)


def test_benjamini_hochberg_matches_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(4)
    for size in (1, 2, 7, 50):
        p = rng.random(size) ** 3
        np.testing.assert_allclose(stats.benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12)
