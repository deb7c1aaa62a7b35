"""Triton kernels of airda, installed as ``airda.kernels``.

One module per op: the ``@triton.jit`` kernels and a launcher that picks the grid and block
sizes. Import a submodule (``airda.kernels.sign_codes``) to load triton; this package itself
imports nothing heavy. Without a GPU, set ``TRITON_INTERPRET=1`` before the import to run the
kernels on Triton's CPU interpreter.
"""
