"""Process set-up shared by the CLI commands."""

from __future__ import annotations

import os
import sys


def use_triton_interpreter_without_gpu() -> str:
    """Let this process run Triton kernels on the CPU interpreter when there is no GPU.

    The CLI owns its process, so it may set ``TRITON_INTERPRET=1`` before anything imports
    triton; library users set it themselves. Returns a note on what was decided.
    """
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return "TRITON_INTERPRET=1 (set by the caller)"
    if "triton" in sys.modules:
        return "triton already imported"
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if torch.cuda.is_available():
        return "GPU present: Triton compiles for it"
    os.environ["TRITON_INTERPRET"] = "1"
    return "no GPU: TRITON_INTERPRET=1 set by airda for this process (CPU interpreter, slow)"
