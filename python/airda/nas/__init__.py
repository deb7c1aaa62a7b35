"""Neural architecture search: zero-cost proxies and (in later releases) spaces and strategies.

Example:
    >>> import torch
    >>> from airda.nas import naswot_score
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    >>> score = naswot_score(model, torch.randn(16, 8, generator=torch.Generator().manual_seed(0)))
    >>> isinstance(score, float)
    True
"""

from airda.nas.naswot import naswot_score

__all__ = ["naswot_score"]
