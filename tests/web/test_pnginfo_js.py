"""static/js/pnginfo.js in Chromium: the PNG text chunks (tEXt, zTXt, compressed iTXt) and the three writers
"Read PNG info" understands — our/A1111 infotext, Fooocus' A1111 scheme and Fooocus' JSON scheme — against
PNGs written by Pillow and by generator.engine.infotext (what our worker writes)."""
import base64
import io
import json

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from generator.engine.infotext import encode_png
from tests.conftest import REPO

pytestmark = pytest.mark.browser

# What generator.engine.schedulers.SAMPLER_LABELS says (the page gets it from the server).
LABELS = {"pndm": ["PLMS", "Automatic"], "ddim": ["DDIM", "Automatic"], "euler": ["Euler", "Automatic"],
          "euler_a": ["Euler a", "Automatic"], "dpmpp_2m": ["DPM++ 2M", "Uniform"],
          "dpmpp_2m_karras": ["DPM++ 2M", "Karras"], "unipc": ["UniPC", "Automatic"]}


def png(text=None, how="text"):
    info = PngInfo()
    if text is None:
        pass
    elif how == "text":
        info.add_text("parameters", text)
    elif how == "ztxt":
        info.add_text("parameters", text, zip=True)
    elif how == "itxt-zip":
        info.add_itxt("parameters", text, zip=True)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG", pnginfo=info if text is not None else None)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def read(browser):
    page = browser.new_page()
    page.set_content("<html><body></body></html>")
    page.add_script_tag(content=(REPO / "static/js/pnginfo.js").read_text())

    def run(data: bytes):
        return page.evaluate("""async ([b64, labels]) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            try {
              const chunks = await RetroPngInfo.readTextChunks(bytes.buffer);
              if (!chunks.parameters) return {chunks, none: true};
              const parsed = RetroPngInfo.parseParameters(chunks.parameters);
              return {chunks, format: parsed.format, fields: parsed.fields,
                      scheduler: RetroPngInfo.schedulerFor(parsed.fields, labels)};
            } catch (e) { return {error: e.message}; }
        }""", [base64.b64encode(data).decode(), LABELS])

    yield run
    page.close()


def test_our_infotext_reads_back_field_for_field(read):
    from generator.engine.infotext import format_infotext, parse_infotext

    text = format_infotext("retro anime style, (a girl:1.2) <lora:retro-style:0.8>", "blurry, lowres", 7, "DPM++ 2M",
                           6.5, 4242, 64, 64, "0123456789", "tiny-sd1", {"Lora hashes": "retro-style: abc123",
                                                                        "Denoising strength": 0.6}, "Karras")
    result = read(encode_png(Image.new("RGB", (8, 8)), text))
    assert result["format"] == "AUTOMATIC1111 infotext"
    assert result["fields"] == parse_infotext(text)  # the same reading as the Python parser (A1111's rules)
    assert result["scheduler"] == "dpmpp_2m_karras"


@pytest.mark.parametrize("how", ["text", "ztxt", "itxt-zip"])
def test_every_text_chunk_kind_and_unicode(read, how):
    text = "gadis dengan topi merah ☆\nSteps: 3, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x64"
    if how != "itxt-zip":
        text = text.replace(" ☆", "")  # tEXt / zTXt are Latin-1
    result = read(png(text, how))
    assert result["fields"]["Prompt"] == text.split("\n")[0] and result["scheduler"] == "euler_a"


@pytest.mark.parametrize("sampler,schedule,expected", [
    ("DPM++ 2M", "Uniform", "dpmpp_2m"), ("DPM++ 2M", None, "dpmpp_2m_karras"),  # A1111 >= 1.9: Automatic = Karras
    ("DPM++ 2M Karras", None, "dpmpp_2m_karras"), ("PLMS", None, "pndm"), ("DPM++ SDE", "Karras", None),
])
def test_a1111_sampler_names(read, sampler, schedule, expected):
    extra = f", Schedule type: {schedule}" if schedule else ""
    result = read(png(f"a girl\nSteps: 3, Sampler: {sampler}{extra}, CFG scale: 7, Seed: 1"))
    assert result["scheduler"] == expected


def test_fooocus_json_and_a1111_schemes(read):
    native = {"prompt": "a girl, red scarf", "negative_prompt": "blurry", "steps": 30, "guidance_scale": 4,
              "seed": "123", "resolution": "(896, 1152)", "sampler": "dpmpp_2m", "scheduler": "karras",
              "base_model": "juggernautXL.safetensors", "version": "Fooocus v2.5.5"}
    result = read(png(json.dumps(native), "ztxt"))
    assert result["format"] == "Fooocus"
    fields = result["fields"]
    assert (fields["Prompt"], fields["Negative prompt"], fields["Steps"], fields["CFG scale"], fields["Seed"],
            fields["Size"], fields["Model"]) == ("a girl, red scarf", "blurry", "30", "4", "123", "896x1152",
                                                 "juggernautXL")
    assert result["scheduler"] == "dpmpp_2m_karras"

    scheme = ("a girl, red scarf, cinematic, highly detailed\nNegative prompt: unrealistic, blurry\n"
              'Steps: 30, Sampler: DPM++ 2M SDE Karras, Seed: 99, Size: 896x1152, CFG scale: 4, '
              'Raw prompt: "a girl, red scarf", Raw negative prompt: blurry, Version: Fooocus v2.5.5')
    result = read(png(scheme))
    assert result["format"] == "Fooocus (A1111 scheme)"
    assert result["fields"]["Prompt"] == "a girl, red scarf" and result["fields"]["Negative prompt"] == "blurry"
    assert result["scheduler"] is None  # DPM++ 2M SDE is not offered here: the page says so


def test_no_parameters_and_not_a_png(read):
    assert read(png(None))["none"] is True
    assert read(b"\xff\xd8\xff\xe0 a JPEG")["error"] == "not a PNG"
