"""Evaluation prompt suites: concepts (attribute combinations) written in several languages.

A suite file (YAML, or JSON with the same keys) looks like `suites/retro_default.yaml`:

    name: retro_default
    version: 1
    languages: [en, id]
    prompts:
      - key: girl-glasses-market          # unique, [a-z0-9-]
        held_out: false                   # optional; true = combination absent from training captions
        attributes: {gender: girl, age: young, accessory: glasses, background: market}
        en: retro anime style, a young girl with glasses at a market
        id: gaya anime retro, seorang gadis muda berkacamata di pasar

Every concept must give a text for every language listed. Errors raise SuiteError naming the file,
the line (YAML) and the key path, e.g. `suite.yaml:14: prompts[2].id: is empty`.

A plain list of prompts is a suite too: a YAML (or JSON) list of texts, or a `.txt` file with one prompt a
line (blank lines and `#` comments skipped). Its concepts are keyed p1, p2, … in one language, `en`.
"""
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SUITE = Path(__file__).resolve().parent / "suites" / "retro_default.yaml"
ATTRIBUTES = ("gender", "age", "accessory", "activity", "background")
_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")
_TOP_KEYS = {"name", "version", "languages", "prompts", "description"}
_PROMPT_KEYS = {"key", "held_out", "attributes"}


class SuiteError(ValueError):
    """A suite file is unreadable or invalid; the message names the file, line and key."""


@dataclass(frozen=True)
class SuitePrompt:
    key: str  # concept key; the same for each language of one concept
    language: str
    text: str
    held_out: bool = False
    attributes: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        """Unique within a suite: `<key>.<language>`."""
        return f"{self.key}.{self.language}"


@dataclass
class Suite:
    name: str
    version: int
    languages: list[str]
    prompts: list[SuitePrompt]  # concept-major: concept 1 in every language, then concept 2, ...
    source: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def concepts(self) -> list[str]:
        return list(dict.fromkeys(p.key for p in self.prompts))

    def subset(self, keys: list[str] | None = None, languages: list[str] | None = None) -> "Suite":
        """A suite with only the given concept keys and/or languages (e.g. a quick 2-prompt check)."""
        unknown = set(keys or []) - set(self.concepts)
        if unknown:
            raise SuiteError(f"{self.source}: unknown prompt key(s) {', '.join(sorted(unknown))}")
        prompts = [p for p in self.prompts if (keys is None or p.key in keys) and (languages is None or p.language in languages)]
        langs = [lang for lang in self.languages if languages is None or lang in languages]
        return Suite(self.name, self.version, langs, prompts, self.source, list(self.warnings))

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "languages": self.languages,
            "source": self.source,
            "prompts": [
                {"key": p.key, "language": p.language, "text": p.text, "held_out": p.held_out, "attributes": dict(p.attributes)}
                for p in self.prompts
            ],
        }


class _Lined(dict):
    """A mapping that remembers the 1-based line of itself and of each key (YAML only)."""

    line: int | None = None
    key_lines: dict


def _yaml_load(text: str):
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        loader.flatten_mapping(node)
        mapping = _Lined()
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                raise SuiteError(f"line {key_node.start_mark.line + 1}: keys must be text, got {key!r}")
            if key in mapping:
                raise SuiteError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
            mapping[key] = loader.construct_object(value_node, deep=deep)
            mapping.key_lines[key] = key_node.start_mark.line + 1
        return mapping

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return yaml.load(text, Loader=Loader)


def _where(source: str, mapping, key: str | None = None) -> str:
    line = None
    if isinstance(mapping, _Lined):
        line = mapping.key_lines.get(key) if key is not None else None
        line = line or mapping.line
    return f"{source}:{line}" if line else source


