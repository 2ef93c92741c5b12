"""The extractive reader: preprocessing (examples → features), models, training, post-processing."""
