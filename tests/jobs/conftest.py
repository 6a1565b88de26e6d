"""Fixtures for the four job kinds at once: the training-run and evaluation fixtures, the web users."""
from tests.evaluation.conftest import tiny_dino_dir  # noqa: F401  (fixture)
from tests.evaluation_runs.conftest import eval_settings, make_run  # noqa: F401  (fixtures)
from tests.training_runs.conftest import base_model, heartbeat_settings, tiny_dataset  # noqa: F401  (fixtures)
