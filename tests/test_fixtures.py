"""The committed test fixtures, and the rule that CI fails (not skips) without ../shared."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_every_fixture_is_documented_and_the_folder_stays_small():
    readme = (FIXTURES / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, re.MULTILINE))
    present = {path.name for path in FIXTURES.iterdir() if path.name not in ("README.md", "make_fixtures.py", "__pycache__")}
    assert present == documented, f"undocumented: {present - documented}; missing: {documented - present}"
    total = sum(path.stat().st_size for path in FIXTURES.iterdir() if path.is_file())
    assert total < 1_000_000, f"tests/fixtures holds {total} bytes"


def test_missing_shared_folder_skips_locally_and_fails_under_ci(tmp_path):
    """A fresh clone (no ../shared) skips the full-data tests; CI=true turns the skip into a failure."""
    tests = tmp_path / "repo" / "tests"
    tests.mkdir(parents=True)
    shutil.copyfile(Path(__file__).resolve().parent / "conftest.py", tests / "conftest.py")
    (tests / "test_needs_shared.py").write_text("def test_needs_shared(shared_data):\n    assert shared_data.is_dir()\n")
    environment = {key: value for key, value in os.environ.items() if key != "CI"}

    def run(**extra):
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)]
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env={**environment, **extra}, timeout=300)

    local = run()
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout
    ci = run(CI="true")
    assert ci.returncode == 1 and "CI=true requires it" in ci.stdout and "1 error" in ci.stdout, ci.stdout
