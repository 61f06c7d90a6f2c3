"""Metric functions on hand-checked cases (no model)."""

import math

import pytest

from deepsynth.evaluation import (
    NonFiniteMetricError,
    aggregate,
    assert_finite,
    is_repetitive,
    lead_k,
    rouge,
    score_output,
    split_sentences,
)


def test_rouge_identical_and_disjoint():
    assert rouge("the bridge reopens in may", "The bridge reopens in May.") == pytest.approx(
        {"rouge_1": 1.0, "rouge_2": 1.0, "rouge_l": 1.0}
    )
    assert rouge("apples oranges", "the bridge reopens") == {"rouge_1": 0.0, "rouge_2": 0.0, "rouge_l": 0.0}


def test_rouge_partial_overlap():
    # 2 of 4 unigrams shared both ways: P = R = F1 = 0.5; one shared bigram of three: 1/3.
    scores = rouge("the bridge opens today", "the bridge closes tomorrow")
    assert scores["rouge_1"] == pytest.approx(0.5)
    assert scores["rouge_2"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    "text, looping",
    [
        ("the cat the cat the cat", True),
        ("no no no", True),
        ("revenue grew and revenue fell", False),
        ("a b c a b c a b c", True),
        ("", False),
        ("深深深深", True),
        ("The bridge reopens in May after repairs.", False),
    ],
)
def test_repetition_loops(text, looping):
    assert is_repetitive(text) is looping


def test_lead_k_takes_the_first_sentences():
    text = "First one. Second!  Third? Fourth."
    assert split_sentences(text) == ["First one.", "Second!", "Third?", "Fourth."]
    assert lead_k(text, 2) == "First one. Second!"
    assert lead_k(text, 10) == "First one. Second! Third? Fourth."
    with pytest.raises(ValueError):
        lead_k(text, 0)


def test_aggregate_means_and_rates():
    rows = [
        score_output("the bridge reopens", "the bridge reopens", 0.2),
        score_output("", "the bridge reopens", 0.4),
        score_output("go go go go", "the bridge reopens", 0.6),
        score_output("rain all week", "the bridge reopens", 0.8),
    ]
    metrics = aggregate(rows)
    assert metrics["rouge_l"] == pytest.approx(0.25)
    assert metrics["empty_rate"] == pytest.approx(0.25)
    assert metrics["repetition_rate"] == pytest.approx(0.25)
    assert metrics["mean_length"] == pytest.approx((3 + 0 + 4 + 3) / 4)
    assert metrics["latency_s"] == pytest.approx(0.5)
    assert metrics["num_docs"] == 4
    assert_finite(metrics)


def test_assert_finite_names_every_bad_value():
    assert math.isnan(aggregate([])["rouge_l"])
    with pytest.raises(NonFiniteMetricError, match=r"rouge_l=nan"):
        assert_finite(aggregate([]))
    with pytest.raises(NonFiniteMetricError, match=r"adapter\.latency_s=inf.*base\.rouge_1=None"):
        assert_finite({"adapter": {"rouge_l": 0.3, "latency_s": float("inf")}, "base": {"rouge_1": None}})
