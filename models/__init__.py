"""What chorus knows about its models, and whom it trusts; no weights live here.

``catalog.json`` (read by :mod:`models.catalog`): every model id, version, family
(kokoro, piper), voices, languages and the registry files a version is built
from, with their SHA-256. ``manifests/``: the Ed25519-signed manifests (DSSE
envelopes over in-toto statements) of each released version. ``keys/keyring.json``:
the trusted release keys and revocations. Weights are fetched by
``chorus models install`` from the registry and verified against both.
"""

from models.catalog import Catalog, ModelSpec, SourceFile, VoiceSpec, load_catalog

__all__ = ["Catalog", "ModelSpec", "SourceFile", "VoiceSpec", "load_catalog"]
