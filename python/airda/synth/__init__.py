"""Synthetic tables: metadata and constraints, synthesizers (Gaussian copula, a deep generator),
fidelity, utility and privacy metrics, and a study that tunes the generator.
"""
