"""The inference engine under `logicrl.rl` and `logicrl.evaluate`: sampling responses and scoring their
log-probs with a causal LM. Both packages import it; it imports neither (tests/test_layering.py).

    sequences  the `Generation` batch, left padding, position ids
    decode     `generate`: the decode loop, the Llama-family fast engine and the model's own forward
    sampling   greedy / temperature + top-p sampling from pre-drawn numbers, stop ids and stop texts
    logprobs   `response_logprobs`: per-token log-probs and entropy of responses (shared prompt forwards)
    onednn     CPU linears on oneDNN's private ops, probed once, with ``F.linear`` as the fallback
    threads    torch's intra-op thread count from the affinity set, the cgroup quota and the load
"""
