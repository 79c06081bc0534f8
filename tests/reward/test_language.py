"""Tests for logicrl.reward.language (script mixing).

Run: .venv/bin/python -m pytest tests/reward/test_language.py
"""

import pytest

from logicrl.reward import dominant_script, language_mixing, language_penalty, script_units


def test_units_per_script():
    counts = script_units("Zoey is a knight. 佐伊是骑士 Зоя рыцарь ζ 123 ...")
    assert counts["latin"] == 4 and counts["cjk"] == 5 and counts["cyrillic"] == 2 and counts["greek"] == 1
    assert script_units("naïve café")["latin"] == 2
    assert script_units("ሰላም")["other"] == 1


def test_language_mixing_share():
    assert language_mixing("Zoey is a knight") == 0.0
    assert language_mixing("") == 0.0 and language_mixing("123 ...") == 0.0
    assert language_mixing("Zoey 是骑士") == 0.75
    assert language_mixing("佐伊是骑士", script="cjk") == 0.0
    with pytest.raises(ValueError):
        language_mixing("x", script="klingon")


def test_dominant_script_and_penalty():
    assert dominant_script("A very special island is inhabited only by knights") == "latin"
    assert dominant_script("一个非常特别的岛屿") == "cjk"
    assert dominant_script("...") is None
    assert language_penalty("Zoey 是骑士", weight=0.0) == 0.0
    assert language_penalty("Zoey 是骑士", weight=0.4) == pytest.approx(0.3)
