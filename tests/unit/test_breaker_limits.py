"""The circuit breakers' arithmetic: windows and when a list update is held whole."""

from hashcheck.response.breaker import BreakerLimits, update_is_suspect


def test_windows_are_fixed_spans_of_the_configured_hours():
    limits = BreakerLimits(window_hours=24)
    day = 24 * 3600
    assert limits.window(10 * day) == limits.window(10 * day + day - 1) != limits.window(11 * day)
    assert BreakerLimits(window_hours=1).window(3600 * 5 + 10) == "5"


def test_an_update_is_held_over_its_object_cap_or_its_share_of_what_is_stored():
    limits = BreakerLimits(update_max_objects=1000, update_max_share=0.01, update_min_objects=10)
    assert update_is_suspect(limits, 1001, 10**9) and not update_is_suspect(limits, 1000, 10**9)
    assert update_is_suspect(limits, 101, 10_000) and not update_is_suspect(limits, 100, 10_000)
    # a small store: a handful of hits is never a share worth holding
    assert not update_is_suspect(limits, 10, 50) and update_is_suspect(limits, 11, 50)


def test_limits_come_from_the_environment_the_template_sets():
    env = {
        "BREAKER_MAX_OBJECTS": "7",
        "BREAKER_WINDOW_HOURS": "6",
        "UPDATE_BREAKER_MAX_OBJECTS": "50",
        "UPDATE_BREAKER_PERCENT": "5",
    }
    limits = BreakerLimits.from_env(env)
    assert (limits.max_objects, limits.window_hours, limits.update_max_objects, limits.update_max_share) == (
        7,
        6,
        50,
        0.05,
    )
    assert BreakerLimits.from_env({}) == BreakerLimits()
