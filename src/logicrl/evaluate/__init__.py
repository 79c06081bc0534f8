"""Evaluation: accuracy by number of people (Table 2), pass@k, majority vote, memorization (LiMem).

Files: scoring.py (generate and score; the rows shared with the trainer), metrics.py (pass@k, majority
vote, per-level table), memorization.py (twins, Acc, CR, LiMem), tables.py (Markdown/CSV/JSON), config.py
(EvalConfig, MemorizationConfig), endpoint.py (OpenAI-compatible HTTP backend), runner.py (picking
puzzles, generating or rescoring sample files). The command is `logicrl.cli.eval`; see docs/eval.md.
Out-of-distribution math (`logicrl eval math`, `logicrl.cli.eval_math`): math_data.py (problem files),
math_check.py (final answer + math-verify under a hard time limit), math_eval.py (config, rows, tables).
"""
