"""KL weight schedules for VAE training: ``schedule(step) -> weight``.

A schedule is a small frozen object mapping a training step (a non-negative
integer) to the weight of the KL term, a Python float::

    kl_weight = schedule(step)
    loss = recon + kl_weight * kl_loss(mu, logvar)

They are pure Python (no torch or NumPy), so they work with any framework and
``import kldiv`` stays light. Steps may be Python ints or NumPy / PyTorch
integer scalars (anything :func:`operator.index` accepts).

- :class:`ConstantSchedule`: a fixed weight (β-VAE's β).
- :class:`LinearSchedule`: linear KL warm-up (Bowman et al. 2016), or a linearly
  growing capacity C (Burgess et al. 2018).
- :class:`CyclicalSchedule`: cyclical annealing (Fu et al. 2019), identical to
  the paper's reference ``frange_cycle_linear``.
- :class:`SigmoidSchedule`: logistic KL annealing (Bowman et al. 2016).
"""

from __future__ import annotations

import math
import numbers
import operator
from dataclasses import KW_ONLY, dataclass

from kldiv.errors import KLDivError

__all__ = ["ConstantSchedule", "CyclicalSchedule", "LinearSchedule", "SigmoidSchedule"]


def _check_step(step: object) -> int:
    """A training step: a non-negative integer (Python, NumPy or torch integer scalar)."""
    if not isinstance(step, bool):
        try:
            index = operator.index(step)
        except TypeError:
            pass
        else:
            if index >= 0:
                return index
    raise KLDivError(f"`step` must be a non-negative integer; got {step!r}")


def _check_int(value: object, name: str, *, minimum: int) -> int:
    """An integer argument ``>= minimum`` (bools are rejected)."""
    if not isinstance(value, bool):
        try:
            index = operator.index(value)
        except TypeError:
            pass
        else:
            if index >= minimum:
                return index
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    raise KLDivError(f"`{name}` must be {what}; got {value!r}")


