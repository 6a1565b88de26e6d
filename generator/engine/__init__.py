"""Django-free Stable Diffusion engine: load pipelines, generate images, write A1111 metadata, score with CLIP.

Nothing in this package imports Django, so the same code serves the web worker, the management
commands and the tests. Submodules are imported explicitly (heavy libraries load lazily).
"""
