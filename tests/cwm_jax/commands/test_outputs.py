"""Output paths (cwm_jax/commands/outputs.py) and the interrupted exit (`command.leave`): issue 25, items 2 and 3."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from cwm_jax.commands import common as command
from cwm_jax.commands import outputs
from cwm_jax.commands.main import main

UNWRITABLE_FILE = "/sys/cwm-jax-test.out"  # refused even to root (sysfs makes no files)


def _no_work(*args, **kwargs):
    raise AssertionError("the work started before the output paths were checked")


@pytest.fixture
def no_work(monkeypatch):
    from cwm_jax.commands import plan as plan_cli
    from cwm_jax.commands import train as train_cli
    from cwm_jax import sandbox

    monkeypatch.setattr(plan_cli, "plan", _no_work)
    monkeypatch.setattr(train_cli, "train", _no_work)
    monkeypatch.setattr(sandbox, "fit_source", _no_work)


def _command_lines(bad_file: str, bad_dir: str) -> list[list[str]]:
    """Every output option of every subcommand, given `bad_file` (a file option) or `bad_dir` (a directory)."""
    model = str(Path(__file__).resolve().parents[3] / "cwm_jax" / "reference" / "cartpole.py")
    return [["plan", "--json", bad_file], ["plan", "--plot", bad_file],
            ["train", "--json", bad_file], ["train", "--plot", bad_file], ["train", "--save", bad_file],
            ["fit", model, "--env", "CartPole", "--out", bad_file],
            ["bench", "--methods", "reference", "--out", bad_dir],
            ["synth", "--env", "CartPole", "--model", "m", "--out", bad_dir],
            ["synth", "--env", "CartPole", "--model", "m", "--out", str(Path(bad_dir).parent / "s"),
             "--cache", bad_file]]


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs /sys")
def test_every_output_option_is_checked_before_the_work(no_work, tmp_path, capsys):
    a_dir = tmp_path / "a_dir"
    a_dir.mkdir()
    a_file = tmp_path / "a_file"
    a_file.write_text("kept\n")
    cases = _command_lines(UNWRITABLE_FILE, "/sys/cwm-jax-test-dir") + _command_lines(str(a_dir), str(a_file))
    for argv in cases:
        assert main(argv) == command.EXIT_USAGE, argv
        out = capsys.readouterr()
        assert out.err.startswith("error: cannot write") and out.err.count("\n") == 1, (argv, out.err)
        assert "Traceback" not in out.err + out.out
    assert a_file.read_text() == "kept\n" and list(a_dir.iterdir()) == []


def test_a_checked_new_file_is_not_left_behind(tmp_path):
    outputs.check_files(str(tmp_path / "new.json"))
    outputs.check_dirs(str(tmp_path / "new" / "dir"))  # a usage error later must find nothing written
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_after_the_work_saves_the_result_and_says_where(monkeypatch, tmp_path, capsys):
    from cwm_jax.commands import plan as plan_cli

    monkeypatch.chdir(tmp_path)
    record = {"mean_return": 1.5}
    monkeypatch.setattr(plan_cli, "plan", lambda args, say: (record, lambda path: Path(path).write_bytes(b"PNG")))
    full = "/dev/full" if Path("/dev/full").exists() else pytest.skip("needs /dev/full")
    assert main(["plan", "--json", full, "--plot", full]) == command.EXIT_FAILED
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("error: cannot write /dev/full") for line in err), err
    saved = [Path(re.search(r" to (\S+) instead$", line).group(1)) for line in err]
    assert json.loads(saved[0].read_text()) == record and saved[1].read_bytes() == b"PNG"
    assert all(path.parent == tmp_path for path in saved)
    assert [path.suffix for path in saved] == [".json", ".png"] and "saved the JSON record to" in err[0]


def test_a_plot_on_a_full_disk_raises(tmp_path):
    """matplotlib's own PNG writer says nothing when the disk is full; ours must raise, so the fallback runs."""
    from cwm_jax.commands.report import write_learning_curve

    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    with pytest.raises(OSError):
        write_learning_curve("/dev/full", "CartPole", "reference", [1, 2], [1.0, 2.0], [1.0, 2.0])


def test_an_interrupted_process_leaves_without_teardown(monkeypatch, capsys):
    """After Ctrl-C the process ends through os._exit (XLA threads may still run; teardown crashed it)."""
    left = []
    monkeypatch.setattr(os, "_exit", left.append)
    assert command.leave(command.EXIT_OK) == 0 and left == []
    command.leave(command.EXIT_INTERRUPTED)
    assert left == [130]


def test_the_process_entry_point_leaves_through_os_exit_after_ctrl_c(monkeypatch, capsys):
    from cwm_jax.commands import plan as plan_cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    left, installed = [], []
    monkeypatch.setattr(plan_cli, "plan", interrupted)
    monkeypatch.setattr(os, "_exit", left.append)
    monkeypatch.setattr(command, "exit_on_interrupt", lambda: installed.append(True))
    monkeypatch.setattr("sys.argv", ["cwm-jax", "plan"])
    main()  # no argv: the console script's call
    assert installed == [True] and left == [130] and capsys.readouterr().err == "interrupted\n"
    monkeypatch.setattr("sys.argv", ["cwm-jax", "synth", "--env", "CartPole", "--model", "m", "--out", "x",
                                     "--budget", "0"])
    main()  # synth saves its outputs on Ctrl-C: it keeps KeyboardInterrupt
    assert installed == [True]


def test_ctrl_c_in_a_long_c_call_exits_130_with_one_line_at_once():
    """The exit does not wait for the main thread (here blocked in read(2), as it is in XLA's compile)."""
    import signal
    import subprocess
    import sys
    import time

    code = ("import os, sys; from cwm_jax.commands.common import exit_on_interrupt; exit_on_interrupt(); "
            "print('ready', flush=True); os.read(os.pipe()[0], 1); print('the read returned')")
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline() == "ready\n"
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, err, out) == (130, "interrupted\n", "")
    assert time.monotonic() - start < 5
