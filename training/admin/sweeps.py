"""Sweeps in the Django admin: paste a sweep TOML (as for `manage.py sweep`); 'continue' starts, resumes or
skips its runs and evaluates the finished ones. Run it again as runs finish; the overview links to the
comparison page."""
from django.contrib import admin, messages
from django.template.loader import render_to_string

from training import run_evaluations, runs, sweeps
from training.forms import SweepForm
from training.models import Sweep, TrainingRun

METRICS = ("clip_t", "clip_i", "near_copy_rate")


def _plan(sweep: Sweep):
    """The parsed sweep and (planned run, its TrainingRun or None) pairs; SweepError if the TOML no longer reads."""
    parsed = sweeps.parse_sweep(sweep.spec or "", sweep.name or "sweep")
    found = {r.name: r for r in TrainingRun.objects.filter(name__in=[s.name for s in parsed.runs])}
    return parsed, [(spec, found.get(spec.name)) for spec in parsed.runs]


@admin.register(Sweep)
class SweepAdmin(admin.ModelAdmin):
    form = SweepForm
    list_display = ["name", "state", "updated_at"]
    actions = ["continue_sweeps"]
    readonly_fields = ["overview"]

    def get_fields(self, request, obj=None):
        return ["name", "spec"] + (["overview"] if obj else [])

    @admin.display(description="runs")
    def state(self, sweep: Sweep) -> str:
        try:
            _, pairs = _plan(sweep)
        except sweeps.SweepError as exc:
            return str(exc)
        counts = {}
        for _, run in pairs:
            status = run.status if run else "not started"
            counts[status] = counts.get(status, 0) + 1
        return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))

    @admin.display(description="overview")
    def overview(self, sweep: Sweep):
        try:
            _, pairs = _plan(sweep)
        except sweeps.SweepError as exc:
            return str(exc)
        rows = []
        for spec, run in pairs:
            chosen = run_evaluations.chosen_evaluation(run) if run else None
            m = (chosen.overall or {}) if chosen else {}
            rows.append((spec.name, " ".join(f"{k}={v}" for k, v in spec.values.items()), run.status if run else "—",
                         run.recommended_checkpoint if run else "",
                         *(f"{m[k]:.4f}" if m.get(k) is not None else "—" for k in METRICS)))
        return render_to_string("training/admin/sweep_overview.html",
                                {"rows": rows, "names": ",".join(row[0] for row in rows)})

    @admin.action(description="Continue selected sweeps (start/resume runs, evaluate finished ones)")
    def continue_sweeps(self, request, queryset):
        for sweep in queryset:
            lines = []
            try:
                parsed = sweeps.parse_sweep(sweep.spec or "", sweep.name or "sweep")
                sweep_runs = sweeps.launch(parsed, lines.append)
                sweeps.evaluate_all(parsed, sweep_runs, lines.append)
            except (sweeps.SweepError, runs.RunRefused) as exc:
                self.message_user(request, f"{sweep.name}: {exc}", messages.ERROR)
                continue
            self.message_user(request, f"{sweep.name}: " + "; ".join(lines))
