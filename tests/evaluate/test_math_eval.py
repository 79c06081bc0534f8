"""`logicrl eval math` end to end: problem files in every supported form, one-line errors before any model
loads, the paper preset and prompt styles, hand-written samples rescored without a model (accuracy, pass@k,
maj@k, format, the substring column and the paired difference computed by hand), the local backend (tiny
model: the prompt it gets, every response checked) and the OpenAI-compatible endpoint (a scripted loopback
server).

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/evaluate/test_math_eval.py -q
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from logicrl.cli import app
from logicrl.cli.eval import check_same_eval_command
from logicrl.errors import DataError
from logicrl.evaluate.compare import paired_interval
from logicrl.evaluate.config import EvalConfig
from logicrl.evaluate.math_check import STATUSES, extract_answer
from logicrl.evaluate.math_data import load_math_file, load_math_problems
from logicrl.evaluate.math_eval import BOXED_PROMPT, LOGIC_RL_MATH_PROMPT, MathEvalConfig
from logicrl.io import write_jsonl, write_parquet
from logicrl.prompts import prompt_text

runner = CliRunner()
THINK = " Let me compute this carefully, step by step.</think>"

# The project's own problems, one per answer form the checker handles (integer with a leading zero,
# fraction, interval, set, expression).
PROBLEMS = [
    {"id": "a1", "problem": "What is 90 + 7?", "answer": "97", "source": "AIME", "year": 2024},
    {"id": "a2", "problem": "What is 1 divided by 2?", "answer": "\\frac{1}{2}", "source": "AIME",
     "year": 2024},
    {"id": "a3", "problem": "What is 6 times 7? Give three digits.", "answer": "042", "source": "AIME",
     "year": 2023},
    {"id": "b1", "problem": "Solve 1 <= x < 2.", "answer": "[1,2)", "source": "AMC", "year": 2023},
]
# Hand-written responses of model "m" (3 samples each) and "n" (1 sample each), by problem.
M_RESPONSES = {
    "a1": [f"{THINK}<answer>097</answer>", f"{THINK}<answer>197</answer>", f"{THINK}<answer>97</answer>"],
    "a2": ["so \\boxed{0.5}", "so \\boxed{0.25}", "so \\boxed{\\frac{1}{4}}"],
    "a3": [f"{THINK}<answer>42</answer>"] * 3,
    "b1": [f"{THINK}<answer>(1,2)</answer>"] * 2 + [f"{THINK}<answer>[1,2)</answer>"],
}
N_RESPONSES = {"a1": ["<answer>98</answer>"], "a2": ["\\boxed{2}"], "a3": [f"{THINK}<answer>042</answer>"],
               "b1": [f"{THINK}<answer>[1, 2)</answer>"]}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture()
def problems(tmp_path: Path) -> Path:
    path = tmp_path / "mini.jsonl"
    write_jsonl(path, PROBLEMS)
    return path


def saved_samples(out: Path, label: str, responses: dict[str, list[str]]) -> None:
    """A sample file as a run would leave it (only the fields rescoring reads)."""
    rows = [{"model": label, "id": f"mini:{pid}", "sample": j, "response": text, "length": 10 + j,
             "truncated": False, "prefilled_think": True}
            for pid, texts in responses.items() for j, text in enumerate(texts)]
    write_jsonl(out / "samples" / f"{label}.jsonl", rows)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The real console entry point in a subprocess (what a user's shell sees)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", "from logicrl.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=120, env=env)


# ---- problem files ----------------------------------------------------------------------------------------


def test_files_in_every_form_and_field_spelling(tmp_path: Path) -> None:
    (tmp_path / "aime24.json").write_text(json.dumps(
        {"data": [{"ID": "2024-I-1", "Problem": "p1", "Answer": 204, "year": 2024}]}))
    write_parquet(tmp_path / "amc.parquet", [{"question": "p2", "final_answer": "\\frac12", "source": "AMC"}])
    write_jsonl(tmp_path / "math500.jsonl", [
        {"unique_id": "u/1", "problem": "p3", "solution": "so \\boxed{5} no, \\boxed{\\{1,2\\}}"},
        {"problem": "p4", "answer": " 7 ", "solution": "long text"}])
    lines = '{"problem": "p5", "answer": "1", "year": 2025.0}\n{"problem": "p6", "answer": "2"}\n'
    (tmp_path / "lines.json").write_text(lines)
    files = [tmp_path / n for n in ("aime24.json", "amc.parquet", "math500.jsonl", "lines.json")]
    records = load_math_problems(files)
    assert [(r["id"], r["quiz"], r["answer"], r["group"]) for r in records] == [
        ("aime24:2024-I-1", "p1", "204", "aime24 2024"), ("amc:0", "p2", "\\frac12", "AMC"),
        ("math500:u/1", "p3", "\\{1,2\\}", "math500"), ("math500:1", "p4", "7", "math500"),
        ("lines:0", "p5", "1", "lines 2025"), ("lines:1", "p6", "2", "lines")]  # a float year (pandas) as an int


def test_limit_is_per_source_and_year(problems: Path) -> None:
    assert [r["id"] for r in load_math_problems([problems], limit=1)] == ["mini:a1", "mini:a3", "mini:b1"]


@pytest.mark.parametrize(("rows", "message"), [
    ([{"prompt": "x", "label": "2"}],
     r"no usable problem \(problem/question\) field \(fields found: prompt, label\)"),
    ([{"question": "x", "id": 3}], r"no usable answer \(answer/final_answer/solution\) field \(fields found: "
                                   r"question, id\)"),
    ([{"question": "x", "answer": "  "}],
     r"bad.jsonl:1: its 'answer' field is empty \(null or blank\): give every row its answer, or leave the row out"),
    ([{"question": "x", "answer": 1}, {"Question": None, "answer": 2}], r"bad.jsonl:2: its 'Question' field is empty"),
    ([{"question": "x", "answer": ["1", "2"]}], r"bad.jsonl:1: its 'answer' field is a list: give the answer as one"),
    ([{"question": "x", "solution": "no box"}], r"'solution' field holds no \\boxed\{\} answer"),
    ([{"problem": "x", "answer": 1, "id": 5}, {"problem": "y", "answer": 2, "id": 5}],
     r"id '5' is already used"),
    ([], "no problems in the file"),
])
def test_bad_files_are_data_errors(tmp_path: Path, rows: list[dict], message: str) -> None:
    write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=message):
        load_math_problems([tmp_path / "bad.jsonl"])


def test_unsupported_and_clashing_files(tmp_path: Path, problems: Path) -> None:
    (tmp_path / "p.csv").write_text("problem,answer\n")
    with pytest.raises(DataError, match=r"unsupported file type \(use .jsonl, .json, .parquet\)"):
        load_math_problems([tmp_path / "p.csv"])
    (tmp_path / "sub").mkdir()
    write_jsonl(tmp_path / "sub" / "mini.jsonl", PROBLEMS)
    with pytest.raises(DataError, match="have the same name"):
        load_math_problems([problems, tmp_path / "sub" / "mini.jsonl"])


def test_bad_file_is_one_line_before_any_model_loads(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "bad.jsonl", [{"question": "x", "label": "2"}])
    result = run_cli("eval", "math", "-m", "no-such-model-anywhere", "--data", str(tmp_path / "bad.jsonl"),
                     "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'bad.jsonl'}:1: no usable answer (answer/final_answer/solution) field "
        "(fields found: question, label)"]
    assert not (tmp_path / "out").exists()


def test_eval_and_eval_math_refuse_each_others_folders(tmp_path: Path, problems: Path, puzzle_dir: Path) -> None:
    """Both write results.json: a math eval into a puzzle eval's --out replaced its tables and mixed the samples."""
    puzzle, math = tmp_path / "puzzle", tmp_path / "math"
    for folder, config in ((puzzle, EvalConfig()), (math, MathEvalConfig())):
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps({"config": config.model_dump(), "models": {}}))
        check_same_eval_command(folder, config)  # its own kind: a rerun into the same --out
    result = run_cli("eval", "math", "-m", "tiny-random", "--data", str(problems), "--out", str(puzzle))
    assert result.returncode == 2 and result.stderr == (
        f"error: --out {puzzle} holds an evaluation by `logicrl eval` (results.json): its files would be "
        "overwritten or mixed with these; choose another --out\n")
    result = run_cli("eval", "-m", "tiny-random", "--data", str(puzzle_dir), "--out", str(math))
    assert result.returncode == 2 and "holds an evaluation by `logicrl eval math` (results.json)" in result.stderr
    assert sorted(p.name for p in puzzle.iterdir()) == sorted(p.name for p in math.iterdir()) == ["results.json"]


