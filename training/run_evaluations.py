"""Evaluating training runs' checkpoints (and registered models) on a prompt suite: the service layer.

Like training.runs, the row is the truth: `evaluate_run` writes one Evaluation row per checkpoint and
queues training.tasks.run_evaluation_job on the 'generation' queue once the transaction commits (the
GPU workers that keep pipelines loaded; each process also keeps its CLIP and DINO encoders). When the
last pending evaluation of a run finishes, `update_recommendation` stores recommend_checkpoint's choice
on the run. `run_report_html` / `comparison_html` build the staff pages, each one self-contained HTML
document (data: URIs only) that is also the downloadable file.
"""
import html
import re
from pathlib import Path

from django.conf import settings

from jobs import core as jobs
from training.evaluation.config import EvalConfig, EvalConfigError
from training.models import Evaluation, PromptSuite, TrainingRun

QUEUE_NAME = "generation"
Status = Evaluation.Status
PENDING = (Status.QUEUED, Status.RUNNING)
STOPPED = "The worker running this evaluation stopped unexpectedly (killed or crashed); evaluate the run again."
LOST = "The evaluation job was lost from the queue (Redis restarted or was flushed); evaluate the run again."


class EvaluationRefused(Exception):
    """The evaluation cannot be queued (run still training, no checkpoints, bad settings); says why."""


def resolve_settings(overrides: dict | None, native_size: int | None = None) -> dict:
    """The evaluation settings for a model of `native_size`: EvalConfig's defaults, the site's
    RETROPORTAL_EVALUATION_DEFAULTS, then `overrides` (the admin action, `evaluate --run`, a sweep); as the JSON
    the Evaluation row stores."""
    from training.evaluation.encoders import DEFAULT_DINO  # imports torch: not at the web process's start

    site = getattr(settings, "RETROPORTAL_EVALUATION_DEFAULTS", {}) or {}
    try:
        config = EvalConfig.from_dict(site, "RETROPORTAL_EVALUATION_DEFAULTS").updated(overrides, "evaluation")
        config = config.resolved(native_size, settings.RETROPORTAL_CLIP_MODEL,
                                 getattr(settings, "RETROPORTAL_DINO_MODEL", DEFAULT_DINO))
    except EvalConfigError as exc:
        raise EvaluationRefused(str(exc)) from None
    return config.as_dict()


def suite_for(suite: PromptSuite | None, config: EvalConfig | dict):
    """The (subset) Suite an evaluation generates; EvaluationRefused naming the bad key or language."""
    from training.evaluation.prompt_suite import SuiteError

    config = config if isinstance(config, EvalConfig) else EvalConfig.from_dict(config)
    suite = suite or PromptSuite.default()
    parsed = suite.parse()
    try:
        subset = parsed.subset(config.prompt_keys, config.languages)
    except SuiteError as exc:
        raise EvaluationRefused(str(exc)) from None
    if not subset.prompts:
        raise EvaluationRefused(f"languages {config.languages}: suite {suite.name} has none of them "
                                f"(it has {', '.join(parsed.languages)})")
    return subset


# -- checkpoints -------------------------------------------------------------------------------------------
def run_checkpoints(run: TrainingRun) -> list[tuple[int, str, Path]]:
    """(step, name, folder) of what can be evaluated, oldest first.

    LoRA runs: every complete checkpoint-N (its adapter is exported by training.dreambooth.lora.
    export_checkpoint_lora). Full fine-tunes keep only accelerate state in checkpoints, so the exported
    pipeline ('final') is what is evaluated.
    """
    from training.dreambooth import checkpointing

    out = run.out_path
    if run.method == TrainingRun.Method.LORA:
        return [(step, path.name, path) for step, path in checkpointing.checkpoints(out)]
    if (out / "model_index.json").is_file():
        return [(run.step, "final", out)]
    return []


def job_timeout() -> int:
    """Seconds one evaluation may run: RETROPORTAL_EVALUATION_TIMEOUT (a whole suite is many generations)."""
    return int(getattr(settings, "RETROPORTAL_EVALUATION_TIMEOUT", 0)
               or max(6 * 3600, settings.RQ_QUEUES[QUEUE_NAME].get("DEFAULT_TIMEOUT", 1800)))


