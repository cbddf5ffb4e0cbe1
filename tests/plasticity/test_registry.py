"""Every registered rule: defaults valid, JSON round trip, bad values rejected."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

import neuroplast.plasticity as P
from neuroplast.errors import PlasticityError


@pytest.mark.parametrize("kind", sorted(P.RULE_KINDS))
def test_rule_round_trip_and_frozen(kind: str) -> None:
    cls = P.RULE_KINDS[kind]
    p = cls()
    d = json.loads(json.dumps(P.rule_to_dict(p)))
    assert d["kind"] == kind and P.rule_from_dict(d) == p
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(p, dataclasses.fields(cls)[0].name, 1)


@pytest.mark.parametrize("kind", sorted(P.RULE_KINDS))
def test_rule_rejects_nan_and_negative_rates(kind: str) -> None:
    cls = P.RULE_KINDS[kind]
    fields = dataclasses.fields(cls)
    # float parameters reject NaN; an all-integer rule (int_stdp) rejects non-integers
    bad = {f.name: math.nan for f in fields if isinstance(f.default, float)} or {
        f.name: 0.5 for f in fields if type(f.default) is int
    }
    rejected = 0
    for name, v in bad.items():
        with pytest.raises(PlasticityError):
            cls(**{name: v})
        rejected += 1
    assert rejected == len(bad) > 0


def test_registry_errors() -> None:
    with pytest.raises(PlasticityError, match="not a registered"):
        P.rule_kind(object())
    with pytest.raises(PlasticityError, match="already registered"):
        P.register_rule("oja", P.HebbianParams)
    with pytest.raises(PlasticityError, match="kind"):
        P.rule_from_dict(["oja"])
    assert set(P.__all__) <= set(dir(P))
