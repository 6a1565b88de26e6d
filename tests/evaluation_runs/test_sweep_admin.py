"""The Sweep admin: the TOML is validated on its field; 'continue' creates and queues the grid, then waits."""
import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from tests.evaluation_runs.test_sweep import NAMES, SWEEP
from training.models import Sweep, TrainingRun

pytestmark = pytest.mark.django_db


def test_admin_sweep_validates_queues_and_continues(client, base_model, tiny_dataset, redis_clean):
    client.force_login(User.objects.create_superuser("boss", "boss@example.org", "pw"))
    add = reverse("admin:training_sweep_add")
    response = client.post(add, {"name": "sw", "spec": SWEEP.replace('dataset = "tiny-girls"', 'dataset = "nope"')})
    assert response.context["adminform"].form.errors["spec"] == ["dataset: 'nope' is not a ready dataset"]
    response = client.post(add, {"name": "ignored", "spec": SWEEP})
    assert response.status_code == 302
    sweep = Sweep.objects.get()
    assert sweep.name == "sw"  # the TOML's name

    changelist = reverse("admin:training_sweep_changelist")
    page = client.post(changelist, {"action": "continue_sweeps", "_selected_action": [sweep.pk]}, follow=True)
    text = page.content.decode()
    assert all(f"start {name}" in text for name in NAMES), text
    assert sorted(TrainingRun.objects.values_list("status", flat=True)) == ["queued"] * 4

    page = client.post(changelist, {"action": "continue_sweeps", "_selected_action": [sweep.pk]}, follow=True)
    text = page.content.decode()
    assert all(f"wait {name} (queued)" in text for name in NAMES) and "start " not in text
    assert TrainingRun.objects.count() == 4
    assert "4 queued" in text  # the list's state column

    overview = client.get(reverse("admin:training_sweep_change", args=[sweep.pk])).content.decode()
    assert all(name in overview for name in NAMES) and "dataset_size=2 regularization=l2sp" in overview
    assert "runs=" + ",".join(NAMES) in overview
