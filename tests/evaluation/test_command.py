"""manage.py evaluate end to end on the tiny SD model + tiny CLIP + tiny DINO (no database, no network)."""
import json
from html.parser import HTMLParser

import pytest
from django.core.management import CommandError, call_command

from training.evaluation.evaluate import METRIC_KEYS, EvaluationResult

KEYS = "girl-glasses-market,oldwoman-bicycle-garden"  # one seen, one held-out concept


def _args(tiny_sd1_path, tiny_clip_dir, tiny_dino_dir, references_dir, out, **extra):
    args = {
        "model": str(tiny_sd1_path), "references": str(references_dir), "prompt_keys": KEYS, "languages": "en",
        "images_per_prompt": 2, "steps": 2, "width": 64, "height": 64, "seed": 5,
        "clip_model": f"local-dir:{tiny_clip_dir}", "dino_model": str(tiny_dino_dir), "out": str(out),
    }
    args.update(extra)
    return args


@pytest.fixture(scope="module")
def evaluated(tiny_sd1_path, tiny_clip_dir, tiny_dino_dir, references_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluation")
    call_command("evaluate", **_args(tiny_sd1_path, tiny_clip_dir, tiny_dino_dir, references_dir, out))
    return out


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls, self.tags = [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.urls += [value for name, value in attrs if name in ("src", "href", "srcset", "action", "data", "poster") and value]


def test_writes_metrics_json_with_every_metric(evaluated):
    data = json.loads((evaluated / "metrics.json").read_text())
    for key in METRIC_KEYS:
        assert isinstance(data["overall"][key], float), key
    assert data["overall"]["n_images"] == 4
    assert set(data["by_prompt"]) == {"girl-glasses-market.en", "oldwoman-bicycle-garden.en"}
    assert set(data["by_language"]) == {"en"} and set(data["by_split"]) == {"seen", "held_out"}
    assert [(row["prompt_id"], row["seed"]) for row in data["images"]] == [
        ("girl-glasses-market.en", 5), ("girl-glasses-market.en", 6), ("oldwoman-bicycle-garden.en", 5), ("oldwoman-bicycle-garden.en", 6)]
    for row in data["images"]:
        assert (evaluated / row["file"]).is_file()
        assert {"clip_t", "max_train_sim", "dino", "near_copy"} <= set(row)
    assert data["settings"]["memorization_space"] == "dino"
    assert EvaluationResult.load(evaluated).overall == data["overall"]
    assert not list(evaluated.rglob(".tmp-*"))


def test_report_has_no_external_references(evaluated):
    parser = _Refs()
    text = (evaluated / "report.html").read_text()
    parser.feed(text)
    assert parser.urls and all(url.startswith("data:image/png;base64,") for url in parser.urls)
    assert "script" not in parser.tags and "link" not in parser.tags
    assert "http:" not in text and "https:" not in text and "url(" not in text
    assert "oldwoman-bicycle-garden.en (held-out combination)" in text


def test_same_seeds_give_the_same_metrics_and_a_comparison(evaluated, tiny_sd1_path, tiny_clip_dir, tiny_dino_dir, references_dir, tmp_path, capsys):
    out = tmp_path / "again"
    call_command("evaluate", **_args(tiny_sd1_path, tiny_clip_dir, tiny_dino_dir, references_dir, out,
                                     name="again", compare=[str(evaluated)]))
    first, second = EvaluationResult.load(evaluated), EvaluationResult.load(out)
    assert second.overall == pytest.approx(first.overall)
    comparison = (out / "comparison.html").read_text()
    assert "Recommended:" in comparison and "https:" not in comparison
    assert "clip_t=" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, message",
    [
        ({"references": "/nonexistent/refs"}, "--references /nonexistent/refs: no such folder"),
        ({"steps": 0}, "--steps: must be at least 1"),
        ({"dino_model": "/nonexistent/dino"}, "--dino-model '/nonexistent/dino': no such folder"),
        ({"clip_model": "local-dir:/nonexistent"}, "--clip-model"),
        ({"prompt_keys": "nope"}, "unknown prompt key"),
        ({"model": "/nonexistent/model"}, "/nonexistent/model"),
    ],
)
def test_bad_input_is_one_line(change, message, tiny_sd1_path, tiny_clip_dir, tiny_dino_dir, references_dir, tmp_path):
    args = _args(tiny_sd1_path, tiny_clip_dir, tiny_dino_dir, references_dir, tmp_path / "out")
    args.update(change)
    with pytest.raises(CommandError) as info:
        call_command("evaluate", **args)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.browser
def test_report_renders_in_chromium_without_network_requests(evaluated, page):
    from tests.conftest import ARTIFACTS

    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.set_content((evaluated / "report.html").read_text(), wait_until="load")
    loaded = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
    assert len(loaded) == 2 + 4 and all(loaded)  # two charts and four pictures
    assert all(url.startswith("data:") for url in requests), requests
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "evaluation-report.png"), full_page=True)
