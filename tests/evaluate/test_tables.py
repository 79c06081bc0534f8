"""Table 2 rendering with two models, the pass@k/maj tables, CSV and JSON summaries."""

from __future__ import annotations

import csv
import io

from logicrl.evaluate.tables import (
    csv_text,
    extra_metrics,
    markdown,
    memorization_json,
    memorization_rows,
    metric_table,
    results_csv,
    results_json,
    table2,
)

BASE = {2: {"acc": 0.5, "format_ok": 1.0, "length": 100.0},
        3: {"acc": 0.25, "format_ok": 0.5, "length": 200.0}}
RL = {2: {"acc": 1.0, "format_ok": 1.0, "length": 300.0, "pass@2": 1.0, "maj@4": 1.0},
      3: {"acc": 0.75, "format_ok": 1.0, "length": 400.0, "pass@2": 0.9, "maj@4": 0.5},
      4: {"acc": 0.5, "format_ok": 0.75, "length": 500.0, "pass@2": 0.8, "maj@4": 0.25}}
RESULTS = {"base": BASE, "rl-step-100": RL}


def test_table2_averages_only_the_levels_every_model_has() -> None:
    # base has 2 and 3 people, rl also 4: Avg., Format and Length of both are over 2 and 3 only, by hand
    # rl: acc (1.00 + 0.75)/2 = 0.875, format (1 + 1)/2, length (300 + 400)/2; the header names the levels
    expected = (
        "| Model | 2 | 3 | 4 | Avg. (2,3) | Format | Length |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        "| base | 0.50 | 0.25 | – | 0.38 | 0.75 | 150 |\n"
        "| rl-step-100 | 1.00 | 0.75 | 0.50 | 0.88 | 1.00 | 350 |\n"
    )
    assert markdown(table2(RESULTS)) == expected
    # with the same levels everywhere, "Avg." is the mean of all level columns, as the paper's Table 2
    header, rows = table2({"rl-step-100": RL, "copy": RL})
    assert header[4] == "Avg." and rows[0][4:] == ["0.75", "0.92", "400"]


def test_extra_metric_tables() -> None:
    assert extra_metrics(RESULTS) == ["pass@2", "maj@4"]
    header, rows = metric_table(RESULTS, "maj@4")
    assert header == ["Model (maj@4)", "2", "3", "4", "Avg. (2,3)"]
    assert rows == [["base", "–", "–", "–", "–"], ["rl-step-100", "1.00", "0.50", "0.25", "0.75"]]
    assert metric_table({"rl-step-100": RL}, "maj@4")[1] == [["rl-step-100", "1.00", "0.50", "0.25", "0.58"]]


def test_results_csv_has_a_row_per_model_and_metric() -> None:
    rows = list(csv.reader(io.StringIO(results_csv(RESULTS))))
    assert rows[0] == ["model", "metric", "2", "3", "4", "avg"]
    by_key = {(r[0], r[1]): r[2:] for r in rows[1:]}
    assert by_key[("base", "acc")] == ["0.5", "0.25", "", "0.375"]
    assert by_key[("rl-step-100", "pass@2")] == ["1", "0.9", "0.8", "0.9"]
    assert ("base", "pass@2") not in by_key


def test_results_json() -> None:
    summary = results_json(RESULTS, {"base": "smollm2-135m"}, {"split": "test"})
    assert summary["config"] == {"split": "test"}
    assert summary["models"]["base"]["name"] == "smollm2-135m"
    assert summary["models"]["rl-step-100"]["name"] == "rl-step-100"
    assert summary["models"]["base"]["by_people"]["3"]["acc"] == 0.25
    assert summary["models"]["rl-step-100"]["average"]["acc"] == 0.75


def test_memorization_rows_and_csv() -> None:
    tables = {"sft": {"leaf": {2: {"pairs": 4, "acc": 1.0, "cr": 0.5, "limem": 0.5},
                               "all": {"pairs": 4, "acc": 1.0, "cr": 0.5, "limem": 0.5}},
                      "reorder": {2: {"pairs": 4, "acc": 0.0, "cr": None, "limem": 0.0}}}}
    header, rows = memorization_rows(tables)
    assert header == ["Model", "Kind", "People", "Pairs", "Acc", "CR", "LiMem"]
    assert rows == [["sft", "leaf", "2", "4", "1.00", "0.50", "0.50"],
                    ["sft", "leaf", "all", "4", "1.00", "0.50", "0.50"],
                    ["sft", "reorder", "2", "4", "0.00", "–", "0.00"]]
    assert csv_text((header, rows)).splitlines()[1] == "sft,leaf,2,4,1.00,0.50,0.50"
    summary = memorization_json(tables, {"kinds": ["leaf", "reorder"]})
    assert summary["config"] == {"kinds": ["leaf", "reorder"]}
    assert summary["models"]["sft"]["leaf"]["all"]["limem"] == 0.5
    assert summary["models"]["sft"]["reorder"]["2"]["cr"] is None