def reconcile_pending() -> int:
    """Reconcile every queued/running evaluation; returns how many failed now."""
    return len(jobs.reconcile_all(EVALUATION))


def _ended(evaluation: Evaluation) -> None:
    """A run's evaluation that reconcile failed may have been the last pending one: recommend now."""
    if evaluation.training_run_id:
        update_recommendation(evaluation.training_run)


EVALUATION = jobs.JobKind(
    name="evaluation", model_label="training.Evaluation", queue=QUEUE_NAME, task="training.tasks.run_evaluation_job",
    died_reason=STOPPED, lost_reason=LOST, lost_queued_reason=LOST, timeout=job_timeout, result_ttl=24 * 3600,
    on_ended=_ended,
)


def _enqueue(evaluation: Evaluation) -> None:
    jobs.enqueue(EVALUATION, evaluation)


def _create(**fields) -> Evaluation:
    evaluation = Evaluation.objects.create(**fields)
    evaluation.out_dir = str(Path(settings.MEDIA_ROOT) / "evaluations" / str(evaluation.pk))
    Evaluation.objects.filter(pk=evaluation.pk).update(out_dir=evaluation.out_dir)
    return evaluation


def evaluate_run(run: TrainingRun, checkpoints: str = "all", suite: PromptSuite | None = None,
                 overrides: dict | None = None, skip_done: bool = True, include_base: bool = True) -> list[Evaluation]:
    """Queue one evaluation per checkpoint ('all' or the 'last'); returns the rows queued now.

    A checkpoint already evaluated (or being evaluated) with the same suite and settings is skipped.
    include_base also evaluates the run's base model with the very same suite, seeds, settings and
    references (once: every run on that base and dataset shares it), so 'before' and 'after' compare
    like with like.
    """
    if checkpoints not in ("all", "last"):
        raise EvaluationRefused(f"--checkpoints {checkpoints}: use all or last")
    if run.is_active:
        raise EvaluationRefused(f"{run.name} is {run.status}; evaluate it once it has stopped")
    found = run_checkpoints(run)
    if not found:
        raise EvaluationRefused(f"{run.name} has no checkpoints to evaluate (status {run.status}); train it first")
    if checkpoints == "last":
        found = found[-1:]
    suite = suite or PromptSuite.default()
    values = resolve_settings(overrides, run.base_model.native_size)
    values["references"] = values["references"] or str(run.dataset.prepared_dir)
    suite_for(suite, values)  # refuse unknown keys/languages before anything is queued
    queued = []
    for step, name, _path in found:
        same = run.evaluations.filter(checkpoint=name, suite=suite, settings=values)
        if skip_done and same.filter(status__in=(Status.DONE, *PENDING)).exists():
            continue
        evaluation = _create(training_run=run, name=f"{run.name}/{name}", checkpoint=name, step=step, suite=suite,
                             settings=values, status=Status.QUEUED)
        _enqueue(evaluation)
        queued.append(evaluation)
    if queued:
        TrainingRun.objects.filter(pk=run.pk).update(recommended_checkpoint="", recommendation_reason="")
    if include_base:
        base = base_evaluations(run, values, suite, statuses=(Status.DONE, *PENDING))
        if not base:
            evaluation = _create(model=run.base_model, name=f"{run.base_model.name} (base)", checkpoint="base",
                                 suite=suite, settings=values, status=Status.QUEUED)
            _enqueue(evaluation)
            queued.append(evaluation)
    return queued


def base_evaluations(run: TrainingRun, values: dict | None = None, suite: PromptSuite | None = None,
                     statuses=(Status.DONE,)) -> list[Evaluation]:
    """Evaluations of the run's base model made with the same settings and suite as the run's own
    (its latest evaluation's, unless given), newest first."""
    if values is None or suite is None:
        own = latest_per_checkpoint(run)
        if not own:
            return []
        values, suite = own[-1].settings, own[-1].suite
    return list(Evaluation.objects.filter(model=run.base_model, training_run=None, suite=suite, settings=values,
                                          status__in=statuses).order_by("-created_at"))


