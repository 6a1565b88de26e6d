"""miniworld_bench end to end on the shipped base model with a micro grid: every phase writes what it
promises, re-running skips finished work, and the report's numbers are the evaluations' numbers."""
import collections
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from training.miniworld import bench, bench_ship
from training.miniworld.bench_eval import nearest_distance, normalized_entropy, pixels
from training.miniworld.phrasing import style_phrases


def test_micro_bench_trains_evaluates_compares_and_reports(tmp_path, capsys):
    out, docs = tmp_path / "bench", tmp_path / "docs"
    args = ["--out", str(out), "--docs", str(docs), "--sizes", "2", "--steps", "1,2", "--regs", "none,l2sp",
            "--eval-n", "4", "--num-class-images", "2"]
    call_command("miniworld_bench", *args)
    models = sorted(p.name for p in (out / "models").iterdir())
    results = {p.stem: json.loads(p.read_text()) for p in sorted((out / "evals").glob("*.json"))}
    best = max((m for m in results if m.startswith("full-")), key=lambda m: bench.score(results[m]))
    reg = best.split("-")[2]  # LoRA is compared at the best full cell's regularization
    assert models == ["full-n2-l2sp-s1", "full-n2-l2sp-s2", "full-n2-none-s1", "full-n2-none-s2",
                      f"lora-n2-{reg}-s1", f"lora-n2-{reg}-s2"]
    # one run per cell, resumed from stop to stop: the 2-step snapshot's run logged exactly two steps
    assert len((out / "runs" / "full-n2-none" / "metrics.csv").read_text().splitlines()) == 1 + 2
    done = json.loads((out / "models" / "full-n2-l2sp-s2" / "done.json").read_text())
    assert done["steps"] == 2 and done["loss"]["l2sp"] > 0
    assert (out / "models" / "full-n2-none-s1" / "unet" / "diffusion_pytorch_model.safetensors").exists()
    assert any((out / "models" / m / "pytorch_lora_weights.safetensors").exists() for m in models if "lora" in m)
    # captioned class pictures made by the base model, one caption each
    captions = sorted((out / "class-images").glob("*.txt"))
    assert len(captions) == 2 and all(c.read_text().startswith(("a young", "an old")) for c in captions)

    assert set(results) == {"base", *models}
    for metrics in results.values():
        for key in ("style_adoption", "prior_modern", "background_absent", "garden_collapse", "diversity",
                    "near_copies"):
            assert 0.0 <= metrics[key] <= 1.0, (key, metrics[key])
        assert set(metrics["fidelity"]) == {"gender", "age", "hair_color", "hair_style", "glasses", "accessory",
                                            "clothing", "background"}
        assert metrics["n_per_split"] == 4

    report = (docs / "bench.md").read_text()
    base = results["base"]
    assert f"| base | {base['style_adoption']:.3f} |" in report
    assert "Does 2 steps collapse backgrounds compared with 1?" in report
    assert (docs / "bench" / "style_adoption.png").stat().st_size > 1000
    assert "VAE ceiling" in report and (out / "reference-vae.json").exists()
    assert json.loads((docs / "bench" / "results.json").read_text()) == results

    # a second run finds everything done: no new training step, no new evaluation
    stamps = {p: p.stat().st_mtime_ns for p in (out / "evals").glob("*.json")}
    call_command("miniworld_bench", *args, "--phase", "train")
    call_command("miniworld_bench", *args, "--phase", "eval")
    assert {p: p.stat().st_mtime_ns for p in (out / "evals").glob("*.json")} == stamps
    assert len((out / "runs" / "full-n2-none" / "metrics.csv").read_text().splitlines()) == 1 + 2

    # --ship publishes an evaluated LoRA snapshot with its model card; a full snapshot does not fit the budget
    lora = f"lora-n2-{reg}-s2"
    call_command("miniworld_bench", *args, "--ship", lora, "--ship-to", str(tmp_path / "shipped"), "--ship-n", "3")
    card = (tmp_path / "shipped" / "README.md").read_text()
    assert f"style adoption {results[lora]['style_adoption']:.3f}" in card and lora in card
    # ... and how it reads retro prompts as users write them, Indonesian beside English, with the site's defaults
    sets = {r["prompt_set"]: r for r in json.loads((tmp_path / "shipped" / "prompt-sets.json").read_text())}
    assert sorted(sets) == ["caption", "indonesian", "open", "paraphrase"] and {r["n"] for r in sets.values()} == {3}
    assert sets["caption"]["example_prompt"].startswith("retro anime style, ")
    assert sets["indonesian"]["example_prompt"].split(",")[0] in style_phrases("id")
    assert {(r["scheduler"], r["steps"], r["guidance"]) for r in sets.values()} == {("dpmpp_2m", 20, 7.0)}
    gender = f"{sets['indonesian']['accuracy']['gender']:.2f}"
    assert any(line.startswith("| Bahasa Indonesia | ") and gender in line for line in card.splitlines())
    assert "Bahasa Indonesia vs the template: largest shortfall" in card
    # ... and how varied person-only prompts come out beside the base, at the scale make demo registers
    assert 0 <= sets["open"]["diversity"] <= 1 and 0 <= sets["open"]["base_diversity"] <= 1
    assert f"diversity {sets['open']['diversity']:.2f}, the base's {sets['open']['base_diversity']:.2f}" in card
    assert "CFG 7 and LoRA scale 1: the defaults `make demo` registers it with" in card
    # ... with pictures at those settings (4 rows of 8 held-out prompts, 2x) and the bench's own sheet beside them
    from PIL import Image

    assert Image.open(tmp_path / "shipped" / "samples.png").size == (8 * 128, 4 * 128)
    assert (tmp_path / "shipped" / "bench-samples.png").read_bytes() == (out / "evals" / f"{lora}.png").read_bytes()
    assert "(20 steps, CFG 7): rows of the retro caption template" in card
    registered = json.loads((tmp_path / "shipped" / "done.json").read_text())
    assert (registered["lora_scale"], registered["guidance_scale"]) == (1.0, 7.0)
    assert (tmp_path / "shipped" / "pytorch_lora_weights.safetensors").read_bytes() == \
        (out / "models" / lora / "pytorch_lora_weights.safetensors").read_bytes()
    with pytest.raises(CommandError, match="not a LoRA snapshot"):
        call_command("miniworld_bench", *args, "--ship", "full-n2-none-s2", "--ship-to", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()

    # a report over one step count asks no longer-vs-shorter question ("Does 2 steps … compared with 2?")
    one = [a if a != "1,2" else "2" for a in args]
    call_command("miniworld_bench", *one, "--phase", "report")
    assert "collapse backgrounds compared with" not in (docs / "bench.md").read_text()


def test_bench_settings_are_checked_before_any_work(tmp_path):
    with pytest.raises(CommandError, match="--regs: 'l1' is not one of none, l2, l2sp"):
        call_command("miniworld_bench", "--out", str(tmp_path / "b"), "--regs", "none,l1")
    with pytest.raises(CommandError, match="expected comma-separated integers"):
        call_command("miniworld_bench", "--out", str(tmp_path / "b"), "--sizes", "ten")
    with pytest.raises(CommandError, match="--base-model: .* is not a diffusers pipeline folder"):
        call_command("miniworld_bench", "--out", str(tmp_path / "b"), "--base-model", str(tmp_path))
    with pytest.raises(CommandError, match="--prior-loss-weight -1.0: expected 0 or more"):
        call_command("miniworld_bench", "--out", str(tmp_path / "b"), "--prior-loss-weight", "-1")
    assert not (tmp_path / "b").exists()


def test_instance_prompt_starts_the_retro_captions_and_prompts_and_a_folder_captioned_otherwise_is_refused(tmp_path):
    from training.miniworld.bench_eval import open_prompts

    cfg = bench.BenchConfig(out=str(tmp_path / "b"), sizes=[3], instance_prompt=" sks style ")
    assert cfg.instance_prompt == "sks style"
    folder = bench.dataset_dir(cfg, 3)
    captions = [p.read_text().strip() for p in sorted(folder.glob("*.txt"))]
    assert len(captions) == 3 and all(c.startswith("sks style, a") and "retro" not in c for c in captions)
    assert all(p.startswith("sks style, ") for p in open_prompts(5, style_phrase="sks style"))
    assert bench.train_config(cfg, bench.Cell("lora", 3, "none"), 2, folder).instance_prompt == "sks style"
    with pytest.raises(bench.BenchError, match="captioned for another instance prompt"):
        bench.dataset_dir(bench.BenchConfig(out=str(tmp_path / "b"), sizes=[3]), 3)
    with pytest.raises(bench.BenchError, match="--instance-prompt: empty"):
        bench.BenchConfig(out=str(tmp_path / "c"), instance_prompt="  ")


def test_entropy_and_nearest_distance_match_their_definitions():
    assert normalized_entropy(["a", "b", "c", "d"], 4) == pytest.approx(1.0)
    assert normalized_entropy(["a"] * 5, 4) == pytest.approx(0.0)
    assert normalized_entropy(["a", "a", "b", "b"], 4) == pytest.approx(0.5)
    import numpy as np
    from PIL import Image

    a = Image.new("RGB", (4, 4), (0, 0, 0))
    b = Image.new("RGB", (4, 4), (255, 255, 255))
    c = Image.new("RGB", (4, 4), (51, 51, 51))
    d = nearest_distance(pixels([c, b]), pixels([a, b]))
    assert np.allclose(d, [0.2, 0.0])


def test_report_names_the_grid_models_it_has_no_evaluation_for(tmp_path):
    from training.miniworld.bench_report import missing_line

    cfg = bench.BenchConfig(out=str(tmp_path), sizes=[20], steps=[200, 5000], regularizations=["none", "l2sp"])
    done = {m: {} for m in ("base", "full-n20-none-s200", "full-n20-none-s5000", "full-n20-l2sp-s200")}
    assert missing_line(cfg, done) == "Not run or not evaluated yet: full-n20-l2sp-s5000."
    assert missing_line(cfg, {**done, "full-n20-l2sp-s5000": {}}) == ""


def test_rewriting_the_report_keeps_the_hand_written_sections_after_the_marker(tmp_path):
    from training.miniworld.bench_report import KEEP_MARKER, kept_sections

    page = tmp_path / "bench.md"
    assert kept_sections(page) == ""
    page.write_text(f"# table\nold rows\n{KEEP_MARKER}\n## v2\nnumbers\n", encoding="utf-8")
    assert kept_sections(page) == f"{KEEP_MARKER}\n## v2\nnumbers\n"
    page.write_text("# table without a marker\n", encoding="utf-8")
    assert kept_sections(page) == ""


def test_the_reports_command_line_names_a_base_model_other_than_the_shipped_one():
    from training.management.commands.miniworld_bench import Command, args_of

    parser = Command().create_parser("manage.py", "miniworld_bench")
    assert "--base-model" not in " ".join(args_of(vars(parser.parse_args(["--out", "b"]))))
    chosen = vars(parser.parse_args(["--out", "b", "--base-model", "/work/pretrain-v6/pipeline"]))
    assert "--base-model /work/pretrain-v6/pipeline" in " ".join(args_of(chosen))


def test_an_indonesian_share_captions_the_retro_set_and_the_class_prompts_in_both_languages(tmp_path):
    from training.management.commands.miniworld_bench import Command, args_of
    from training.miniworld.phrasing import ID

    cfg = bench.BenchConfig(out=str(tmp_path / "b"), sizes=[10], indonesian=0.3)
    folder = bench.dataset_dir(cfg, 10)
    assert folder.name == "n10-id30"
    captions = [p.read_text(encoding="utf-8").strip() for p in sorted(folder.glob("*.txt"))]
    assert sum(c.split(",")[0] in ID.retro for c in captions) == 3
    assert sum(c.startswith("retro anime style, ") for c in captions) == 7
    assert bench.dataset_dir(cfg, 10) == folder  # reused, not refused: its English captions match
    english_only = bench.class_prompts(bench.BenchConfig(out=str(tmp_path / "b"), num_class_images=20))
    both = bench.class_prompts(bench.BenchConfig(out=str(tmp_path / "b"), num_class_images=20, indonesian=0.3))
    assert all(p.startswith(("a ", "an ")) for p in english_only) and "retro" not in " ".join(english_only)
    indonesian = [p for p, q in zip(both, english_only) if p != q]
    assert len(indonesian) == 6
    assert all(any(w in p for words in ID.person.values() for w in words) for p in indonesian)
    assert not any(p.split(",")[0] in ID.retro for p in both)
    with pytest.raises(bench.BenchError, match="--indonesian 2.0: expected a share between 0 and 1"):
        bench.BenchConfig(out=str(tmp_path / "c"), indonesian=2.0)
    parser = Command().create_parser("manage.py", "miniworld_bench")
    assert "--indonesian 0.3" in " ".join(args_of(vars(parser.parse_args(["--out", "b", "--indonesian", "0.3"]))))



def test_bench_settings_are_refused_all_at_once(tmp_path):
    from training.management.commands.miniworld_bench import Command, args_of

    with pytest.raises(bench.BenchError) as caught:
        bench.BenchConfig(out=str(tmp_path), method="dora", regularizations=["l1"], sizes=[0], eval_n=0,
                          indonesian=2.0, caption_tag_dropout=1.0, caption_dropout=-0.1, instance_prompt=" ",
                          backgrounds="forest")
    message = str(caught.value)
    for part in ("--method: 'dora'", "--regs: 'l1'", "--sizes: expected positive integers", "--eval-n 0",
                 "--indonesian 2.0", "--caption-tag-dropout 1.0: expected a share in [0, 1), e.g. 0.1",
                 "--caption-dropout -0.1: expected a share in [0, 1)",
                 "--instance-prompt: empty", "--backgrounds 'forest': expected one of scraped, balanced"):
        assert part in message
    parser = Command().create_parser("manage.py", "miniworld_bench")
    options = vars(parser.parse_args(["--out", "b", "--caption-tag-dropout", "0.3", "--caption-dropout", "0.1"]))
    assert "--caption-tag-dropout 0.3 --caption-dropout 0.1" in " ".join(args_of(options))
    cfg = bench.BenchConfig(out=str(tmp_path), caption_tag_dropout=0.3, caption_dropout=0.1)
    train = bench.train_config(cfg, bench.Cell("lora", 10, "l2sp"), 100, tmp_path)
    assert (train.caption_tag_dropout, train.caption_dropout) == (0.3, 0.1)


def test_ship_records_the_lora_scale_and_cfg_it_was_judged_at_and_the_default_model_uses_them(tmp_path, monkeypatch):
    from training.miniworld import shipped
    from training.miniworld.bench_report import retro_card

    cfg = bench.BenchConfig(out=str(tmp_path / "b"), lora_scale=0.8, ship_guidance=4)
    model = "lora-n10-l2sp-s100"
    snapshot = bench.model_dir(cfg, model)
    snapshot.mkdir(parents=True)
    for name in ("pytorch_lora_weights.safetensors", "lora_kohya.safetensors", "loss.png"):
        (snapshot / name).write_bytes(b"x")
    (snapshot / "done.json").write_text(json.dumps({"steps": 100, "train_seconds": 1.0}))
    bench.eval_path(cfg, model).parent.mkdir(parents=True)
    bench.eval_path(cfg, model).write_text("{}")
    bench.eval_path(cfg, model).with_suffix(".png").write_bytes(b"png")
    from PIL import Image

    out = bench_ship.ship(cfg, model, tmp_path / "shipped", "card", Image.new("RGB", (16, 8)))
    assert Image.open(out / "samples.png").size == (16, 8) and (out / "bench-samples.png").read_bytes() == b"png"
    assert json.loads((out / "done.json").read_text()) == {"steps": 100, "train_seconds": 1.0, "lora_scale": 0.8,
                                                           "guidance_scale": 4}
    monkeypatch.setattr(shipped, "RETRO_LORA_DIR", out)
    assert (shipped.retro_lora_scale(), shipped.retro_guidance_scale()) == (0.8, 4.0)
    assert shipped.default_spec()["guidance_scale"] == 4.0  # what generate without --model draws at
    assert bench_ship.prompt_sets_path(cfg, model).name == "lora-n10-l2sp-s100-x0.8-g4.json"  # not a scale-1, CFG-7 cache

    results = Path(__file__).resolve().parents[2] / "docs/miniworld/bench-v7/grid/bench/results.json"
    metrics = json.loads(results.read_text())["lora-n50-l2sp-s1000"]  # a real evaluation record
    card = retro_card(model, metrics, "cmd", [{"prompt_set": "open", "n": 100, "diversity": 0.61,
                                               "base_diversity": 0.63, "lora_scale": 0.8}])
    assert "diversity 0.61, the base's 0.63" in card
    with pytest.raises(bench.BenchError, match=r"--lora-scale 0.0: expected a positive scale, e\.g\. 0\.8; "
                                               r"--ship-guidance 1.0: expected a CFG scale above 1"):
        bench.BenchConfig(out=str(tmp_path / "c"), lora_scale=0.0, ship_guidance=1.0)


def test_the_shipped_card_states_the_cfg_and_scale_the_default_model_is_registered_with():
    from training.miniworld import shipped

    card = (shipped.RETRO_LORA_DIR / "README.md").read_text(encoding="utf-8")
    guidance = shipped.retro_guidance_scale() or 7
    assert f"CFG {guidance:g} and LoRA scale {shipped.retro_lora_scale():g}: the defaults `make demo` registers it with" in card


def test_a_balanced_retro_set_draws_every_scene_equally_and_keeps_its_own_folder(tmp_path):
    from training.management.commands.miniworld_bench import Command, args_of

    scraped = bench.BenchConfig(out=str(tmp_path), sizes=[12])
    balanced = bench.BenchConfig(out=str(tmp_path), sizes=[12], backgrounds="balanced")
    scenes = {}
    for cfg in (scraped, balanced):
        folder = bench.dataset_dir(cfg, 12)
        labels = [json.loads(line) for line in (folder / "labels.jsonl").read_text().splitlines()]
        scenes[cfg.backgrounds] = collections.Counter(r["attributes"]["background"] for r in labels)
    assert bench.dataset_dir(balanced, 12).name == "n12-balanced"
    assert scenes["balanced"] == {bg: 2 for bg in ("flower_garden", "beach", "village", "city_night", "market",
                                                   "classroom")}
    assert scenes["scraped"]["flower_garden"] == 7 and "market" not in scenes["scraped"]  # 60%, never a market
    parser = Command().create_parser("manage.py", "miniworld_bench")
    options = vars(parser.parse_args(["--out", "b", "--backgrounds", "balanced"]))
    assert "--backgrounds balanced" in " ".join(args_of(options))


@pytest.mark.parametrize("indonesian, verdict", [(0.87, "largest shortfall 0.05 (hair_style), within"),
                                                 (0.86, "largest shortfall 0.06 (hair_style), not within")])
def test_indonesian_shortfall_of_exactly_the_target_is_within_it(indonesian, verdict):
    from training.miniworld.attributes import ATTRIBUTES
    from training.miniworld.bench_report import prompt_sets_table

    def report(prompt_set, hair_style):
        accuracy = {a: 1.0 for a in ATTRIBUTES} | {"hair_style": hair_style}
        return {"prompt_set": prompt_set, "modern_share": 0.0, "accuracy": accuracy}

    lines = prompt_sets_table([report("caption", 0.92), report("indonesian", indonesian)])
    assert lines[-1] == f"Bahasa Indonesia vs the template: {verdict} the 0.05 target."
