"""Language-model entries of the zoo (transformers + peft; no FHIR).

- `vocab`: a word-level tokenizer built from our own corpus, plus one token per code.
- `base`: a small GPT-2-style causal LM pre-trained on that corpus (`train lm-base`), or any
  local causal LM directory (`--base-model PATH`, a 7B model on a GPU takes the same path).
- `code_lm`: a causal LM whose vocabulary holds one token per code; scores codes by the
  distribution over those tokens at the first generated position; LoRA through peft.
- `mera`: MERA-style diagnosis ranking (memorisation, hierarchical InfoNCE, EOV threshold).
- `lamo`: LAMO-style medication recommendation (LoRA, over-prescription control).
"""
