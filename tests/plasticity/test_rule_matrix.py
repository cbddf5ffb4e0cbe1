"""The rule matrix: every rule x every layer shape it claims x float/int x batch sizes,
against the pure-function reference over adversarial streams (tests/plasticity/
rule_matrix.py). make test runs 40 steps per stream; bench/plasticity_matrix.py runs
the full 10^5 steps per case and prints the table."""

from __future__ import annotations

import pytest

from .rule_matrix import cases, run_case

CASES = cases()


def test_matrix_covers_every_rule_and_mode() -> None:
    from neuroplast.plasticity.registry import RULE_SPECS

    assert {c.kind for c in CASES} == set(RULE_SPECS)
    assert {c.mode for c in CASES} == {"float", "int"}
    assert {c.shape for c in CASES if RULE_SPECS[c.kind].target == "neurons"} >= {
        "lif", "lif_shared", "cuba", "if", "conv", "delay"
    }  # fmt: skip
    assert len(CASES) >= 100


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_matrix(case) -> None:
    row = run_case(case, steps_per_stream=40)
    assert row["steps"] == 200
    assert row["moved"] > 0, "the stream never made the rule learn: the test would be vacuous"
    # saturation, silence and bursts did not zero the layer
    # (least_squares has no dynamics to run away: every step sets the rows to the ridge fit
    # of all data so far, checked against lstsq above; an int8 fit below one step is 0)
    if row.get("rows") and case.kind != "least_squares":
        assert row["alive_rows"] == row["rows"], row