def evaluate_model(model, references: str | Path, suite: PromptSuite | None = None,
                   overrides: dict | None = None) -> Evaluation:
    """Queue an evaluation of a registered model as is (e.g. the base model: 'before' next to 'after')."""
    suite = suite or PromptSuite.default()
    values = resolve_settings(overrides, model.native_size)
    values["references"] = str(references)
    suite_for(suite, values)
    evaluation = _create(model=model, name=model.name, suite=suite, settings=values, status=Status.QUEUED)
    _enqueue(evaluation)
    return evaluation


def reconcile(evaluation: Evaluation) -> Evaluation:
    """A running evaluation whose worker died (heartbeat gone), or a queued one whose job vanished, fails
    with the reason (a failed checkpoint is queued again by the next 'evaluate')."""
    return jobs.reconcile(EVALUATION, evaluation)


def latest_per_checkpoint(run: TrainingRun, statuses=(Status.DONE,)) -> list[Evaluation]:
    """The newest evaluation of each checkpoint of the run (in `statuses`), in step order."""
    latest: dict[str, Evaluation] = {}
    for evaluation in run.evaluations.filter(status__in=statuses).order_by("created_at"):
        latest[evaluation.checkpoint] = evaluation
    return sorted(latest.values(), key=lambda e: (e.step or 0, e.checkpoint))


def update_recommendation(run: TrainingRun) -> tuple[str | None, str] | None:
    """Once no evaluation of the run is pending: recommend_checkpoint over its evaluated checkpoints."""
    from training.evaluation.evaluate import EvaluationError, recommend_checkpoint

    if run.evaluations.filter(status__in=PENDING).exists():
        return None
    done = latest_per_checkpoint(run)
    if not done:
        return None
    try:
        name, reason = recommend_checkpoint({e.checkpoint: e.overall for e in done})
    except EvaluationError as exc:
        name, reason = None, str(exc)
    TrainingRun.objects.filter(pk=run.pk).update(recommended_checkpoint=name or "", recommendation_reason=reason)
    return name, reason


def chosen_evaluation(run: TrainingRun) -> Evaluation | None:
    """The evaluation standing for the run in comparisons: its recommended checkpoint, else the last one."""
    done = latest_per_checkpoint(run)
    return next((e for e in done if e.checkpoint == run.recommended_checkpoint), done[-1] if done else None)


def wait(evaluations, timeout: float = 3600, interval: float = 0.5, on_tick=None) -> list[Evaluation]:
    """Poll until none of the evaluations is queued/running (a worker on 'generation' must run them)."""
    import time

    deadline = time.monotonic() + timeout
    pks = [e.pk for e in evaluations]
    while True:
        rows = [reconcile(row) for row in Evaluation.objects.filter(pk__in=pks)]
        if on_tick:
            on_tick(rows)
        if not any(r.status in PENDING for r in rows):
            return rows
        if time.monotonic() > deadline:
            raise TimeoutError(f"evaluations still pending after {timeout:.0f}s; is a 'generation' worker running?")
        time.sleep(interval)


# -- pages -------------------------------------------------------------------------------------------------
def loss_svg(run: TrainingRun, width: int = 600, height: int = 200) -> str:
    """The training loss per step (metrics.csv, thinned like the admin's live curve) as inline SVG."""
    points = run.loss_points()
    if len(points) < 2:
        return "<p class=note>(no loss curve: fewer than two logged steps)</p>"
    x0, x1 = points[0][0], points[-1][0]
    ys = [p[1] for p in points]
    y0, y1 = min(ys), max(ys)
    pad, sx = 20, (width - 40) / max(x1 - x0, 1)
    sy = (height - 2 * pad) / (y1 - y0 if y1 > y0 else 1.0)
    coords = " ".join(f"{pad + (x - x0) * sx:.1f},{height - pad - (y - y0) * sy:.1f}" for x, y in points)
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="training loss per step" style="background:#fff;border:1px solid #ccc">'
            f'<polyline fill="none" stroke="#c0392b" stroke-width="1.5" points="{coords}"></polyline>'
            f'<text x="4" y="14" font-size="11">{y1:.4f}</text><text x="4" y="{height - 6}" font-size="11">{y0:.4f}</text>'
            f'<text x="{width - 60}" y="{height - 6}" font-size="11">step {x1}</text></svg>')


