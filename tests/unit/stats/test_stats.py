"""Statistics for adaptive timing and score uncertainty: hand-computed values and seeded simulations."""

from __future__ import annotations

import math
import random
import statistics
from fractions import Fraction

import pytest

from ntire_bench.stats import distributions
from ntire_bench.timing.adaptive import AdaptiveSampler, WarmupDetector
from ntire_bench.stats.distributions import median_ranks, student_t_quantile
from ntire_bench.stats.intervals import HeadlineInterval, Interval, combined_headline_interval, headline_interval, median_interval, pass_interval, runtime_headline_interval
from ntire_bench.stats.scores import ScoreInterval, TieGroup, final_score_interval, score_interval, tie_groups


def brute_force_ranks(n: int, confidence: float) -> tuple[int, Fraction]:
    """Largest k with coverage 1 - 2·P(Bin(n, 1/2) <= k-1) >= confidence, straight from binomial sums."""
    best, best_coverage = 0, Fraction(0)
    for k in range(1, n // 2 + 1):
        coverage = 1 - Fraction(2 * sum(math.comb(n, i) for i in range(k)), 2 ** n)
        if coverage >= Fraction(str(confidence)):
            best, best_coverage = k, coverage
    return best, best_coverage


# --------------------------------------------------------------------------- quantiles


@pytest.mark.parametrize("p, df, expected", [
    # Student t table (two-sided 95% and 99%, one-sided 95%), 10 significant digits.
    (0.975, 1, 12.70620474), (0.975, 2, 4.302652730), (0.975, 3, 3.182446305), (0.975, 4, 2.776445105),
    (0.975, 5, 2.570581836), (0.975, 9, 2.262157163), (0.975, 10, 2.228138852), (0.975, 30, 2.042272456),
    (0.975, 100, 1.983971519), (0.995, 4, 4.604094871), (0.95, 1, 6.313751515), (0.025, 9, -2.262157163),
])
def test_student_t_quantile_matches_the_table(p, df, expected):
    assert student_t_quantile(p, df) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.999, 0.01])
def test_student_t_quantile_matches_closed_forms_for_one_and_two_df(p):
    assert student_t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-12)
    assert student_t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-12)


@pytest.mark.parametrize("p, df, table", [
    (0.975, 3, 3.182446305284263), (0.975, 5, 2.570581835636314), (0.95, 10, 1.812461122811676),
    (0.995, 7.5, None), (0.8, 40, None)])
def test_student_t_quantile_matches_the_tables_and_is_symmetric(p, df, table):
    if table is not None:  # standard t-tables
        assert student_t_quantile(p, df) == pytest.approx(table, rel=1e-10)
    assert student_t_quantile(1 - p, df) == pytest.approx(-student_t_quantile(p, df), rel=1e-12)
    assert student_t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-12)  # Cauchy, exact


def test_student_t_quantile_tends_to_the_normal():
    assert student_t_quantile(0.975, math.inf) == pytest.approx(1.959963984540054, rel=1e-12)
    assert student_t_quantile(0.975, 1e6) == pytest.approx(1.959963984540054, rel=1e-5)
    assert student_t_quantile(0.975, 40) > student_t_quantile(0.975, 1e3) > student_t_quantile(0.975, math.inf)


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, float("nan")])
def test_quantiles_reject_probabilities_outside_0_1(bad):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        student_t_quantile(bad, 3)


def test_student_t_rejects_bad_degrees_of_freedom():
    with pytest.raises(ValueError, match="degrees of freedom"):
        student_t_quantile(0.9, 0)


# --------------------------------------------------------------------------- median interval


def test_median_ranks_for_10_and_20_samples_at_95_percent():
    # n=10: P(B<=1) = (1+10)/1024, coverage 1-22/1024 = 0.9785; k=3 would give 1-112/1024 = 0.89.
    assert median_ranks(10, 0.95) == (2, 9, 1 - 22 / 1024, True)
    # n=20: P(B<=5) = (1+20+190+1140+4845+15504)/2^20 = 21700/2^20, coverage 0.95861.
    assert median_ranks(20, 0.95) == (6, 15, 1 - 2 * 21700 / 2 ** 20, True)


