"""Test set-up: Triton kernels run on the CPU interpreter when no GPU is present.

Triton reads TRITON_INTERPRET when a kernel is defined, so it is set here, before any test
imports airda.kernels.
"""

import os

if "TRITON_INTERPRET" not in os.environ:
    import torch

    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"
