"""Search methods over a pruning problem: AMC (through the env), NetAdapt, uniform, sensitivity, random, Bayesian.

Each method takes a `Task` (amc.problem), writes a run folder (run_folder.py) and returns a `SearchResult`
(result.py); `methods.run_search` picks one by `search.method`. Independent candidates are scored on local
processes or Ray (parallel.py). Above `envs` and `amc.problem`: nothing below imports this package.
"""
