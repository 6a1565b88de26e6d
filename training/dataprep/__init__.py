"""Dataset preparation without Django: messy uploads in, a clean documented training set out.

Modules, one concept each: `config` (settings), `sources` (which file is what), `decode` (bytes to
8-bit RGB), `resize` (crop and buckets), `dedup` (exact and near copies), `process` (one picture),
`manifest`, `contact_sheet`, `publish` (atomic swap), `safezip` (unpacking uploads), `pipeline`
(the entry point). Nothing here imports Django; the `training` app is a thin layer on top.
"""
from .config import ConfigError, Mode, PrepConfig
from .pipeline import CONTACT_SHEET_NAME, IMAGES_DIR, MANIFEST_NAME, NoUsableImages, PrepResult, prepare, summary
from .safezip import ZipLimits, ZipRefused, extract

__all__ = [
    "CONTACT_SHEET_NAME", "IMAGES_DIR", "MANIFEST_NAME", "ConfigError", "Mode", "NoUsableImages", "PrepConfig",
    "PrepResult", "ZipLimits", "ZipRefused", "extract", "prepare", "summary",
]
