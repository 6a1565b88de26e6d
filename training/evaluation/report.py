"""Self-contained HTML reports for evaluations: one file, no external requests.

Images and matplotlib charts are embedded as `data:` URIs; there are no scripts, no links to fonts or
style sheets, and all text is HTML-escaped, so the file can be mailed, attached to an admin page or
opened offline. `render_report(result)` shows one evaluation (metric table, charts per prompt and per
language, a grid of every prompt's pictures with their seed and CLIP-T); `render_comparison(results)`
puts several models/checkpoints side by side (grouped bar chart per metric, like the replaced
system's per-stage CLIP chart, and the recommended checkpoint with its reason).
"""
import base64
import html
import io
from pathlib import Path

from .evaluate import METRIC_KEYS, EvaluationResult, recommend_checkpoint

LABELS = {
    "clip_t": "CLIP-T ↑", "clip_score": "CLIP score ↑", "clip_i": "CLIP-I ↑", "dino": "DINO ↑",
    "diversity": "diversity", "max_train_sim": "max train sim ↓", "near_copy_rate": "near-copy rate ↓",
    "kid": "KID (CLIP) ↓", "fid": "FID (CLIP) ↓",
}
CHART_KEYS = ("clip_t", "clip_i", "dino", "diversity", "max_train_sim", "near_copy_rate")
THUMB = 192
CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1,h2,h3{font-weight:600}table{border-collapse:collapse;margin:8px 0 16px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#eee}td.l,th.l{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:8px;margin-bottom:16px}figure{margin:0;width:194px;background:#fff;border:1px solid #ddd;padding:4px}
figure.copy{border:2px solid #c00}figcaption{font-size:12px;color:#555}img.thumb{display:block;width:192px;height:auto}
.note{color:#555;font-size:13px}.warn{color:#a60}.chart{max-width:100%}
"""


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _thumbnail(path: Path) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMB, THUMB))
            buf = io.BytesIO()
            image.save(buf, format="PNG", optimize=True)
    except OSError:
        return None
    return _data_uri(buf.getvalue(), "image/png")


def _fmt(value, key: str = "") -> str:
    if value is None:
        return "–"
    if key == "near_copy_rate":
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
    return html.escape(str(value))


def _bar_chart(groups: list[str], series: dict[str, list[float | None]], title: str) -> str:
    """A grouped bar chart (one group per metric or prompt, one bar per series) as a PNG data: URI."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, no GUI, thread-safe

    n = max(len(series), 1)
    width = 0.8 / n
    fig = Figure(figsize=(max(6.0, 0.9 * len(groups) * max(1, n / 2)), 3.6), dpi=100)
    ax = fig.subplots()
    for k, (label, values) in enumerate(series.items()):
        xs = [g + (k - (n - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [v if v is not None else 0.0 for v in values], width, label=label)
    ax.set_xticks(range(len(groups)), groups, rotation=20 if len(groups) > 4 else 0, ha="right" if len(groups) > 4 else "center", fontsize=8)
    ax.set_title(title)
    ax.axhline(0, color="#444", linewidth=0.6)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return _data_uri(buf.getvalue(), "image/png")


def _table(rows: dict[str, dict], first: str, keys=METRIC_KEYS) -> str:
    head = f"<tr><th class=l>{html.escape(first)}</th><th>images</th>" + "".join(f"<th>{html.escape(LABELS[k])}</th>" for k in keys) + "</tr>"
    body = "".join(
        f"<tr><td class=l>{html.escape(name)}</td><td>{m.get('n_images', '')}</td>" + "".join(f"<td>{_fmt(m.get(k), k)}</td>" for k in keys) + "</tr>"
        for name, m in rows.items()
    )
    return f"<table>{head}{body}</table>"


def _img(uri: str, alt: str, cls: str = "") -> str:
    return f'<img class="{cls}" src="{uri}" alt="{html.escape(alt)}">'


def _notes(result: EvaluationResult) -> str:
    s = result.settings
    return (
        "<p class=note>CLIP-T: cosine of image and prompt CLIP embeddings; CLIP score = 100·max(CLIP-T, 0); "
        "CLIP-I / DINO: mean cosine of each generated picture to every reference picture (Ruiz et al. 2023); "
        "diversity: mean pairwise 1 − cosine among one prompt's pictures (CLIP space); "
        f"max train sim: highest similarity to any training picture in {html.escape(str(s.get('memorization_space')))} space, "
        f"near copy ≥ {s.get('memorization_threshold')}; KID/FID are computed on CLIP image embeddings, "
        "not Inception-v3: comparable between our evaluations only, and unreliable with few pictures.</p>"
    )


def _page(title: str, body: str) -> str:
    return (
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body>{body}</body></html>\n"
    )


def render_report(result: EvaluationResult, image_root: str | Path | None = None) -> str:
    """HTML for one evaluation; pictures are read from image_root (default: result.out_dir)."""
    root = Path(image_root or result.out_dir or ".")
    s = result.settings
    parts = [f"<h1>Evaluation: {html.escape(result.name)}</h1>"]
    parts.append(
        "<p>" + html.escape(
            f"model {result.model}" + (f" + LoRA {result.lora}" if result.lora else "")
            + f" · suite {s.get('suite')} v{s.get('suite_version')} · {s.get('prompts')} prompts × {s.get('images_per_prompt')} images"
            + f" · {s.get('steps')} steps {s.get('scheduler')} CFG {s.get('guidance_scale')} · {s.get('width')}×{s.get('height')}"
            + f" · seeds {s.get('seed')}…{s.get('seed', 0) + s.get('images_per_prompt', 1) - 1} · CLIP {s.get('clip_model')}"
            + f" · DINO {s.get('dino_model') or 'off'} · {s.get('n_references')} reference pictures"
        ) + "</p>"
    )
    for warning in result.warnings:
        parts.append(f"<p class=warn>{html.escape(warning)}</p>")
    parts.append("<h2>Overall</h2>" + _table({"all": result.overall}, ""))
    if result.by_language:
        parts.append("<h2>Per language</h2>" + _table(result.by_language, "language"))
    if result.by_split:
        parts.append("<h2>Seen vs held-out combinations</h2>" + _table(result.by_split, "split"))
    parts.append(_notes(result))
    chart_keys = [k for k in CHART_KEYS if result.overall.get(k) is not None]
    series = {"all": [result.overall.get(k) for k in chart_keys]}
    for lang, m in result.by_language.items():
        series[lang] = [m.get(k) for k in chart_keys]
    parts.append(_img(_bar_chart([LABELS[k] for k in chart_keys], series, "Metrics overall and per language"), "metrics chart", "chart"))
    prompts = list(result.by_prompt)
    parts.append(_img(_bar_chart(prompts, {"CLIP-T": [result.by_prompt[p].get("clip_t") for p in prompts]}, "CLIP-T per prompt"), "CLIP-T per prompt", "chart"))
    parts.append("<h2>Per prompt</h2>" + _table(result.by_prompt, "prompt"))
    parts.append("<h2>Pictures</h2>")
    for prompt_id in prompts:
        rows = [row for row in result.images if row.prompt_id == prompt_id]
        flag = " (held-out combination)" if rows and rows[0].held_out else ""
        parts.append(f"<h3>{html.escape(prompt_id)}{flag}</h3><p>{html.escape(rows[0].prompt if rows else '')}</p><div class=grid>")
        for row in rows:
            uri = _thumbnail(root / row.file) if row.file else None
            picture = _img(uri, f"seed {row.seed}", "thumb") if uri else "<p>(no file)</p>"
            caption = f"seed {row.seed} · CLIP-T {row.clip_t:.3f} · max train sim {row.max_train_sim:.3f}" + (" · NEAR COPY" if row.near_copy else "")
            parts.append(f"<figure class=\"{'copy' if row.near_copy else ''}\">{picture}<figcaption>{html.escape(caption)}</figcaption></figure>")
        parts.append("</div>")
    return _page(f"Evaluation: {result.name}", "".join(parts))


def render_comparison(results: dict[str, EvaluationResult], recommend: bool = True) -> str:
    """HTML comparing several evaluations (models or checkpoints, in training order)."""
    if not results:
        raise ValueError("no results to compare")
    names = list(results)
    parts = [f"<h1>Comparison of {len(names)} evaluations</h1>"]
    if recommend:
        from .evaluate import EvaluationError

        try:
            choice, reason = recommend_checkpoint({n: r.overall for n, r in results.items()})
            parts.append(f"<p><b>Recommended: {html.escape(choice or 'none')}</b> — {html.escape(reason)}</p>")
        except EvaluationError as e:
            parts.append(f"<p class=warn>No recommendation: {html.escape(str(e))}</p>")
    parts.append("<h2>Overall</h2>" + _table({n: r.overall for n, r in results.items()}, "model / checkpoint"))
    chart_keys = [k for k in CHART_KEYS if any(r.overall.get(k) is not None for r in results.values())]
    series = {n: [results[n].overall.get(k) for k in chart_keys] for n in names}
    parts.append(_img(_bar_chart([LABELS[k] for k in chart_keys], series, "Metrics per model / checkpoint"), "comparison chart", "chart"))
    prompts = list(dict.fromkeys(p for r in results.values() for p in r.by_prompt))
    per_prompt = {n: [results[n].by_prompt.get(p, {}).get("clip_t") for p in prompts] for n in names}
    parts.append(_img(_bar_chart(prompts, per_prompt, "CLIP-T per prompt"), "CLIP-T per prompt per model", "chart"))
    first = next(iter(results.values()))
    parts.append(_notes(first))
    parts.append("<h2>Pictures (first image of each prompt)</h2>")
    for prompt_id in prompts:
        parts.append(f"<h3>{html.escape(prompt_id)}</h3><div class=grid>")
        for n in names:
            row = next((row for row in results[n].images if row.prompt_id == prompt_id), None)
            uri = _thumbnail(Path(results[n].out_dir or ".") / row.file) if row and row.file else None
            picture = _img(uri, n, "thumb") if uri else "<p>(no file)</p>"
            caption = n + (f" · CLIP-T {row.clip_t:.3f}" if row else "")
            parts.append(f"<figure>{picture}<figcaption>{html.escape(caption)}</figcaption></figure>")
        parts.append("</div>")
    return _page("Evaluation comparison", "".join(parts))


def write_report(html_text: str, path: str | Path) -> Path:
    from generator.engine.files import write_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, html_text)
    return path
