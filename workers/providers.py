"""onnxruntime execution-provider choice: CUDA where a GPU is present, CPU otherwise."""

from __future__ import annotations

import logging
import os

import onnxruntime as ort

from shared.errors import ConfigError

__all__ = ["DEVICES", "choose_providers", "session_options"]

log = logging.getLogger(__name__)
DEVICES = ("auto", "cpu", "cuda")


def _gpu_present() -> bool:
    return os.path.exists("/dev/nvidiactl") or bool(os.environ.get("CUDA_VISIBLE_DEVICES", "").strip(" -1"))


def choose_providers(device: str = "auto") -> list[str]:
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {DEVICES}, got {device!r}")
    available = ort.get_available_providers()
    cuda_ok = "CUDAExecutionProvider" in available
    if device == "cuda" and not cuda_ok:
        raise ConfigError("device=cuda but this onnxruntime has no CUDA provider (install onnxruntime-gpu)")
    if device == "cuda" or (device == "auto" and cuda_ok and _gpu_present()):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session_options(threads: int | None) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return opts