def _settings_line(evaluation: Evaluation) -> str:
    s = evaluation.settings or {}
    return (f"suite {evaluation.suite.name if evaluation.suite else '?'} · {s.get('images_per_prompt')} images per prompt · "
            f"{s.get('steps')} steps {s.get('scheduler')} CFG {s.get('guidance_scale')} · {s.get('width')}×{s.get('height')} · "
            f"seed {s.get('seed')} · CLIP {s.get('clip_model')} · DINO {s.get('dino_model') or 'off'}")


def run_report_html(run: TrainingRun, extra_top: str = "") -> str:
    """One run: settings, loss curve, recommendation, metrics per checkpoint, charts, picture grids."""
    from training.evaluation.report import CHART_KEYS, LABELS, _bar_chart, _img, _page, _table, _thumbnail

    for evaluation in run.evaluations.filter(status__in=PENDING):
        reconcile(evaluation)
    done = latest_per_checkpoint(run)
    pending = run.evaluations.filter(status__in=PENDING).count()
    failed = [e for e in run.evaluations.filter(status=Status.FAILED)]
    e = html.escape
    parts = [extra_top, f"<h1>Training run {e(run.name)}</h1>",
             f"<p>{e(run.method)} on {e(run.base_model.name)} · dataset {e(run.dataset.name)} · status {e(run.status)} "
             f"· step {run.step}/{run.max_steps} · settings {e(str(run.settings_values()))}</p>"]
    if done:
        parts.append(f"<p class=note>Evaluation: {e(_settings_line(done[-1]))}</p>")
    parts.append("<h2>Recommendation</h2>")
    if run.recommendation_reason:
        parts.append(f"<p><b>Recommended: {e(run.recommended_checkpoint or 'none')}</b> — {e(run.recommendation_reason)}</p>")
    else:
        parts.append(f"<p class=note>Not yet: {pending} evaluation(s) pending, {len(done)} done.</p>")
    for f in failed:
        parts.append(f"<p class=warn>{e(f.name)} failed: {e(f.error)}</p>")
    parts.append("<h2>Training loss</h2>" + loss_svg(run))
    if not done:
        return _page(f"Training run {run.name}", "".join(parts) + "<p>No evaluated checkpoints yet.</p>")
    base = base_evaluations(run)[:1]
    if base:
        base[0].checkpoint = f"base ({run.base_model.name})"
        parts.append("<p class=note>The first row is the base model before fine-tuning, evaluated with the same "
                     "prompts, seeds, settings and reference pictures (not a candidate for the recommendation).</p>")
    done = base + done
    overall = {ev.checkpoint: ev.overall or {} for ev in done}
    parts.append("<h2>Metrics per checkpoint</h2>" + _table(overall, "checkpoint"))
    keys = [k for k in CHART_KEYS if any(m.get(k) is not None for m in overall.values())]
    parts.append(_img(_bar_chart([LABELS[k] for k in keys], {n: [m.get(k) for k in keys] for n, m in overall.items()},
                                 "Metrics per checkpoint"), "metrics per checkpoint", "chart"))
    prompts = list(dict.fromkeys(p for ev in done for p in (ev.by_prompt or {})))
    parts.append(_img(_bar_chart(prompts, {ev.checkpoint: [(ev.by_prompt or {}).get(p, {}).get("clip_t") for p in prompts]
                                           for ev in done}, "CLIP-T per prompt"), "CLIP-T per prompt", "chart"))
    parts.append("<h2>Pictures per prompt and checkpoint</h2>")
    images = {ev.pk: list(ev.images.all()) for ev in done}
    for prompt_id in prompts:
        parts.append(f"<h3>{e(prompt_id)}</h3>")
        for ev in done:
            parts.append(f"<p class=note>{e(ev.checkpoint)}</p><div class=grid>")
            for row in (r for r in images[ev.pk] if r.prompt_id == prompt_id):
                uri = _thumbnail(ev.out_path / row.file) if row.file else None
                caption = f"seed {row.seed} · CLIP-T {row.clip_t:.3f} · max train sim {row.max_train_sim:.3f}" + (
                    " · NEAR COPY" if row.near_copy else "")
                picture = _img(uri, f"{ev.checkpoint} seed {row.seed}", "thumb") if uri else "<p>(no file)</p>"
                parts.append(f"<figure class=\"{'copy' if row.near_copy else ''}\">{picture}"
                             f"<figcaption>{e(caption)}</figcaption></figure>")
            parts.append("</div>")
    return _page(f"Training run {run.name}", "".join(parts))


