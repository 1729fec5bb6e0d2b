"""Training: the loop (base models and fine-tuning), checkpoints of base models, and the configured base model."""
