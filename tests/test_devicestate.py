"""Counters as totals across wraps, discontinuities and reboots; reboots from sysUpTime."""

from monitor.probes.snmp.counters import TICKS_WRAP, DeviceState

KEY = ("if_in_octets_total", (("if", "wan"),))


def test_a_counter_starts_at_the_device_value_and_adds_increases() -> None:
    device = DeviceState()
    assert device.counter(KEY, 1000, 64, False) == 1000
    assert device.counter(KEY, 1500, 64, False) == 1500
    assert device.counter(KEY, 1500, 64, False) == 1500


def test_a_counter32_that_goes_backwards_wrapped_once() -> None:
    device = DeviceState()
    device.counter(KEY, 2**32 - 100, 32, False)
    assert device.counter(KEY, 50, 32, False) == 2**32 - 100 + 150


def test_a_counter64_that_goes_backwards_was_reset_not_wrapped() -> None:
    device = DeviceState()
    device.counter(KEY, 10_000, 64, False)
    assert device.counter(KEY, 300, 64, False) == 10_300


def test_after_a_reboot_every_counter_restarted_from_zero() -> None:
    device = DeviceState()
    device.counter(KEY, 2**32 - 100, 32, False)
    assert device.counter(KEY, 70, 32, True) == 2**32 - 100 + 70
    # even a value above the last one: the counter restarted, it did not move on
    device.counter(KEY, 500, 32, False)
    assert device.counter(KEY, 900, 32, True) == 2**32 - 100 + 70 + 430 + 900


def test_counters_not_read_any_more_are_forgotten() -> None:
    device = DeviceState()
    other = ("if_in_octets_total", (("if", "lan"),))
    device.counter(KEY, 1, 64, False)
    device.counter(other, 1, 64, False)
    device.keep_counters({KEY})
    assert set(device.counters) == {KEY}


def test_uptime_going_backwards_is_a_reboot_and_is_counted() -> None:
    device = DeviceState()
    assert not device.observe_uptime(500_000, now=0.0)
    assert not device.observe_uptime(506_000, now=60.0)
    assert device.observe_uptime(1_200, now=120.0)
    assert device.reboots == 1
    assert not device.observe_uptime(7_200, now=180.0)
    assert device.reboots == 1


def test_the_497_day_wrap_of_sysuptime_is_not_a_reboot() -> None:
    device = DeviceState()
    device.observe_uptime(TICKS_WRAP - 1_000, now=0.0)
    assert not device.observe_uptime(5_000, now=60.0)  # 1000 + 5000 ticks = 60 s later
    assert device.reboots == 0
