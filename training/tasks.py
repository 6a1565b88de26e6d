"""The dataset preparation job ('training' queue), also run in-process by `manage.py prepare_dataset`.

Order matters: the prepared folder is swapped in first, and only then is the row marked ready, so a
dataset that says 'ready' always has its complete prepared folder on disk.
"""
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs import core as jobs
from training.dataprep import NoUsableImages, PrepResult, prepare
from training.dataprep.pipeline import usable_cpus
from training.models import Dataset, DatasetImage

PROGRESS_INTERVAL_S = 0.5


def prepare_dataset_job(dataset_id: int) -> str:
    """RQ entry point: prepare one dataset; returns the summary line."""
    from training.datasets import PREPARATION

    with jobs.running(PREPARATION, dataset_id) as dataset:
        if dataset is None:
            return "skipped: not queued for this job any more"
        result = _prepare(dataset)
    return "failed: " + dataset.error if result is None else f"ready: {dataset.kept_count} pictures"


def preparation_workers() -> int:
    configured = getattr(settings, "RETROPORTAL_DATASET_WORKERS", 0)
    return configured if configured > 0 else usable_cpus()


def run_preparation(dataset: Dataset, workers: int | None = None, on_progress=None) -> PrepResult | None:
    """Prepare `dataset` in this process (the command, tests): no queue, so no RQ job to reconcile against."""
    Dataset.objects.filter(pk=dataset.pk).update(
        status=Dataset.Status.RUNNING, error="", rq_job_id="", worker_name="inline", started_at=timezone.now(),
        finished_at=None)
    return _prepare(dataset, workers, on_progress)


def _prepare(dataset: Dataset, workers: int | None = None, on_progress=None) -> PrepResult | None:
    """Prepare `dataset` now; None (and status failed, with the reason) when nothing is usable."""
    reporter = _ProgressWriter(dataset.pk, on_progress)
    try:
        result = prepare(
            dataset.originals_dir, dataset.prepared_dir, dataset.prep_config(workers or preparation_workers()), reporter
        )
    except NoUsableImages as exc:
        _mark_failed(dataset, str(exc), exc.manifest)
        return None
    except BaseException as exc:  # Ctrl-C in the command or a job timeout must not leave it 'preparing'
        _mark_failed(dataset, f"{type(exc).__name__}: {exc}"[:2000] if str(exc) else type(exc).__name__, None)
        raise
    _mark_ready(dataset, result)
    return result


class _ProgressWriter:
    """Writes k/N to the row at most twice a second (and always the last step)."""

    def __init__(self, pk: int, on_progress):
        self.pk, self.on_progress, self.last = pk, on_progress, 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self.last >= PROGRESS_INTERVAL_S:
            Dataset.objects.filter(pk=self.pk).update(progress_done=done, progress_total=total)
            self.last = now
        if self.on_progress:
            self.on_progress(done, total)


def _mark_failed(dataset: Dataset, error: str, manifest: dict | None) -> None:
    with transaction.atomic():
        dataset.refresh_from_db()
        dataset.status, dataset.error, dataset.finished_at = Dataset.Status.FAILED, error, timezone.now()
        if manifest is not None:
            dataset.manifest = manifest
            dataset.set_counts(manifest["counts"])
        dataset.images.all().delete()
        dataset.save()


def _mark_ready(dataset: Dataset, result: PrepResult) -> None:
    with transaction.atomic():
        dataset.refresh_from_db()
        dataset.images.all().delete()
        DatasetImage.objects.bulk_create(_image_rows(dataset, result))
        dataset.manifest = result.manifest
        dataset.set_counts(result.counts)
        dataset.status, dataset.error, dataset.prepared_at = Dataset.Status.DONE, "", timezone.now()
        dataset.finished_at = dataset.prepared_at
        dataset.save()


def _image_rows(dataset: Dataset, result: PrepResult) -> list[DatasetImage]:
    return [
        DatasetImage(
            dataset=dataset, output_name=r["output"], source_name=r["source"], caption=r["caption"],
            width=r["output_size"][0], height=r["output_size"][1],
            bucket="x".join(map(str, r["bucket"])) if r.get("bucket") else "", sha256=r["sha256"],
        )
        for r in result.kept
    ]


