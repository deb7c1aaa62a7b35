"""Language-model backends under one interface (local transformers/GGUF models, OpenAI-compatible
HTTP), a response cache, usage accounting and budgets, and batched scoring that reuses a shared
prefix.
"""
