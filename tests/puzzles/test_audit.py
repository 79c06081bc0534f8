"""The audit of a reasoning-by-cases trace (puzzles/audit.py) on hand-made responses, and what is built on it: the
eval summary (analysis/cases.py) and the trainer's trace shaping (rl/shaping.py; in the RL loop:
tests/rl/test_trainer.py)."""

from __future__ import annotations

import json
import re

import pytest

from logicrl.analysis.cases import audit_summary
from logicrl.prompts import PromptConfig, response_target
from logicrl.puzzles.audit import audit_cases, last_case
from logicrl.puzzles.logic import statements_from_json
from logicrl.puzzles.names import Roles
from logicrl.puzzles.record import Puzzle
from logicrl.rl.shaping import (
    check_line_credit,
    first_difference,
    token_texts,
    trace_answer_shaping,
    trace_check_shaping,
)

# Zoey: "Oliver is a knave"; Oliver: "Zoey is a knave and Oliver is a knave" (solution: Zoey knight, Oliver knave)
PUZZLE = Puzzle(names=("Zoey", "Oliver"), roles=Roles(), solution=(True, False), seed=0, order=(0, 1), depth=2, width=2,
                statements=statements_from_json([["lying", 1], ["and", ["lying", 0], ["lying", 1]]]))
RECORD = PUZZLE.to_record(0)


def test_the_template_trace_is_all_right() -> None:
    counts = audit_cases(response_target(RECORD, PromptConfig(), "cases"), RECORD)
    assert counts == {"cases": 2, "cases_in_order": 2, "checks": 3, "truth_right": 3, "verdict_right": 3,
                      "role_right": 3, "checks_right": 3}


HAND_MADE = "\n".join([
    "Case 1: Zoey knight, Oliver knight.",
    "Zoey, a knight, says Oliver is a knave: true. OK.",            # truth wrong (false), verdict wrong
    "Case 3: Zoey knight, Oliver knave.",                            # number 3 is not this case: out of order
    "Zoey, a knight, says Oliver is a knave: true. Contradiction.",  # truth right, verdict wrong
    "Oliver, a knave, says Zoey is a knave (false) and Oliver is a knave (true): false. OK.",  # both right
    "Bob, a knave, says nothing: false. OK.",                        # not a person of the puzzle
    "so the answer is clear.",                                       # ignored
])


def test_wrong_truth_wrong_verdict_and_skipped_cases_by_hand() -> None:
    assert audit_cases(HAND_MADE, RECORD) == {"cases": 2, "cases_in_order": 1, "checks": 4, "truth_right": 2,
                                              "verdict_right": 1, "role_right": 3, "checks_right": 1}


def test_a_case_line_whose_checks_use_other_roles() -> None:
    """The trace names case 3 (Zoey knave, Oliver knight) and checks the roles of case 4 (both knaves): the role
    words are wrong for the named case, and the truth values are judged under the named case."""
    skipped = "\n".join([
        "Case 3: Zoey knave, Oliver knight.",
        "Zoey, a knave, says Oliver is a knave: false. OK.",  # role right; truth right (Oliver is a knight here)
        "Oliver, a knave, says Zoey is a knave (true) and Oliver is a knave (true): true. Contradiction.",  # role wrong
    ])
    counts = audit_cases(skipped, RECORD)
    assert (counts["checks"], counts["role_right"], counts["truth_right"]) == (2, 1, 1)
    summary = audit_summary([{"id": RECORD["id"], "response": skipped}], {RECORD["id"]: RECORD})
    assert summary["role_acc"] == 0.5 and summary["truth_acc"] == 0.5


def test_summary_pools_rows() -> None:
    good = response_target(RECORD, PromptConfig(), "cases")
    rows = [{"id": RECORD["id"], "response": good}, {"id": RECORD["id"], "response": "Case 1: Zoey knight."}]
    summary = audit_summary(rows, {RECORD["id"]: json.loads(json.dumps(RECORD))})
    assert summary["responses"] == 2 and summary["checks_per_response"] == 1.5
    assert summary["check_acc"] == 1.0 and summary["cases_in_order"] == 2 / 3  # the cast without Oliver is no case


