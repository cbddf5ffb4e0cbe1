"""Recall@N and PR/AUC on hand-computed cases."""

import numpy as np
import pytest

from neuroplast.apps.place.metrics import pr_auc, precision_recall, ranks, recall_at_n
from neuroplast.errors import DataError


def test_recall_at_n_hand_computed():
    s = np.array(
        [
            [0.9, 0.1, 0.0, 0.2],  # true 0 -> rank 0
            [0.5, 0.4, 0.3, 0.2],  # true 2 -> rank 2
            [0.0, 0.0, 0.0, 0.0],  # true 3 -> all tied: rank 3 (ties count against)
        ]
    )
    gt = np.array([0, 2, 3])
    assert ranks(s, gt).tolist() == [0, 2, 3]
    assert recall_at_n(s, gt, (1, 3, 4)) == {1: 1 / 3, 3: 2 / 3, 4: 1.0}


def test_pr_curve_and_auc():
    # confidences 0.9 (correct), 0.8 (wrong), 0.7 (correct)
    s = np.array([[0.9, 0.0], [0.8, 0.1], [0.0, 0.7]])
    gt = np.array([0, 1, 1])
    prec, rec = precision_recall(s, gt)
    np.testing.assert_allclose(prec, [1.0, 0.5, 2 / 3])
    np.testing.assert_allclose(rec, [1 / 3, 1 / 3, 2 / 3])
    assert pr_auc(s, gt) == pytest.approx(1.0 * (1 / 3) + (2 / 3) * (1 / 3))
    assert pr_auc(np.eye(5), np.arange(5)) == pytest.approx(1.0)


def test_metric_input_errors():
    with pytest.raises(DataError):
        recall_at_n(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(DataError):
        recall_at_n(np.full((1, 2), np.nan), np.array([0]))
