"""PPO's value model: the policy's transformer body (a copy) with a scalar head on every position.

Initialised from the policy checkpoint, as veRL's critic is; the head starts at zero so first values are
0. The value of response token t is read at the position that predicts it (P + t − 1), like the
log-probs, so V_t estimates the return from the state before token t is chosen.
"""

from __future__ import annotations

import copy
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from logicrl.models.lora import TRAINED_ADAPTER

CRITIC_FILE = "critic.safetensors"


class ValueModel(nn.Module):
    """``body`` (a transformers base model, e.g. ``LlamaModel``) + ``head`` (hidden → 1). Every weight of the
    body trains, whatever the policy freezes."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.body = body_copy(policy).float().requires_grad_(True)
        self.body.get_input_embeddings().sparse = False  # untied here (no head): a sparse .grad breaks AdamW
        hidden = policy.config.hidden_size
        self.head = nn.Linear(hidden, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, position_ids: Tensor, n_response: int) -> Tensor:
        """Values [B, T] for the last T tokens of ``input_ids``."""
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                           use_cache=False).last_hidden_state
        states = hidden[:, -n_response - 1:-1, :]
        return self.head(states.float()).squeeze(-1)

    def save(self, directory: Path) -> None:
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(Path(directory) / CRITIC_FILE))

    def load(self, directory: Path) -> None:
        device = next(self.parameters()).device
        self.load_state_dict(load_file(str(Path(directory) / CRITIC_FILE), device=str(device)))


def body_copy(policy: nn.Module) -> nn.Module:
    """A copy of ``policy``'s transformer body as a plain transformers model. A peft policy (a LoRA run's, when
    ``optim.stage_reset`` makes a new critic at a curriculum stage) is copied with its trained adapter merged in,
    so the critic starts from the stage's actor as it does from the run's, and holds no adapter layers; the
    merged copy is the one kept (one copy of the weights at a time, not two)."""
    if hasattr(policy, "merge_and_unload"):
        return copy.deepcopy(policy).merge_and_unload(adapter_names=[TRAINED_ADAPTER]).get_decoder()
    return copy.deepcopy(policy.get_decoder())
