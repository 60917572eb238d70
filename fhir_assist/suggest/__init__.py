"""Turning model outputs into reviewable suggestions (medication changes, ICD codes)."""
