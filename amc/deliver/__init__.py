"""Delivering a result: the pruned network exported and reloaded (export.py), and fine-tuned, tested and measured
(evaluate.py). Sits above the search: it reads strategies and run folders, never an agent or a study."""