def test_trace_check_shaping_by_hand() -> None:
    perfect = response_target(RECORD, PromptConfig(), "cases")
    shaping = trace_check_shaping([perfect, HAND_MADE, "Zoey is a knight.</think>"], [RECORD] * 3, 0.5)
    assert shaping.tolist() == pytest.approx([0.0, 0.5 * (1 / 4 - 1), -0.5])  # 1 of 4 checks right; no check
    assert trace_check_shaping([HAND_MADE], [RECORD], 0.0).tolist() == [0.0]
    with pytest.raises(ValueError, match="2 responses for 1 records"):
        trace_check_shaping([perfect, perfect], [RECORD], 1.0)


def test_check_line_credit_by_hand() -> None:
    assert (first_difference("abc", "abd"), first_difference("ab", "abc"), first_difference("ab", "ab")) == (2, 2, 2)
    lines = HAND_MADE.split("\n")
    pieces = [piece for line in lines for piece in (line[:10], line[10:] + "\n")]  # two tokens a line
    pieces[-1] = pieces[-1].rstrip("\n")
    credit, shares = check_line_credit([pieces, ["?"]], [RECORD, RECORD], 0.5, width=len(pieces) + 1)
    # case; check wrong in its 2nd token ("true" for "false"); case; check wrong in its 2nd token ("Contradiction"
    # for "OK"); check right; a stranger's check (wrong from its first character); other text
    expected = [0, 0, 0.5, -0.5, 0, 0, 0.5, -0.5, 0.5, 0.5, -0.5, 0, 0, 0, 0]
    assert credit[0].tolist() == expected
    assert credit[1].tolist() == [0.0] * (len(pieces) + 1) and shares == [1 / 4, 0.0]  # "?": no line is right
    perfect = response_target(RECORD, PromptConfig(), "cases")
    credit, shares = check_line_credit([list(perfect)], [RECORD], 1.0, width=len(perfect))  # one char a token
    assert set(credit[0].tolist()) == {0.0, 1.0} and shares == [1.0]
    slip = perfect.replace(": true. OK.", ": false. OK.", 1)  # one char a token: exactly the "f" is pushed down
    credit, _ = check_line_credit([list(slip)], [RECORD], 1.0, width=len(slip))
    assert credit[0].tolist().count(-1.0) == 1 and slip[credit[0].tolist().index(-1.0)] == "f"
    with pytest.raises(ValueError, match="1 responses for 2 records"):
        check_line_credit([pieces], [RECORD, RECORD], 1.0, width=3)


def test_check_line_credit_pays_a_repeated_line_once() -> None:
    """A loop of right check lines under one case earns one line's credit; the same line under another case
    line is paid again (two cases can share a check line's text)."""
    right = "Oliver, a knave, says Zoey is a knave (false) and Oliver is a knave (true): false. OK."
    case = "Case 2: Zoey knight, Oliver knave."
    lines = [case, right, right, right, case.replace("Case 2", "Case 4"), right]
    pieces = [line + "\n" for line in lines]  # one token a line
    credit, shares = check_line_credit([pieces], [RECORD], 1.0, width=len(pieces))
    assert credit[0].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0, 1.0] and shares == [1.0]


