"""Hostile learned state with valid hashes (tests/plasticity/state_fuzz.py): only
BundleError / RuntimeStateError, never a half-loaded runtime. 300 cases here;
bench/plasticity_state_fuzz.py runs 5,000."""

from __future__ import annotations

from collections import Counter

from .state_fuzz import one_case


def test_state_fuzz(tmp_path) -> None:
    outcomes = Counter(one_case(i, tmp_path) for i in range(300))
    assert outcomes["refused"] > 150, outcomes  # most mutations are caught at load
    assert sum(outcomes.values()) == 300
