"""translate="id" on a tiny random MarianMT model built offline (real MarianTokenizer/SentencePiece and
MarianMTModel code; the weights are random, so only the plumbing and the prompt syntax are checked)."""
import pytest

from generator.engine.cache import TranslatorCache
from generator.engine.generate import generate
from generator.engine.infotext import parse_infotext
from generator.engine.params import GenerationParams, ParamError
from generator.engine.tiny import save_tiny_marian
from generator.engine.translate import TranslatorUnavailable, load_translator


@pytest.fixture(scope="module")
def marian(tmp_path_factory):
    return save_tiny_marian(tmp_path_factory.mktemp("marian") / "tiny-id-en")


def test_translator_keeps_weights_break_and_lora_tags(marian):
    translator = load_translator(str(marian))
    [english] = translator(["seorang gadis, (topi merah:1.3) BREAK di pantai <lora:retro:0.8>"])
    assert english.count("(") == 1 and ":1.3)" in english and " BREAK " in english
    assert english.endswith("<lora:retro:0.8>") and "," in english
    assert "topi merah" not in english  # the words went through the model


def test_generate_translates_prompt_and_negative_and_records_the_original(tiny_sd1, marian):
    cache = TranslatorCache()
    params = GenerationParams(prompt="seorang gadis berambut merah", negative_prompt="buram", seed=1, steps=2,
                              width=64, height=64, translate="id")
    first = generate(tiny_sd1, params, translator=cache.get(str(marian)))
    again = generate(tiny_sd1, params, translator=cache.get(str(marian)))
    assert cache.loads == 1  # loaded once per process, like the pipelines
    assert first.translated_prompt and first.translated_prompt != params.prompt
    assert first.translated_negative_prompt and again.translated_prompt == first.translated_prompt
    info = parse_infotext(first.pictures[0].infotext)
    assert info["Prompt"] == first.translated_prompt
    assert info["Original prompt"] == "seorang gadis berambut merah" and info["Translate"] == "id-en"


def test_translation_without_a_model_says_how_to_switch_it_on(tiny_sd1, tmp_path):
    with pytest.raises(ParamError) as info:
        generate(tiny_sd1, GenerationParams(prompt="seorang gadis", steps=1, width=64, height=64, translate="id"))
    assert info.value.field == "translate" and "RETROPORTAL_TRANSLATE_MODEL" in info.value.message
    cache = TranslatorCache()
    for _ in range(2):
        with pytest.raises(TranslatorUnavailable, match="cannot load translation model"):
            cache.get(str(tmp_path / "missing"))
    assert cache.loads == 1  # the failure is remembered
