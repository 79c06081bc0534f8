"""PromptSchedule: curriculum/mixed order, drop-last, determinism, extra steps, fingerprint; AdaptiveSchedule:
level moves by hand-computed sequences, per-level passes, state, fingerprint, config checks."""

from __future__ import annotations

import pytest

from logicrl.config import load_config
from logicrl.errors import ConfigError, DataError
from logicrl.puzzles.record import people_of
from logicrl.rl.config import TrainConfig
from logicrl.rl.schedule import (
    AdaptiveSchedule,
    PromptSchedule,
    adaptive_move,
    load_puzzles,
    validation_subset,
)


def _records(counts: dict[int, int]) -> list[dict]:
    return [{"id": f"{n}-{i}", "n_people": n, "names": ["x"] * n} for n, c in counts.items() for i in range(c)]


def test_curriculum_visits_levels_in_order_without_mixing_batches():
    records = _records({4: 7, 3: 6, 5: 4})
    schedule = PromptSchedule.build(records, schedule="curriculum", batch_size=3, epochs=1, seed=0)
    levels = [{people_of(r) for r in schedule.batch(s)} for s in range(len(schedule))]
    assert all(len(level) == 1 for level in levels)  # a batch never straddles two stages
    assert [level.pop() for level in levels] == [3, 3, 4, 4, 5]  # 6//3, 7//3 (drop last), 4//3


def test_each_epoch_is_a_fresh_permutation_and_same_seed_same_order():
    records = _records({3: 8})
    a = PromptSchedule.build(records, schedule="mixed", batch_size=4, epochs=2, seed=1)
    b = PromptSchedule.build(records, schedule="mixed", batch_size=4, epochs=2, seed=1)
    c = PromptSchedule.build(records, schedule="mixed", batch_size=4, epochs=2, seed=2)
    assert a.batches == b.batches and a.batches != c.batches
    first, second = sorted(a.batches[0] + a.batches[1]), sorted(a.batches[2] + a.batches[3])
    assert first == second == list(range(8))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_steps_beyond_the_epochs_keep_going_and_steps_cap():
    records = _records({2: 4, 3: 4})
    mixed = PromptSchedule.build(records, schedule="mixed", batch_size=4, epochs=1, seed=0, steps=5)
    assert len(mixed) == 5
    curriculum = PromptSchedule.build(records, schedule="curriculum", batch_size=4, epochs=1, seed=0, steps=4)
    assert [people_of(curriculum.batch(s)[0]) for s in range(4)] == [2, 3, 3, 3]  # the last stage repeats
    capped = PromptSchedule.build(records, schedule="mixed", batch_size=2, epochs=3, seed=0, steps=2)
    assert len(capped) == 2


def test_steps_that_end_before_the_last_curriculum_stage_are_refused():
    records = _records({3: 8, 4: 8, 5: 8})  # stages of 2 steps: 3 people at 1, 4 at 3, 5 at 5
    assert len(PromptSchedule.build(records, schedule="curriculum", batch_size=4, epochs=1, seed=0, steps=5)) == 5
    with pytest.raises(DataError, match=r"steps=4 ends in the 4-person stage .* raise steps to at least 5"):
        PromptSchedule.build(records, schedule="curriculum", batch_size=4, epochs=1, seed=0, steps=4)


def test_too_few_puzzles_for_one_batch_is_a_data_error():
    with pytest.raises(DataError, match="cannot fill one batch of 8"):
        PromptSchedule.build(_records({3: 5}), schedule="mixed", batch_size=8, epochs=1, seed=0)


def test_load_puzzles_filters_people_and_validation_takes_first_k_per_level(puzzle_dir):
    records = load_puzzles(puzzle_dir, "test", [3])
    assert {people_of(r) for r in records} == {3}
    both = load_puzzles(puzzle_dir, "test")
    subset = validation_subset(both, 2)
    assert [people_of(r) for r in subset] == [2, 2, 3, 3]
    with pytest.raises(DataError, match=r"no test puzzles with 7 people \(found: 2, 3\)"):
        load_puzzles(puzzle_dir, "test", [7])
    with pytest.raises(DataError, match=r"no test puzzles with 4, 5 people \(found: 2, 3\)"):  # not just 2, 3
        load_puzzles(puzzle_dir, "test", [2, 3, 4, 5])