@pytest.mark.parametrize("n, lower, upper", [(6, 1, 6), (11, 2, 10), (12, 3, 10), (30, 10, 21), (50, 18, 33),
                                             (100, 40, 61)])
def test_median_ranks_match_the_published_table(n, lower, upper):
    ranks = median_ranks(n, 0.95)
    assert (ranks.lower, ranks.upper) == (lower, upper)
    assert ranks.reaches_confidence


def test_median_ranks_match_brute_force_binomial_sums():
    for confidence in (0.5, 0.9, 0.95, 0.99):
        for n in range(1, 61):
            k, coverage = brute_force_ranks(n, confidence)
            ranks = median_ranks(n, confidence)
            if k == 0:
                assert (ranks.lower, ranks.upper, ranks.reaches_confidence) == (1, n, False)
                assert ranks.coverage == pytest.approx(1 - 2.0 ** (1 - n), abs=1e-15)
            else:
                assert (ranks.lower, ranks.upper) == (k, n + 1 - k), (n, confidence)
                assert ranks.coverage == float(coverage) and ranks.coverage >= confidence


def test_large_n_floating_point_ranks_agree_with_exact_integers():
    for n in (1001, 2500):
        for alpha in ("0.05", "0.01", "0.1"):
            exact_rank, exact_coverage = distributions.half_rank_exact(n, Fraction(alpha))
            float_rank, float_coverage = distributions.half_rank_float(n, float(alpha))
            assert float_rank == exact_rank
            assert float_coverage == pytest.approx(exact_coverage, abs=1e-11)
    big = median_ranks(5000, 0.95)  # float path
    assert (big.lower, big.upper) == (2431, 2570) and big.coverage >= 0.95


