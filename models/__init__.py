"""Model catalog (and, later, signed manifests and trusted keys). No weights live here."""

from models.catalog import Catalog, ModelSpec, SourceFile, VoiceSpec, load_catalog

__all__ = ["Catalog", "ModelSpec", "SourceFile", "VoiceSpec", "load_catalog"]
