"""lowlight.evaluation.stats: changes between models with intervals that resample images (each with
all its exposures) and training seeds -- checked on cases whose right answer is known: a constant
ratio, simulated data with a known true change (coverage, against the naive image x EV bootstrap),
too few images, difference in differences, bad inputs, and grid records turned into a table."""
import time

import numpy as np
import pytest

from lowlight import evaluation as E
from lowlight.evaluation import stats

N_IMAGES, N_EVS, N_SEEDS = 24, 5, 5


def _mean_one(rng, sd, size):
    """Lognormal factors with mean 1."""
    return np.exp(rng.normal(-sd * sd / 2, sd, size))


def _arm(rng, base, true_ratio, sd_image=0.3, sd_seed=0.1, sd_noise=0.2):
    """A model's errors ``(image, EV, seed)`` on the images of ``base``, with a known true ratio of
    means ``true_ratio`` (over the population of images and training seeds): each image has its own
    effect, shared by all its exposures (the within-image correlation), each training seed its own,
    shared by all images."""
    n_images = base.shape[0]
    per_image = true_ratio * _mean_one(rng, sd_image, n_images)[:, None, None]
    per_seed = _mean_one(rng, sd_seed, N_SEEDS)[None, None, :]
    return base[:, :, None] * per_image * per_seed * _mean_one(rng, sd_noise, (n_images, N_EVS, N_SEEDS))


def _simulate(rng, true_ratio, n_images=N_IMAGES, **arm):
    """A baseline (images differ in difficulty, exposures in darkness) and one arm against it."""
    difficulty = np.exp(rng.normal(0.0, 0.5, n_images))[:, None]
    darkness = np.exp(np.linspace(0.0, 1.5, N_EVS))[None, :]
    base = difficulty * darkness * _mean_one(rng, 0.2, (n_images, N_EVS))
    return base, _arm(rng, base, true_ratio, **arm)


@pytest.mark.parametrize("statistic", stats.STATISTICS)
def test_a_constant_per_image_ratio_collapses_the_interval(statistic):
    base = np.random.default_rng(0).uniform(0.5, 3.0, (N_IMAGES, N_EVS))
    new = np.repeat(0.8 * base[:, :, None], N_SEEDS, axis=2)
    r = stats.clustered_bootstrap(base, new, statistic=statistic, n_boot=500)
    assert r.change_pct == pytest.approx(-20.0)
    assert r.lo == pytest.approx(-20.0) and r.hi == pytest.approx(-20.0)
    assert all(v == pytest.approx(-20.0) for v in [*r.per_image.values(), *r.per_seed.values()])
    assert r.verdict.startswith("decrease")


def test_the_clustered_interval_covers_the_truth_and_the_naive_one_does_not():
    """200 simulated grids (24 images x 5 EVs x 5 seeds, true change -20 %): the clustered interval
    covers -20 % in 90-98 % of them; the naive bootstrap over the 120 image x EV pairs (the seeds
    averaged, as :func:`paired_bootstrap` is used today) covers clearly less."""
    rng = np.random.default_rng(2024)
    truth, n_sets = -20.0, 200
    clustered = naive = 0
    start = time.perf_counter()
    for k in range(n_sets):
        base, new = _simulate(rng, 1.0 + truth / 100.0)
        r = stats.clustered_bootstrap(base, new, n_boot=1000, seed=k)
        clustered += r.lo <= truth <= r.hi
        p = E.paired_bootstrap(base.ravel(), new.mean(axis=2).ravel(), n_boot=1000, seed=k)
        naive += p["lo"] <= truth <= p["hi"]
    clustered, naive = clustered / n_sets, naive / n_sets
    report = (f"coverage of the true change over {n_sets} simulated grids: clustered {clustered:.1%}, "
              f"naive image x EV {naive:.1%} ({time.perf_counter() - start:.1f} s)")
    assert 0.90 <= clustered <= 0.98, report
    assert naive <= clustered - 0.15, report


