"""The report of the synthetic run (tests/analysis/conftest.py): numbers, files and the HTML page."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from logicrl.analysis.config import ReportConfig
from logicrl.analysis.report import build_report, write_report
from logicrl.analysis.run import Metrics
from logicrl.analysis.tables import metrics_table, pearson, val_people_table
from logicrl.reward.language import language_mixing

STEPS = PER_STEP = 10  # the synthetic run: 10 steps of 10 responses (conftest.py)


@pytest.fixture
def data(run_dir: Path):
    return build_report(run_dir, ReportConfig())


def by_key(rows: list[dict], key: str) -> dict[str, dict]:
    return {row[key]: row for row in rows}


def test_scope_and_bins(data) -> None:
    assert data.files_read == data.files_total == STEPS and data.bin_size == 1
    assert [b.first for b in data.bins] == list(range(1, STEPS + 1))
    assert data.summary()["responses"] == STEPS * PER_STEP


def test_thinking_word_counts_and_scores(data) -> None:
    words = by_key(data.tables["words"], "word")
    counts = {w: row["n_with"] for w, row in words.items()}
    assert counts == {"wait": 10, "verify": 0, "yet": 0, "re-evaluate": 5, "reevaluate": 0, "recheck": 10,
                      "check": 0, "think again": 10}
    wait = words["wait"]
    assert wait["n_without"] == 90 and wait["share"] == pytest.approx(0.1)
    assert wait["reward_with"] == 3.0 and wait["acc_with"] == 1.0
    # without "wait": 10 × 3 (recheck ones) + 5 × (−3) (mixed) + 75 × (−0.5)
    assert wait["reward_without"] == pytest.approx((30 - 15 - 37.5) / 90)
    assert wait["acc_without"] == pytest.approx(10 / 90)
    assert words["verify"]["reward_with"] is None and words["verify"]["reward_without"] == pytest.approx(
        (60 - 15 - 37.5) / 100)
    assert words["re-evaluate"]["first_share"] == 0.0
    assert words["re-evaluate"]["last_share"] == pytest.approx(0.1)


def test_language_mixing(data, synthetic) -> None:
    mixing = data.tables["mixing"]
    assert mixing["n_with"] == 5 and mixing["n_without"] == 95
    assert mixing["reward_with"] == -3.0 and mixing["reward_without"] == pytest.approx((60 - 37.5) / 95)
    assert mixing["first_share"] == 0.0 and mixing["last_share"] == pytest.approx(0.1)
    shares = [language_mixing(synthetic.response_row(step, 9)["response"]) for step in range(6, STEPS + 1)]
    assert all(0 < share < 0.2 for share in shares)
    assert mixing["mean_mixing"] == pytest.approx(sum(shares) / 100)


def test_behaviours_sudden_and_gradual(data) -> None:
    rows = by_key(data.tables["behaviours"], "behaviour")
    summary = rows["summary"]
    assert summary["n_with"] == 50 and summary["verdict"] == "sudden" and summary["aha_step"] == 6
    assert summary["rise"] == pytest.approx(1.0) and summary["jump"] == pytest.approx(1.0)
    alternatives = rows["exploring alternatives"]
    assert alternatives["n_with"] == sum(s - 1 for s in range(1, STEPS + 1))
    assert alternatives["verdict"] == "gradual" and alternatives["aha_step"] is None
    assert alternatives["rise"] == pytest.approx(0.7) and alternatives["jump"] == pytest.approx(0.3)
    assert rows["self-reflection"]["verdict"] == "flat"  # "wait" in every step, "re-evaluate" every other
    assert rows["verification"]["n_with"] == 10  # "recheck"; "checking" is not a verification


def test_length_rows(data) -> None:
    first = data.tables["length"][0]
    assert first["n"] == PER_STEP and first["acc"] == pytest.approx(0.2)
    assert first["length"] == pytest.approx(145.0)
    assert first["length_solved"] == pytest.approx(110.0)  # samples 0 and 2: 100 and 120 tokens
    assert first["length_unsolved"] == pytest.approx((1450 - 220) / 8)
    assert first["truncated"] == pytest.approx(0.1)
    assert data.tables["length_acc_r"] is None  # accuracy is constant across bins


def test_examples(data) -> None:
    labels = {e.label: e for e in data.examples}
    assert labels["latest step, highest reward"].response.step == STEPS
    assert labels["latest step, lowest reward"].response.reward == -3.0
    assert labels["first step, lowest reward"].response.sample == 1  # the first −0.5 seen: the HTML bait
    assert labels["first response mixing scripts"].response.step == 6
    assert len(data.examples) == len({id(e.response) for e in data.examples}) <= ReportConfig().examples


def test_binning_and_steps_every(run_dir: Path) -> None:
    binned = build_report(run_dir, ReportConfig(bin=5))
    assert [(b.first, b.last, b.all.n) for b in binned.bins] == [(1, 5, 50), (6, 10, 50)]
    assert by_key(binned.tables["words"], "word")["wait"]["n_with"] == 10
    sparse = build_report(run_dir, ReportConfig(steps_every=3))
    assert sparse.files_read == 4 and [b.first for b in sparse.bins] == [1, 4, 7, 10]
    val = build_report(run_dir, ReportConfig(source="val"))
    assert val.files_total == 2 and sum(b.all.n for b in val.bins) == 4


def test_custom_words_and_threshold(run_dir: Path) -> None:
    data = build_report(run_dir, ReportConfig(words=["lies", "in summary"], mixing_threshold=0.5))
    words = by_key(data.tables["words"], "word")
    assert words["in summary"]["n_with"] == 50
    assert words["lies"]["n_with"] == 10 + sum(s - 1 for s in range(1, STEPS + 1))
    assert data.tables["mixing"]["n_with"] == 0  # the mixed responses are mostly Latin


def png_sources(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_written_report(data, synthetic, tmp_path: Path) -> None:
    out = tmp_path / "report"
    page_path = write_report(data, out)
    page = page_path.read_text(encoding="utf-8")
    names = {"curves", "val_people", "words", "words_score", "mixing", "behaviours", "length"}
    assert {p.stem for p in out.glob("*.png")} == names
    embedded = png_sources(page)
    assert len(embedded) == len(names)
    for png in embedded + [p.read_bytes() for p in out.glob("*.png")]:
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG" and image.size[0] > 200
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; a &lt; b &amp; c" in page
    assert synthetic.HTML_BAIT not in page and "\x07" not in page and "c \ufffd" in page
    # the counts table: word, n with, share, reward with
    assert re.search(r"<tr><td>wait</td><td>10</td><td>10\.0%</td><td>3\.00</td><td>90</td>", page)
    assert "sudden" in page and "tiny-random" in page and "所以" in page
    summary = json.loads((out / "report.json").read_text())
    assert summary["behaviours"][3]["aha_step"] == 6 and summary["mixing"]["n_with"] == 5
    assert not list(out.glob(".*tmp"))


def test_report_without_rollouts(run_dir: Path, tmp_path: Path) -> None:
    write_report(build_report(run_dir), tmp_path / "r")
    for path in (run_dir / "rollouts").iterdir():
        path.unlink()
    data = build_report(run_dir)
    assert data.bins == [] and data.examples == []
    page = write_report(data, tmp_path / "r").read_text()
    assert "No response logs" in page and len(png_sources(page)) == 2
    assert {p.stem for p in (tmp_path / "r").glob("*.png")} == {"curves", "val_people"}  # stale ones removed
    for step in (1, 2):  # step files that hold no rows are not "no response logs"
        (run_dir / "rollouts" / f"step_{step:06d}.jsonl").write_text("")
    page = write_report(build_report(run_dir), tmp_path / "r").read_text()
    assert f"No responses in {run_dir / 'rollouts'}/: its 2 step files hold no rows." in page


def test_pearson_needs_three_points() -> None:
    """Two points always lie on a line (r = ±1): no correlation is reported for them."""
    assert pearson([1.0, 2.0], [3.0, 5.0]) is None


def test_metrics_table_min_and_max_are_over_every_point() -> None:
    """acc 0.2, 0.9, 0.5: first 0.2, last 0.5, min 0.2, max 0.9 (not the last)."""
    metrics = Metrics(train=[{"step": 1, "acc": 0.2}, {"step": 2, "acc": 0.9}, {"step": 3, "acc": 0.5}], val=[])
    assert metrics_table(metrics) == [{"metric": "acc", "points": 3, "first_step": 1, "first": 0.2, "last_step": 3,
                                       "last": 0.5, "min": 0.2, "max": 0.9}]


def test_val_people_table_best_accuracy_and_order_by_people() -> None:
    """3ppl logged before 2ppl, both falling: rows by people, latest acc and the best one."""
    val = [{"step": 1, "val/acc/3ppl": 0.6, "val/acc/2ppl": 0.9}, {"step": 2, "val/acc/3ppl": 0.4, "val/acc/2ppl": 0.8}]
    rows = val_people_table(Metrics(train=[], val=val))
    assert [(r["people"], r["acc"], r["best_acc"]) for r in rows] == [(2, 0.8, 0.9), (3, 0.4, 0.6)]