def test_tiny_samples_give_the_whole_range_flagged_as_short_of_the_confidence():
    five = median_interval([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (five.low, five.high, five.median) == (1.0, 5.0, 3.0)
    assert five.coverage == 1 - 2 / 32 and not five.reaches_confidence
    six = median_interval([6.0, 1.0, 4.0, 2.0, 3.0, 5.0])
    assert (six.low, six.high, six.median, six.coverage) == (1.0, 6.0, 3.5, 1 - 2 / 64) and six.reaches_confidence
    one = median_interval([7.0])
    assert (one.low, one.high, one.median, one.coverage, one.reaches_confidence) == (7.0, 7.0, 7.0, 0.0, False)


def test_median_interval_picks_the_order_statistics():
    samples = [10.0, 3.0, 8.0, 1.0, 6.0, 9.0, 2.0, 7.0, 5.0, 4.0]  # 1..10 shuffled
    interval = median_interval(samples)
    assert (interval.low, interval.high, interval.median) == (2.0, 9.0, 5.5)
    assert (interval.lower_rank, interval.upper_rank, interval.n) == (2, 9, 10)
    assert interval.relative_half_width == pytest.approx(3.5 / 5.5)


def test_median_interval_covers_the_true_median_at_the_nominal_rate():
    rng = random.Random(20240601)
    true_median = math.log(2)  # exponential with rate 1
    for n, trials in ((20, 2000), (10, 2000)):
        coverage = median_ranks(n, 0.95).coverage
        hits = sum(median_interval([rng.expovariate(1.0) for _ in range(n)]).contains(true_median)
                   for _ in range(trials))
        standard_error = math.sqrt(coverage * (1 - coverage) / trials)
        assert abs(hits / trials - coverage) < 4 * standard_error, (n, hits / trials, coverage)


@pytest.mark.parametrize("samples, message", [([], "no samples"), ([1.0, float("nan")], "sample 1"),
                                              ([1.0, "2"], "sample 1"), ([float("inf")], "sample 0")])
def test_median_interval_rejects_bad_samples(samples, message):
    with pytest.raises(ValueError, match=message):
        median_interval(samples)


@pytest.mark.parametrize("confidence", [0, 1, 1.2, -0.5])
def test_median_interval_rejects_bad_confidence(confidence):
    with pytest.raises(ValueError, match="confidence must be strictly between 0 and 1"):
        median_interval([1.0, 2.0], confidence)


def test_median_ranks_rejects_a_non_positive_count():
    with pytest.raises(ValueError, match="positive integer"):
        median_ranks(0)


def test_interval_rejects_reversed_bounds_and_knows_overlap():
    with pytest.raises(ValueError, match="low <= high"):
        Interval(2.0, 1.0)
    assert Interval(0, 1).overlaps(Interval(1, 2)) and not Interval(0, 1).overlaps(Interval(1.5, 2))
    assert Interval(0, 1).to_dict() == {"low": 0, "high": 1}


# --------------------------------------------------------------------------- adaptive sampler


def test_sampler_converges_at_the_first_sample_whose_interval_is_within_target():
    sampler = AdaptiveSampler(target=0.005, min_samples=10, max_samples=50)
    # At n=10 the interval [x_(2), x_(9)] is [90, 110]; n=11 keeps ranks (2, 10) -> still 90;
    # n=12 moves to ranks (3, 10), both 100.
    sequence = [80.0, 90.0, 110.0, 120.0] + [100.0] * 6 + [100.0, 100.0, 100.0]
    stopped_at = None
    for index, sample in enumerate(sequence, start=1):
        if sampler.add(sample):
            stopped_at = index
            break
    assert stopped_at == 12 and sampler.stop_reason == "converged"
    summary = sampler.summary()
    assert summary["n"] == 12 and summary["median"] == 100.0
    assert (summary["ci_low"], summary["ci_high"]) == (100.0, 100.0)
    assert summary["relative_half_width"] == 0.0 and summary["reaches_confidence"]
    assert summary["timed_ms"] == pytest.approx(80 + 90 + 110 + 120 + 800)


def test_sampler_waits_for_enough_samples_to_reach_the_confidence():
    sampler = AdaptiveSampler(min_samples=1)
    results = [sampler.add(50.0) for _ in range(6)]
    assert results == [False] * 5 + [True]  # n < 6 cannot reach 95%
    assert sampler.stop_reason == "converged"


def test_sampler_stops_at_the_cap_and_at_the_time_budget():
    noisy = [90.0, 110.0] * 50
    capped = AdaptiveSampler(min_samples=10, max_samples=15)
    assert capped.extend(noisy) == 15 and capped.stop_reason == "cap"
    timed = AdaptiveSampler(min_samples=10, max_samples=100, max_time_ms=1250)
    # cumulative time 100 ms per pair of samples: 1200 after 12 samples, 1290 after 13.
    assert timed.extend(noisy) == 13 and timed.stop_reason == "time"
    budget_below_floor = AdaptiveSampler(min_samples=10, max_time_ms=1.0)
    assert budget_below_floor.extend(noisy) == 10  # the min_samples floor comes first


def test_sampler_extend_ignores_samples_after_the_stop_and_refuses_more():
    sampler = AdaptiveSampler(min_samples=6, max_samples=20)
    assert sampler.extend([20.0] * 9) == 6 and sampler.done
    assert sampler.samples == [20.0] * 6
    with pytest.raises(RuntimeError, match="already stopped"):
        sampler.add(20.0)


def test_sampler_before_any_sample():
    sampler = AdaptiveSampler()
    assert not sampler.done and sampler.stop_reason is None and sampler.interval is None
    assert sampler.summary()["median"] is None and sampler.summary()["n"] == 0


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "3", True])
def test_sampler_rejects_bad_samples(bad):
    with pytest.raises(ValueError, match="timing sample 0"):
        AdaptiveSampler().add(bad)


@pytest.mark.parametrize("kwargs, message", [
    (dict(target=0), "target"), (dict(confidence=1.0), "confidence"), (dict(min_samples=0), "min_samples"),
    (dict(min_samples=20, max_samples=10), "max_samples"), (dict(max_time_ms=-5), "max_time_ms"),
])
def test_sampler_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdaptiveSampler(**kwargs)


# --------------------------------------------------------------------------- warm-up detector


