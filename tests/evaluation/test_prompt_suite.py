"""The default suite and the loader's validation."""
import json

import pytest

from training.evaluation.prompt_suite import SuiteError, load_suite, parse_suite


def test_default_suite_is_bilingual_with_held_out_combinations():
    suite = load_suite()
    assert suite.languages == ["en", "id"] and not suite.warnings
    assert len(suite.concepts) >= 12 and len(suite.prompts) == 2 * len(suite.concepts)
    held = {p.key for p in suite.prompts if p.held_out}
    assert 2 <= len(held) < len(suite.concepts)
    attributes = {a for p in suite.prompts for a, _ in p.attributes}
    assert attributes == {"gender", "age", "accessory", "activity", "background"}
    indonesian = [p.text for p in suite.prompts if p.language == "id"]
    assert all(t.startswith("gaya anime retro, seorang") for t in indonesian)
    assert "gaya anime retro, seorang gadis muda berkacamata berbelanja di pasar" in indonesian
    assert len({p.id for p in suite.prompts}) == len(suite.prompts)


def test_subset_keeps_order_and_rejects_unknown_keys():
    suite = load_suite()
    small = suite.subset([suite.concepts[1], suite.concepts[0]], ["id"])
    assert [p.key for p in small.prompts] == suite.concepts[:2] and small.languages == ["id"]
    with pytest.raises(SuiteError, match="unknown prompt key"):
        suite.subset(["nope"])


GOOD = """name: t
languages: [en, id]
prompts:
  - key: a
    attributes: {gender: girl}
    en: a girl
    id: seorang gadis
"""


@pytest.mark.parametrize(
    "text, expected",
    [
        (GOOD.replace("    id: seorang gadis\n", ""), r"t\.yaml:4: prompts\[0\]\.id: missing"),
        (GOOD.replace("seorang gadis", '""'), r"t\.yaml:7: prompts\[0\]\.id: is empty"),
        (GOOD.replace("gender: girl", "hair: red"), r"t\.yaml:5: prompts\[0\]\.attributes\.hair: unknown attribute"),
        (GOOD.replace("key: a", "key: A b"), r"t\.yaml:4: prompts\[0\]\.key: 'A b' must be lowercase"),
        (GOOD + "  - key: a\n    en: x\n    id: y\n", r"t\.yaml:8: prompts\[1\]\.key: 'a' is used twice"),
        (GOOD.replace("name: t", "name: t\ncolour: 1"), r"t\.yaml:2: colour: unknown key"),
        (GOOD.replace("[en, id]", "[en, en]"), r"t\.yaml:2: languages: lists a language twice"),
        (GOOD.replace("    en: a girl", "    en: a girl\n    held_out: maybe"), r"t\.yaml:7: prompts\[0\]\.held_out: must be true or false"),
        (GOOD.replace("    en: a girl", "    en: a girl\n    en: again"), r"t\.yaml:7: duplicate key 'en'"),
        ("name: [t\n", r"t\.yaml:2: not valid YAML"),
    ],
)
def test_errors_name_the_line_and_key(text, expected):
    with pytest.raises(SuiteError, match=expected):
        parse_suite(text, "t.yaml")


def test_json_suites_and_missing_files(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"name": "j", "languages": ["en"], "prompts": [{"key": "x", "en": "a  boy"}]}))
    suite = load_suite(path)
    assert [(p.id, p.text) for p in suite.prompts] == [("x.en", "a boy")]
    path.write_text('{"name": "j", "languages": ["en"], "prompts": [{"key": "x"}]}')
    with pytest.raises(SuiteError, match=r"s\.json: prompts\[0\]\.en: missing"):
        load_suite(path)
    with pytest.raises(SuiteError, match="--prompts .*nope.yaml: no such file"):
        load_suite(tmp_path / "nope.yaml")


def test_held_out_concepts_with_unseen_attribute_values_are_warned_about():
    text = GOOD + "  - key: b\n    held_out: true\n    attributes: {gender: robot}\n    en: a robot\n    id: robot\n"
    assert "gender=robot" in parse_suite(text, "t.yaml").warnings[0]


@pytest.mark.parametrize("name, text", [
    ("mine.yaml", "- retro anime style, a girl with a hat\n- retro anime style,   an old man\n"),
    ("mine.json", json.dumps(["retro anime style, a girl with a hat", "retro anime style, an old man"])),
    ("mine.txt", "# my prompts\nretro anime style, a girl with a hat\n\nretro anime style, an old man\n"),
])
def test_a_plain_list_of_prompts_is_a_suite(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    suite = load_suite(path)
    assert [(p.id, p.text) for p in suite.prompts] == [("p1.en", "retro anime style, a girl with a hat"),
                                                       ("p2.en", "retro anime style, an old man")]
    assert suite.languages == ["en"] and suite.name == "mine"


def test_a_plain_list_with_a_non_text_entry_names_it(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("- a girl\n- {key: x}\n", encoding="utf-8")
    with pytest.raises(SuiteError, match=r"bad.yaml: prompts\[1\]: must be non-empty text"):
        load_suite(path)
    (tmp_path / "empty.txt").write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(SuiteError, match="the list of prompts is empty"):
        load_suite(tmp_path / "empty.txt")