# ---- config -----------------------------------------------------------------------------------------------


def test_paper_preset_fills_only_what_is_not_given() -> None:
    paper = MathEvalConfig(preset="paper")
    assert (paper.temperature, paper.top_p, paper.max_tokens, paper.samples) == (0.8, 0.95, 10000, 1)
    mine = MathEvalConfig(preset="paper", temperature=0.6, samples=4)
    assert (mine.temperature, mine.top_p, mine.max_tokens, mine.samples) == (0.6, 0.95, 10000, 4)
    assert MathEvalConfig().greedy and MathEvalConfig().max_tokens == 1024


def test_prompt_styles() -> None:
    tags = MathEvalConfig()
    assert (tags.prompt.system_prompt, tags.prompt.prefill) == (LOGIC_RL_MATH_PROMPT, "<think>")
    assert LOGIC_RL_MATH_PROMPT.startswith("The user asks a question, and the Assistant solves it.")
    assert "<answer> </answer>" in LOGIC_RL_MATH_PROMPT and "knight" not in LOGIC_RL_MATH_PROMPT
    boxed = MathEvalConfig(prompt_style="boxed", prompt={"template": "plain"})
    prompt = boxed.prompt
    assert (prompt.system_prompt, prompt.prefill, prompt.template) == (BOXED_PROMPT, "", "plain")
    assert MathEvalConfig(prompt={"system_prompt": "Mine."}).prompt.system_prompt == "Mine."