def test_stage_starts_and_spans_by_hand():
    records = [{"n_people": 2, "id": f"a{i}", "names": ["A", "B"]} for i in range(4)] + \
              [{"n_people": 3, "id": f"b{i}", "names": ["A", "B", "C"]} for i in range(6)]
    curriculum = PromptSchedule.build(records, schedule="curriculum", batch_size=2, epochs=1, seed=0)
    assert curriculum.stage_starts == (1, 3) and len(curriculum) == 5
    assert [curriculum.stage_span(s) for s in range(1, 6)] == [(1, 2), (1, 2), (3, 5), (3, 5), (3, 5)]
    mixed = PromptSchedule.build(records, schedule="mixed", batch_size=2, epochs=1, seed=0)
    assert mixed.stage_starts == (1,) and mixed.stage_span(5) == (1, 5)


def test_extra_batches_of_dynamic_sampling_are_a_pure_function_of_seed_step_and_draw():
    records = _records({3: 6, 4: 7, 5: 4})
    schedule = PromptSchedule.build(records, schedule="curriculum", batch_size=3, epochs=1, seed=0)
    assert schedule.stage_starts == (1, 3, 5)
    again = PromptSchedule.build(records, schedule="curriculum", batch_size=3, epochs=1, seed=0)
    extra = schedule.extra_batch(3, 1, 3, seed=0)
    assert extra == again.extra_batch(3, 1, 3, seed=0)  # rebuilt, as a resumed run does
    assert {people_of(r) for r in extra} == {4} and len({r["id"] for r in extra}) == 3  # the step's stage, distinct
    others = [schedule.extra_batch(3, 2, 3, seed=0), schedule.extra_batch(4, 1, 3, seed=0),
              schedule.extra_batch(3, 1, 3, seed=1)]
    assert all(o != extra for o in others)
    last = schedule.extra_batch(5, 1, 9, seed=0)  # every puzzle of the level, not only the 3 its one batch used
    assert len(last) == 4 and {people_of(r) for r in last} == {5}


@pytest.mark.parametrize("schedule", ["mixed", "curriculum"])
def test_extra_batches_do_not_depend_on_steps(schedule: str) -> None:
    """The pool was the puzzles of the stage's batches once cut to ``steps``: with steps=1 a mix's extra draw was
    the step's own batch again (the groups just dropped came back), and a resume with another ``steps`` (a
    resumable key) drew other extra puzzles than either run straight through."""
    records = _records({3: 40, 4: 40} if schedule == "mixed" else {4: 40})  # (a curriculum cut early is refused)
    build = {"schedule": schedule, "batch_size": 4, "epochs": 1, "seed": 0}
    draws = [PromptSchedule.build(records, **build, steps=steps).extra_batch(1, 1, 4, seed=0)
             for steps in (1, 3, None)]
    assert draws[0] == draws[1] == draws[2]
    short = PromptSchedule.build(records, **build, steps=1)
    assert {r["id"] for r in draws[0]} != {r["id"] for r in short.batch(0)}


def test_adaptive_move_needs_a_full_window_and_compares_solved_over_responses():
    assert adaptive_move([(10, 10), (10, 10)], 3, 0.7, 0.3) == 0  # 2 of 3 steps: no decision yet
    assert adaptive_move([(7, 10), (7, 10), (7, 10)], 3, 0.7, 0.3) == 1  # 21/30 = 0.7: up at the threshold
    assert adaptive_move([(3, 10), (3, 10), (3, 10)], 3, 0.7, 0.3) == -1  # 9/30 = 0.3: down at the threshold
    assert adaptive_move([(5, 10), (9, 10), (6, 10)], 3, 0.7, 0.3) == 0  # 20/30
    assert adaptive_move([(0, 10), (9, 10), (9, 10), (9, 10)], 3, 0.7, 0.3) == 1  # only the last 3 count
    assert adaptive_move([(1, 2), (0, 8)], 2, 0.7, 0.3) == -1  # 1/10 (a mean of step means would say 0.25)
    assert adaptive_move([(8, 8), (1, 2)], 2, 0.7, 0.3) == 1  # 9/10 (the mean of step means: 0.75)


