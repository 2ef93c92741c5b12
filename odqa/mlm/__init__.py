"""Domain-adaptive masked-language-model pretraining (`odqa train-mlm`) and the tokenizer tools.

``masking`` groups tokens into whole words (eojeol or Kiwi morphemes) from character offsets, so one
rule serves SentencePiece (``▁``) and WordPiece (``##``) tokenizers alike, and masks them (80/10/10);
``data`` turns texts into equal chunks that keep those groups; ``model`` loads any encoder with an MLM
head (building one, tied to the word embeddings, when the checkpoint has none) whose loss is computed
on masked positions only; ``train`` is the command; ``tokenizers`` builds and expands vocabularies.
"""
