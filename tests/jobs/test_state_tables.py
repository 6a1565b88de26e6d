"""docs/jobs.md's state tables are the models' STATE_ACTIONS, and every kind speaks the one vocabulary."""
import re
from pathlib import Path

import pytest

from generator.models import GenerationJob
from generator.services import GENERATION
from jobs import models as jobs
from training.run_evaluations import EVALUATION
from training.models import Dataset, Evaluation, TrainingRun
from training.runs import TRAINING
from training.datasets import PREPARATION

DOC = Path(__file__).resolve().parents[2] / "docs" / "jobs.md"
KINDS = {"Generation job": (GenerationJob, GENERATION), "Dataset preparation": (Dataset, PREPARATION),
         "Training run": (TrainingRun, TRAINING), "Evaluation": (Evaluation, EVALUATION)}


def documented_tables() -> dict[str, dict[str, tuple[str, ...]]]:
    tables, title = {}, None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            title = line[3:].split(" (")[0]
            tables[title] = {}
        elif title and (row := re.fullmatch(r"\| (\w+) \| (.+) \|", line)) and row[1] != "state":
            actions = () if row[2] == "—" else tuple(a.strip() for a in row[2].split(","))
            tables[title][row[1]] = actions
    return tables


@pytest.mark.parametrize("title", KINDS)
def test_the_documented_state_table_is_the_code(title):
    model, kind = KINDS[title]
    assert documented_tables()[title] == {str(state): actions for state, actions in model.STATE_ACTIONS.items()}
    assert {str(s) for s in model.STATE_ACTIONS} == set(model.Status.values)  # every state has its row
    assert set(model.Status.values) <= set(jobs.VOCABULARY) and {jobs.QUEUED, jobs.RUNNING} <= set(model.Status.values)
    assert kind.model is model and kind.died_state in model.Status.values
    died = re.search(r"Worker killed while running → \*\*(\w+)\*\*", DOC.read_text().split(f"## {title}")[1])
    assert died[1] == kind.died_state


def test_a_running_run_allows_cancel_once():
    run = TrainingRun(status=TrainingRun.Status.RUNNING)
    assert run.allowed_actions() == ["cancel"]
    run.cancel_requested = True
    assert run.allowed_actions() == []
    assert TrainingRun.states_allowing("resume") == ("failed", "cancelled", "interrupted")
