"""logicrl: rule-based reinforcement learning of language models on Knights-and-Knaves puzzles."""

__version__ = "0.1.0"
