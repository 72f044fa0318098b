"""KL weight schedules: hand-computed values, shape properties, the Fu et al. reference, errors."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from kldiv._schedules import ConstantSchedule, CyclicalSchedule, LinearSchedule, SigmoidSchedule
from kldiv.errors import KLDivError


def frange_cycle_linear(n_iter, start=0.0, stop=1.0, n_cycle=4, ratio=0.5):
    """The reference of Fu et al. (2019), haofuml/cyclical_annealing, re-typed verbatim."""
    L = np.ones(n_iter) * stop  # noqa: N806 - the reference's name
    period = n_iter / n_cycle
    step = (stop - start) / (period * ratio)  # linear schedule
    for c in range(n_cycle):
        v, i = start, 0
        while v <= stop and (int(i + c * period) < n_iter):
            L[int(i + c * period)] = v
            v += step
            i += 1
    return L


def values(schedule, steps):
    return np.array([schedule(t) for t in steps])


# --- hand-computed values ------------------------------------------------------------


def test_constant_values():
    assert ConstantSchedule()(0) == 1.0
    assert ConstantSchedule(0.25)(123_456) == 0.25


def test_linear_values_without_delay():
    schedule = LinearSchedule(100)
    assert [schedule(t) for t in (0, 1, 25, 50, 99, 100, 101, 10**9)] == [
        0.0,
        0.01,
        0.25,
        0.5,
        0.99,
        1.0,
        1.0,
        1.0,
    ]


def test_linear_values_with_delay_start_and_end():
    schedule = LinearSchedule(10, start=0.5, end=2.5, delay=5)
    assert [schedule(t) for t in (0, 5, 6, 10, 14, 15, 16)] == pytest.approx(
        [0.5, 0.5, 0.7, 1.5, 2.3, 2.5, 2.5], abs=1e-15
    )


def test_linear_hits_its_ends_exactly():
    """w(delay) is start and w(delay + steps) is end, bit for bit, even for awkward numbers."""
    schedule = LinearSchedule(7, start=0.1, end=0.7, delay=3)
    assert schedule(3) == 0.1
    assert schedule(10) == 0.7


def test_linear_capacity_of_burgess_et_al():
    capacity = LinearSchedule(100_000, start=0.0, end=25.0)
    assert capacity(0) == 0.0
    assert capacity(40_000) == pytest.approx(10.0)
    assert capacity(100_000) == 25.0
    assert capacity(250_000) == 25.0


def test_linear_decay():
    schedule = LinearSchedule(4, start=1.0, end=0.0)
    assert [schedule(t) for t in range(6)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]


def test_cyclical_values_paper_defaults():
    schedule = CyclicalSchedule(1000)  # 4 cycles of 250 steps, ramps of 125
    got = [schedule(t) for t in (0, 1, 50, 124, 125, 126, 249, 250, 251, 375, 750, 999)]
    want = [0.0, 0.008, 0.4, 0.992, 1.0, 1.0, 1.0, 0.0, 0.008, 1.0, 0.0, 1.0]
    assert got == pytest.approx(want, abs=1e-12)


def test_cyclical_values_with_start_end_ratio():
    schedule = CyclicalSchedule(20, n_cycles=2, ratio=0.4, start=0.5, end=2.5)  # ramps of 4
    got = values(schedule, range(20))
    want = [0.5, 1.0, 1.5, 2.0, 2.5, *[2.5] * 5] * 2
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_cyclical_ratio_one_is_a_sawtooth():
    schedule = CyclicalSchedule(12, n_cycles=3, ratio=1.0)  # ramps of 4: 0, .25, .5, .75
    np.testing.assert_allclose(
        values(schedule, range(12)), [0.0, 0.25, 0.5, 0.75] * 3, rtol=0, atol=1e-12
    )


def test_cyclical_after_total_steps_is_end():
    schedule = CyclicalSchedule(100, start=0.2, end=0.9)
    assert schedule(100) == 0.9
    assert schedule(10**12) == 0.9


def test_cyclical_ramp_down_when_start_above_end():
    schedule = CyclicalSchedule(8, n_cycles=2, ratio=0.5, start=1.0, end=0.0)
    np.testing.assert_allclose(
        values(schedule, range(8)), [1.0, 0.5, 0.0, 0.0] * 2, rtol=0, atol=1e-12
    )


def test_sigmoid_values():
    schedule = SigmoidSchedule(1000)
    assert schedule(500) == 0.5
    assert schedule(0) == pytest.approx(1 / (1 + math.exp(5)), rel=1e-14)
    assert schedule(1000) == pytest.approx(1 / (1 + math.exp(-5)), rel=1e-14)
    assert schedule(750) == pytest.approx(1 / (1 + math.exp(-2.5)), rel=1e-14)


def test_sigmoid_start_end_steepness():
    schedule = SigmoidSchedule(200, start=1.0, end=3.0, steepness=4.0)
    assert schedule(100) == 2.0
    assert schedule(0) == pytest.approx(1.0 + 2.0 / (1 + math.exp(2.0)), rel=1e-14)
    assert schedule(50) == pytest.approx(1.0 + 2.0 / (1 + math.exp(1.0)), rel=1e-14)


def test_sigmoid_extreme_steepness_does_not_overflow():
    """A near step function and no OverflowError: exp never sees a large positive argument."""
    schedule = SigmoidSchedule(10, steepness=1e300)
    assert schedule(0) == 0.0
    assert schedule(5) == 0.5
    assert schedule(10) == 1.0


# --- shape properties ----------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    [
        LinearSchedule(500),
        LinearSchedule(333, start=0.1, end=7.0, delay=100),
        SigmoidSchedule(500),
        SigmoidSchedule(333, start=-1.0, end=2.0, steepness=25.0),
    ],
    ids=repr,
)
def test_increasing_schedules_are_monotone(schedule):
    w = values(schedule, range(1200))
    assert np.all(np.diff(w) >= 0)
    assert w[-1] > w[0]


@pytest.mark.parametrize(
    "schedule",
    [LinearSchedule(500, start=1.0, end=0.0), SigmoidSchedule(500, start=1.0, end=0.0)],
    ids=repr,
)
def test_decreasing_schedules_are_monotone(schedule):
    w = values(schedule, range(1200))
    assert np.all(np.diff(w) <= 0)
    assert w[-1] < w[0]


@pytest.mark.parametrize(
    "schedule",
    [SigmoidSchedule(1000), SigmoidSchedule(64, start=2.0, end=5.0, steepness=3.0)],
    ids=repr,
)
def test_sigmoid_is_point_symmetric_about_its_centre(schedule):
    half = schedule.steps // 2
    mid = (schedule.start + schedule.end) / 2
    for d in range(half + 1):
        assert schedule(half + d) - mid == pytest.approx(mid - schedule(half - d), abs=1e-12)


@pytest.mark.parametrize(
    ("total_steps", "n_cycles", "ratio"), [(1000, 4, 0.5), (900, 3, 0.25), (700, 7, 1.0)]
)
def test_cyclical_is_periodic(total_steps, n_cycles, ratio):
    schedule = CyclicalSchedule(total_steps, n_cycles=n_cycles, ratio=ratio)
    period = total_steps // n_cycles
    w = values(schedule, range(total_steps))
    np.testing.assert_allclose(w[period:], w[:-period], rtol=0, atol=1e-12)
    assert w[0] == 0.0
    assert w.min() == 0.0
    # With ratio 1 the ramp's top, step `period`, is the next cycle's first step.
    top = 1.0 if ratio < 1 else 1.0 - 1.0 / period
    assert w.max() == pytest.approx(top, abs=1e-12)
    assert np.all(w <= 1.0)


# --- the reference of Fu et al. (2019) ------------------------------------------------


@pytest.mark.parametrize(
    ("n_iter", "n_cycle", "ratio", "start", "stop"),
    [
        (1000, 4, 0.5, 0.0, 1.0),  # the paper's setting
        (10_000, 4, 0.5, 0.0, 1.0),
        (10_000, 1, 0.9, 0.0, 1.0),  # one long ramp: the running sum drifts most here
        (1001, 4, 0.5, 0.0, 1.0),  # non-integer period
        (997, 3, 0.3, 0.0, 1.0),
        (500, 7, 1.0, 0.0, 1.0),  # ramp the whole period
        (100, 10, 0.75, 0.0, 1.0),
        (333, 5, 1 / 3, 0.2, 0.8),
        (250, 6, 0.5, -1.0, 3.0),
        (4096, 16, 0.5, 0.0, 25.0),
        (37, 5, 0.6, 0.0, 1.0),
        (10, 4, 0.5, 0.0, 1.0),
        (3, 2, 0.5, 0.0, 1.0),  # period 1.5: cycle 1 starts at int(1.5) = 1
        (5, 8, 0.5, 0.0, 1.0),  # more cycles than steps
        (7, 7, 0.1, 0.0, 1.0),  # ramps shorter than one step
        (50, 2, 0.5, 0.5, 0.5),  # start == stop
    ],
)
def test_cyclical_matches_reference(n_iter, n_cycle, ratio, start, stop):
    reference = frange_cycle_linear(n_iter, start, stop, n_cycle, ratio)
    schedule = CyclicalSchedule(n_iter, n_cycles=n_cycle, ratio=ratio, start=start, end=stop)
    got = values(schedule, range(n_iter))
    # The reference accumulates `v += step`; the schedule computes start + i * step.
    scale = max(1.0, abs(start), abs(stop))
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-12 * scale)


def test_cyclical_matches_reference_on_a_random_grid():
    rng = np.random.default_rng(20190603)
    for _ in range(150):
        n_iter = int(rng.integers(1, 400))
        n_cycle = int(rng.integers(1, 25))
        ratio = float(rng.choice([1.0, rng.uniform(0.01, 1.0)]))
        start, stop = sorted(float(x) for x in rng.uniform(-2.0, 30.0, size=2))
        reference = frange_cycle_linear(n_iter, start, stop, n_cycle, ratio)
        schedule = CyclicalSchedule(n_iter, n_cycles=n_cycle, ratio=ratio, start=start, end=stop)
        scale = max(1.0, abs(start), abs(stop))
        np.testing.assert_allclose(
            values(schedule, range(n_iter)),
            reference,
            rtol=0,
            atol=1e-12 * scale,
            err_msg=repr(schedule),
        )


def test_cyclical_follows_reference_float_cycle_boundary():
    """30 / 22 * 11 is 14.999999999999998 in floats: the reference starts cycle 11 at step 14."""
    assert 11 * (30 / 22) < 15
    reference = frange_cycle_linear(30, 0.0, 1.0, 22, 0.5)
    schedule = CyclicalSchedule(30, n_cycles=22, ratio=0.5)
    assert (reference[14], reference[15]) == (0.0, 1.0)
    assert (schedule(14), schedule(15)) == (0.0, 1.0)
    np.testing.assert_array_equal(values(schedule, range(30)), reference)


# --- steps and return type -----------------------------------------------------------


ALL = [
    ConstantSchedule(0.5),
    LinearSchedule(10),
    CyclicalSchedule(10),
    SigmoidSchedule(10),
]


@pytest.mark.parametrize("schedule", ALL, ids=repr)
def test_returns_a_python_float(schedule):
    for t in (0, 3, 10, 11):
        assert type(schedule(t)) is float


@pytest.mark.parametrize("schedule", ALL, ids=repr)
def test_accepts_numpy_integer_steps(schedule):
    for t in (np.int64(3), np.int32(7), np.uint8(12), np.array(4)):
        assert schedule(t) == schedule(int(t))


@pytest.mark.parametrize("schedule", ALL, ids=repr)
def test_accepts_torch_integer_steps(schedule):
    torch = pytest.importorskip("torch")
    assert schedule(torch.tensor(3)) == schedule(3)
    assert schedule(torch.tensor(7, dtype=torch.int32)) == schedule(7)


@pytest.mark.parametrize("schedule", ALL, ids=repr)
@pytest.mark.parametrize("step", [-1, 1.5, 2.0, np.float64(3.0), "3", None, True])
def test_bad_step(schedule, step):
    with pytest.raises(KLDivError, match=r"`step` must be a non-negative integer; got"):
        schedule(step)


def test_bad_torch_step():
    torch = pytest.importorskip("torch")
    with pytest.raises(KLDivError, match="`step`"):
        LinearSchedule(10)(torch.tensor(3.0))
    with pytest.raises(KLDivError, match="`step`"):
        LinearSchedule(10)(torch.tensor(-3))


def test_bad_step_is_a_value_error():
    with pytest.raises(ValueError, match="`step`"):
        CyclicalSchedule(10)(-5)


# --- parameter validation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "name", "expected"),
    [
        (lambda: ConstantSchedule(math.nan), "value", "a finite number"),
        (lambda: ConstantSchedule(math.inf), "value", "a finite number"),
        (lambda: ConstantSchedule("1"), "value", "a finite number"),
        (lambda: ConstantSchedule(True), "value", "a finite number"),
        (lambda: LinearSchedule(0), "steps", "a positive integer"),
        (lambda: LinearSchedule(-5), "steps", "a positive integer"),
        (lambda: LinearSchedule(10.0), "steps", "a positive integer"),
        (lambda: LinearSchedule(True), "steps", "a positive integer"),
        (lambda: LinearSchedule(10, start=math.nan), "start", "a finite number"),
        (lambda: LinearSchedule(10, end=-math.inf), "end", "a finite number"),
        (lambda: LinearSchedule(10, end=None), "end", "a finite number"),
        (lambda: LinearSchedule(10, delay=-1), "delay", "an integer >= 0"),
        (lambda: LinearSchedule(10, delay=2.5), "delay", "an integer >= 0"),
        (lambda: CyclicalSchedule(0), "total_steps", "a positive integer"),
        (lambda: CyclicalSchedule(100.0), "total_steps", "a positive integer"),
        (lambda: CyclicalSchedule(100, n_cycles=0), "n_cycles", "a positive integer"),
        (lambda: CyclicalSchedule(100, n_cycles=2.0), "n_cycles", "a positive integer"),
        (lambda: CyclicalSchedule(100, ratio=0.0), "ratio", "a number in (0, 1]"),
        (lambda: CyclicalSchedule(100, ratio=1.5), "ratio", "a number in (0, 1]"),
        (lambda: CyclicalSchedule(100, ratio=-0.5), "ratio", "a number in (0, 1]"),
        (lambda: CyclicalSchedule(100, ratio=math.nan), "ratio", "a number in (0, 1]"),
        (lambda: CyclicalSchedule(100, ratio=True), "ratio", "a number in (0, 1]"),
        (lambda: CyclicalSchedule(100, start=math.inf), "start", "a finite number"),
        (lambda: CyclicalSchedule(100, end=math.nan), "end", "a finite number"),
        (lambda: SigmoidSchedule(0), "steps", "a positive integer"),
        (lambda: SigmoidSchedule(10, start=math.nan), "start", "a finite number"),
        (lambda: SigmoidSchedule(10, end=math.inf), "end", "a finite number"),
        (lambda: SigmoidSchedule(10, steepness=0.0), "steepness", "a positive finite number"),
        (lambda: SigmoidSchedule(10, steepness=-1.0), "steepness", "a positive finite number"),
        (lambda: SigmoidSchedule(10, steepness=math.inf), "steepness", "a positive finite"),
        (lambda: SigmoidSchedule(10, steepness=math.nan), "steepness", "a positive finite"),
    ],
)
def test_bad_parameter(factory, name, expected):
    with pytest.raises(KLDivError) as info:
        factory()
    message = str(info.value)
    assert message.startswith(f"`{name}` must be {expected}")
    assert "; got " in message


def test_parameters_are_keyword_only():
    with pytest.raises(TypeError):
        LinearSchedule(10, 0.0)
    with pytest.raises(TypeError):
        CyclicalSchedule(10, 4)
    with pytest.raises(TypeError):
        SigmoidSchedule(10, 0.0)


def test_numpy_parameters_are_normalised_to_python_numbers():
    schedule = CyclicalSchedule(
        np.int64(100), n_cycles=np.int32(2), ratio=np.float32(0.5), start=np.float64(0.0)
    )
    assert type(schedule.total_steps) is int
    assert type(schedule.n_cycles) is int
    assert type(schedule.ratio) is float
    assert type(schedule.start) is float
    assert type(LinearSchedule(10, end=2).end) is float
    assert schedule == CyclicalSchedule(100, n_cycles=2)


# --- repr and immutability -----------------------------------------------------------


def test_repr():
    assert repr(ConstantSchedule()) == "ConstantSchedule(value=1.0)"
    assert repr(LinearSchedule(100_000, end=25)) == (
        "LinearSchedule(steps=100000, start=0.0, end=25.0, delay=0)"
    )
    assert repr(CyclicalSchedule(1000)) == (
        "CyclicalSchedule(total_steps=1000, n_cycles=4, ratio=0.5, start=0.0, end=1.0)"
    )
    assert repr(SigmoidSchedule(500, steepness=5)) == (
        "SigmoidSchedule(steps=500, start=0.0, end=1.0, steepness=5.0)"
    )


@pytest.mark.parametrize("schedule", ALL, ids=repr)
def test_frozen_and_hashable(schedule):
    field = dataclasses.fields(schedule)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(schedule, field, 3)
    assert hash(schedule) == hash(dataclasses.replace(schedule))