def test_adaptive_levels_by_hand():
    """Window 2, up 0.7, down 0.3, levels 2/3/4; each step 10 responses. The logged level is the step's."""
    schedule = AdaptiveSchedule.build(_records({3: 4, 2: 4, 4: 4}), batch_size=2, epochs=1, seed=0, window=2)
    solved = [10, 8, 10, 10, 10, 10, 0, 0, 5, 5, 0, 0, 0, 10, 10, 10]
    levels, rolling = [], []
    for step, s in enumerate(solved):
        assert {people_of(r) for r in schedule.batch(step)} == {schedule.level}
        logged = schedule.observe(s, 10)
        levels.append(logged["curriculum/level"])
        rolling.append(logged["curriculum/rolling_acc"])
    # 2,2 (0.9: up) 3,3 (up) 4,4 (1.0 at the top: stay, window rolls) 4 (0.5) 4 (0.0: down) 3,3 (0.5) 3 (0.25: down)
    # 2,2 (0.0 at the bottom: stay) 2 (0.5) 2 (1.0: up) 3
    assert levels == [2, 2, 3, 3, 4, 4, 4, 4, 3, 3, 3, 2, 2, 2, 2, 3]
    assert rolling == [1.0, 0.9, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0, 0.5, 0.5, 0.25, 0.0, 0.0, 0.5, 1.0, 1.0]
    assert schedule.cursors == {2: 6, 3: 6, 4: 4} and schedule.level == 3 and schedule.window == [(10, 10)]


def test_adaptive_never_leaves_the_range_and_thresholds_are_settings():
    schedule = AdaptiveSchedule.build(_records({2: 4, 3: 4}), batch_size=2, epochs=1, seed=0, window=1)
    assert [schedule.observe(0, 4)["curriculum/level"] for _ in range(3)] == [2, 2, 2]
    assert [schedule.observe(4, 4)["curriculum/level"] for _ in range(3)] == [2, 3, 3]
    strict = AdaptiveSchedule.build(_records({2: 4, 3: 4}), batch_size=2, epochs=1, seed=0, window=1, up=0.9)
    assert [strict.observe(7, 8)["curriculum/level"] for _ in range(2)] == [2, 2]  # 0.875 < 0.9


def test_adaptive_levels_give_the_curriculum_passes_and_a_revisit_continues():
    records = _records({2: 4, 3: 6})
    schedule = AdaptiveSchedule.build(records, batch_size=2, epochs=1, seed=5, window=1)
    curriculum = PromptSchedule.build(records, schedule="curriculum", batch_size=2, epochs=3, seed=5)
    two = [curriculum.batch(s) for s in range(6)]  # 2 people: passes 0, 1, 2 of 2 batches each
    three = [curriculum.batch(s) for s in range(6, 15)]
    got = []
    for solved in (0, 10, 0, 10, 10, 5, 5):  # levels 2 2 3 2 3 3 3
        got.append(schedule.batch(len(got)))
        schedule.observe(solved, 10)
    assert got == [two[0], two[1], three[0], two[2], three[1], three[2], three[3]]
    assert sorted(r["id"] for r in two[0] + two[1]) == sorted(r["id"] for r in records if r["n_people"] == 2)
    assert len(schedule) == 2 + 3  # one pass of each level (epochs=1)
    assert len(AdaptiveSchedule.build(records, batch_size=2, epochs=2, seed=5, steps=9)) == 9


