"""Prompt optimisation over an airda.lm backend: tasks and metrics, calibration, and optimisers
(instruction proposal, meta-prompting, evolution, few-shot selection, joint search, reflection)
run as durable studies.
"""
