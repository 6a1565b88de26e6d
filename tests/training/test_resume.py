"""Resume continues exactly: stop at k (max_steps, cancel, or kill -9), resume to n == an n-step run."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from training.dreambooth import train

from .conftest import load_safetensors

REPO = Path(__file__).resolve().parents[2]
# full fine-tune of UNet + text encoder with prior preservation, accumulation and EMA: every piece of
# state (weights, AdamW moments, LR schedule, EMA, data position, noise, dropped caption tags) must come back
STATEFUL = dict(method="full", train_text_encoder=True, gradient_accumulation_steps=2, use_ema=True,
                lr_scheduler="constant_with_warmup", lr_warmup_steps=1, learning_rate=1e-3,
                caption_tag_dropout=0.5)  # independent of max_steps


def _final_weights(out):
    names = ("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors")
    return {f"{n}:{k}": v for n in names for k, v in load_safetensors(Path(out) / n).items()}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_sd1, dataset):
    from training.dreambooth import load_config

    from .conftest import FAST

    out = tmp_path_factory.mktemp("ref") / "out"
    cfg = load_config(None, dict(FAST, **STATEFUL, base_model=tiny_sd1, dataset=dataset, out=str(out), max_steps=4))
    train(cfg)
    return _final_weights(out)


def test_resume_after_max_steps(make_cfg, reference):
    first = train(make_cfg(max_steps=2, **STATEFUL))
    assert first.step == 2
    second = train(make_cfg(max_steps=4, resume=True, **STATEFUL))
    assert second.step == 4
    _assert_same(_final_weights(second.out), reference)
    assert len((second.out / "metrics.csv").read_text().splitlines()) == 5


def test_resume_after_cancel(make_cfg, reference):
    steps = []
    cancelled = train(make_cfg(max_steps=4, **STATEFUL), on_progress=lambda s, n, logs: steps.append(s),
                      should_cancel=lambda: len(steps) >= 3)
    assert cancelled.cancelled and cancelled.step == 3 and (cancelled.out / "checkpoint-3").exists()
    done = train(make_cfg(max_steps=4, resume=True, **STATEFUL))
    _assert_same(_final_weights(done.out), reference)


def test_resume_refuses_changed_settings(make_cfg):
    from training.dreambooth import ConfigError

    train(make_cfg(max_steps=1, method="lora"))
    with pytest.raises(ConfigError, match="learning_rate"):
        train(make_cfg(max_steps=2, method="lora", resume=True, learning_rate=1e-3))
    with pytest.raises(ConfigError, match="already holds a run"):
        train(make_cfg(max_steps=2, method="lora"))


def _command(tiny_sd1, dataset, out, *extra):
    return [sys.executable, str(REPO / "manage.py"), "train", "--base-model", tiny_sd1, "--dataset", dataset,
            "--out", str(out), "--instance-prompt", "sks girl", "--resolution", "32", "--bucket-step", "16",
            "--method", "full", "--train-text-encoder", "--gradient-accumulation-steps", "2", "--use-ema",
            "--lr-scheduler", "constant_with_warmup", "--lr-warmup-steps", "1", "--learning-rate", "1e-3",
            "--caption-tag-dropout", "0.5", "--validation-inference-steps", "2",
            "--checkpoint-steps", "2", "--checkpoints-total-limit", "2", *extra]


def _env():
    return dict(os.environ, DJANGO_SETTINGS_MODULE="retroportal.settings_test", OMP_NUM_THREADS="1",
                PYTHONUNBUFFERED="1")


@pytest.mark.slow  # two `manage.py train` processes (~12 s of imports each) + a 24-step reference run
def test_kill_9_then_resume_gives_the_same_weights(tmp_path, tiny_sd1, dataset, make_cfg):
    out, n = tmp_path / "killed", 24
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(_command(tiny_sd1, dataset, out, "--max-steps", str(n)), cwd=REPO, env=_env(),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 120
        while not (out / "checkpoint-6").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "first.log").read_text()[-2000:]
    assert not (out / "model_index.json").exists()  # killed mid-run, before the export
    resumed = subprocess.run(_command(tiny_sd1, dataset, out, "--max-steps", str(n), "--resume"), cwd=REPO,
                             env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"finished step {n}/{n}" in resumed.stdout
    reference = train(make_cfg("uninterrupted", max_steps=n, checkpoint_steps=2, checkpoints_total_limit=2,
                               **STATEFUL))
    _assert_same(_final_weights(out), _final_weights(reference.out))


def test_lora_resume_with_adapter_only_checkpoints(make_cfg):
    lora = dict(method="lora", train_text_encoder=True, learning_rate=1e-2, lr_scheduler="constant")
    reference = train(make_cfg("ref", max_steps=3, **lora)).out
    train(make_cfg("split", max_steps=2, **lora))
    state = load_safetensors(Path(make_cfg("split", max_steps=2, **lora).out) / "checkpoint-2" / "model.safetensors")
    assert state and all("lora_" in k for k in state)  # no frozen base weights in LoRA checkpoints
    resumed = train(make_cfg("split", max_steps=3, resume=True, **lora)).out
    _assert_same(load_safetensors(resumed / "pytorch_lora_weights.safetensors"),
                 load_safetensors(reference / "pytorch_lora_weights.safetensors"))
