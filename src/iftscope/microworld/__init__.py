"""The micro-world: fictional people, their biographies, a word-level tokenizer and a tiny Llama
pretrained on the known people's facts, so what the base model knows is exact ground truth.

generator (people, facts, questions), lexicon (the words), tokenizer, tiny (the model), pretrain,
recall (held-back paraphrases), groundtruth (probe vs truth) and stage (the world stage:
build, pretrain, measure, reuse).
"""
