"""Data-parallel training: two CPU processes (gloo) through accelerate launch, 2 steps."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # two processes, each importing torch/diffusers/Django (~25-40 s on 2 busy cores)
def test_accelerate_launch_two_cpu_processes(tmp_path, tiny_sd1, dataset):
    out = tmp_path / "ddp"
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", str(REPO / "manage.py"), "train",
           "--base-model", tiny_sd1, "--dataset", dataset, "--out", str(out), "--instance-prompt", "sks girl",
           "--resolution", "32", "--bucket-step", "16", "--max-steps", "2", "--validation-inference-steps", "2",
           "--method", "lora", "--train-text-encoder"]
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="retroportal.settings_test", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("finished step 2/2") == 1  # printed by rank 0 only
    # one RNG state per process: both ranks trained and checkpointed together
    assert {p.name for p in (out / "checkpoint-2").glob("random_states_*.pkl")} == {"random_states_0.pkl",
                                                                                     "random_states_1.pkl"}
    assert len(list(csv.DictReader(open(out / "metrics.csv")))) == 2
    assert (out / "pytorch_lora_weights.safetensors").exists() and (out / "lora_kohya.safetensors").exists()
