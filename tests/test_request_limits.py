"""The request limits as profile keys: a resolved profile (bundle.json's `resolved_profile`) -> RequestLimits."""

from __future__ import annotations

from pipeline.profiles import load_profile
from pipeline.request_limits import DEFAULT_LIMITS, RequestLimits


def test_a_profile_carries_the_defaults():
    profile, _ = load_profile("cpu-tiny")
    assert RequestLimits.from_profile(profile.model_dump(mode="json")) == DEFAULT_LIMITS


def test_profile_overrides_reach_the_limits():
    profile, _ = load_profile("cpu-tiny", {"max_n": 2, "max_request_bytes": 4096})
    limits = RequestLimits.from_profile(profile.model_dump(mode="json"))
    assert (limits.max_n, limits.max_request_bytes, limits.max_stop) == (2, 4096, DEFAULT_LIMITS.max_stop)


def test_an_older_bundle_without_the_keys_gets_the_defaults():
    assert RequestLimits.from_profile({"max_batch_size": 8}) == DEFAULT_LIMITS