def parse_suite(text: str, source: str = "<suite>", fmt: str = "yaml") -> Suite:
    """Parse and validate suite text (`fmt` 'yaml' or 'json'); raise SuiteError naming line and key."""
    try:
        data = json.loads(text) if fmt == "json" else _yaml_load(text)
    except SuiteError as e:
        raise SuiteError(f"{source}:{str(e).removeprefix('line ')}") from None
    except Exception as e:  # yaml.YAMLError / json.JSONDecodeError carry the position
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else getattr(e, "lineno", None)
        detail = getattr(e, "problem", None) or getattr(e, "msg", None) or str(e)
        raise SuiteError(f"{source}:{line}: not valid {fmt.upper()} ({' '.join(str(detail).split())})") from None

    def fail(mapping, key, path, message):
        raise SuiteError(f"{_where(source, mapping, key)}: {path}: {message}")

    if isinstance(data, list):
        return _plain_suite(data, source)
    if not isinstance(data, dict):
        raise SuiteError(f"{source}: the suite must be a list of prompts, or a mapping with 'name', 'languages' "
                         "and 'prompts'")
    for key in data:
        if key not in _TOP_KEYS:
            fail(data, key, key, f"unknown key; valid: {', '.join(sorted(_TOP_KEYS))}")
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not name.strip():
        fail(data, "name", "name", "must be non-empty text")
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        fail(data, "version", "version", f"must be an integer, got {version!r}")
    languages = data.get("languages")
    if not isinstance(languages, list) or not languages:
        fail(data, "languages", "languages", "must be a non-empty list of language codes, e.g. [en, id]")
    for i, lang in enumerate(languages):
        if not isinstance(lang, str) or not _LANG.match(lang):
            fail(data, "languages", f"languages[{i}]", f"{lang!r} is not a language code like 'en' or 'id'")
    if len(set(languages)) != len(languages):
        fail(data, "languages", "languages", "lists a language twice")
    entries = data.get("prompts")
    if not isinstance(entries, list) or not entries:
        fail(data, "prompts", "prompts", "must be a non-empty list of concepts")

    prompts: list[SuitePrompt] = []
    seen_keys: set[str] = set()
    for i, entry in enumerate(entries):
        path = f"prompts[{i}]"
        if not isinstance(entry, dict):
            fail(data, "prompts", path, "must be a mapping with 'key', 'attributes' and one text per language")
        for key in entry:
            if key not in _PROMPT_KEYS and key not in languages:
                fail(entry, key, f"{path}.{key}", f"unknown key; valid: {', '.join(sorted(_PROMPT_KEYS))} and the languages {', '.join(languages)}")
        key = entry.get("key")
        if not isinstance(key, str) or not _KEY.match(key):
            fail(entry, "key", f"{path}.key", f"{key!r} must be lowercase letters, digits and '-' (at most 80)")
        if key in seen_keys:
            fail(entry, "key", f"{path}.key", f"{key!r} is used twice")
        seen_keys.add(key)
        held_out = entry.get("held_out", False)
        if not isinstance(held_out, bool):
            fail(entry, "held_out", f"{path}.held_out", f"must be true or false, got {held_out!r}")
        attributes = entry.get("attributes", {})
        if not isinstance(attributes, dict):
            fail(entry, "attributes", f"{path}.attributes", "must be a mapping, e.g. {gender: girl, age: young}")
        for attr, value in attributes.items():
            if attr not in ATTRIBUTES:
                fail(attributes, attr, f"{path}.attributes.{attr}", f"unknown attribute; valid: {', '.join(ATTRIBUTES)}")
            if not isinstance(value, str) or not value.strip():
                fail(attributes, attr, f"{path}.attributes.{attr}", "must be non-empty text")
        for lang in languages:
            text = entry.get(lang)
            if text is None:
                fail(entry, None, f"{path}.{lang}", f"missing: concept {key!r} needs a text in every language ({', '.join(languages)})")
            if not isinstance(text, str) or not text.strip():
                fail(entry, lang, f"{path}.{lang}", "is empty" if isinstance(text, str) else f"must be text, got {text!r}")
            prompts.append(SuitePrompt(key, lang, " ".join(text.split()), held_out, tuple(sorted(attributes.items()))))
    suite = Suite(name.strip(), version, list(languages), prompts, source)
    suite.warnings = _held_out_warnings(suite)
    return suite


def _plain_suite(texts: list, source: str) -> Suite:
    """A suite from a plain list of prompt texts (see the module docstring)."""
    if not texts:
        raise SuiteError(f"{source}: the list of prompts is empty")
    prompts = []
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise SuiteError(f"{source}: prompts[{i}]: must be non-empty text, got {text!r}")
        prompts.append(SuitePrompt(f"p{i + 1}", "en", " ".join(text.split())))
    return Suite(Path(source).stem or "prompts", 1, ["en"], prompts, source)


def _text_lines(text: str) -> list[str]:
    """A .txt prompt list: one prompt a line; blank lines and lines starting with # are skipped."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _held_out_warnings(suite: Suite) -> list[str]:
    """A held-out concept should recombine seen attribute values, not introduce new ones."""
    seen = {(a, v) for p in suite.prompts if not p.held_out for a, v in p.attributes}
    warnings = []
    for key in suite.concepts:
        prompt = next(p for p in suite.prompts if p.key == key)
        if prompt.held_out:
            new = [f"{a}={v}" for a, v in prompt.attributes if (a, v) not in seen]
            if new:
                warnings.append(f"held-out concept {key!r} has attribute values no seen concept has ({', '.join(new)}): it tests new attributes, not a new combination")
    return warnings


def load_suite(path: str | Path | None = None) -> Suite:
    """Read a suite file (.yaml/.yml/.json, or .txt with one prompt a line); None reads the default retro suite."""
    path = Path(path) if path is not None else DEFAULT_SUITE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError(f"--prompts {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SuiteError(f"--prompts {path}: cannot read it ({e})") from None
    if path.suffix.lower() == ".txt":
        return _plain_suite(_text_lines(text), str(path))
    fmt = "json" if path.suffix.lower() == ".json" else "yaml"
    return parse_suite(text, str(path), fmt)
