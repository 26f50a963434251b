"""Exact decimal scaling: a reading times the scale a profile writes, rounded once.

Profiles write scales as decimals (`0.1`, `0.01`, `60`, `1024`), and operators compare what
they see with the device's own display: 70 percent must read 0.7, not 0.7000000000000001
(what `70 * 0.01` gives in binary floating point). A `Scale` keeps the decimal the profile
wrote as an exact fraction and multiplies by it exactly, so the only rounding is the final
one to the nearest float. The SNMP poller and the MQTT telemetry decoder both scale through
it, so one reading gives one figure whichever path brought it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

#: Integers up to this size are exact in a float: below it `int * numerator / denominator`
#: is one exact product and one correctly rounded division.
_EXACT_INT = 2**53


@dataclass(frozen=True, slots=True)
class Scale:
    """A scale as the fraction its decimal spelling means (0.1 is 1/10, not the float
    0.1000000000000000055...)."""

    numerator: int = 1
    denominator: int = 1

    @classmethod
    def of(cls, value: float | int) -> Scale:
        """The scale a profile wrote: the shortest decimal that reads back as `value`."""
        if isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"a scale must be a finite number, got {value!r}")
        exact = Fraction(repr(value)) if isinstance(value, float) else Fraction(value)
        return cls(exact.numerator, exact.denominator)

    @property
    def is_one(self) -> bool:
        return self.numerator == self.denominator == 1

    @property
    def value(self) -> float:
        return self.numerator / self.denominator

    def apply(self, number: float | int) -> float:
        """`number` times the scale, rounded once to the nearest float (infinite past the
        largest float)."""
        if self.is_one:
            return float(number)
        try:
            if isinstance(number, int) or (number.is_integer() and abs(number) < _EXACT_INT):
                return int(number) * self.numerator / self.denominator
            return float(Fraction(number) * Fraction(self.numerator, self.denominator))
        except OverflowError:  # beyond a float: callers refuse what is not finite
            return math.copysign(math.inf, number) * math.copysign(1, self.numerator)


ONE = Scale()
