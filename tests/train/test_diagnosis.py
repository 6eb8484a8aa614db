"""Bias / variance / data-mismatch diagnosis: the course's worked examples."""

from __future__ import annotations

import pytest

from visionkit.train.diagnosis import ADVICE, diagnose, error_gaps


def test_high_avoidable_bias_with_human_level_error():
    # Course example: human 1 %, train 8 %, dev 10 % -> avoidable bias 7 points dominates variance 2.
    result = diagnose(train=0.08, dev=0.10, human=0.01)
    assert result.gaps["avoidable bias"] == pytest.approx(0.07)
    assert result.gaps["variance"] == pytest.approx(0.02)
    assert result.dominant == "avoidable bias"
    assert result.advice == ADVICE["avoidable bias"]


def test_same_errors_are_variance_when_humans_do_worse():
    # Same train/dev errors, human 7.5 %: avoidable bias 0.5, variance 2 -> variance.
    result = diagnose(train=0.08, dev=0.10, human=0.075)
    assert result.dominant == "variance"
    assert "more training data" in result.advice[0].lower()


def test_data_mismatch_needs_a_train_dev_set():
    # train 1 %, train-dev 1.5 %, dev 10 %: the dev data differs from the training data.
    result = diagnose(train=0.01, train_dev=0.015, dev=0.10, human=0.0)
    assert result.gaps["variance"] == pytest.approx(0.005)
    assert result.gaps["data mismatch"] == pytest.approx(0.085)
    assert result.dominant == "data mismatch"
    without = diagnose(train=0.01, dev=0.10, human=0.0)
    assert "data mismatch" not in without.gaps and without.dominant == "variance"
    assert any("train-dev" in note for note in without.notes)


def test_test_set_gap_flags_dev_overfitting():
    result = diagnose(train=0.02, dev=0.03, test=0.09, human=0.01, train_dev=0.025)
    assert result.gaps["dev overfitting"] == pytest.approx(0.06)
    assert result.dominant == "dev overfitting"


def test_small_gaps_mean_nothing_dominates():
    result = diagnose(train=0.011, dev=0.015, human=0.01)
    assert result.dominant == "none"
    assert "no human-level" not in " ".join(result.notes)
    assert "human-level" in result.to_text() and "dominant: none" in result.to_text()


def test_missing_human_error_counts_all_training_error_as_bias():
    gaps = error_gaps(train=0.05, dev=0.06)
    assert gaps["avoidable bias"] == pytest.approx(0.05)
    assert any("Bayes error taken as 0" in n for n in diagnose(0.05, 0.06).notes)


def test_errors_must_be_fractions():
    with pytest.raises(ValueError, match="train error"):
        diagnose(train=8.0, dev=0.1)


def test_small_sets_flag_a_gap_within_sampling_noise():
    # 4 errors in 37 dev images vs 1 in 15 train-dev images: a 4-point gap is well within noise.
    noisy = diagnose(train=0.0, train_dev=1 / 15, dev=4 / 37, counts={"train": 132, "train-dev": 15, "dev": 37})
    assert any("within sampling noise" in note for note in noisy.notes)
    firm = diagnose(train=0.0, train_dev=0.01, dev=0.10, counts={"train": 10000, "train-dev": 2000, "dev": 2000})
    assert firm.dominant == "data mismatch" and not any("noise" in note for note in firm.notes)