def comparison_html(runs: list[TrainingRun], extra_top: str = "") -> str:
    """Several runs side by side: each by its recommended (else last) evaluated checkpoint."""
    from training.evaluation.evaluate import EvaluationError, recommend_checkpoint
    from training.evaluation.report import render_comparison

    results, rows, bases = {}, [], {}
    e = html.escape
    for run in runs:
        for base in base_evaluations(run)[:1]:
            bases.setdefault(base.pk, (f"{base.name} on {run.dataset.name}", base))
        chosen = chosen_evaluation(run)
        values = run.settings_values()
        grid = str(values.get("training_comment") or "") or (
            f"dataset {run.dataset.name}, {values.get('max_steps')} steps, rank {values.get('rank')}")
        if chosen is None:
            rows.append(f"<tr><td class=l>{e(run.name)}</td><td class=l>{e(grid)}</td><td class=l>{e(run.status)}</td>"
                        f"<td class=l>–</td><td class=l>(not evaluated)</td></tr>")
            continue
        label = f"{run.name} ({chosen.checkpoint})"
        results[label] = chosen.result()
        rows.append(f"<tr><td class=l>{e(run.name)}</td><td class=l>{e(grid)}</td><td class=l>{e(run.status)}</td>"
                    f"<td class=l>{e(run.recommended_checkpoint or 'none')}</td>"
                    f"<td class=l><span class=note>{e(run.recommendation_reason)}</span></td></tr>")
    table = (f"<h1>Comparison of {len(runs)} training runs</h1><table><tr><th class=l>run</th><th class=l>settings</th>"
             "<th class=l>status</th><th class=l>recommended checkpoint</th><th class=l>why</th></tr>"
             + "".join(rows) + "</table>")
    if not results:
        from training.evaluation.report import _page

        return _page("Run comparison", extra_top + table + "<p>Nothing evaluated yet.</p>")
    try:
        choice, reason = recommend_checkpoint({n: r.overall for n, r in results.items()})
        verdict = f"<p><b>Recommended run: {e(choice or 'none')}</b> — {e(reason)}</p>"
    except EvaluationError as exc:
        verdict = f"<p class=warn>No recommendation: {e(str(exc))}</p>"
    references = {r.settings.get("references") for r in results.values()}
    if len(references) > 1:
        verdict += ("<p class=warn>These runs were measured against different reference pictures (their own training "
                    "sets): CLIP-I, DINO and the memorization numbers compare like with like only between runs on the "
                    "same dataset; CLIP-T (prompt fidelity) compares across all.</p>")
    if bases:
        verdict += ("<p class=note>Base model rows: the model before fine-tuning, evaluated with the same prompts, "
                    "seeds, settings and reference pictures (not candidates).</p>")
    everything = {label: ev.result() for label, ev in bases.values()}
    everything.update(results)
    page = render_comparison(everything, recommend=False)
    page = re.sub(r"<h1>(Comparison of [^<]*)</h1>", r"<h2>\1 (each run's chosen checkpoint, base models first)</h2>", page, count=1)
    return page.replace("<body>", "<body>" + extra_top + table + verdict, 1)
