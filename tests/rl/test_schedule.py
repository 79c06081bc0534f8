"""PromptSchedule: curriculum/mixed order, drop-last, determinism, extra steps, fingerprint."""

from __future__ import annotations

import pytest

from logicrl.errors import DataError
from logicrl.rl.schedule import PromptSchedule, load_puzzles, people_of, validation_subset


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
    with pytest.raises(DataError, match=r"no test puzzles with \[7\] people"):
        load_puzzles(puzzle_dir, "test", [7])


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
    assert len(schedule.extra_batch(5, 1, 9, seed=0)) == 3  # stage 5 used 3 puzzles (one batch): at most those