def test_seed_variation_widens_the_interval():
    """Every image changes alike, but the training seeds differ (-10 % ... -30 %): resampling only
    images would give a zero-width interval; the seeds make it span their spread."""
    base = np.random.default_rng(1).uniform(0.5, 3.0, (N_IMAGES, N_EVS))
    ratios = np.array([0.9, 0.85, 0.8, 0.75, 0.7])
    new = base[:, :, None] * ratios[None, None, :]
    r = stats.clustered_bootstrap(base, new, n_boot=2000)
    assert r.change_pct == pytest.approx(-20.0)
    assert r.lo < -24.0 and r.hi > -16.0, (r.lo, r.hi)
    assert list(r.per_seed.values()) == pytest.approx(list(100 * (ratios - 1)))
    one_seed = stats.clustered_bootstrap(base, new[:, :, 2:3], n_boot=2000)
    assert one_seed.hi - one_seed.lo == pytest.approx(0.0, abs=1e-9)
    assert "seed-to-seed variation is not in the interval" in one_seed.units


def test_the_result_says_what_was_resampled_and_is_deterministic():
    base, new = _simulate(np.random.default_rng(3), 0.8)
    r = stats.clustered_bootstrap(base, new, seed=7)
    assert (r.n_images, r.n_exposures, r.n_seeds, r.n_boot) == (24, 5, 5, 10000)
    for words in ("24 images resampled", "5 exposures kept together", "5 training seeds resampled",
                  "10000 replicates"):
        assert words in r.units, r.units
    again = stats.clustered_bootstrap(base, new, seed=7)
    other = stats.clustered_bootstrap(base, new, seed=8)
    assert (again.lo, again.hi) == (r.lo, r.hi) and (other.lo, other.hi) != (r.lo, r.hi)
    assert r.quantiles[0] < 0.025 < 0.975 < r.quantiles[1]       # expanded for 24 images, 5 seeds


def test_ten_thousand_replicates_take_well_under_a_second():
    base, new = _simulate(np.random.default_rng(4), 0.8)
    times = []
    for statistic in stats.STATISTICS * 2:
        start = time.perf_counter()
        stats.clustered_bootstrap(base, new, statistic=statistic, n_boot=10000)
        times.append(time.perf_counter() - start)
    assert min(times) < 0.5, f"10k replicates on 24 x 5 x 5 took {times}"


def test_few_images_give_no_verdict_but_the_per_item_values():
    base = np.array([[1.0, 2.0], [2.0, 2.0], [4.0, 4.0]])
    new = np.stack([base * 0.5, base * 0.7], axis=2)                 # 3 photos, 2 seeds
    new[2] = base[2][:, None] * 1.2                                  # the third photo gets worse
    r = stats.clustered_bootstrap(base, new, images=["a", "b", "c"], seeds=["s0", "s1"], n_boot=500)
    assert r.verdict is None and r.n_images == 3
    assert r.per_image == pytest.approx({"a": -40.0, "b": -40.0, "c": 20.0})
    assert set(r.per_seed) == {"s0", "s1"}
    assert "per image: a -40%, b -40%, c +20%" in r.text() and "too few" in r.text()
    medians = stats.per_seed_medians(base, new, seeds=["s0", "s1"])
    assert medians == pytest.approx({"s0": -50.0, "s1": -30.0})
    ten = stats.clustered_bootstrap(np.ones((10, 2)), np.full((10, 2, 2), 0.5), n_boot=200)
    assert ten.verdict is not None and "interval" in ten.text()


def test_difference_in_differences_with_the_same_effect_contains_zero():
    rng = np.random.default_rng(5)
    base, treated = _simulate(rng, 0.8)
    r = stats.difference_in_differences(base, treated, _arm(rng, base, 0.8), n_boot=4000)
    assert r.lo < 0.0 < r.hi, (r.lo, r.hi)
    assert r.verdict.startswith("no clear change")
    assert "the same resampled images for both arms" in r.units
    assert len(r.per_seed) == 2 * N_SEEDS and len(r.per_image) == N_IMAGES


