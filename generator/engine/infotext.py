"""AUTOMATIC1111-compatible generation parameters ("infotext") and the PNG chunk that carries them.

A1111 writes a tEXt chunk named `parameters` into every PNG:

    retro anime style, a man with glasses
    Negative prompt: blurry
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 123, Size: 512x512, Model hash: 0123456789, Model: name

Civitai, Fooocus, ComfyUI importers and A1111's own "PNG Info" tab read it, so we follow its layout
exactly: the prompt line(s), a `Negative prompt:` line only when there is one, then one line of
`Key: value` pairs where a value containing a comma, colon or newline is JSON-quoted.
"""
import io
import json
import re

from PIL import Image
from PIL.PngImagePlugin import PngInfo

PNG_KEY = "parameters"

# Same patterns as A1111's modules/infotext_utils.py, so we parse what it writes and vice versa.
_RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def _quote(value) -> str:
    """A1111's quoting: JSON-quote only values that would break the comma-separated line."""
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text and '"' not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _number(value) -> str:
    """7.0 -> '7', 7.5 -> '7.5' (A1111 shows the CFG scale the user typed)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def format_infotext(
    prompt: str,
    negative_prompt: str,
    steps: int,
    sampler_label: str,
    cfg: float,
    seed: int,
    width: int,
    height: int,
    model_hash: str | None,
    model_name: str | None,
    extra: dict | None = None,
    schedule_type: str | None = None,
) -> str:
    """The A1111 infotext for one image. Empty/None values are left out, as A1111 does."""
    fields = {
        "Steps": steps,
        "Sampler": sampler_label,
        "Schedule type": schedule_type,
        "CFG scale": _number(cfg),
        "Seed": seed,
        "Size": f"{width}x{height}",
        "Model hash": model_hash or None,
        "Model": model_name or None,
        **(extra or {}),
    }
    params_line = ", ".join(f"{key}: {_quote(value)}" for key, value in fields.items() if value is not None)
    negative_line = f"\nNegative prompt: {negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative_line}\n{params_line}".strip()


def parse_infotext(text: str) -> dict:
    """Inverse of format_infotext (and of A1111's writer): a dict of strings.

    Keys: "Prompt", "Negative prompt" (empty string when absent) and every `Key` of the last line
    ("Steps", "Sampler", "CFG scale", "Seed", "Size", ...), quoted values unquoted. Like A1111, the
    last line counts as parameters only if it holds at least 3 `Key: value` pairs.
    """
    *lines, last = text.strip().split("\n")
    if len(_RE_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].lstrip()
        (negative if in_negative else prompt).append(line)
    result = {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative)}
    for key, value in _RE_PARAM.findall(last):
        value = value.strip()
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = json.loads(value)
        result[key] = value
    return result


def encode_png(image: Image.Image, infotext: str) -> bytes:
    """PNG bytes of `image` with `infotext` in the `parameters` text chunk (iTXt if not Latin-1)."""
    info = PngInfo()
    info.add_text(PNG_KEY, infotext)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def read_png_parameters(data: bytes) -> str | None:
    """The `parameters` chunk of a PNG given as bytes, or None if it has none."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        value = image.text.get(PNG_KEY) if hasattr(image, "text") else None
    return value
