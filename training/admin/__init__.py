"""The training app's admin, one module per model family (importing them registers them).

datasets: uploads and preparation · runs: DreamBooth runs, their live status, files and report pages ·
evaluations: prompt suites and evaluation results · sweeps: grids of runs from a TOML file.
Forms are in training.forms, HTML in templates/training/.
"""
from training.admin import datasets, evaluations, runs, sweeps  # noqa: F401  (registers the ModelAdmins)