def test_warmup_detector_waits_out_a_decaying_sequence():
    detector = WarmupDetector(max_passes=20)
    decay = [100 * (1 + 4 * 0.5 ** i) for i in range(20)]  # 500, 300, 200, 150, 125, 112.5, ...
    for duration in decay:
        if detector.add(duration):
            break
    # 9 passes: last three 106.25, 103.125, 101.5625 are within 5% (4.6%) but fall 4.6% > 2.5%.
    # 10 passes: 103.125, 101.5625, 100.78125 spread and fall 2.33% -> settled.
    assert detector.passes == 10 and detector.stop_reason == "settled"
    assert detector.summary()["durations_ms"] == decay[:10]


def test_warmup_detector_settles_on_noise_after_one_cold_pass():
    detector = WarmupDetector()
    assert [detector.add(d) for d in (300.0, 101.0, 99.0, 100.0)] == [False, False, False, True]
    assert detector.summary() == {"passes": 4, "stop_reason": "settled", "durations_ms": [300.0, 101.0, 99.0, 100.0],
                                  "tolerance": 0.05, "window": 3}


def test_warmup_detector_respects_min_passes_and_the_cap():
    flat = WarmupDetector(min_passes=5)
    assert [flat.add(10.0) for _ in range(5)] == [False] * 4 + [True]
    capped = WarmupDetector(max_passes=8)
    for duration in (100 * (1 + 4 * 0.5 ** i) for i in range(8)):
        capped.add(duration)
    assert capped.done and capped.passes == 8 and capped.stop_reason == "cap"
    with pytest.raises(RuntimeError, match="already stopped"):
        capped.add(100.0)


def test_warmup_detector_rejects_bad_settings_and_durations():
    with pytest.raises(ValueError, match="max_passes"):
        WarmupDetector(max_passes=2)
    with pytest.raises(ValueError, match="tolerance"):
        WarmupDetector(tolerance=0)
    with pytest.raises(ValueError, match="window"):
        WarmupDetector(window=1)
    with pytest.raises(ValueError, match="warm-up pass 0"):
        WarmupDetector().add(-3.0)


# --------------------------------------------------------------------------- headline interval


def test_headline_interval_combines_per_image_median_intervals():
    image_a = [float(v) for v in range(1, 11)]  # median 5.5, interval [2, 9], coverage 1 - 22/1024
    image_b = [20.0] * 10                       # median 20, zero width
    result = headline_interval([image_a, image_b])
    z_image = statistics.NormalDist().inv_cdf(0.5 + (1 - 22 / 1024) / 2)  # 2.2999
    standard_error = (7 / (2 * z_image)) / 2
    half_width = 1.959963984540054 * standard_error
    assert result.headline == 12.75
    assert result.low == pytest.approx(12.75 - half_width) and result.high == pytest.approx(12.75 + half_width)
    assert half_width == pytest.approx(1.49169, abs=1e-5)
    assert result.method == "images" and result.reaches_confidence


def test_headline_interval_flags_images_with_too_few_samples():
    result = headline_interval([[1.0, 2.0, 3.0], [5.0]])
    assert not result.reaches_confidence and result.headline == 3.5
    single = headline_interval([[4.0]])  # one sample: no spread to measure
    assert (single.low, single.high) == (4.0, 4.0)


def test_headline_interval_covers_the_mean_of_true_medians_in_simulation():
    rng = random.Random(7)
    true_medians = [10.0 + 5 * i for i in range(14)]  # a Set14-like pass, 10 samples per image, CV ~2%
    truth = statistics.fmean(true_medians)
    trials = 300
    hits = sum(headline_interval([[m * math.exp(rng.gauss(0, 0.02)) for _ in range(10)] for m in true_medians])
               .contains(truth) for _ in range(trials))
    assert 0.92 <= hits / trials <= 0.995


def test_pass_interval_is_a_t_interval():
    result = pass_interval([10.0, 12.0, 14.0])  # mean 12, s = 2, t(0.975, 2) = 4.3027
    half_width = 4.302652729749464 * 2 / math.sqrt(3)
    assert result.headline == 12.0 and result.method == "passes"
    assert result.low == pytest.approx(12 - half_width) and result.high == pytest.approx(12 + half_width)
    with pytest.raises(ValueError, match="at least two pass headlines"):
        pass_interval([10.0])


