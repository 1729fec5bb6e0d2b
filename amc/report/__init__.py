"""Reports: plots and tables of searches and their results."""
