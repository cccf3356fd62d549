"""Bootstrap resampling of per-example scores: seeded draws, percentile intervals, paired p-values."""

from __future__ import annotations

import random
import statistics

import pytest

from s2s.significance import paired_p_value, percentile_interval, resampled_means


def noisy_scores(count: int, mean: float, seed: int) -> list[float]:
    """Per-example scores in [0, 1] around ``mean``."""
    rng = random.Random(seed)
    return [min(1.0, max(0.0, rng.gauss(mean, 0.2))) for _ in range(count)]


def test_seeds_repeat_exactly_and_differ_from_each_other() -> None:
    columns = {"x": noisy_scores(50, 0.4, 0)}
    first = resampled_means(columns, 200, seed=7)
    assert resampled_means(columns, 200, seed=7) == first
    assert resampled_means(columns, 200, seed=8) != first
    assert len(first["x"]) == 200


def test_every_column_is_resampled_with_the_same_draws() -> None:
    scores = noisy_scores(40, 0.5, 1)
    together = resampled_means({"a": scores, "b": list(scores), "c": [2 * s for s in scores]}, 100, seed=3)
    assert together["a"] == together["b"]
    assert together["c"] == pytest.approx([2 * m for m in together["a"]])
    assert resampled_means({"a": scores}, 100, seed=3)["a"] == together["a"]  # draws do not depend on columns


def test_a_resample_is_a_mean_of_picked_examples() -> None:
    scores = [0.0, 1.0, 10.0]  # any mean of 3 picks with replacement is a multiple of 1/3
    possible = {(i + j + k) / 3 for i in scores for j in scores for k in scores}
    means = resampled_means({"s": scores}, 300, seed=0)["s"]
    assert set(means) <= possible and len(set(means)) > 5
    assert statistics.fmean(means) == pytest.approx(statistics.fmean(scores), abs=0.5)


def test_constant_scores_give_a_point_interval() -> None:
    means = resampled_means({"s": [0.3] * 25}, 100)["s"]
    assert percentile_interval(means) == (pytest.approx(0.3), pytest.approx(0.3))
    assert percentile_interval(resampled_means({"s": [1.0] * 25}, 100)["s"]) == (1.0, 1.0)


def test_percentile_interval_interpolates_between_order_statistics() -> None:
    values = list(range(101))[::-1]  # 0..100, unsorted
    assert percentile_interval(values, 0.95) == (pytest.approx(2.5), pytest.approx(97.5))
    assert percentile_interval(values, 0.5) == (pytest.approx(25), pytest.approx(75))
    assert percentile_interval([4.0], 0.95) == (4.0, 4.0)


def test_interval_contains_the_mean_and_narrows_with_more_examples() -> None:
    widths = []
    for count in (50, 800):
        scores = noisy_scores(count, 0.4, count)
        low, high = percentile_interval(resampled_means({"s": scores}, 500)["s"])
        assert low < statistics.fmean(scores) < high
        widths.append(high - low)
    standard_error = 0.2 / 800**0.5  # about; the 95% interval is about 4 of them wide
    assert widths[1] < widths[0] / 2 and widths[1] == pytest.approx(4 * standard_error, rel=0.3)


def test_better_system_is_significant_on_100_examples() -> None:
    worse = noisy_scores(100, 0.30, 0)
    better = [min(1.0, s + 0.08) for s in worse]  # every example gains (nearly) 8 points
    means = resampled_means({"better": better, "worse": worse}, 1000)
    assert paired_p_value(means["better"], means["worse"]) == pytest.approx(1 / 1001)  # never not better
    assert paired_p_value(means["worse"], means["better"]) == 1.0


def test_noisy_but_clearly_better_system_is_significant() -> None:
    base = noisy_scores(100, 0.35, 5)
    rng = random.Random(6)
    better = [min(1.0, max(0.0, s + 0.05 + rng.gauss(0, 0.1))) for s in base]
    means = resampled_means({"a": better, "b": base}, 1000)
    assert paired_p_value(means["a"], means["b"]) < 0.05
    assert paired_p_value(means["b"], means["a"]) > 0.95


def test_equal_systems_are_within_the_noise() -> None:
    a = noisy_scores(100, 0.4, 2)
    b = a[1:] + a[:1]  # the same scores on other examples: the same mean, different pairs
    means = resampled_means({"a": a, "b": b}, 1000)
    assert 0.3 < paired_p_value(means["a"], means["b"]) < 0.7
    assert paired_p_value(means["a"], means["a"]) == 1.0  # a system is never better than itself


@pytest.mark.parametrize(
    "columns,samples,message",
    [
        ({"a": [1.0], "b": [1.0, 2.0]}, 10, "different lengths"),
        ({"a": []}, 10, "no examples"),
        ({"a": [1.0]}, 0, "at least 1"),
    ],
)
def test_bad_resampling_arguments(columns: dict, samples: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resampled_means(columns, samples)


def test_bad_interval_and_p_value_arguments() -> None:
    with pytest.raises(ValueError, match="confidence"):
        percentile_interval([1.0], 1.0)
    with pytest.raises(ValueError, match="no values"):
        percentile_interval([])
    with pytest.raises(ValueError, match="same resamples"):
        paired_p_value([1.0, 2.0], [1.0])
