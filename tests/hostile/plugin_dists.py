"""Real (fake) third-party distributions for the plugin tests: a dist-info folder and a module in a tmp site folder."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def plugin_site(folder: Path, monkeypatch, *module_prefixes: str) -> Iterator[Path]:
    """``folder`` first on sys.path with a registry that loads afresh; afterwards the modules
    named ``<prefix>...`` are forgotten and the registry is fresh again."""
    from crystens_core import plugins

    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv("CRYSTENS_DISABLE_PLUGINS", raising=False)
    plugins.reset_registry()
    try:
        yield folder
    finally:
        monkeypatch.undo()
        for name in [m for m in sys.modules if m.startswith(module_prefixes)]:
            del sys.modules[name]
        plugins.reset_registry()


def make_distribution(site: Path, distribution: str, entry_points: dict[str, str], modules: dict[str, str]) -> Path:
    """Write ``<distribution>-1.0.dist-info`` (METADATA, entry_points.txt under ``[crystens]``) and the modules into ``site``.

    Args:
        site: a folder that goes on ``sys.path`` / ``PYTHONPATH``.
        distribution: the distribution name (e.g. "evil-decoders").
        entry_points: entry-point name → "module" (the plugin module).
        modules: module name → Python source.
    """
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"{distribution.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    lines = ["[crystens]"] + [f"{name} = {target}" for name, target in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    return site


def plugin_source(*registrations: tuple[str, str], on_import: str = "", on_register: str = "", factory_body: str = "return object()") -> str:
    """Source of a plugin module registering ``(kind, name)`` components whose factory runs ``factory_body``."""
    hooks = []
    for kind in sorted({kind for kind, _ in registrations}):
        names = [name for k, name in registrations if k == kind]
        calls = "\n".join(f"    register({name!r}, factory, description='from a third-party test plugin')" for name in names)
        hooks.append(f"@hookimpl\ndef crystens_register_{kind}s(register):\n    {on_register or 'pass'}\n{calls}\n")
    return (
        "import sys\nfrom crystens_core import hookimpl\n"
        f"{on_import}\n"
        f"def factory(**config):\n    {factory_body}\n\n" + "\n".join(hooks)
    )


def run_crystens(site: Path | None, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``crystens ARGS`` in a fresh process with ``site`` first on PYTHONPATH."""
    environment = {key: value for key, value in os.environ.items() if key not in ("CRYSTENS_DEBUG", "CRYSTENS_DISABLE_PLUGINS")}
    environment["HF_HUB_OFFLINE"] = "1"
    if site is not None:
        environment["PYTHONPATH"] = os.pathsep.join([str(site)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    environment.update(env or {})
    script = Path(sys.executable).parent / "crystens"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "crystens_core.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=cwd, env=environment, timeout=600)


def stderr_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]
