"""The hand-written stubs type-check a realistic usage file under mypy --strict."""

import subprocess
import sys
from pathlib import Path


def test_stubs_check_with_mypy():
    here = Path(__file__).parent
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(here / "typed_usage.py")],
        capture_output=True,
        text=True,
        cwd=here,
    )
    assert out.returncode == 0, out.stdout + out.stderr
