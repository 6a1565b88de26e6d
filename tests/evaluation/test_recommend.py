"""recommend_checkpoint on hand-made metrics: the documented rule and its edge cases."""
import pytest

from training.evaluation.evaluate import EvaluationError, EvaluationResult, recommend_checkpoint


def m(clip_t, clip_i, near=0.0):
    return {"clip_t": clip_t, "clip_i": clip_i, "near_copy_rate": near}


def test_highest_clip_t_among_faithful_non_copying_checkpoints():
    results = {
        "checkpoint-250": m(0.33, 0.70),          # follows prompts best but too far from the style (0.70 < 0.80 - 0.02)
        "checkpoint-500": m(0.31, 0.79),          # within 0.02 of the best eligible CLIP-I: wins on CLIP-T
        "checkpoint-750": m(0.29, 0.80),          # best eligible CLIP-I, lower CLIP-T
        "checkpoint-1000": m(0.32, 0.90, 0.25),   # copies training pictures: excluded, and does not set the CLIP-I bar
    }
    name, reason = recommend_checkpoint(results)
    assert name == "checkpoint-500"
    assert "checkpoint-1000 (near-copy rate 25.0%)" in reason and "checkpoint-250 (CLIP-I 0.700" in reason


def test_clip_i_margin_is_inclusive():
    results = {"a": m(0.30, 0.80), "b": m(0.35, 0.78)}  # exactly 0.02 below the best
    assert recommend_checkpoint(results)[0] == "b"
    assert recommend_checkpoint({"a": m(0.30, 0.80), "b": m(0.35, 0.7799)})[0] == "a"


def test_near_copy_rate_at_the_threshold_is_excluded():
    results = {"a": m(0.30, 0.80, 0.0), "b": m(0.40, 0.80, 0.05)}
    assert recommend_checkpoint(results)[0] == "a"
    assert recommend_checkpoint(results, max_near_copy_rate=0.06)[0] == "b"


def test_ties_go_to_higher_clip_i_then_to_the_earlier_checkpoint():
    assert recommend_checkpoint({"a": m(0.30, 0.79), "b": m(0.30, 0.80)})[0] == "b"
    assert recommend_checkpoint({"a": m(0.30, 0.80), "b": m(0.30, 0.80)})[0] == "a"
    assert recommend_checkpoint({"b": m(0.30, 0.80), "a": m(0.30, 0.80)})[0] == "b"


def test_no_eligible_checkpoint_gives_none_with_the_reason():
    name, reason = recommend_checkpoint({"a": m(0.3, 0.8, 0.5), "b": m(0.3, 0.8, 0.1)})
    assert name is None and "no checkpoint qualifies" in reason and "a (near-copy rate 50.0%)" in reason


def test_missing_metrics_and_empty_input_are_refused_by_name():
    with pytest.raises(EvaluationError, match="'b' has no 'clip_i'"):
        recommend_checkpoint({"a": m(0.3, 0.8), "b": {"clip_t": 0.3, "near_copy_rate": 0.0, "clip_i": None}})
    with pytest.raises(EvaluationError, match="no results"):
        recommend_checkpoint({})


def test_accepts_evaluation_results():
    result = EvaluationResult(name="x", model="m", lora=None, settings={}, overall=m(0.3, 0.8))
    assert recommend_checkpoint({"x": result})[0] == "x"
