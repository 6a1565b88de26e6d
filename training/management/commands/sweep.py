"""manage.py sweep SWEEP.toml: a grid of training runs, trained, evaluated and compared (training.sweeps).

Queues the runs on 'training' and their evaluations on 'generation' (workers must be running), waits,
then prints one comparison table and writes OUT/comparison.html (self-contained) and OUT/comparison.csv.
Run it again at any time: finished runs are skipped, interrupted ones resumed.
"""
import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Train, evaluate and compare a grid of DreamBooth runs described by a TOML file (resumable)."

    def add_arguments(self, parser):
        parser.add_argument("sweep", help="sweep TOML file ([base], [grid], [evaluation]; see training/sweeps.py)")
        parser.add_argument("--out", help="folder for comparison.html / comparison.csv (default: <file>-results beside it)")
        parser.add_argument("--no-wait", action="store_true", help="queue what is missing and exit (run again later)")
        parser.add_argument("--timeout", type=float, default=48 * 3600, help="seconds to wait for training and evaluation")

    def handle(self, *args, **o):
        from training import run_evaluations, sweeps

        path = Path(o["sweep"])
        try:
            sweep = sweeps.load_sweep(path)
        except sweeps.SweepError as e:
            raise CommandError(f"{path}: {e}") from e
        out = Path(o["out"]) if o["out"] else path.with_name(path.stem + "-results")
        say = self.stdout.write
        say(f"sweep {sweep.name}: {len(sweep.runs)} runs ({' x '.join(sweep.grid_keys) or 'no grid'})")
        try:
            sweep_runs = sweeps.launch(sweep, say)
        except Exception as e:  # refused settings or state: one line
            raise CommandError(f"{type(e).__name__}: {e}") from e
        if o["no_wait"]:
            return
        try:
            sweeps.wait_runs(sweep_runs, o["timeout"])
            for run in sweep_runs:
                if run.status != run.Status.DONE:
                    self.stderr.write(f"{run.name}: {run.status} {run.error}".rstrip())
            pending = sweeps.evaluate_all(sweep, sweep_runs, say)
            for ev in run_evaluations.wait(pending, timeout=o["timeout"]):
                if ev.status == ev.Status.FAILED:
                    self.stderr.write(f"{ev.name}: evaluation failed: {ev.error}")
        except TimeoutError as e:
            raise CommandError(str(e)) from e
        rows = sweeps.table(sweep, sweep_runs)
        say(sweeps.format_table(rows))
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "comparison.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        from training.evaluation.report import write_report

        say(str(write_report(run_evaluations.comparison_html(sweep_runs), out / "comparison.html")))
        say(str(out / "comparison.csv"))