def test_combined_interval_takes_the_wider_side_around_the_shown_headline():
    within = HeadlineInterval(low=11.0, high=14.0, headline=12.5, confidence=0.95, method="images",
                              reaches_confidence=True)
    wide = pass_interval([10.0, 11.0])  # s = 0.7071, half-width 12.7062 * 0.5 = 6.3531
    combined = combined_headline_interval(within, wide)
    assert combined.headline == 12.5 and combined.method == "combined"
    assert combined.low == pytest.approx(12.5 - 6.353102368) and combined.high == pytest.approx(12.5 + 6.353102368)
    narrow = pass_interval([12.45, 12.55])  # half-width 0.6353
    combined = combined_headline_interval(within, narrow)
    assert (combined.low, combined.high) == (11.0, 14.0)
    lopsided = pass_interval([12.0, 12.6])  # half-width 3.81: wider than within below, narrower above
    combined = combined_headline_interval(HeadlineInterval(12.0, 17.0, 12.5, 0.95, "images", True), lopsided)
    assert combined.low == pytest.approx(12.5 - 3.811861) and combined.high == 17.0
    assert combined_headline_interval(within, None) is within
    with pytest.raises(ValueError, match="confidences differ"):
        combined_headline_interval(within, pass_interval([10.0, 11.0], confidence=0.9))


def test_runtime_headline_interval_uses_passes_only_when_there_are_two():
    images = [[float(v) for v in range(1, 11)], [20.0] * 10]
    assert runtime_headline_interval(images, [12.0]) == headline_interval(images)
    combined = runtime_headline_interval(images, [10.0, 11.0])
    assert combined.method == "combined" and combined.high == pytest.approx(12.75 + 6.353102368)


def test_headline_interval_rejects_empty_input():
    with pytest.raises(ValueError, match="no images"):
        headline_interval([])
    with pytest.raises(ValueError, match="image 1: no samples"):
        headline_interval([[1.0], []])


# --------------------------------------------------------------------------- score intervals


def test_score_interval_on_hand_computed_numbers():
    result = score_interval(10.0, Interval(9.0, 11.0), 20.0, Interval(19.0, 21.0))
    assert result.score == pytest.approx(math.e)
    assert result.low == pytest.approx(math.exp(18 / 21)) and result.high == pytest.approx(math.exp(22 / 19))
    assert (result.log_low, result.log_high, result.log_score) == pytest.approx((18 / 21, 22 / 19, 1.0))
    exact = score_interval(10.0, None, 20.0, None)
    assert exact.low == exact.high == exact.score == pytest.approx(math.e)
    assert score_interval(20.0, None, 20.0, None).score == pytest.approx(math.exp(2))  # the baseline itself
    open_ended = score_interval(10.0, (9.0, 11.0), 20.0, (0.0, 21.0))
    assert open_ended.high == math.inf and open_ended.log_high == math.inf


def test_final_score_interval_sums_weighted_bounds():
    runtime = score_interval(10.0, Interval(9.0, 11.0), 20.0, Interval(19.0, 21.0))
    flops = score_interval(3.0, None, 4.0, None)  # exp(1.5)
    result = final_score_interval({"runtime": runtime, "flops": flops, "params": 2.0},
                                  {"runtime": 0.7, "flops": 0.15, "params": 0.15})
    fixed = 0.15 * math.exp(1.5) + 0.15 * 2.0
    assert result.low == pytest.approx(0.7 * math.exp(18 / 21) + fixed)
    assert result.high == pytest.approx(0.7 * math.exp(22 / 19) + fixed)
    assert result.score == pytest.approx(0.7 * math.e + fixed)
    assert result.log_score == pytest.approx(math.log(result.score))
    assert result.log_low == pytest.approx(math.log(result.low)) and result.log_high == pytest.approx(math.log(result.high))


