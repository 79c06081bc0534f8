"""Word, behaviour and mixing features of one response; the sudden/gradual statistic; tallies and bins."""

from __future__ import annotations

import random

import pytest

from logicrl.analysis.aggregate import Bin, Tally, bin_size_for, total
from logicrl.analysis.config import BEHAVIOUR_PATTERNS, ReportConfig
from logicrl.analysis.features import compile_matchers, word_pattern
from logicrl.analysis.run import Response
from logicrl.analysis.trend import Trend, classify_rise
from logicrl.config import load_config
from logicrl.errors import ConfigError


@pytest.mark.parametrize("phrase, text, hit", [
    ("wait", "Wait, no.", True), ("wait", "WAIT", True), ("wait", "waiting", False), ("wait", "await", False),
    ("check", "recheck", False), ("check", "double-check it", True), ("check", "check_list", False),
    ("re-evaluate", "Let me re-evaluate.", True), ("re-evaluate", "reevaluate", False),
    ("think again", "think\n\n again", True), ("think again", "thinking again", False),
    ("yet", "not yet.", True), ("yet", "yeti", False), ("c++?", "is c++? ok", True),
])
def test_word_boundaries(phrase: str, text: str, hit: bool) -> None:
    assert bool(word_pattern(phrase).search(text)) is hit


def test_matchers_find_words_behaviours_and_mixing() -> None:
    matchers = compile_matchers(["wait", "verify"], BEHAVIOUR_PATTERNS)
    f = matchers("Wait, let me double-check. Alternatively Zoey lies. In summary: 佐")
    assert f.words == {"wait"}
    assert f.behaviours == {"self-reflection", "verification", "exploring alternatives", "summary"}
    assert f.mixed and f.mixing == pytest.approx(1 / 11)  # 10 Latin words, 1 Han character
    plain = matchers("Zoey is a knight.")
    assert not plain.words and not plain.behaviours and plain.mixing == 0.0 and not plain.mixed
    assert not compile_matchers([], {}, mixing_threshold=0.5)("Zoey 佐").mixed  # share 0.5 is not > 0.5


def test_config_rejects_bad_patterns_and_words() -> None:
    with pytest.raises(ConfigError, match="bad regex"):
        load_config(ReportConfig, None, ["behaviours={x: ['(']}"])
    with pytest.raises(ConfigError, match="repeat"):
        load_config(ReportConfig, None, ["words=[wait, wait]"])
    with pytest.raises(ConfigError, match="source"):
        load_config(ReportConfig, None, ["source=test"])


def test_trend_step_ramp_flat_falling() -> None:
    steps = list(range(1, 11))
    step = classify_rise(steps, [0.0] * 4 + [0.6] * 6)
    assert (step.verdict, step.step) == ("sudden", 5)
    assert step.rise == pytest.approx(0.6) and step.suddenness == pytest.approx(1)
    ramp = classify_rise(steps, [i / 10 for i in range(10)])
    assert ramp.verdict == "gradual" and ramp.suddenness == pytest.approx(3 / 7) and ramp.step is None
    assert classify_rise(steps, [0.5, 0.55] * 5).verdict == "flat"
    assert classify_rise(steps, [1.0] * 5 + [0.0] * 5).verdict == "falling"
    for shares in ([0.3] * 10, [0.0] * 10):  # no change at all is flat, even when any rise counts
        assert classify_rise(steps, shares, min_rise=0.0).verdict == "flat"
    assert classify_rise(steps, [0.0] * 4 + [0.6] * 6, min_rise=0.0).verdict == "sudden"
    assert classify_rise(steps[:5], [0, 0, 0, 1, 1]).verdict == "too few steps"
    assert classify_rise(steps[:4], [0, 0, 1, 1], window=2).step == 3


def test_trend_step_survives_noise() -> None:
    rng = random.Random(0)
    shares = [min(1.0, max(0.0, (0.1 if i < 20 else 0.7) + rng.gauss(0, 0.05))) for i in range(40)]
    trend = classify_rise(list(range(40)), shares)
    assert trend.verdict == "sudden" and 18 <= trend.step <= 22


def make_response(reward: float, solved: bool, length: int) -> Response:
    return Response(1, "p", 3, 0, "x", length, False, reward, solved, solved, None)


def test_tally_with_without() -> None:
    pooled, having = Tally(), Tally()
    for reward, solved, length in ((3.0, True, 10), (-0.5, False, 20), (-3.0, False, 40)):
        pooled.add(make_response(reward, solved, length))
    having.add(make_response(3.0, True, 10))
    without = pooled.minus(having)
    assert without.n == 2 and without.mean("reward") == pytest.approx(-1.75) and without.mean("length") == 30
    assert Tally().mean("reward") is None


@pytest.mark.parametrize("steps, size", [([], 1), ([1, 200], 1), ([1, 201], 2), ([5, 3604], 18)])
def test_bin_size_for(steps: list[int], size: int) -> None:
    assert bin_size_for(steps) == size


def test_trend_takes_the_first_largest_jump_and_a_suddenness_at_the_threshold_is_sudden() -> None:
    """Shares 0, 1, 1, 2 (window 1): rise 2, jumps 1 (at step 10) and 1 (at 30); the first, 1/2 of the rise,
    is sudden at sudden_share 0.5."""
    assert classify_rise([0, 10, 20, 30], [0.0, 1.0, 1.0, 2.0], window=1, sudden_share=0.5) == \
        Trend("sudden", 2.0, 1.0, 10, 0.5)


def test_a_bin_sits_at_the_middle_of_its_steps() -> None:
    """Steps 10 to 19: x = 14.5."""
    assert Bin(first=10, last=19).x == 14.5


def test_the_total_bin_spans_every_bin() -> None:
    """Bins 0-4 and 5-9 pooled: steps 0 to 9."""
    pooled = total([Bin(first=0, last=4), Bin(first=5, last=9)])
    assert (pooled.first, pooled.last) == (0, 9)


def test_a_bin_spans_its_steps_in_any_order() -> None:
    """Responses at steps 3, 7, 5 in that order: the bin runs from 3 to 7."""
    matcher = compile_matchers([], {})
    one = Bin(first=3, last=3)
    for step in (3, 7, 5):
        one.add(Response(step, "p", 2, 0, "x", 1, False, 0.0, False, True, None), matcher("x"))
    assert (one.first, one.last) == (3, 7)
