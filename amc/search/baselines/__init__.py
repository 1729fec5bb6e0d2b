"""The search baselines AMC is compared with, on the same config, budget, cost model, scoring and run folder."""

from amc.search.baselines.bayes import run_bayes
from amc.search.baselines.random_search import run_random
from amc.search.baselines.sensitivity import run_sensitivity
from amc.search.baselines.uniform import run_uniform

__all__ = ["run_bayes", "run_random", "run_sensitivity", "run_uniform"]
