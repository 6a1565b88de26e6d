"""{{ image.clip_score|score }}: a CLIP score with three decimals, as floatformat:3 writes it for one, without its
Decimal arithmetic (a third of a gallery card's rendering time went to floatformat)."""
from django import template

register = template.Library()


@register.filter
def score(value, places=3):
    try:
        return f"{float(value):.{int(places)}f}"
    except (TypeError, ValueError):
        return ""
