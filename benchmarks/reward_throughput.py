"""Reward throughput: responses scored per second by ``logicrl.reward.score``.

Typical responses (~500 tokens of reasoning, a 5-person answer; a mix of correct, wrong, unparseable and
format failures) in both modes, then ~1 MB pathological responses one at a time.

Run: .venv/bin/python benchmarks/reward_throughput.py
"""

import random
import time

from logicrl.reward import score

NAMES = ["Zoey", "Oliver", "Ethan", "Mia", "Lucas"]
QUESTION = (
    "A very special island is inhabited only by knights and knaves. Knights always tell the truth, and knaves "
    "always lie. You meet 5 inhabitants: Zoey, Oliver, Ethan, Mia, and Lucas. Zoey remarked, \"Oliver is a "
    "knave\". Oliver stated, \"Ethan is a knave\". Ethan said, \"Mia is a knight or Zoey is a knight\". Mia "
    "told you that Lucas is a knave. Lucas said, \"Zoey is a knight\". So who is a knight and who is a knave?"
)


def typical_responses(n: int, seed: int = 0) -> tuple[list[str], str]:
    """``n`` responses of about 500 tokens (~2,300 characters) and their expected answer."""
    rng = random.Random(seed)
    truth = [rng.choice(["knight", "knave"]) for _ in NAMES]
    expected = "\n".join(f"({i + 1}) {n} is a {r}" for i, (n, r) in enumerate(zip(NAMES, truth)))
    responses = []
    for _ in range(n):
        steps = []
        for _ in range(22):
            a, b = rng.sample(NAMES, 2)
            steps.append(f"Assume {a} is a {rng.choice(['knight', 'knave'])}; then {b}'s claim about {a} "
                         f"{rng.choice(['holds', 'fails'])}, so {b} must be a {rng.choice(['knight', 'knave'])}.")
        roles = [r if rng.random() < 0.7 else ("knave" if r == "knight" else "knight") for r in truth]
        answer = "\n".join(f"({i + 1}) {n} is a {r}" for i, (n, r) in enumerate(zip(NAMES, roles)))
        response = f"<think>{' '.join(steps)}</think>\n<answer>{answer}</answer><|im_end|>"
        kind = rng.random()
        if kind < 0.1:
            response = response.replace("<think>", "")
        elif kind < 0.2:
            response = response.replace("(3) ", "and maybe ")
        responses.append(response)
    return responses, expected


def rate(responses: list[str], expected: str, **kwargs) -> float:
    start = time.perf_counter()
    for response in responses:
        score(response, expected, **kwargs)
    return len(responses) / (time.perf_counter() - start)


def main() -> None:
    responses, expected = typical_responses(20_000)
    mean_chars = sum(map(len, responses)) / len(responses)
    print(f"typical responses: {len(responses)}, mean {mean_chars:.0f} characters")
    for label, kwargs in [("strict", {}), ("strict + question copy check", {"question": QUESTION}),
                          ("logic-rl", {"mode": "logic-rl"})]:
        print(f"  {label:<30} {rate(responses, expected, **kwargs):>10,.0f} responses/s")
    megabyte = 1_000_000
    pathological = {
        "1 MB reasoning": "<think>" + "Zoey is a knave and " * (megabyte // 20) + "</think><answer>x</answer>",
        "1 MB of '<answer>'": "<answer>" * (megabyte // 8),
        "1 MB answer of claims": "<think>x</think><answer>" + "Zoey is a knight, " * (megabyte // 18) + "</answer>",
        "1 MB of CJK": "骑士" * (megabyte // 2),
    }
    print("1 MB pathological responses (seconds each, strict / logic-rl):")
    for label, response in pathological.items():
        times = []
        for mode in ("strict", "logic-rl"):
            start = time.perf_counter()
            score(response, expected, mode=mode, question=QUESTION)
            times.append(time.perf_counter() - start)
        print(f"  {label:<30} {times[0]:.3f} / {times[1]:.3f}")


if __name__ == "__main__":
    main()
