"""Exact decimal scaling: whatever the reading and the scale a profile writes, the result is
the decimal product rounded once, the figure a person computes by hand."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.scaling import Scale

SCALES = [0.1, 0.01, 0.001, 0.05, 0.25, 60, 1024, 1000000, 1.5, -0.1]


def by_hand(number: float | int, scale: float) -> float:
    with localcontext() as context:
        context.prec = 2500  # a float has at most 1,074 decimals: the product is exact
        return float(Decimal(number) * Decimal(repr(scale)))


@given(st.integers(-(2**63), 2**64), st.sampled_from(SCALES))
def test_an_integer_reading_scales_to_the_nearest_float_of_the_decimal_product(
    raw: int, scale: float
) -> None:
    assert Scale.of(scale).apply(raw) == by_hand(raw, scale)


@given(st.floats(allow_nan=False, allow_infinity=False, width=64), st.sampled_from(SCALES))
def test_a_fractional_reading_scales_exactly_too(raw: float, scale: float) -> None:
    assert Scale.of(scale).apply(raw) == by_hand(raw, scale)


def test_the_figures_that_were_wrong_by_multiplying() -> None:
    assert 70 * 0.01 != 0.7 and Scale.of(0.01).apply(70) == 0.7
    assert 312 * 0.1 != 31.2 and Scale.of(0.1).apply(312) == 31.2
    assert Scale.of(60).apply(-1) == -60.0 and Scale.of(1).is_one


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True])
def test_a_scale_is_a_finite_number(bad: float) -> None:
    with pytest.raises(ValueError, match="finite number"):
        Scale.of(bad)
