"""The documentation: every hook documented, README commands are the ones CI runs, README example runs."""

import re
from pathlib import Path

from crystens_core import hookspecs

REPO = Path(__file__).resolve().parents[1]


def test_every_hook_has_a_heading_in_the_plugin_docs():
    headings = set(re.findall(r"^## (\w+)$", (REPO / "docs" / "plugins.md").read_text(), re.MULTILINE))
    hooks = {name for name in dir(hookspecs) if name.startswith("crystens_register_")}
    assert hooks and hooks <= headings, f"undocumented hooks: {hooks - headings}"


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci_lines = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if "pytest" in line]
    assert ci_lines and all(line in readme for line in ci_lines)
    install = next(line for line in (REPO / ".ci" / "run").read_text().splitlines() if line.startswith("pip install -e"))
    assert install in readme


def test_readme_python_example_runs(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example writes its run into ./out
    readme = (REPO / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.DOTALL).group(1)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("True ") and printed[-1] == "True"
