"""A contact sheet: every prepared picture as a labelled thumbnail, then the files left out and why.

One glance shows a bad crop, a picture that does not belong, or a folder that was mostly rejected.
Labels are drawn in ASCII (non-ASCII letters fall back to their base letter or '?'), since PIL's
bundled font has no CJK glyphs; the manifest keeps the real names.
"""
import unicodedata

from PIL import Image, ImageDraw, ImageFont

THUMB = 128
PAD = 8
LABEL_HEIGHT = 18
LINE_HEIGHT = 16
MAX_COLUMNS = 8
MAX_LISTED = 80
BACKGROUND = (250, 250, 250)
INK = (20, 20, 20)
MUTED = (150, 30, 30)


def thumbnail(image: Image.Image) -> Image.Image:
    """A copy fitting in THUMB x THUMB, aspect kept (what the sheet shows for one picture)."""
    thumb = image.copy()
    thumb.thumbnail((THUMB, THUMB), Image.Resampling.LANCZOS)
    return thumb


def render(kept: list[tuple[str, Image.Image]], left_out: list[tuple[str, str, str]]) -> Image.Image:
    """kept: (output name, thumbnail) in output order; left_out: (status, source, reason)."""
    font = ImageFont.load_default(12)
    columns = max(1, min(MAX_COLUMNS, len(kept)))
    rows = -(-len(kept) // columns)
    cell_w, cell_h = THUMB + PAD, THUMB + LABEL_HEIGHT + PAD
    listed = left_out[:MAX_LISTED]
    extra_lines = len(listed) + (1 if len(left_out) > MAX_LISTED else 0) + (1 if left_out else 0)
    width = max(columns * cell_w + PAD, 640)
    height = rows * cell_h + PAD + extra_lines * LINE_HEIGHT + PAD
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for index, (name, thumb) in enumerate(kept):
        x = PAD + (index % columns) * cell_w
        y = PAD + (index // columns) * cell_h
        sheet.paste(thumb, (x + (THUMB - thumb.width) // 2, y + (THUMB - thumb.height) // 2))
        draw.text((x, y + THUMB + 2), ascii_label(name), fill=INK, font=font)
    _list_left_out(draw, font, rows * cell_h + PAD, left_out, listed)
    return sheet


def _list_left_out(draw, font, top: int, left_out, listed) -> None:
    if not left_out:
        return
    draw.text((PAD, top), f"Left out ({len(left_out)}):", fill=INK, font=font)
    for line, (status, source, reason) in enumerate(listed, start=1):
        text = f"{status.upper():<9} {ascii_label(source)}: {ascii_label(reason)}"
        draw.text((PAD, top + line * LINE_HEIGHT), text[:160], fill=MUTED, font=font)
    if len(left_out) > len(listed):
        draw.text((PAD, top + (len(listed) + 1) * LINE_HEIGHT), f"... and {len(left_out) - len(listed)} more (see manifest.json)", fill=INK, font=font)


def ascii_label(text: str) -> str:
    """Accents dropped (e for é), other non-ASCII letters as '?'."""
    base = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return base.encode("ascii", "replace").decode("ascii")