def test_bad_preset_is_a_config_error(problems: Path, tmp_path: Path) -> None:
    result = run_cli("eval", "math", "-m", "tiny-random", "--data", str(problems), "--preset", "fast",
                     "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stderr.startswith("error: preset: Input should be 'paper'")


# ---- rescoring hand-written samples ---------------------------------------------------------------------


def test_rescore_tables_by_hand(tmp_path: Path, problems: Path) -> None:
    """m, 3 samples: a1 right 2/3 (097, 97; 197 is wrong), a2 right 1/3 (0.5; 0.25 twice), a3 right 3/3
    (42 for 042), b1 right 1/3 ([1,2); (1,2) twice). AIME 2023 acc 1, AIME 2024 (2+1)/6 = 0.50, AMC 2023
    1/3; Avg. 0.61. pass@2: a1 1, a2 and b1 1 − C(2,2)/C(3,2) = 2/3, so AIME 2024 5/6. maj@3: a1 97 (097
    and 97 vote together), a2 1/4 (0.25 and \\frac14), a3 42, b1 (1,2): AIME 2024 0.50, AMC 0. Format
    (think/answer after the pre-fill): a2's boxes are not; AIME 2024 0.50. Substring: a1 3/3, a2 0/3, a3 0/3
    ("042" is not in "42"), b1 1/3."""
    out = tmp_path / "out"
    saved_samples(out, "m", M_RESPONSES)
    result = runner.invoke(app, ["eval", "math", "--rescore", "--data", str(problems), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = (out / "table.md").read_text()
    assert "| Model | AIME 2023 | AIME 2024 | AMC 2023 | Avg. | Format | Length |" in table
    assert "| m | 1.00 | 0.50 | 0.33 | 0.61 | 0.83 | 11 |" in table
    assert "| m | 0.67 | 0.33 | 0.50 | 0.83 | 11 |" in table  # by source: AIME (2+1+3)/9, AMC 1/3
    assert "| m | 0.33 | 0.33 | 0.33 |" in table  # substring by source: AIME 3/9, AMC 1/3
    summary = json.loads((out / "results.json").read_text())["models"]["m"]
    group = summary["by_group"]
    assert group["AIME 2024"]["pass@2"] == pytest.approx(5 / 6)
    assert group["AMC 2023"]["pass@2"] == pytest.approx(2 / 3)
    assert group["AIME 2024"]["pass@3"] == 1.0 and group["AIME 2024"]["maj@3"] == 0.5
    assert group["AMC 2023"]["maj@3"] == 0.0 and group["AIME 2023"]["maj@3"] == 1.0
    assert group["AIME 2024"]["puzzles"] == 2 and group["AIME 2024"]["n"] == 6
    assert summary["by_source"]["AIME"]["acc"] == pytest.approx(6 / 9)
    assert summary["checker"]["checked"] == 12 and summary["checker"]["timeouts"] == 0
    rows = [json.loads(line) for line in (out / "samples" / "m.jsonl").read_text().splitlines()]
    wrong = rows[1]
    assert (wrong["answer"], wrong["check"], wrong["solved"]) == ("197", "wrong", False)
    assert wrong["substring"] is True
    assert [r["vote"] for r in rows[3:6]] == ["1/2", "1/4", "1/4"]
    assert "model,metric,AIME 2023,AIME 2024,AMC 2023,avg" in (out / "table.csv").read_text()
    # no record of how the samples were made (no earlier results.json): no generation settings are claimed
    config = json.loads((out / "results.json").read_text())["config"]
    assert config["prompt_style"] == "logic-rl" and "max_tokens" not in config and "samples" not in config


def test_rescore_two_models_paired_difference(tmp_path: Path, problems: Path) -> None:
    """First samples, m → n: AIME a1 1→0, a2 1→0, a3 1→1: Δ = −2/3; AMC b1 0→1: +1; all: −1/4."""
    out = tmp_path / "out"
    saved_samples(out, "m", M_RESPONSES)
    saved_samples(out, "n", N_RESPONSES)
    result = runner.invoke(app, ["eval", "math", "--rescore", "--data", str(problems), "--out", str(out),
                                 "-m", "m", "-m", "n"])
    assert result.exit_code == 0, result.output
    solved = json.loads((out / "compare.json").read_text())["n vs m"]["solved"]
    assert solved["AIME"]["delta"] == pytest.approx(-2 / 3) and solved["AIME"]["n"] == 3
    assert solved["AMC"]["delta"] == 1.0  # one problem: a wide interval, from the 2×2 table (0, 0, 1, 0)
    assert (solved["AMC"]["low"], solved["AMC"]["high"]) == (pytest.approx(paired_interval(0, 0, 1, 0)[0]), 1.0)
    assert solved["all"]["delta"] == -0.25
    assert solved["all"]["low"] < -0.25 < solved["all"]["high"]
    assert "Paired difference vs m" in (out / "table.md").read_text()


def test_rescore_judges_the_format_by_the_style_the_samples_were_made_with(tmp_path: Path, problems: Path) -> None:
    """Samples made with --prompt boxed (their generation record says so), boxed answers: format 1.00 on a
    rescore without --prompt, whose default style (logic-rl) would call every one of them malformed; results.json
    records the style they were made with, and a --limit given to the rescore is not used, and says so."""
    out = tmp_path / "out"
    saved_samples(out, "m", {"a1": ["so \\boxed{97}"], "a3": ["\\boxed{42}"]})
    (out / "samples" / "m.generation.json").write_text(json.dumps({"model": "m", "settings": {
        "prompt_style": "boxed", "samples": 1}}))
    result = run_cli("eval", "math", "--rescore", "--data", str(problems), "--out", str(out), "--limit", "1")
    assert result.returncode == 0, result.stderr
    assert "limit=1 not used" in result.stderr
    summary = json.loads((out / "results.json").read_text())
    assert summary["models"]["m"]["by_group"]["AIME 2023"]["format_ok"] == 1.0
    assert summary["models"]["m"]["by_group"]["AIME 2023"]["acc"] == 1.0
    assert summary["config"]["prompt_style"] == "boxed" and summary["config"]["limit"] is None


def test_rescore_refuses_rows_of_unknown_problems(tmp_path: Path, problems: Path) -> None:
    out = tmp_path / "out"
    saved_samples(out, "m", {"zz": ["\\boxed{1}"]})
    result = runner.invoke(app, ["eval", "math", "--rescore", "--data", str(problems), "--out", str(out)])
    assert result.exit_code != 0
    assert isinstance(result.exception, DataError)
    assert "'mini:zz' is not in the data given" in str(result.exception)


# ---- generation: local backend and endpoint --------------------------------------------------------------


def test_tiny_model_end_to_end(tmp_path: Path, problems: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The local backend: the math instruction and the <think> pre-fill reach the model, and every sample it
    wrote is checked (k = 2 sampled responses, random words from the tiny model)."""
    from logicrl.evaluate import scoring

    prompts: list[str] = []

    def spy(records, tokenizer, config):
        prompts.extend(prompt_text(str(r["quiz"]), tokenizer, config) for r in records)
        return real(records, tokenizer, config)

    real = scoring.encode_prompts
    monkeypatch.setattr(scoring, "encode_prompts", spy)
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", "math", "-m", "tiny-random", "--data", str(problems),
                                 "--out", str(out), "--device", "cpu", "--max-tokens", "4", "-k", "2",
                                 "--temperature", "1.0", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert len(prompts) == 3 and all("solve a math problem" in p and p.endswith("<think>") for p in prompts)
    asked = [p["id"] for p in PROBLEMS if any(p["problem"] in text for text in prompts)]
    assert asked == ["a1", "a3", "b1"]  # --limit 1: the first problem of each source and year
    rows = [json.loads(line) for line in (out / "samples" / "tiny-random.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 3 and all(r["length"] <= 4 and r["prefilled_think"] for r in rows)
    for row in rows:  # each response went through the checker
        assert (row["check"] == "no_answer") == (not extract_answer(row["response"]).candidates)
        assert row["solved"] == (row["check"] == "correct") and row["check"] in STATUSES
    summary = json.loads((out / "results.json").read_text())
    assert summary["config"]["temperature"] == 1.0 and summary["config"]["prompt_style"] == "logic-rl"
    assert "maj@2" in summary["models"]["tiny-random"]["by_group"]["AMC 2023"]
    made = json.loads((out / "samples" / "tiny-random.generation.json").read_text())["settings"]
    assert (made["samples"], made["temperature"], made["max_tokens"]) == (2, 1.0, 4)
    assert "checked" in result.output and "Math accuracy by source and year" in result.output


class _Chat(BaseHTTPRequestHandler):
    """A loopback chat-completions server: answers from ``replies`` (problem -> text), records bodies."""

    replies: dict[str, str] = {}
    bodies: list[dict] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append(body)
        text = self.replies[body["messages"][-1]["content"]]
        data = json.dumps({"choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                           "usage": {"completion_tokens": 5}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_endpoint_with_the_boxed_prompt(tmp_path: Path, problems: Path) -> None:
    texts = ["It is \\boxed{97}.", "\\boxed{\\dfrac{1}{2}}", "\\boxed{43}",
             "\\boxed{[1,2)} or \\boxed{[1,3)}"]
    _Chat.replies = {p["problem"]: text for p, text in zip(PROBLEMS, texts, strict=True)}
    _Chat.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Chat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = tmp_path / "out"
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        result = runner.invoke(app, ["eval", "math", "-m", "served", "--data", str(problems),
                                     "--out", str(out), "--endpoint", url, "--prompt", "boxed",
                                     "--preset", "paper"])
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, result.output
    body = _Chat.bodies[0]
    assert body["messages"][0] == {"role": "system", "content": BOXED_PROMPT}
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.8, 0.95, 10000)
    rows = {r["id"]: r for r in map(json.loads, (out / "samples" / "served.jsonl").read_text().splitlines())}
    assert [rows[f"mini:{p['id']}"]["check"] for p in PROBLEMS] == ["correct", "correct", "wrong", "multiple"]
    assert all(r["format_ok"] and not r["prefilled_think"] and r["length"] == 5 for r in rows.values())


def test_a_json_object_with_two_lists_is_one_problem(tmp_path: Path) -> None:
    """An object whose lists are fields (tags, choices), not a list of problems, is one problem."""
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"problem": "1+1?", "answer": "2", "tags": ["x"], "choices": ["1", "2"]}))
    assert [(r["quiz"], r["answer"]) for r in load_math_file(path)] == [("1+1?", "2")]


def test_a_solution_field_in_any_case_gives_its_boxed_answer(tmp_path: Path) -> None:
    """"Solution" (capitalised) is the solution field: its last box, 4, is the answer."""
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"Problem": "p", "Solution": "so \\boxed{4}"}) + "\n")
    assert load_math_file(path)[0]["answer"] == "4"


def test_the_same_file_given_twice_is_read_once(tmp_path: Path) -> None:
    """A file named twice is one source: no name clash, and its problems once."""
    path = tmp_path / "aime.jsonl"
    path.write_text("".join(json.dumps({"problem": f"q{i}", "answer": str(i)}) + "\n" for i in range(3)))
    assert load_math_problems([path, path]) == load_math_problems([path])
    assert len(load_math_problems([path])) == 3