def _check_finite(value: object, name: str) -> float:
    """A finite real number (bools are rejected), returned as a Python float."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        as_float = float(value)
        if math.isfinite(as_float):
            return as_float
    raise KLDivError(f"`{name}` must be a finite number; got {value!r}")


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


class _Schedule:
    """Shared ``__call__``: checks the step, then asks the subclass for the weight."""

    __slots__ = ()

    def __call__(self, step: object) -> float:
        """The KL weight at ``step``.

        Args:
            step: the training step, a non-negative integer.

        Returns:
            The weight, a Python float.

        Raises:
            KLDivError: if ``step`` is negative or not an integer.
        """
        return self._weight(_check_step(step))

    def _weight(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class ConstantSchedule(_Schedule):
    r"""The same weight at every step: :math:`w(t) = \text{value}` (β-VAE's β).

    Args:
        value: the weight, a finite number.

    Raises:
        KLDivError: if ``value`` is not a finite number.

    Examples:
        >>> from kldiv._schedules import ConstantSchedule
        >>> schedule = ConstantSchedule(4.0)
        >>> schedule(0), schedule(10_000)
        (4.0, 4.0)
        >>> schedule
        ConstantSchedule(value=4.0)
    """

    value: float = 1.0

    def __post_init__(self) -> None:
        _set(self, "value", _check_finite(self.value, "value"))

    def _weight(self, step: int) -> float:
        return self.value


@dataclass(frozen=True)
class LinearSchedule(_Schedule):
    r"""Linear warm-up: ``start`` until ``delay``, then linear to ``end`` over ``steps`` steps.

    .. math::

        w(t) = \text{start} + (\text{end} - \text{start}) \cdot
               \min\!\left(1, \max\!\left(0, \frac{t - \text{delay}}{\text{steps}}\right)\right)

    so ``w(delay) = start`` and ``w(delay + steps) = end`` exactly. This is the
    linear KL annealing of Bowman et al. (2016) and pythae's
    ``linear_scheduling_steps`` (``delay=0``). With ``end > 1`` it is the
    linearly increasing capacity C of Burgess et al. (2018), e.g.
    ``LinearSchedule(100_000, start=0.0, end=25.0)``. ``start > end`` gives a
    linear decay.

    Args:
        steps: the length of the ramp in steps, a positive integer.
        start: the weight up to step ``delay``.
        end: the weight from step ``delay + steps`` on.
        delay: the number of steps spent at ``start`` before the ramp, an integer >= 0.

    Raises:
        KLDivError: if an argument is out of range.

    Examples:
        >>> from kldiv._schedules import LinearSchedule
        >>> schedule = LinearSchedule(1000, delay=500)
        >>> [schedule(t) for t in (0, 500, 750, 1500, 10_000)]
        [0.0, 0.0, 0.25, 1.0, 1.0]
        >>> LinearSchedule(100_000, start=0.0, end=25.0)(50_000)
        12.5
    """

    steps: int
    _: KW_ONLY
    start: float = 0.0
    end: float = 1.0
    delay: int = 0

    def __post_init__(self) -> None:
        _set(self, "steps", _check_int(self.steps, "steps", minimum=1))
        _set(self, "start", _check_finite(self.start, "start"))
        _set(self, "end", _check_finite(self.end, "end"))
        _set(self, "delay", _check_int(self.delay, "delay", minimum=0))

    def _weight(self, step: int) -> float:
        elapsed = step - self.delay
        if elapsed <= 0:
            return self.start
        if elapsed >= self.steps:
            return self.end
        return self.start + (self.end - self.start) * (elapsed / self.steps)


@dataclass(frozen=True)
class CyclicalSchedule(_Schedule):
    r"""Cyclical annealing (Fu et al. 2019): ``n_cycles`` linear ramps, each followed by a plateau.

    With period :math:`T = \text{total\_steps} / \text{n\_cycles}` and ramp length
    :math:`K = \text{ratio} \cdot T`, cycle :math:`c` starts at step
    :math:`\lfloor c T \rfloor`; for the last cycle started by step :math:`t`,
    the step within it is :math:`i = t - \lfloor c T \rfloor` and

    .. math::

        w(t) = \begin{cases}
            \text{start} + i \cdot \dfrac{\text{end} - \text{start}}{K} & i \le K \\
            \text{end} & \text{otherwise, and for } t \ge \text{total\_steps}.
        \end{cases}

    The weight rises from ``start`` to ``end`` over the first ``ratio`` of each
    period and stays at ``end`` for the rest of it; the paper uses
    ``n_cycles=4, ratio=0.5``. At every step ``0 .. total_steps - 1`` this equals
    the authors' reference ``frange_cycle_linear(total_steps, start, end,
    n_cycles, ratio)`` (haofuml/cyclical_annealing), including its rounding of
    the cycle boundaries ``int(i + c * T)``, to within the few ulps that the
    reference's running sum ``v += step`` accumulates. (The last ramp value,
    which is ``end`` in exact arithmetic when K is an integer, may come out one
    rounding error below ``end`` in the reference.) ``start > end`` ramps
    down; the reference, whose loop tests ``v <= stop``, has no such case.

    Args:
        total_steps: the number of steps the cycles span, a positive integer.
        n_cycles: the number of cycles, a positive integer.
        ratio: the fraction of each period spent ramping, in (0, 1].
        start: the weight at the start of each cycle.
        end: the weight at the end of each ramp, on each plateau and after
            ``total_steps``.

    Raises:
        KLDivError: if an argument is out of range.

    Examples:
        >>> from kldiv._schedules import CyclicalSchedule
        >>> schedule = CyclicalSchedule(1000, n_cycles=4, ratio=0.5)
        >>> [schedule(t) for t in (0, 50, 125, 200, 250, 300, 999, 1000)]
        [0.0, 0.4, 1.0, 1.0, 0.0, 0.4, 1.0, 1.0]
    """

    total_steps: int
    _: KW_ONLY
    n_cycles: int = 4
    ratio: float = 0.5
    start: float = 0.0
    end: float = 1.0

    def __post_init__(self) -> None:
        _set(self, "total_steps", _check_int(self.total_steps, "total_steps", minimum=1))
        _set(self, "n_cycles", _check_int(self.n_cycles, "n_cycles", minimum=1))
        ratio = self.ratio
        if not (
            isinstance(ratio, numbers.Real) and not isinstance(ratio, bool) and 0.0 < ratio <= 1.0
        ):
            raise KLDivError(f"`ratio` must be a number in (0, 1]; got {ratio!r}")
        _set(self, "ratio", float(ratio))
        _set(self, "start", _check_finite(self.start, "start"))
        _set(self, "end", _check_finite(self.end, "end"))

    def _weight(self, step: int) -> float:
        if step >= self.total_steps:
            return self.end
        # The reference writes cycle c's i-th value to index int(i + c * period), in
        # floating point, for i = 0, 1, ... while the value is <= end; later cycles
        # overwrite earlier ones and unwritten indices hold `end`. Find the last
        # write to `step` with the same float expressions.
        period = self.total_steps / self.n_cycles
        ramp = period * self.ratio
        last = self.n_cycles - 1
        cycle = min(last, int(step / period))
        while cycle < last and int((cycle + 1) * period) <= step:
            cycle += 1
        while cycle > 0 and int(cycle * period) > step:
            cycle -= 1
        for c in range(cycle, max(cycle - 2, 0) - 1, -1):
            offset = c * period
            base = step - int(offset)
            for i in (base + 1, base, base - 1):
                if 0 <= i <= ramp and int(i + offset) == step:
                    return self._ramp_value(i, ramp)
        return self.end

    def _ramp_value(self, i: int, ramp: float) -> float:
        value = self.start + i * ((self.end - self.start) / ramp)
        low, high = sorted((self.start, self.end))
        return min(max(value, low), high)


@dataclass(frozen=True)
class SigmoidSchedule(_Schedule):
    r"""Logistic annealing centred at ``steps / 2`` (Bowman et al. 2016).

    .. math::

        w(t) = \text{start} + \frac{\text{end} - \text{start}}
               {1 + \exp\!\left(-k \left(t / \text{steps} - 1/2\right)\right)}

    with :math:`k` = ``steepness``. Monotone, ``w(steps / 2)`` is the midpoint,
    and the ends are approached, not reached: with the default ``k = 10``,
    ``w(0)`` is ``start + 0.0067 (end - start)`` and ``w(steps)`` is
    ``end - 0.0067 (end - start)``. Larger ``k`` gives a sharper switch.

    Args:
        steps: the length of the transition in steps, a positive integer.
        start: the weight approached before the transition.
        end: the weight approached after it.
        steepness: the slope :math:`k` of the logistic in units of ``1 / steps``,
            a positive finite number.

    Raises:
        KLDivError: if an argument is out of range.

    Examples:
        >>> from kldiv._schedules import SigmoidSchedule
        >>> schedule = SigmoidSchedule(1000)
        >>> [round(schedule(t), 4) for t in (0, 250, 500, 750, 1000)]
        [0.0067, 0.0759, 0.5, 0.9241, 0.9933]
    """

    steps: int
    _: KW_ONLY
    start: float = 0.0
    end: float = 1.0
    steepness: float = 10.0

    def __post_init__(self) -> None:
        _set(self, "steps", _check_int(self.steps, "steps", minimum=1))
        _set(self, "start", _check_finite(self.start, "start"))
        _set(self, "end", _check_finite(self.end, "end"))
        steepness = self.steepness
        if not (
            isinstance(steepness, numbers.Real)
            and not isinstance(steepness, bool)
            and 0.0 < steepness < math.inf
        ):
            raise KLDivError(f"`steepness` must be a positive finite number; got {steepness!r}")
        _set(self, "steepness", float(steepness))

    def _weight(self, step: int) -> float:
        z = self.steepness * (step / self.steps - 0.5)
        # The logistic without overflow: exp only ever sees a non-positive argument.
        if z >= 0:
            fraction = 1.0 / (1.0 + math.exp(-z))
        else:
            e = math.exp(z)
            fraction = e / (1.0 + e)
        return self.start + (self.end - self.start) * fraction
