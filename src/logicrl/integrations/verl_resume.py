"""What a `logicrl verl launch` ran, so that launching again continues the same run or is refused.

A launch again into the same ``OUT/verl`` skips the stages that were handed over and lets veRL resume the
others from their last checkpoint (``trainer.resume_mode=auto``). That is only the same run if every stage's
overrides and puzzles are the ones it started with: the first launch writes ``OUT/verl/launch.json`` (each
stage's overrides and hand-off arguments, the Python and module that run them left out, and the SHA-256 of the
exported rows), and a later launch whose record differs is refused, naming what changed, as `logicrl train
--resume` refuses a changed config.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from logicrl.errors import UserError
from logicrl.io import atomic_write_text, read_json_object

if TYPE_CHECKING:
    from logicrl.integrations.verl_launch import LaunchPlan

RECORD = "launch.json"


def launch_record(plan: LaunchPlan) -> dict[str, Any]:
    """The stages as the plan runs them (overrides and hand-off arguments) and a digest of the exported rows."""
    rows = json.dumps(plan.files, sort_keys=True, default=str).encode()
    return {"stages": [{"name": stage.name, "train": train[3:], "hand_off": hand_off[3:]}
                       for stage, (train, hand_off) in zip(plan.stages, plan.commands)],
            "data_sha256": hashlib.sha256(rows).hexdigest()}


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two records, as ``stage: key old -> new`` items (the puzzles as one item)."""
    found = []
    if old.get("data_sha256") != new["data_sha256"]:
        found.append("the puzzles exported (another dataset, split, people or prompt)")
    old_stages, new_stages = old.get("stages", []), new["stages"]
    if [s["name"] for s in old_stages] != [s["name"] for s in new_stages]:
        found.append(f"stages {[s['name'] for s in old_stages]} -> {[s['name'] for s in new_stages]}")
    for before, after in zip(old_stages, new_stages):
        was, now = _overrides(before["train"]), _overrides(after["train"])
        for key in [*was, *(k for k in now if k not in was)]:
            if was.get(key) != now.get(key):
                found.append(f"{after['name']}: {key} {_short(was.get(key, '(unset)'))} -> "
                             f"{_short(now.get(key, '(unset)'))}")
        if before["hand_off"] != after["hand_off"]:
            found.append(f"{after['name']}: hand-off {before['hand_off']} -> {after['hand_off']}")
    return found


def _short(value: str, width: int = 40) -> str:
    return value if len(value) <= width else value[:width - 1] + "…"


def _overrides(items: list[str]) -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in items)


def check_relaunch(plan: LaunchPlan) -> None:
    """Refuse, before anything is written, a launch into an ``OUT/verl`` that ran other settings, or that holds
    stages without a record (another tool's, or a launch before records were kept)."""
    root = plan.data_dir.parent
    path = root / RECORD
    if not path.is_file():
        started = sorted(p.name for p in root.glob("stage*") if p.is_dir())
        if started:
            raise UserError(f"{root} holds veRL stages ({', '.join(started)}) but no {RECORD}, so whether they ran "
                            "these settings is unknown: pick another out_dir, or delete them to start over")
        return
    changed = changes(read_json_object(path), launch_record(plan))
    if changed:
        shown = "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
        raise UserError(f"{root} holds a launch with other settings ({shown}): continuing it would mix two recipes; "
                        "launch with the same config and options to resume it, or pick another out_dir")


def write_record(plan: LaunchPlan) -> None:
    atomic_write_text(plan.data_dir.parent / RECORD, json.dumps(launch_record(plan), indent=1) + "\n")
