"""A causal LM read as a code scorer: one vocabulary token per code, scored at the first
generated position (MERA's ranking), optionally adapted with LoRA (peft)."""
from __future__ import annotations

from typing import Sequence

import torch

from .vocab import add_code_tokens

# Linear layers LoRA adapts, by architecture family (attention and MLP projections).
LORA_TARGETS = ("c_attn", "c_proj", "c_fc",                                  # GPT-2
                "q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj")


def extend_vocabulary(lm, tokenizer, tokens: list[str], descriptions: dict[str, str]) -> list[int]:
    """Add one token per code; a new token's embedding starts at the mean of its description's
    word embeddings, so it begins near what the base model knows of those words."""
    before = len(tokenizer)
    ids = add_code_tokens(tokenizer, tokens)
    lm.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    embeddings = lm.get_input_embeddings().weight
    with torch.no_grad():
        for token, token_id in zip(tokens, ids):
            if token_id < before:
                continue
            words = tokenizer(descriptions.get(token, ""), add_special_tokens=False)["input_ids"]
            words = [w for w in words if w < before]
            if words:
                embeddings[token_id] = embeddings[words].mean(0)
    return ids


def with_lora(lm, rank: int, new_token_ids: Sequence[int]):
    """LoRA adapters on the attention/MLP projections; the new code tokens' embedding rows
    train too (they start from descriptions, not from pre-training). rank 0: full fine-tuning."""
    if rank <= 0:
        return lm
    from peft import LoraConfig, get_peft_model

    names = {name.rsplit(".", 1)[-1] for name, _ in lm.named_modules()}
    targets = [t for t in LORA_TARGETS if t in names]
    gpt2_style = "c_attn" in targets        # GPT-2 stores its projections transposed (Conv1D)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=targets,
                        fan_in_fan_out=gpt2_style, trainable_token_indices=list(new_token_ids))
    return get_peft_model(lm, config)


def trainable_fraction(model) -> dict[str, float]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"parameters": total, "trainable": trainable, "fraction": trainable / max(total, 1)}


class CodeTokenLM(torch.nn.Module):
    """Scores `code_tokens` (in order) from the hidden state after the last prompt token."""

    def __init__(self, lm, tokenizer, code_tokens: list[str]):
        super().__init__()
        self.lm = lm
        self.tokenizer = tokenizer
        self.code_tokens = list(code_tokens)
        ids = tokenizer.convert_tokens_to_ids(self.code_tokens)
        self.register_buffer("code_ids", torch.tensor(ids, dtype=torch.long), persistent=False)

    def encode(self, prompts: Sequence[str], max_length: int, device: torch.device):
        # the end of a prompt holds the visit being coded: cut long histories from the left
        self.tokenizer.truncation_side = "left"
        enc = self.tokenizer(list(prompts), truncation=True, max_length=max_length, padding=True,
                             return_tensors="pt")
        return enc["input_ids"].to(device), enc["attention_mask"].to(device)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.lm(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        hidden = out.hidden_states[-1]
        last = attention_mask.sum(dim=1) - 1
        state = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        head = self.lm.get_output_embeddings().weight[self.code_ids]
        return state @ head.T

    @torch.inference_mode()
    def score(self, prompts: Sequence[str], max_length: int, batch_size: int = 32) -> torch.Tensor:
        self.eval()
        device = self.code_ids.device
        rows = [self(*self.encode(prompts[i:i + batch_size], max_length, device)).float().cpu()
                for i in range(0, len(prompts), batch_size)]
        return torch.cat(rows) if rows else torch.zeros(0, len(self.code_tokens))
