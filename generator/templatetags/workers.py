"""{% missing_worker "generation" %}: the no-worker warning (generator.workers), or nothing."""
from django import template
from django.utils.html import format_html

from generator.workers import missing_worker_message

register = template.Library()


@register.simple_tag
def missing_worker(queue_name: str):
    message = missing_worker_message(queue_name)
    return format_html('<p class="warnbox" id="no-worker" role="status">{}</p>', message) if message else ""
