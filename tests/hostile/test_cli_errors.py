"""Errors a user sees: one line naming the input and the reason, a non-zero exit, the traceback with --debug (issue 9 §8)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from crystens_core import hookimpl
from crystens_core.cli import INTERNAL_ERROR_EXIT, main
from crystens_core.testing import temporary_plugin
from plugin_dists import make_distribution, plugin_source, run_crystens, stderr_lines

QUITS = '''
class Quits:
    def decode_batch(self, tensors, progress=False):
        sys.exit(3)
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A site folder with a third-party decoder plugin whose factory raises, and one whose decoding calls sys.exit."""
    folder = tmp_path_factory.mktemp("site")
    make_distribution(folder, "faulty-decoders", {"faulty_decoders": "hostile_faulty"}, {"hostile_faulty": plugin_source(("decoder", "kaput"), factory_body="raise RuntimeError('kaput: the decoder could not start')")})
    make_distribution(folder, "quitting-decoders", {"quitting_decoders": "hostile_quitting"}, {"hostile_quitting": plugin_source(("decoder", "quits"), on_import=QUITS, factory_body="return Quits()")})
    return folder


@pytest.fixture(scope="module")
def tensors(tmp_path_factory):
    path = tmp_path_factory.mktemp("tensors") / "t.npy"
    np.save(path, np.zeros((2, 4, 64, 64), dtype=np.float32))
    return path


def one_line(result) -> str:
    """The single non-empty stderr line of a failed command (no traceback)."""
    lines = stderr_lines(result)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    return lines[0]


def test_file_system_error_is_one_line_naming_the_path(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    output = blocker / "tensors.npy"
    result = run_crystens(None, "encode", "mp20-sample", "-o", str(output))
    assert result.returncode == 1
    line = one_line(result)
    assert line.startswith("error: ") and str(blocker) in line, line
    debug = run_crystens(None, "--debug", "encode", "mp20-sample", "-o", str(output))
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert stderr_lines(debug)[-1] == line


def test_unexpected_plugin_error_is_one_internal_error_line(site, tensors, tmp_path):
    result = run_crystens(site, "decode", str(tensors), "-o", str(tmp_path / "out"), "--decoder", "kaput")
    assert result.returncode == INTERNAL_ERROR_EXIT
    assert one_line(result) == "internal error: RuntimeError: kaput: the decoder could not start (run with --debug for the traceback)"
    debug = run_crystens(site, "decode", str(tensors), "-o", str(tmp_path / "out"), "--decoder", "kaput", env={"CRYSTENS_DEBUG": "1"})
    assert debug.returncode == INTERNAL_ERROR_EXIT
    assert "Traceback (most recent call last)" in debug.stderr and "hostile_faulty.py" in debug.stderr

    class Interrupting:  # Ctrl-C is not turned into an error line
        @hookimpl
        def crystens_register_decoders(self, register):
            def factory(**config):
                raise KeyboardInterrupt

            register("interrupting", factory)

    with temporary_plugin(Interrupting(), "interrupting"):
        interrupted = CliRunner().invoke(main, ["decode", str(tensors), "-o", str(tmp_path / "out"), "--decoder", "interrupting"])
    assert interrupted.exit_code == 1 and "Aborted!" in interrupted.output and "error" not in interrupted.output


def test_sys_exit_inside_a_command_is_reported_not_silent(site, tensors, tmp_path):
    """A plugin's decode_batch calling sys.exit(3) used to end the command with exit 3 and no output."""
    result = run_crystens(site, "decode", str(tensors), "-o", str(tmp_path / "out"), "--decoder", "quits")
    assert result.returncode == INTERNAL_ERROR_EXIT
    assert one_line(result) == "internal error: SystemExit: something called sys.exit(3) (run with --debug for the traceback)"


@pytest.mark.parametrize(
    ("arguments", "status", "named"),
    [
        (["data", "info", "no-such-dataset"], 1, "no-such-dataset"),  # a CrystensError
        (["decode", "{tensors}.missing", "-o", "{tmp}/out"], 2, "t.npy.missing"),  # click's usage error
        (["decode", "{bogus}", "-o", "{tmp}/out"], 1, "bogus.npy"),  # the command's own ClickException
        (["evaluate", "--reference", "mp20-sample", "--generated", "{tensors}", "--decoder", "nope", "-o", "{tmp}/report"], 1, "nope"),
    ],
)
def test_known_failures_are_one_error_line_naming_the_input(arguments, status, named, tensors, tmp_path):
    bogus = tmp_path / "bogus.npy"
    bogus.write_text("this is not numpy\n")
    filled = [a.format(tensors=tensors, tmp=tmp_path, bogus=bogus) for a in arguments]
    result = run_crystens(None, *filled)
    assert result.returncode == status, result.stderr
    line = one_line(result)
    assert line.startswith("error: ") and named in line, line
