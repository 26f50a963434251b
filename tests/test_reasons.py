"""The reason-code vocabulary: fixed words, derived codes, and what a failure's code is."""

from __future__ import annotations

import pytest

from monitor.core.reasons import (
    FIXED_CODES,
    MAX_CODE_LENGTH,
    derive_code,
    failure_code,
    is_code,
    is_monitor_fault,
)


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("running on battery (mains failure)", "running_on_battery_mains_failure"),
        ("battery at {battery_volts} V, below 47 V", "battery_at_v_below_47_v"),
        ("WAN interface {if} down", "wan_interface_down"),
        ("Mất điện lưới, chạy ắc quy", "mat_dien_luoi_chay_ac_quy"),
        ("45 °C in the cabinet", "r_45_c_in_the_cabinet"),
        ("{x}!", "unhealthy"),
        ("timeout", "timeout_rule"),
    ],
)
def test_a_code_is_derived_from_the_reason_deterministically(reason: str, code: str) -> None:
    assert derive_code(reason) == code
    assert is_code(code)


def test_a_long_reason_is_cut_at_a_word() -> None:
    code = derive_code("the transmitter reports its power amplifier folded back " * 3)
    assert is_code(code) and len(code) <= MAX_CODE_LENGTH and not code.endswith("_")
    assert code.startswith("the_transmitter_reports_its_power")


def test_monitor_faults_and_failure_words() -> None:
    assert all(is_monitor_fault(code) for code in ("auth", "permission", "internal"))
    assert not is_monitor_fault("timeout") and not is_monitor_fault(None)
    assert failure_code("timeout") == "timeout" and failure_code("auth") == "auth"
    assert failure_code(None) == "failed" and failure_code("Bad Label") == "failed"
    assert all(is_code(code) for code in FIXED_CODES)
