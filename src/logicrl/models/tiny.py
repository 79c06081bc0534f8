"""A tiny randomly initialised causal LM with a locally built tokenizer, for tests and smoke runs.

Nothing is downloaded. The tokenizer is a byte-level BPE trained, deterministically, on a fixed
corpus of Knights-and-Knaves-like text (so puzzles tokenize into a few hundred tokens, not thousands
of bytes); it follows the conventions of Qwen2.5-Instruct, the paper's model family:

* ChatML chat template (``<|im_start|>role\\n...<|im_end|>\\n``), no default system message;
* eos ``<|im_end|>``, pad ``<|endoftext|>`` (distinct from eos), no bos;
* ``<think>``, ``</think>``, ``<answer>``, ``</answer>`` are single added tokens, *not* special, so
  ``decode(..., skip_special_tokens=True)`` keeps them (as with Qwen3's ``<think>``).

The model is a 2-layer Llama (hidden 64, 4 heads, 2 KV heads, tied embeddings), about 0.12M
parameters: fast enough for multi-step RL runs on a CPU in tests.
"""

from __future__ import annotations

import functools
import random
from pathlib import Path
from typing import Any

TINY_RECIPE_VERSION = 1  # bump when the corpus, tokenizer or model recipe changes
TINY_CONTEXT_LENGTH = 4096
PAD_TOKEN, CHAT_START, CHAT_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
TAG_TOKENS = ("<think>", "</think>", "<answer>", "</answer>")

# Plain ChatML, as Qwen2.5 renders it minus the default system message and tool calls.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_NAMES = (
    "Zoey", "Oliver", "Ethan", "Emma", "Liam", "Olivia", "Noah", "Ava", "Sophia", "Mason", "Isabella",
    "William", "Mia", "James", "Charlotte", "Benjamin", "Amelia", "Lucas", "Harper", "Henry", "Evelyn",
    "Alexander", "Abigail", "Michael", "Emily", "Daniel", "Jacob", "Sofia",
)  # fmt: skip
_CLAIMS = (
    "{a} is a knight", "{a} is a knave", "{a} is not a knight", "{a} is not a knave",
    "{a} is a knight and {b} is a knave", "{a} is a knight or {b} is a knight",
    "if {a} is a knight then {b} is a knave", "{a} is a knave if and only if {b} is a knight",
    "both {a} and {b} are knights", "either {a} is a knave or {b} is a knight",
    "it is not the case that {a} is a knave", "{b} is a knave and {a} is a knave",
)  # fmt: skip
_SPEECH = (
    '{s} said, "{C}."', "{s} said that {c}.", '{s} remarked, "{C}."', "{s} told you that {c}.",
    '{s} stated, "{C}."', "In {s}'s words: \"{C}.\"", '{s} asserted: "{C}."', "{s} claimed that {c}.",
)  # fmt: skip
_REASONING = (
    "Assume {a} is a knight. Then {c}, so {b} is a knave.",
    "If {a} were a knave, the statement would be false, which leads to a contradiction.",
    "Wait, let me check again. Since {b} is a knave, {b}'s statement is false.",
    "Let's verify: {c} holds, so {a} tells the truth. Hmm, that is consistent.",
    "Recheck the case where {b} is a knight: then {c}, a contradiction. Therefore {b} is a knave.",
)
_FIXED = (
    "system",
    "user",
    "assistant",  # role names as the chat template writes them, after <|im_start|>
    (
        "A very special island is inhabited only by knights and knaves. Knights always tell the truth, "
        "and knaves always lie."
    ),
    "So who is a knight and who is a knave?",
    (
        "You are a helpful assistant. The assistant first thinks about the reasoning process in the mind "
        "and then provides the user with the answer. The reasoning process and answer are enclosed within "
        "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here "
        "</think><answer> answer here </answer>."
    ),
    (
        "Now the user asks you to solve a logical reasoning problem. After thinking, when you finally "
        "reach a conclusion, clearly state the identity of each character within <answer> </answer> tags."
    ),
)


def tiny_corpus(n_puzzles: int = 300) -> list[str]:
    """Fixed K&K-like training text for the tiny tokenizer (seeded, so always the same list)."""
    rng = random.Random(20250224)
    corpus = list(_FIXED)
    for _ in range(n_puzzles):
        people = rng.sample(_NAMES, rng.randint(2, 8))
        parts = [f"You meet {len(people)} inhabitants: {', '.join(people[:-1])}, and {people[-1]}."]
        for speaker in people:
            a, b = rng.sample(people, 2)
            claim = rng.choice(_CLAIMS).format(a=a, b=b)
            parts.append(rng.choice(_SPEECH).format(s=speaker, c=claim, C=claim[0].upper() + claim[1:]))
        a, b = rng.sample(people, 2)
        parts.append(rng.choice(_REASONING).format(a=a, b=b, c=rng.choice(_CLAIMS).format(a=a, b=b)))
        roles = [rng.choice(("knight", "knave")) for _ in people]
        parts.append("\n".join(f"({i}) {p} is a {r}" for i, (p, r) in enumerate(zip(people, roles), 1)))
        corpus.append(" ".join(parts))
    return corpus


@functools.lru_cache(maxsize=4)
def _tiny_tokenizer_json(vocab_size: int) -> str:
    """Train the byte-level BPE once per process; returns the serialized ``tokenizers`` JSON."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    # Same pre-tokenization as SmolLM2: single digits, then GPT-2's byte-level regex.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD_TOKEN, CHAT_START, CHAT_END],  # ids 0, 1, 2
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(tiny_corpus(), trainer)
    tokenizer.add_tokens([AddedToken(tag, special=False, normalized=False) for tag in TAG_TOKENS])
    return tokenizer.to_str()


def build_tiny_tokenizer(vocab_size: int = 1024) -> Any:
    """Return a `PreTrainedTokenizerFast` (byte-level BPE, ChatML template, left padding).

    ``vocab_size`` is an upper bound for the BPE merges (the corpus yields fewer); the four tag
    tokens come on top. The same ``vocab_size`` always gives the same vocabulary.
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tiny_tokenizer_json(vocab_size)),
        eos_token=CHAT_END,
        pad_token=PAD_TOKEN,
        additional_special_tokens=[CHAT_START],
        chat_template=CHATML_TEMPLATE,
        padding_side="left",
        model_max_length=TINY_CONTEXT_LENGTH,
        clean_up_tokenization_spaces=False,
    )


def build_tiny_model(
    save_dir: str | Path | None = None,
    *,
    seed: int = 0,
    vocab_size: int = 1024,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
) -> tuple[Any, Any]:
    """Build a tiny random Llama causal LM and its tokenizer; return ``(model, tokenizer)``.

    Args:
        save_dir: if given, also save a complete Hugging Face checkpoint there (atomically), which
            `AutoModelForCausalLM.from_pretrained` / `AutoTokenizer.from_pretrained` load.
        seed: seeds the weight initialisation; same arguments, same weights.
        vocab_size: upper bound for the tokenizer's BPE vocabulary (see `build_tiny_tokenizer`).
        hidden_size, num_layers, num_heads, num_kv_heads, intermediate_size: the Llama shape.

    The model is float32, in eval mode, with a generation config whose eos/pad match the tokenizer.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tiny_tokenizer(vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=TINY_CONTEXT_LENGTH,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    if save_dir is not None:
        from logicrl.models.checkpoint import save_pretrained_atomic

        save_pretrained_atomic(model, tokenizer, save_dir)
    return model, tokenizer
