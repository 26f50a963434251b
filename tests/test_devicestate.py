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


# --- across restarts of the monitor: the boot time the ledger kept -------------------------

WALL = 1_800_000_000.0


def test_a_device_that_rebooted_while_the_monitor_was_stopped_is_counted_at_the_first_poll() -> (
    None
):
    device = DeviceState(known_boot=WALL - 86_400)  # it booted a day ago, the ledger says
    assert device.observe_uptime(12_000, now=0.0, wall=WALL)  # up for 120 s only
    assert device.reboots == 1
    assert not device.observe_uptime(18_000, now=60.0, wall=WALL + 60)  # then as usual


def test_the_same_boot_within_the_tolerance_is_no_reboot() -> None:
    # how much later the boot seems: poll latency, jitter, a device clock that runs slow;
    # earlier (a clock that runs fast) is never a reboot
    for later in (0.0, 2.5, 29.0, -40.0, -86_400.0):
        device = DeviceState(known_boot=WALL - 3_600 - later)
        assert not device.observe_uptime(360_000, now=0.0, wall=WALL), later
        assert device.reboots == 0
    # a boot that seems more than the tolerance later: a reboot
    device = DeviceState(known_boot=WALL - 3_600 - 31)
    assert device.observe_uptime(360_000, now=0.0, wall=WALL)


def test_an_uptime_that_wrapped_while_the_monitor_was_stopped_is_the_same_boot() -> None:
    wrap = TICKS_WRAP / 100
    device = DeviceState(known_boot=WALL - wrap - 500)  # booted 497 days + 500 s ago
    assert not device.observe_uptime(50_000, now=0.0, wall=WALL)  # uptime wrapped: 500 s
    assert device.reboots == 0