# ---------------------------------------------------------------------------------------------------------
# DreamBooth training runs: training.runs queues run_training_job(run_id) on the 'training' queue.

RUN_PROGRESS_INTERVAL_S = 1.0  # step/ETA/losses written to the row at most once a second (and the last step)
RUN_CANCEL_POLL_S = 0.5
RUN_LOG_LOGGERS = ("training", "accelerate")


def run_training_job(run_id: int) -> str:
    """RQ entry point: train (or resume) TrainingRun `run_id`; returns its final status.

    Never raises for a run-level failure (the row says failed, with the one-line reason); a worker
    killed mid-run leaves the row 'running' with an expired heartbeat, which training.runs.reconcile
    turns into 'interrupted' (resumable).
    """
    from training.models import TrainingRun
    from training.runs import TRAINING

    with jobs.running(TRAINING, run_id, heartbeat_at=timezone.now(), eta_seconds=None) as run:
        if run is None:  # cancelled while queued, or an older job of a run queued again
            return TrainingRun.objects.filter(pk=run_id).values_list("status", flat=True).first() or "missing"
        return _RunExecutor(run).execute()


class _RunExecutor:
    def __init__(self, run):
        self.run = run
        self.last_write = 0.0
        self.last_cancel_check = 0.0
        self.cancel = False
        self.t0 = time.monotonic()
        self.first_step = None

    def _update(self, **fields) -> None:
        from training.models import TrainingRun

        TrainingRun.objects.filter(pk=self.run.pk).update(updated_at=timezone.now(), **fields)

    def execute(self) -> str:
        import logging

        from generator.tasks import one_line
        from training.dreambooth import ConfigError, DatasetError, TrainingError, train
        from training.models import TrainingRun

        Status = TrainingRun.Status
        run = self.run
        run.out_path.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(run.log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
        loggers = [logging.getLogger(name) for name in RUN_LOG_LOGGERS]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.addHandler(handler)
            lg.setLevel(logging.INFO)
        self.log = logging.getLogger("training.runs")
        try:
            cfg = run.train_config(resume=run.resume_requested)
            self._update(max_steps=cfg.max_steps)
            self.run.max_steps = cfg.max_steps
            self.log.info("%s run %s: %s on %s, dataset %s, %d steps -> %s",
                          "resuming" if cfg.resume else "starting", run.name, cfg.method, run.base_model.name,
                          run.dataset.name, cfg.max_steps, cfg.out)
            result = train(cfg, on_progress=self.on_progress, should_cancel=self.should_cancel)
        except (ConfigError, DatasetError, TrainingError) as exc:
            return self._failed(str(exc))
        except Exception as exc:
            self.log.exception("run %s failed", run.name)
            return self._failed(one_line(exc))
        except BaseException as exc:  # a warm-shutdown SystemExit: resumable from the last checkpoint
            self._update(status=Status.INTERRUPTED, finished_at=timezone.now(), eta_seconds=None,
                         error=f"The worker stopped ({type(exc).__name__}); resume the run to continue.")
            raise
        finally:
            for lg, level in zip(loggers, levels):
                lg.removeHandler(handler)
                lg.setLevel(level)
            handler.close()
        if result.cancelled:
            self._update(status=Status.CANCELLED, step=result.step, cancel_requested=False,
                         finished_at=timezone.now(), eta_seconds=None)
            self._append_log(f"cancelled at step {result.step}/{cfg.max_steps} (checkpoint saved; resumable)")
            return Status.CANCELLED
        try:
            model = register_result(run, cfg, result)
        except Exception as exc:
            return self._failed(f"training finished but the model could not be registered: {one_line(exc)}")
        self._update(status=Status.DONE, step=result.step, finished_at=timezone.now(), eta_seconds=0,
                     last_losses=_floats(result.logs), result_model=model, error="")
        self._append_log(f"done: step {result.step}/{cfg.max_steps}; registered model {model.name} (inactive)")
        return Status.DONE

    def _failed(self, message: str) -> str:
        from training.models import TrainingRun

        message = " ".join(message.split())[:1000]
        self._update(status=TrainingRun.Status.FAILED, error=message, finished_at=timezone.now(), eta_seconds=None)
        self._append_log(f"failed: {message}")
        return TrainingRun.Status.FAILED

    def _append_log(self, line: str) -> None:
        try:
            with open(self.run.log_path, "a", encoding="utf-8") as fh:
                fh.write(f"{timezone.now():%Y-%m-%d %H:%M:%S} {line}\n")
        except OSError:
            pass

    def on_progress(self, step: int, total: int, logs: dict) -> None:
        now = time.monotonic()
        if self.first_step is None:
            self.first_step, self.t0 = step, now - float(logs.get("seconds", 0.0))
        if step != total and now - self.last_write < RUN_PROGRESS_INTERVAL_S:
            return
        self.last_write = now
        done_here = step - self.first_step + 1
        eta = (now - self.t0) / done_here * (total - step) if done_here > 0 else None
        losses = _floats(logs)
        self._update(step=step, max_steps=total, eta_seconds=eta, last_losses=losses, heartbeat_at=timezone.now())
        self.log.info("step %d/%d loss %.4f", step, total, losses.get("loss", float("nan")))

    def should_cancel(self) -> bool:
        from training.models import TrainingRun

        now = time.monotonic()
        if not self.cancel and now - self.last_cancel_check >= RUN_CANCEL_POLL_S:
            self.last_cancel_check = now
            self.cancel = TrainingRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists()
        return self.cancel


def _floats(logs: dict) -> dict:
    out = {}
    for key, value in (logs or {}).items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def register_result(run, cfg, result):
    """Register the trained weights as an inactive AIModel (LoRA file on the base, or a diffusers folder) that
    draws at its base model's default steps and CFG scale, or at its preset's recommended ones."""
    from generator.models import AIModel
    from training.dreambooth.presets import recommended_generation

    base = run.base_model
    out = run.out_path
    if cfg.method == "lora":
        kind, source = AIModel.Kind.LORA, out / "pytorch_lora_weights.safetensors"
    else:
        kind, source = AIModel.Kind.FINETUNED, out
    if not Path(source).exists():
        raise FileNotFoundError(f"{source} was not written")
    drawn = recommended_generation(run.preset, {"steps": base.default_steps,
                                                "guidance_scale": base.default_guidance_scale})
    name, n = run.name, 1
    while AIModel.objects.filter(name=name).exists():
        n += 1
        name = f"{run.name}-{n}"
    return AIModel.objects.create(
        name=name[:100], source=str(source), kind=kind, parent=base, lora_scale=1.0,
        architecture=base.architecture, native_size=base.native_size, is_active=False,
        default_steps=drawn["steps"], default_guidance_scale=drawn["guidance_scale"],
        description=f"DreamBooth {cfg.method} of {base.name} on dataset {run.dataset.name}, {result.step} steps "
                    f"(training run {run.name})",
    )


# ---------------------------------------------------------------------------------------------------------
# Evaluations: training.run_evaluations queues run_evaluation_job(evaluation_id) on the 'generation' queue.

EVAL_PROGRESS_INTERVAL_S = 0.5
_DINO_ENCODERS: dict = {}  # spec -> DinoEncoder, kept for the worker process's lifetime (like the CLIP cache)


def evaluation_encoders(clip_spec: str, dino_spec: str | None):
    """(clip, dino) loaded once per worker process: CLIP from the engine's ClipCache (shared with the CLIP
    scores of generation jobs), DINO from a small per-process cache."""
    from generator.engine.clipscore import ClipUnavailable
    from generator.tasks import clip_cache
    from training.evaluation.encoders import EncoderUnavailable, load_dino_encoder

    try:
        clip = clip_cache().get(clip_spec)
    except ClipUnavailable as exc:
        raise EncoderUnavailable(f"CLIP model: {exc.reason}") from exc
    dino = None
    if dino_spec:
        if dino_spec not in _DINO_ENCODERS:
            _DINO_ENCODERS[dino_spec] = load_dino_encoder(dino_spec)
        dino = _DINO_ENCODERS[dino_spec]
    return clip, dino


def run_evaluation_job(evaluation_id: int) -> str:
    """RQ entry point: evaluate one checkpoint (or model); returns its final status. Never raises for a
    failed evaluation (the row says failed, with the one-line reason)."""
    from training.run_evaluations import EVALUATION
    from training.models import Evaluation

    with jobs.running(EVALUATION, evaluation_id) as evaluation:
        if evaluation is None:
            return Evaluation.objects.filter(pk=evaluation_id).values_list("status", flat=True).first() or "missing"
        return _run_evaluation(evaluation)


def _run_evaluation(evaluation) -> str:
    from generator.tasks import one_line
    from training import run_evaluations
    from training.models import Evaluation

    try:
        _evaluate(evaluation)
        status = Evaluation.Status.DONE
    except Exception as exc:
        import logging

        logging.getLogger("training.run_evaluations").exception("evaluation %s failed", evaluation.name)
        with transaction.atomic():
            Evaluation.objects.filter(pk=evaluation.pk).update(
                status=Evaluation.Status.FAILED, error=one_line(exc), finished_at=timezone.now())
            if evaluation.training_run_id:
                run_evaluations.update_recommendation(evaluation.training_run)
        status = Evaluation.Status.FAILED
    return status


def _evaluate(evaluation) -> None:
    from generator.tasks import pipeline_cache
    from training import run_evaluations
    from training.evaluation.evaluate import evaluate
    from training.evaluation.report import render_report, write_report
    from training.models import Evaluation, EvaluationImage

    config = evaluation.config()
    suite = run_evaluations.suite_for(evaluation.suite, config)
    out = evaluation.out_path
    run = evaluation.training_run
    if run is not None:
        source, lora, scale = run.base_model.pipeline_spec()
        found = {name: path for _, name, path in run_evaluations.run_checkpoints(run)}
        if evaluation.checkpoint not in found:
            raise FileNotFoundError(f"{run.name}: {evaluation.checkpoint} is no longer on disk "
                                    "(checkpoints_total_limit removed it, or the outputs were deleted)")
        if run.method == run.Method.LORA:
            from training.dreambooth.lora import export_checkpoint_lora

            cfg = run.train_config()
            lora, scale = str(export_checkpoint_lora(found[evaluation.checkpoint], cfg.rank, cfg.lora_alpha, out / "lora")), 1.0
        else:
            source, lora, scale = str(found[evaluation.checkpoint]), None, 1.0
    else:
        source, lora, scale = evaluation.model.pipeline_spec()
    Evaluation.objects.filter(pk=evaluation.pk).update(lora_path=lora or "")
    total = config.steps * config.images_per_prompt * len(suite.prompts)
    Evaluation.objects.filter(pk=evaluation.pk).update(progress_done=0, progress_total=total)
    last = [0.0]

    def on_progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= EVAL_PROGRESS_INTERVAL_S:
            last[0] = now
            Evaluation.objects.filter(pk=evaluation.pk).update(progress_done=done, progress_total=total)

    model = pipeline_cache().get(source, lora=lora, lora_scale=scale, name=evaluation.name,
                                 allow_pickle=settings.RETROPORTAL_ALLOW_PICKLE)
    clip, dino = evaluation_encoders(config.clip_model, config.dino_model)
    result = evaluate(source, config, suite, lora=lora, lora_scale=scale, out_dir=out, on_progress=on_progress,
                      name=evaluation.name, model=model, clip_encoder=clip, dino_encoder=dino)
    report = write_report(render_report(result), out / "report.html")
    with transaction.atomic():
        evaluation.images.all().delete()
        EvaluationImage.objects.bulk_create([
            EvaluationImage(evaluation=evaluation, prompt_id=r.prompt_id, language=r.language, seed=r.seed,
                            clip_t=r.clip_t, max_train_sim=r.max_train_sim, near_copy=r.near_copy, file=r.file or "")
            for r in result.images
        ])
        Evaluation.objects.filter(pk=evaluation.pk).update(
            status=Evaluation.Status.DONE, overall=result.overall, by_prompt=result.by_prompt,
            by_language=result.by_language, by_split=result.by_split, warnings=result.warnings,
            report_file=str(report), finished_at=timezone.now(), progress_done=total,
        )
        if run is not None:  # in the same transaction: whoever sees 'done' sees the recommendation too
            run_evaluations.update_recommendation(run)
