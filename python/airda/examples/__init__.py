"""Objectives for examples and the README's quick start (importable as ``module:function``)."""
