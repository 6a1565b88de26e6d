"""Per-process caches of loaded pipelines, CLIP scorers, translators and upscaler models.

Loading a real SD model takes seconds to minutes and gigabytes; a generation worker (RQ's
SimpleWorker runs every job in its own process, no fork) should load each model once and keep it
across jobs. These caches are the one place such long-lived objects live. They are small LRUs
(default one model) because a second SD model rarely fits beside the first in GPU memory.
"""
import dataclasses
import gc
import threading
from collections import OrderedDict
from typing import Callable

import torch

from .clipscore import ClipScorer, ClipUnavailable, load_clip
from .devices import default_dtype, pick_device
from .loading import LoadedModel, load_pipeline
from .translate import Translator, TranslatorUnavailable, load_translator
from .upscalers import Upscaler, load_upscaler


def _free(device: str) -> None:
    """Give an evicted model's memory back now rather than at the next garbage collection."""
    gc.collect()
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


class PipelineCache:
    """LRU of LoadedModel keyed by (source, lora, lora_scale, device, dtype); `loads` counts real loads.

    When full, the least recently used model is dropped *before* the new one loads, so peak memory
    stays at `capacity` models. Load errors are not cached: a fixed file is picked up on retry.
    """

    def __init__(self, capacity: int = 1, loader: Callable[..., LoadedModel] = load_pipeline):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.loads = 0
        self._loader = loader
        self._models: OrderedDict[tuple, LoadedModel] = OrderedDict()
        self._lock = threading.RLock()

    @staticmethod
    def key(source, lora=None, lora_scale=1.0, device=None, dtype=None) -> tuple:
        device = device or pick_device()
        return (str(source), str(lora) if lora else None, float(lora_scale), device, dtype or default_dtype(device))

    def get(
        self,
        source: str,
        *,
        lora: str | None = None,
        lora_scale: float = 1.0,
        device=None,
        dtype=None,
        name: str | None = None,
        **load_kwargs,
    ) -> LoadedModel:
        """The cached model for these arguments, loading it (load_pipeline(**load_kwargs)) on a miss.

        `name` (the registry name written into the infotext) is presentation only: two registry
        entries with the same source share one loaded pipeline, each getting its own name back.
        """
        key = self.key(source, lora, lora_scale, device, dtype)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                cached = self._models[key]
                return cached if name is None or name == cached.name else dataclasses.replace(cached, name=name)
            while len(self._models) >= self.capacity:
                _, evicted = self._models.popitem(last=False)
                evicted_device = evicted.device
                del evicted
                _free(evicted_device)
            model = self._loader(
                key[0], lora=key[1], lora_scale=key[2], device=key[3], dtype=key[4], name=name, **load_kwargs
            )
            self.loads += 1
            self._models[key] = model
            return model

    def clear(self) -> None:
        with self._lock:
            devices = {model.device for model in self._models.values()}
            self._models.clear()
            for device in devices:
                _free(device)

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, key: tuple) -> bool:
        return key in self._models


class ClipCache:
    """LRU of ClipScorer by (spec, device) that also remembers ClipUnavailable.

    A missing CLIP model is a configuration fact, not a transient error: retrying it for every job
    would repeat a slow failing download and flood the log. The remembered error is re-raised until
    `clear()` (e.g. after the administrator fixes RETROPORTAL_CLIP_MODEL and restarts the worker).
    """

    def __init__(self, capacity: int = 1, loader: Callable[..., ClipScorer] = load_clip):
        self.capacity = capacity
        self.loads = 0
        self._loader = loader
        self._scorers: OrderedDict[tuple, ClipScorer] = OrderedDict()
        self._failures: dict[tuple, ClipUnavailable] = {}
        self._lock = threading.RLock()

    def get(self, spec: str, device: str | None = None) -> ClipScorer:
        key = (spec, device or pick_device())
        with self._lock:
            if key in self._failures:
                raise self._failures[key]
            if key in self._scorers:
                self._scorers.move_to_end(key)
                return self._scorers[key]
            while len(self._scorers) >= self.capacity:
                self._scorers.popitem(last=False)
                _free(key[1])
            self.loads += 1
            try:
                scorer = self._loader(spec, device=key[1])
            except ClipUnavailable as e:
                self._failures[key] = e
                raise
            self._scorers[key] = scorer
            return scorer

    def clear(self) -> None:
        with self._lock:
            self._scorers.clear()
            self._failures.clear()
            gc.collect()

    def __len__(self) -> int:
        return len(self._scorers)


class TranslatorCache:
    """Translation models by (spec, device), loaded once per process; an unavailable one is remembered
    (like ClipCache) until `clear()`, so a misconfigured model fails each job at once with its reason."""

    def __init__(self, loader: Callable[..., Translator] = load_translator):
        self.loads = 0
        self._loader = loader
        self._translators: dict[tuple, Translator] = {}
        self._failures: dict[tuple, TranslatorUnavailable] = {}
        self._lock = threading.RLock()

    def get(self, spec: str, device: str = "cpu") -> Translator:
        key = (spec, device)
        with self._lock:
            if key in self._failures:
                raise self._failures[key]
            if key not in self._translators:
                self.loads += 1
                try:
                    self._translators[key] = self._loader(spec, device=device)
                except TranslatorUnavailable as e:
                    self._failures[key] = e
                    raise
            return self._translators[key]

    def clear(self) -> None:
        with self._lock:
            self._translators.clear()
            self._failures.clear()


class UpscalerCache:
    """LRU of upscaler models by (source, device, allow_pickle), loaded once per process like the pipelines.

    They are small (1-70 MB for the ESRGAN family), so a few stay loaded. allow_pickle is in the key so a hit
    never skips the pickle check; load errors are not cached (a fixed or converted file is picked up by the
    next job); `name` is presentation only, as in PipelineCache.
    """

    def __init__(self, capacity: int = 3, loader: Callable[..., Upscaler] = load_upscaler):
        self.capacity = capacity
        self.loads = 0
        self._loader = loader
        self._upscalers: OrderedDict[tuple, Upscaler] = OrderedDict()
        self._lock = threading.RLock()

    def get(self, source: str, *, device: str | None = None, allow_pickle: bool = False, name: str | None = None,
            **load_kwargs) -> Upscaler:
        key = (str(source), device or pick_device(), bool(allow_pickle))
        with self._lock:
            if key not in self._upscalers:
                while len(self._upscalers) >= self.capacity:
                    self._upscalers.popitem(last=False)
                self._upscalers[key] = self._loader(key[0], device=key[1], allow_pickle=key[2], name=name,
                                                    **load_kwargs)
                self.loads += 1
            self._upscalers.move_to_end(key)
            cached = self._upscalers[key]
            return cached if name is None or name == cached.name else dataclasses.replace(cached, name=name)

    def clear(self) -> None:
        with self._lock:
            self._upscalers.clear()
            gc.collect()

    def __len__(self) -> int:
        return len(self._upscalers)


# The worker process's caches (module-level on purpose: they must outlive a single job).
pipelines = PipelineCache()
clips = ClipCache()
translators = TranslatorCache()
upscalers = UpscalerCache()
