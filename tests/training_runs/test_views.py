"""The run admin's staff-only JSON status and file views: who may see them, and only files inside the run."""
import re

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4a30000000049454e44ae426082")


@pytest.fixture
def run_with_files(make_run, tmp_path):
    run = make_run("files-run", max_steps=3)
    out = run.out_path
    (out / "validation").mkdir(parents=True)
    (out / "loss.png").write_bytes(PNG)
    (out / "validation" / "step-000003.png").write_bytes(PNG)
    (out / "metrics.csv").write_text("step,loss,diffusion_loss,prior_loss,l2sp,l2,lr,seconds\n"
                                     "1,1.5,1.5,0,0,0,0.0001,0.1\n2,1.25,1.25,0,0,0,0.0001,0.1\n")
    (out / "train.log").write_text("".join(f"line {i}\n" for i in range(100)))
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG)
    (out / "evil.png").symlink_to(secret)
    (out / "notes.py").write_text("print('hi')")
    return run


def urls(run):
    base = f"/admin/training/trainingrun/{run.pk}"
    return {"status": f"{base}/status.json", "file": f"{base}/file/loss.png"}


def test_anonymous_and_non_staff_users_are_refused(client, run_with_files):
    for url in urls(run_with_files).values():
        assert client.get(url).status_code == 302  # to the admin login
    user = get_user_model().objects.create_user("plain", password="pw-plain-1234")
    client.force_login(user)
    for url in urls(run_with_files).values():
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    staff = get_user_model().objects.create_user("staff-no-perms", password="pw-staff-1234", is_staff=True)
    client.force_login(staff)
    for url in urls(run_with_files).values():
        assert client.get(url).status_code == 404  # staff, but not allowed to view training runs


def test_status_json_for_staff(admin_client, run_with_files):
    data = admin_client.get(urls(run_with_files)["status"]).json()
    assert data["status"] == "draft" and data["max_steps"] == 3
    assert data["loss_points"] == [[1, 1.5], [2, 1.25]]
    assert data["loss_png"].startswith(f"/admin/training/trainingrun/{run_with_files.pk}/file/loss.png?v=")
    assert [(g["name"], g["label"]) for g in data["grids"]] == [("step-000003", "step 3")]
    assert data["log_tail"].splitlines() == [f"line {i}" for i in range(60, 100)]
    assert data["actions"]["start"] and not data["actions"]["resume"] and not data["actions"]["activate"]


def test_files_only_from_inside_the_run_folder(admin_client, run_with_files):
    base = f"/admin/training/trainingrun/{run_with_files.pk}/file/"
    ok = admin_client.get(base + "validation/step-000003.png")
    assert ok.status_code == 200 and ok["Content-Type"] == "image/png" and ok["X-Content-Type-Options"] == "nosniff"
    for rel in ("../../../../etc/passwd", "..%2F..%2Fsecret.png", "evil.png", "notes.py", "missing.png",
                "validation/../../1/loss.png"):
        assert admin_client.get(base + rel).status_code == 404, rel
    assert admin_client.get("/admin/training/trainingrun/99999/status.json").status_code == 404


def test_change_page_buttons_run_the_actions(admin_client, run_with_files):
    do = f"/admin/training/trainingrun/{run_with_files.pk}/do/"
    assert admin_client.get(do + "start/").status_code == 404  # POST only
    assert admin_client.post(do + "explode/").status_code == 404
    response = admin_client.post(do + "cancel/", follow=True)
    assert "Files-run is draft: nothing to cancel." in response.content.decode()
    response = admin_client.post(do + "activate/", follow=True)
    assert "has no registered model yet" in response.content.decode()
    page = admin_client.get(f"/admin/training/trainingrun/{run_with_files.pk}/change/").content.decode()
    assert 'id="run-live"' in page and 'id="loss-curve"' in page


def test_the_run_page_has_one_progress_bar_a_smoothed_curve_and_the_sites_favicon(admin_client, client, run_with_files):
    page = admin_client.get(f"/admin/training/trainingrun/{run_with_files.pk}/change/").content.decode()
    assert page.count("<progress") == 1 and 'id="loss-smooth"' in page and "smoothed (EMA 0.9)" in page
    assert '<figcaption>step 3</figcaption>' in page
    icon = re.search(r'<link rel="icon" href="[^"]+">', page)
    assert icon and icon.group(0) in client.get("/accounts/login/").content.decode()  # the site's own icon