def test_trace_answer_shaping_by_hand() -> None:
    """The answer must be the last case line's assignment: the template trace's is; a trace that names case 3
    and answers case 4 loses w although its answer is right; no case line or no parsed answer: left alone."""
    perfect = response_target(RECORD, PromptConfig(), "cases")
    puzzle = Puzzle.from_record(RECORD)
    assert last_case(perfect, puzzle) == (True, False) and last_case("no cases here", puzzle) is None
    assert last_case(HAND_MADE, puzzle) == (True, False)  # "Case 3: Zoey knight, Oliver knave." is the last
    right = {"Zoey": "knight", "Oliver": "knave"}
    skipped = "Case 3: Zoey knave, Oliver knight.\nZoey, a knight, says Oliver is a knave: true. OK."
    shaping = trace_answer_shaping([perfect, skipped, "Zoey is a knight.", perfect, perfect],
                                   [right, right, {"Zoey": "knave", "Oliver": "knave"}, None, {"Zoey": "knight"}],
                                   [RECORD] * 5, 0.5)
    assert shaping.tolist() == [0.0, -0.5, 0.0, 0.0, 0.0]  # a partial answer is the reward's business
    assert trace_answer_shaping([skipped], [{"Zoey": "knave", "Oliver": "knight"}], [RECORD], 0.5).tolist() == [0.0]
    with pytest.raises(ValueError, match="2 responses, 1 answers for 1 records"):
        trace_answer_shaping([perfect, perfect], [right], [RECORD], 1.0)


def test_cases_in_order_is_a_share_of_the_cases() -> None:
    """The cases template trace lists every case in order: cases_in_order is 1 (of the cases, not the checks)."""
    response = response_target(RECORD, PromptConfig(), trace="cases")
    counts = audit_cases(response, RECORD)
    assert counts["cases"] != counts["checks"]
    assert audit_summary([{"id": RECORD["id"], "response": response}], {RECORD["id"]: RECORD})["cases_in_order"] == 1.0


def sentencepiece_decode(vocab: list[str]):
    """A SentencePiece-style decoder: ``▁`` is a space, and the text's first space is dropped (Metaspace with
    ``prepend_scheme``), so ``decode([▁says])`` is ``says`` alone but `` says`` after another token."""
    return lambda ids: "".join(vocab[i] for i in ids).replace("▁", " ").removeprefix(" ")


def byte_decode(vocab: list[bytes]):
    """A byte-level decoder: a character split over tokens decodes as U+FFFD until its last byte comes."""
    return lambda ids: b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


def test_token_texts_join_to_the_decoded_text() -> None:
    words = ["▁Zoë", "▁says", "▁Oliver", "▁is", "▁a", "▁knight", "."]
    sp = sentencepiece_decode(words)
    ids = list(range(len(words)))
    assert [sp([i]) for i in ids][:3] == ["Zoë", "says", "Oliver"]  # alone: the spaces are gone
    assert token_texts(sp, ids) == ["Zoë", " says", " Oliver", " is", " a", " knight", "."]
    chunks = [b"Zo", "ë".encode()[:1], "ë".encode()[1:], b" says"]  # "ë" split over two byte tokens
    bl = byte_decode(chunks)
    assert bl([1]) == "\ufffd" and token_texts(bl, [0, 1, 2, 3]) == ["Zo", "", "ë", " says"]
    assert "".join(token_texts(bl, [0, 1, 2, 3])) == bl([0, 1, 2, 3]) == "Zoë says"


def test_check_line_credit_reads_sentencepiece_tokens_in_context() -> None:
    """Check-line credit read each token decoded alone: under a SentencePiece tokenizer (Llama 2, Mistral) the
    lines lost their spaces, none matched, and the credit was 0 with no warning."""
    perfect = response_target(RECORD, PromptConfig(), "cases")
    words = [w.replace(" ", "▁") for w in re.findall(r" ?[^ \n]+|\n| ", perfect)]  # a word keeps its space as ▁
    decode = sentencepiece_decode(words)
    ids = list(range(len(words)))
    assert decode(ids) == perfect.removeprefix(" ")  # the text's first space dropped, as SentencePiece does
    alone, _ = check_line_credit([[decode([i]) for i in ids]], [RECORD], 1.0, width=len(ids))
    pieces = token_texts(decode, ids)
    credit, shares = check_line_credit([pieces], [RECORD], 1.0, width=len(ids))
    assert not alone.any() and shares == [1.0] and int((credit > 0).sum()) > 10
