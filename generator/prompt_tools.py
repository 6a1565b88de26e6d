"""Prompt tools behind /generate/: the live token counter (per 75-token chunk, from the chosen model's own tokenizer).

Only the tokenizer is loaded (generator.engine.prompt_syntax, built on the `tokenizers` library): no torch,
no weights, so the web process stays light (tests/test_web_startup.py); it is cached per model source.
"""
import threading
from collections import OrderedDict

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from generator.models import AIModel
from generator.services import default_model

MAX_TEXT = 4000  # the form's prompt limit
_CACHE_SIZE = 8
_tokenizers: "OrderedDict[str, object]" = OrderedDict()
_lock = threading.Lock()


def tokenizer_for(model: AIModel):
    """The model's tokenizer (its base's, for a LoRA entry), loaded once per source."""
    from generator.engine import prompt_syntax

    source = model.pipeline_spec()[0]
    with _lock:
        if source in _tokenizers:
            _tokenizers.move_to_end(source)
            return _tokenizers[source]
    tokenizer = prompt_syntax.load_tokenizer(source)
    with _lock:
        _tokenizers[source] = tokenizer
        while len(_tokenizers) > _CACHE_SIZE:
            _tokenizers.popitem(last=False)
    return tokenizer


def count_tokens(model: AIModel, text: str) -> dict:
    """{"chunks": [tokens per chunk], "tokens", "chunk_size"} after A1111's weights and BREAK are parsed."""
    from generator.engine import prompt_syntax

    chunks = prompt_syntax.token_counts(tokenizer_for(model), text)
    return {"chunks": chunks, "tokens": sum(chunks), "chunk_size": prompt_syntax.CHUNK}


@login_required
@require_GET
def prompt_tokens(request):
    """GET ?model=NAME&text=...: tokens per 75-token chunk, or {"error": ...} saying why there is no count."""
    name, text = request.GET.get("model", ""), request.GET.get("text", "")
    model = AIModel.objects.drawable().filter(name=name).select_related("parent").first() if name \
        else default_model()
    if model is None:
        return JsonResponse({"error": f"unknown or inactive model {name!r}"}, status=404)
    if len(text) > MAX_TEXT:
        return JsonResponse({"error": f"the text is {len(text)} characters; the prompt limit is {MAX_TEXT}"},
                            status=400)
    try:
        body = {"model": model.name, **count_tokens(model, text)}
    except (ValueError, OSError) as exc:  # prompt_syntax.TokenizerMissing is a ValueError
        body = {"model": model.name, "error": f"no token count for {model.name}: {' '.join(str(exc).split())}"}
    response = JsonResponse(body)
    response["Cache-Control"] = "private, no-store"
    return response
