"""Tokenizers for the language-model entries: words from our corpus, one token per code.

Nothing is downloaded: the tokenizer is trained on the texts it is given (code descriptions,
verbalised visits, synthetic notes) and saved beside the model as a standard
`PreTrainedTokenizerFast` directory, so `AutoTokenizer.from_pretrained(path)` loads it.
"""
from __future__ import annotations

from typing import Iterable

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
EOV = "<eov>"                     # end of visit: the learned cut between positives and negatives
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS, EOV]


def code_token(namespace: str, code: str) -> str:
    """One vocabulary entry per code, e.g. `[dx:E11.65]` or `[rx:6809]`."""
    return f"[{namespace}:{code}]"


def train_word_tokenizer(texts: Iterable[str], vocab_size: int = 4000):
    """A lower-cased word-level tokenizer (words and punctuation) trained on `texts`."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(unk_token=UNK))
    core.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits()])
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, min_frequency=1)
    core.train_from_iterator(texts, trainer=trainer)
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, core.token_to_id(BOS))])
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, unk_token=UNK,
                                   bos_token=BOS, eos_token=EOS, additional_special_tokens=[EOV],
                                   padding_side="right")


def add_code_tokens(tokenizer, tokens: list[str]) -> list[int]:
    """Add `tokens` as unsplittable entries (skips those already there); their ids in order."""
    missing = [t for t in tokens if tokenizer.convert_tokens_to_ids(t) in (None, tokenizer.unk_token_id)]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    return tokenizer.convert_tokens_to_ids(tokens)
