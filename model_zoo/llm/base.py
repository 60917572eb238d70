"""A small GPT-2-style causal LM pre-trained on our own corpus (`fhir-assist train lm-base`).

No PyPI package ships the weights of a small causal LM whose licence and provenance fit a
hospital product, so the zoo's language-model entries start from this one by default; any
local `transformers` causal-LM directory can replace it (`--base-model PATH`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from model_zoo.stored_config import StoredConfig


@dataclass
class BaseLmConfig(StoredConfig):
    layers: int = 2
    width: int = 128
    heads: int = 4
    context: int = 256
    vocab_size: int = 4000
    steps: int = 300
    batch_size: int = 16
    learning_rate: float = 3e-3
    seed: int = 0


def new_gpt2(config: BaseLmConfig, tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt = GPT2Config(vocab_size=len(tokenizer), n_positions=config.context, n_embd=config.width,
                     n_layer=config.layers, n_head=config.heads, bos_token_id=tokenizer.bos_token_id,
                     eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                     tie_word_embeddings=True)
    return GPT2LMHeadModel(gpt)


def batches(tokenizer, texts: Sequence[str], batch_size: int, context: int, generator: torch.Generator):
    """Endless random mini-batches of tokenised texts, right-padded, labels masked on padding."""
    while True:
        order = torch.randperm(len(texts), generator=generator).tolist()
        for start in range(0, len(order) - batch_size + 1, batch_size):
            chunk = [texts[i] for i in order[start:start + batch_size]]
            enc = tokenizer(chunk, truncation=True, max_length=context, padding=True, return_tensors="pt")
            labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
            yield enc["input_ids"], enc["attention_mask"], labels


def train_causal_lm(model, tokenizer, texts: Sequence[str], *, steps: int, batch_size: int,
                    learning_rate: float, context: int, seed: int, device: torch.device,
                    progress: Callable[[int, float], None] | None = None) -> dict:
    """Next-token training on `texts` (only parameters that require grad move: LoRA-ready)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=learning_rate,
                                                   total_steps=max(steps, 1), pct_start=0.1)
    stream = batches(tokenizer, list(texts), min(batch_size, len(texts)), context,
                     torch.Generator().manual_seed(seed))
    model.train()
    started, loss_value = time.perf_counter(), math.nan
    for step in range(steps):
        input_ids, mask, labels = (t.to(device) for t in next(stream))
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        schedule.step()
        loss_value = loss.item()
        if progress:
            progress(step, loss_value)
    model.eval()
    return {"final_loss": loss_value, "seconds": time.perf_counter() - started, "steps": steps}


def pretrain(texts: Sequence[str], config: BaseLmConfig, device: torch.device,
             progress: Callable[[int, float], None] | None = None):
    """Train tokenizer and model on `texts`; returns (model, tokenizer, log dict)."""
    from .vocab import train_word_tokenizer

    torch.manual_seed(config.seed)
    tokenizer = train_word_tokenizer(texts, config.vocab_size)
    model = new_gpt2(config, tokenizer).to(device)
    log = train_causal_lm(model, tokenizer, texts, steps=config.steps, batch_size=config.batch_size,
                          learning_rate=config.learning_rate, context=config.context,
                          seed=config.seed, device=device, progress=progress)
    log.update(parameters=sum(p.numel() for p in model.parameters()), texts=len(texts))
    return model, tokenizer, log


def save(model, tokenizer, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def load(path: Path, device: torch.device):
    """A causal LM and its tokenizer from a local directory; never from a hub."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} is not a transformers model directory (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    # use_kernels=False: transformers would otherwise swap in layers from the Hub's kernel
    # repositories on a GPU (fetched at run time, or refused where the `kernels` package is absent)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, use_kernels=False).to(device)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return model.eval(), tokenizer
