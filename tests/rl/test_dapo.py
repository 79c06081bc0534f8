"""DAPO's pieces: the soft overlong punishment, overlong filtering, dynamic sampling, and configs/dapo.yaml.

Run: .venv/bin/python -m pytest tests/rl/test_dapo.py
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from logicrl.config import load_config
from logicrl.engine.sequences import Generation
from logicrl.rl.config import TrainConfig
from logicrl.rl.dynamic_sampling import Draw, fill_batch, signal_groups
from logicrl.rl.shaping import mask_truncated, overlong_penalty

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_overlong_penalty_by_hand():
    """L_max = 20, L_cache = 5: no penalty up to 15 tokens, then −1/5 per token, −1 at the budget."""
    lengths = torch.tensor([3, 15, 16, 18, 20])
    assert overlong_penalty(lengths, 20, 5).tolist() == pytest.approx([0.0, 0.0, -0.2, -0.6, -1.0])
    assert overlong_penalty(lengths, 20, 5, factor=0.5).tolist() == pytest.approx([0.0, 0.0, -0.1, -0.3, -0.5])
    assert overlong_penalty(torch.tensor([25]), 20, 5).tolist() == [-1.0]  # beyond L_max: −1 (DAPO eq. 13)
    with pytest.raises(ValueError, match="overlong buffer"):
        overlong_penalty(lengths, 20, 21)


def test_mask_truncated_by_hand():
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    out = mask_truncated(mask, torch.tensor([False, True, False]))
    assert out.tolist() == [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]


def test_signal_groups():
    scores = torch.tensor([3.0, 3.0, 3.0, -1.0, 3.0, -1.0, -3.0, -3.0, -3.0])
    assert signal_groups(scores, 3).tolist() == [False, True, False]


def fake_draw(tag: int, scores: list[float], width: int, prompt_width: int) -> Draw:
    """3 groups of 2 rows; response token ids = 100·tag + row, ``width`` columns, the last one padding (0)."""
    rows = len(scores)
    response = torch.full((rows, width), 0)
    response[:, :width - 1] = (100 * tag + torch.arange(rows))[:, None]
    mask = (response != 0).float()
    prompt = torch.full((rows, prompt_width), 7)
    generation = Generation(prompt, torch.ones(rows, prompt_width, dtype=torch.long), response, mask,
                            torch.zeros(rows, dtype=torch.bool), mask * -0.5)
    return Draw(generation, [{"draw": tag, "row": r} for r in range(rows)], torch.tensor(scores))


def test_fill_batch_keeps_signal_groups_and_draws_until_full():
    draws = [fake_draw(0, [1, 1, 1, 2, 3, 3], 3, 4), fake_draw(1, [0, 5, 2, 2, 1, 0], 5, 2),
             fake_draw(2, [1, 2, 1, 2, 1, 2], 4, 4)]
    calls = []

    def draw(k):
        calls.append(k)
        return draws[k]

    batch, stats = fill_batch(draw, groups=3, group_size=2, max_draws=5, pad_token_id=0)
    assert calls == [0, 1] and stats == {"sampling/draws": 2.0, "sampling/kept_groups": 3.0}
    assert [(r["draw"], r["row"]) for r in batch.rows] == [(0, 2), (0, 3), (1, 0), (1, 1), (1, 4), (1, 5)]
    assert batch.scores.tolist() == [1, 2, 0, 5, 1, 0]
    assert all(signal_groups(batch.scores, 2))
    gen = batch.generation  # responses right-padded to width 5, prompts left-padded to width 4
    assert gen.response_ids[0].tolist() == [2, 2, 0, 0, 0] and gen.response_ids[2].tolist() == [100, 100, 100, 100, 0]
    assert gen.prompt_mask[2].tolist() == [0, 0, 1, 1] and gen.prompt_ids[2].tolist() == [0, 0, 7, 7]
    assert gen.logprobs.shape == (6, 5) and gen.response_mask.sum().item() == 2 * 2 + 4 * 4


def test_fill_batch_at_the_cap_tops_up_with_dropped_groups():
    draws = [fake_draw(0, [1, 1, 1, 2, 3, 3], 3, 4), fake_draw(1, [0, 0, 2, 2, 1, 0], 3, 4)]
    batch, stats = fill_batch(lambda k: draws[k], groups=3, group_size=2, max_draws=2, pad_token_id=0)
    assert stats == {"sampling/draws": 2.0, "sampling/kept_groups": 2.0}
    # signal first in draw order (draw 0 group 1, draw 1 group 2), then the first dropped (draw 0 group 0)
    assert [(r["draw"], r["row"]) for r in batch.rows] == [(0, 2), (0, 3), (1, 4), (1, 5), (0, 0), (0, 1)]


def test_dapo_recipe_loads_with_its_pieces():
    cfg = load_config(TrainConfig, CONFIGS / "dapo.yaml")
    algo, rollout = cfg.algorithm, cfg.rollout
    assert (algo.clip_range(), algo.loss_agg, algo.policy_loss, algo.kl_placement) == (
        (0.2, 0.28), "token-mean", "vanilla", "none")
    assert rollout.dynamic_sampling and rollout.max_draws >= 2 and algo.overlong_buffer == 1024
    assert algo.advantage == "grpo" and rollout.group_size >= 2


@pytest.mark.parametrize("override, message", [
    ({"rollout": {"dynamic_sampling": True, "group_size": 1}}, "set rollout.group_size >= 2"),
    ({"algorithm": {"overlong_buffer": 5000}}, "longer than rollout.max_response_tokens"),
    ({"algorithm": {"overlong_buffer": 100, "overlong_penalty": 0}}, "overlong_penalty=0 punishes nothing"),
])
def test_inconsistent_dapo_settings_are_refused(override, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.model_validate(override)
