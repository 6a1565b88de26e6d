"""Mark training runs whose worker died or whose queued job vanished as interrupted (cron-friendly)."""
from django.core.management.base import BaseCommand

from training import run_evaluations, runs


class Command(BaseCommand):
    help = ("Check every queued or running DreamBooth training run against Redis and the workers; mark those "
            "whose worker died (heartbeat gone) or whose job was lost as interrupted (resumable); mark pending "
            "evaluations whose worker died as failed. Prints what it changed.")

    def handle(self, *args, **options):
        changed = runs.reconcile_all()
        for run, before in changed:
            self.stdout.write(f"{run.name}: {before} -> {run.status} ({run.error})")
        self.stdout.write(f"changed {len(changed)} training run(s)")
        self.stdout.write(f"failed {run_evaluations.reconcile_pending()} evaluation(s) whose worker died or job was lost")