def test_adaptive_state_restores_the_next_batches_and_survives_torch_save(tmp_path):
    import torch

    records = _records({2: 6, 3: 6})
    a = AdaptiveSchedule.build(records, batch_size=2, epochs=1, seed=1, window=2)
    for solved in (9, 9, 4):  # up after step 2, then a step at 3 people: a window half full
        a.batch(0)
        a.observe(solved, 10)
    torch.save({"schedule": a.state_dict()}, tmp_path / "state.pt")
    b = AdaptiveSchedule.build(records, batch_size=2, epochs=1, seed=1, window=2)
    b.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True)["schedule"])
    assert (b.level, b.window, b.cursors) == (a.level, a.window, a.cursors) == (3, [(4, 10)], {2: 2, 3: 1})
    for solved in (0, 0, 10, 10, 3):
        assert a.batch(0) == b.batch(0) and a.extra_batch(7, 1, 2, 0) == b.extra_batch(7, 1, 2, 0)
        assert a.observe(solved, 10) == b.observe(solved, 10)
    assert {people_of(r) for r in a.extra_batch(7, 1, 5, 0)} == {a.level}


def test_adaptive_fingerprint_covers_the_pool_and_settings_not_the_state():
    records = _records({2: 4, 3: 4})
    a = AdaptiveSchedule.build(records, batch_size=2, epochs=1, seed=0)
    before = a.fingerprint()
    a.observe(10, 10)
    assert a.fingerprint(1) == before == AdaptiveSchedule.build(records, batch_size=2, epochs=1, seed=0).fingerprint()
    changed = [dict(r, id=r["id"] + "x") if r["id"] == "3-0" else r for r in records]
    others = [AdaptiveSchedule.build(changed, batch_size=2, epochs=1, seed=0),
              AdaptiveSchedule.build(records, batch_size=2, epochs=1, seed=1),
              AdaptiveSchedule.build(records, batch_size=2, epochs=1, seed=0, up=0.8)]
    assert all(o.fingerprint() != before for o in others)


def test_adaptive_is_built_through_prompt_schedule_and_checks_every_level_fills_a_batch():
    built = PromptSchedule.build(_records({2: 4, 3: 4}), schedule="adaptive", batch_size=2, epochs=1, seed=0,
                                 adaptive={"up": 0.8, "down": 0.1, "window": 3})
    assert isinstance(built, AdaptiveSchedule) and (built.up, built.down, built.window_size) == (0.8, 0.1, 3)
    with pytest.raises(DataError, match=r"needs a batch of 4 puzzles at every level \(3 people: 3\)"):
        PromptSchedule.build(_records({2: 4, 3: 3}), schedule="adaptive", batch_size=4, epochs=1, seed=0)


@pytest.mark.parametrize("overrides, message", [
    (["data.adaptive.down=0.7"], r"^data.adaptive: down=0.7 must be below up=0.7$"),
    (["data.adaptive.up=1.5"], r"^data.adaptive.up: Input should be less than or equal to 1"),
    (["data.adaptive.window=0"], r"^data.adaptive.window: Input should be greater than or equal to 1"),
    (["data.schedule=adaptive", "algorithm.reference=stage_start"], r"^config: .*data.schedule=adaptive .*drop them$"),
    (["data.schedule=adaptive", "optim.stage_reset=true"], r"^config: algorithm.reference=stage_start and optim"),
])
def test_adaptive_settings_are_checked_in_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(TrainConfig, None, overrides)
    assert load_config(TrainConfig, None, ["data.schedule=adaptive"]).data.adaptive.window == 10


@pytest.mark.parametrize("steps", [None, 4])
def test_a_curriculum_level_too_small_for_one_batch_is_refused(steps):
    """12 two-person puzzles and 3 three-person ones, batches of 4: without ``steps`` the 3-person stage had no
    batch and was skipped without a word; with ``steps`` the loop topping up the last stage never ended."""
    with pytest.raises(DataError, match=r"^data.schedule=curriculum needs a batch of 4 puzzles at every level "
                                        r"\(3 people: 3\)"):
        PromptSchedule.build(_records({2: 12, 3: 3}), schedule="curriculum", batch_size=4, epochs=1, seed=0,
                             steps=steps)
    built = PromptSchedule.build(_records({2: 12, 3: 4}), schedule="curriculum", batch_size=4, epochs=1, seed=0,
                                 steps=steps)
    assert built.stage_starts == (1, 4)
