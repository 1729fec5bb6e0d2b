"""The `amc` command line: a thin layer over the library (see amc.cli.main)."""
