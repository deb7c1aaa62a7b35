"""``import airda.integrations`` stays light: the libraries load with the module that needs them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "lightning", "pytorch_lightning", "transformers", "mlflow", "tensorboard")


def _loaded(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd="/"
    )
    return eval(out.stdout.strip().splitlines()[-1])


def test_importing_the_package_loads_none_of_the_libraries():
    assert _loaded("import airda, airda.integrations\nairda.integrations.__all__") == []


def test_study_callbacks_load_their_library_when_made():
    # The study callbacks' modules defer torch, tensorboard and mlflow to the constructor.
    assert _loaded("from airda.integrations import TensorBoardCallback, MLflowCallback") == []
