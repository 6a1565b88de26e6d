import io

from PIL import Image

from generator.engine.infotext import encode_png, format_infotext, parse_infotext, read_png_parameters


def test_exact_a1111_layout():
    text = format_infotext(
        "retro anime style, a man with glasses", "blurry", 4, "DPM++ 2M", 7.5, 7, 64, 64, "0123456789", "tiny-sd1", None
    )
    assert text == (
        "retro anime style, a man with glasses\n"
        "Negative prompt: blurry\n"
        "Steps: 4, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 7, Size: 64x64, Model hash: 0123456789, Model: tiny-sd1"
    )


def test_negative_line_omitted_when_empty_and_whole_cfg_without_decimals():
    text = format_infotext("a girl", "", 20, "Euler a", 7.0, 123, 512, 768, "abc", "m", None)
    assert text.split("\n") == ["a girl", "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 123, Size: 512x768, Model hash: abc, Model: m"]


def test_values_with_commas_colons_quotes_are_json_quoted_and_round_trip():
    extra = {"Lora hashes": "retro: 0a1b2c3d4e", "Note": 'say "hi", ok'}
    text = format_infotext(
        "retro anime, a man: glasses\nsecond line", "blurry, lowres", 4, "DPM++ 2M Karras", 7.5, 7, 64, 64,
        "0123456789", "tiny, model", extra,
    )
    last = text.split("\n")[-1]
    assert 'Model: "tiny, model"' in last
    assert 'Lora hashes: "retro: 0a1b2c3d4e"' in last
    parsed = parse_infotext(text)
    assert parsed == {
        "Prompt": "retro anime, a man: glasses\nsecond line",
        "Negative prompt": "blurry, lowres",
        "Steps": "4",
        "Sampler": "DPM++ 2M Karras",
        "CFG scale": "7.5",
        "Seed": "7",
        "Size": "64x64",
        "Model hash": "0123456789",
        "Model": "tiny, model",
        "Lora hashes": "retro: 0a1b2c3d4e",
        "Note": 'say "hi", ok',
    }


def test_parse_text_without_parameter_line_is_all_prompt():
    assert parse_infotext("just a prompt") == {"Prompt": "just a prompt", "Negative prompt": ""}


def test_png_parameters_chunk_read_back():
    text = format_infotext("レトロ anime, 眼鏡", "blurry", 4, "DDIM", 7.0, 1, 64, 64, "abc", "m", None)
    data = encode_png(Image.new("RGB", (8, 8), "red"), text)
    assert data.startswith(b"\x89PNG")
    assert read_png_parameters(data) == text
    plain = io.BytesIO()
    Image.new("RGB", (8, 8)).save(plain, format="PNG")
    assert read_png_parameters(plain.getvalue()) is None
