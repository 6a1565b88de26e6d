"""generator.engine.prompt_syntax: A1111's weight syntax (expected weights worked out by hand from A1111's rules:
( ) x1.1, [ ] /1.1, (x:w) sets w, nesting multiplies, escapes are literal, unclosed brackets run to the end),
token counts per 75-token chunk with BREAK, and a tokenizer loaded without torch."""
import subprocess
import sys

import pytest

from generator.engine.prompt_syntax import BREAK, load_tokenizer, parse_weights, token_counts
from tests.conftest import REPO

SHIPPED = REPO / "training/miniworld/weights/base"


@pytest.mark.parametrize("text,expected", [
    ("a girl", [("a girl", 1.0)]),
    ("a (girl)", [("a ", 1.0), ("girl", 1.1)]),
    ("((hat))", [("hat", 1.1 * 1.1)]),
    ("[scarf]", [("scarf", 1 / 1.1)]),
    ("(red scarf:1.3), hat", [("red scarf", 1.3), (", hat", 1.0)]),
    ("((a:1.5) b)", [("a", 1.5 * 1.1), (" b", 1.1)]),
    (r"\(literal\) \[x\]", [("(literal) [x]", 1.0)]),
    ("(unclosed", [("unclosed", 1.1)]),
    ("x:y, a)", [("x:y, a)", 1.0)]),
    ("a BREAK b", [("a", 1.0), (BREAK, -1.0), ("b", 1.0)]),
    ("(a BREAK b:1.2)", [("a", 1.2), (BREAK, -1.0), ("b", 1.2)]),
    ("", [("", 1.0)]),
])
def test_weights(text, expected):
    got = parse_weights(text)
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [w for _, w in got] == pytest.approx([w for _, w in expected])


def test_token_counts_per_chunk_with_the_shipped_tokenizer():
    from transformers import CLIPTokenizer  # the reference, here in the test process only

    reference = CLIPTokenizer.from_pretrained(SHIPPED / "tokenizer")
    tokenizer = load_tokenizer(str(SHIPPED))

    def n(text):
        return len(reference(text, add_special_tokens=False).input_ids)

    assert token_counts(tokenizer, "") == [0]
    assert token_counts(tokenizer, "seorang gadis, (topi merah:1.4)") == [n("seorang gadis, topi merah")]
    assert token_counts(tokenizer, "a girl BREAK a red hat") == [n("a girl"), n("a red hat")]
    long_text = ", ".join(["a girl with a red scarf"] * 20)
    total = n(long_text)
    counts = token_counts(tokenizer, long_text)
    assert sum(counts) == total and counts[:-1] == [75] * (len(counts) - 1) and 0 < counts[-1] <= 75


def test_a_folder_without_tokenizer_files_says_so(tmp_path):
    with pytest.raises(ValueError, match="no tokenizer files"):
        load_tokenizer(str(tmp_path))
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"x")
    with pytest.raises(ValueError, match="single-file checkpoint"):
        load_tokenizer(str(checkpoint))


def test_vocab_and_merges_give_the_same_ids_as_tokenizer_json(tmp_path):
    import shutil

    folder = tmp_path / "model" / "tokenizer"
    folder.mkdir(parents=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(SHIPPED / "tokenizer" / name, folder / name)
    text = "Retro anime style, a GIRL with a red scarf & hat, 1985's look"
    assert (load_tokenizer(str(tmp_path / "model")).encode(text, add_special_tokens=False).ids
            == load_tokenizer(str(SHIPPED)).encode(text, add_special_tokens=False).ids)


def test_no_torch_is_imported():
    code = ("import sys; from generator.engine import prompt_syntax, sampler_labels\n"
            f"prompt_syntax.token_counts(prompt_syntax.load_tokenizer({str(SHIPPED)!r}), '(a:1.2) BREAK b')\n"
            "bad = [m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules]\nassert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
