"""Bring jobs whose worker died or whose RQ job vanished to a final state (cron-friendly)."""
from django.core.management.base import BaseCommand

from generator import services
from generator.models import GenerationJob


class Command(BaseCommand):
    help = ("Check every queued or running generation job against Redis and the workers; mark the ones "
            "whose worker died or whose queue entry was lost as failed. Prints what it changed.")

    def handle(self, *args, **options):
        pending = GenerationJob.objects.filter(
            status__in=[GenerationJob.Status.QUEUED, GenerationJob.Status.RUNNING]
        ).order_by("created_at")
        checked = changed = 0
        for job in pending.iterator():
            checked += 1
            before = job.status
            job = services.reconcile(job)
            if job.status != before:
                changed += 1
                self.stdout.write(f"{job.pk}: {before} -> {job.status}" + (f" ({job.error})" if job.error else ""))
        self.stdout.write(f"checked {checked} unfinished job(s), changed {changed}")