def test_difference_in_differences_recovers_the_difference():
    """Treatment -30 % and control -10 % on the same images: the difference is -20 points."""
    rng = np.random.default_rng(6)
    quiet = {"sd_image": 0.1, "sd_seed": 0.05}
    base, treated = _simulate(rng, 0.7, **quiet)
    r = stats.difference_in_differences(base, treated, _arm(rng, base, 0.9, **quiet), n_boot=4000)
    assert r.change_pct == pytest.approx(-20.0, abs=4.0) and r.lo < -20.0 < r.hi < 0, (r.change_pct, r.lo, r.hi)
    assert r.verdict.startswith("decrease")
    exact = stats.difference_in_differences(base, treated, treated * (0.9 / 0.7), n_boot=2000)
    assert exact.change_pct == pytest.approx(100 * (treated.mean() - treated.mean() * 0.9 / 0.7) / base.mean())
    assert exact.lo <= exact.change_pct <= exact.hi and exact.hi < 0


def _bad(case):
    base = np.ones((6, 3))
    new = np.ones((6, 3, 2))
    if case == "shape":
        return (base, new[:, :2]), "`new`"
    if case == "nan":
        new[2, 1, 0] = np.nan
        return (base, new), "`new` has 1 non-finite"
    if case == "one image":
        return (base[:1], new[:1]), "`base` has 1 image"
    if case == "zero baseline":
        base[4] = 0.0
        return (base, new), "`base` is 0 on every exposure of 1 image(s) (image 4)"
    if case == "negative baseline":
        base[0, 0] = -1.0
        return (base, new), "`base` has negative errors"
    return (base, np.ones(6)), "`new` must be a non-empty array"


@pytest.mark.parametrize("case", ["shape", "nan", "one image", "zero baseline", "negative baseline", "1-d"])
def test_bad_inputs_raise_naming_the_argument(case):
    args, words = _bad(case)
    with pytest.raises(ValueError, match="clustered_bootstrap") as info:
        stats.clustered_bootstrap(*args, n_boot=10)
    assert words in str(info.value)
    with pytest.raises(ValueError, match="per_seed_medians"):
        stats.per_seed_medians(*args)


def test_bad_settings_and_names_raise_naming_the_argument():
    base, new = np.ones((4, 2)), np.ones((4, 2, 3))
    for kwargs, words in (({"statistic": "mean"}, "`statistic`"), ({"n_boot": 0}, "`n_boot`"),
                          ({"level": 1.5}, "`level`"), ({"images": ["a"]}, "`images`"), ({"seeds": ["a"]}, "`seeds`")):
        with pytest.raises(ValueError, match=words):
            stats.clustered_bootstrap(base, new, **kwargs)
    with pytest.raises(ValueError, match="`control` has 3 images"):
        stats.difference_in_differences(base, new, new[:3])
    with pytest.raises(ValueError, match="`original` is 0"):
        stats.difference_in_differences(np.zeros((4, 2)), new, new)


def test_error_table_from_grid_records():
    records = [{"model": m, "item": item, "ev": ev, "seed": noise, "sad_image": value}
               for m, shift in (("ft/s0", 0.0), ("ft/s1", 10.0), ("other", 99.0))
               for item, level in (("p1", 1.0), ("p2", 2.0))
               for ev in (-3.0, E.CLEAN, 0.0)
               for noise, value in ((0, level + shift), (1, level + shift + 1.0))]
    t = stats.error_table(records, ["ft/s0", "ft/s1"])
    assert t.values.shape == (2, 3, 2)
    assert t.images == ["p1", "p2"] and t.conditions == [E.CLEAN, 0.0, -3.0] and t.seeds == ["ft/s0", "ft/s1"]
    assert t.values[1, 0].tolist() == [2.5, 12.5]                  # the mean over the noise draws
    assert stats.error_table(records, "other", conditions=[-3.0]).values.shape == (2, 1, 1)
    with pytest.raises(ValueError, match="miss 1 "):
        stats.error_table(records[:-2], ["other"])
    with pytest.raises(ValueError, match="`records` hold no rows"):
        stats.error_table(records, ["nobody"])
