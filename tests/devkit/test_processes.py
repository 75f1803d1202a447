"""Children go away with their whole process group, also when the parent is interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from devkit.runner import processes


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_stop_takes_grandchildren_with_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, time; p = subprocess.Popen(['sleep', '60']);"
        f" open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    )
    child = processes.spawn([sys.executable, "-c", script])
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    grandchild = int(pid_file.read_text())
    processes.stop(child, grace=2)
    assert not alive(child.pid)
    time.sleep(0.2)
    assert not alive(grandchild)


def test_a_child_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " print('ready', flush=True); time.sleep(60)"
    )
    log = tmp_path / "log"
    child = processes.spawn([sys.executable, "-c", script], log=log)
    deadline = time.monotonic() + 10
    while "ready" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    processes.stop(child, grace=0.5)
    assert not alive(child.pid)
    assert time.monotonic() - started < 5


def test_ctrl_c_in_the_parent_stops_every_child(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    port_file = tmp_path / "port"
    parent = textwrap.dedent(
        f"""
        import socket, sys, time
        from devkit.runner import processes
        port = processes.free_loopback_port()
        listen = "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', %d)); s.listen()"
        listener = [sys.executable, "-c", listen % port + "; time.sleep(60)"]
        children = [processes.spawn(listener), processes.spawn(["sleep", "60"])]
        processes.wait_for_port(port, timeout=10)
        open({str(pids)!r}, "w").write(" ".join(str(c.pid) for c in children))
        open({str(port_file)!r}, "w").write(str(port))
        time.sleep(60)
        """
    )
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", parent], cwd=repo, start_new_session=True)
    deadline = time.monotonic() + 20
    while not port_file.exists():
        assert time.monotonic() < deadline, "the parent did not start its children"
        time.sleep(0.05)
    children = [int(p) for p in pids.read_text().split()]
    port = int(port_file.read_text())
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) != 0
    time.sleep(0.3)
    assert [p for p in children if alive(p)] == []
    assert processes.port_is_free(port)