def test_huge_ratios_never_overflow():
    runtime = score_interval(1000.0, Interval(999.0, 1001.0), 1.0, Interval(0.99, 1.01))  # exp(2000)
    assert isinstance(runtime, ScoreInterval) and runtime.low == runtime.score == runtime.high == math.inf
    assert runtime.log_score == 2000.0
    assert runtime.log_low == pytest.approx(1998 / 1.01) and runtime.log_high == pytest.approx(2002 / 0.99)
    final = final_score_interval({"runtime": runtime, "flops": math.exp(2), "params": math.exp(2)},
                                 {"runtime": 0.7, "flops": 0.15, "params": 0.15})
    assert final.score == math.inf and final.log_score == pytest.approx(math.log(0.7) + 2000)
    ignored = final_score_interval({"runtime": runtime, "flops": 2.0}, {"runtime": 0.0, "flops": 1.0})
    assert ignored.score == ignored.high == 2.0  # a zero weight drops inf without a NaN


@pytest.mark.parametrize("args, message", [
    ((-1.0, None, 1.0, None), "value must be >= 0"),
    ((1.0, None, 0.0, None), "base must be"),
    ((1.0, Interval(2.0, 3.0), 1.0, None), "does not contain"),
    ((1.0, None, 1.0, Interval(-1.0, 2.0)), "below 0"),
    ((float("nan"), None, 1.0, None), "finite number"),
])
def test_score_interval_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        score_interval(*args)


def test_final_score_interval_rejects_bad_input():
    with pytest.raises(ValueError, match="same metrics"):
        final_score_interval({"runtime": 1.0}, {"runtime": 0.5, "flops": 0.5})
    with pytest.raises(ValueError, match="every weight is 0"):
        final_score_interval({"runtime": 1.0}, {"runtime": 0.0})
    with pytest.raises(ValueError, match="weight 'runtime'"):
        final_score_interval({"runtime": 1.0}, {"runtime": -0.1})
    with pytest.raises(ValueError, match="score > 0"):
        final_score_interval({"runtime": 0.0}, {"runtime": 1.0})


# --------------------------------------------------------------------------- tie groups


def test_overlapping_rows_share_a_group_and_distant_rows_do_not():
    assert tie_groups([Interval(7.0, 7.4), Interval(7.3, 7.8)]) == [TieGroup(0, True), TieGroup(0, True)]
    assert tie_groups([Interval(7.0, 7.4), Interval(9.0, 9.5)]) == [TieGroup(0, False), TieGroup(1, False)]
    assert tie_groups([Interval(1.0, 2.0), Interval(2.0, 3.0)]) == [TieGroup(0, True)] * 2  # touching counts
    assert tie_groups([]) == []


def test_chains_join_rows_that_do_not_overlap_directly():
    rows = [Interval(0.0, 2.0), Interval(1.5, 3.5), Interval(3.0, 5.0), Interval(10.0, 11.0), Interval(10.5, 12.0),
            Interval(20.0, 20.0)]
    assert tie_groups(rows) == [TieGroup(0, True), TieGroup(0, True), TieGroup(0, True),
                                TieGroup(1, True), TieGroup(1, True), TieGroup(2, False)]


def test_a_wide_interval_joins_a_row_beyond_its_neighbour():
    # scores 0.5, 1.55, 2.0: the first overlaps only the third, the second only the third.
    rows = [Interval(0.0, 1.0), Interval(1.5, 1.6), Interval(0.9, 3.0)]
    assert tie_groups(rows) == [TieGroup(0, True)] * 3


def test_score_intervals_that_overflowed_are_grouped_on_their_logs():
    near = score_interval(1000.0, Interval(999.0, 1001.0), 1.0, None)   # logs [1998, 2002]
    close = score_interval(1000.5, Interval(1000.0, 1002.0), 1.0, None)  # logs [2000, 2004]
    far = score_interval(1500.0, Interval(1499.0, 1501.0), 1.0, None)    # logs [2998, 3002]
    assert near.high == far.low == math.inf
    assert tie_groups([near, close, far]) == [TieGroup(0, True), TieGroup(0, True), TieGroup(1, False)]
    with pytest.raises(ValueError, match="mix of ScoreInterval"):
        tie_groups([near, Interval(1.0, 2.0)])
    with pytest.raises(ValueError, match="row 1"):
        tie_groups([Interval(1.0, 2.0), (1.0, 2.0)])
