"""The `meterlab` command as a lab engineer uses it, on virtual boards started with `meterlab virtual start`."""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import meterfw

pytestmark = pytest.mark.virtual


def meterlab(*args, env, timeout=60):
    return subprocess.run([sys.executable, "-m", "meterlab", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def mpremote(url, *args):
    result = subprocess.run([sys.executable, "-m", "mpremote", "connect", url, *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "METERLAB_RUNTIME_DIR": str(tmp_path / "runtime")}


def test_virtual_start_mpremote_ping_restart_and_power_cycle(tmp_path, env):
    port = free_port()
    url = f"socket://127.0.0.1:{port}"
    state = tmp_path / "esme"
    board = subprocess.Popen(
        [sys.executable, "-m", "meterlab", "virtual", "start", "--role", "esme",
         "--listen", f"127.0.0.1:{port}", "--state", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, start_new_session=True,
    )
    try:
        banner = board.stdout.readline()
        assert f"virtual esme board (esp32-devkitc) on {url}" in banner

        ping = meterlab("ping", url, env=env)
        assert ping.returncode == 0, ping.stderr
        assert f"role=esme firmware={meterfw.__version__} board=esp32-devkitc (esp32)" in ping.stdout

        assert mpremote(url, "exec", "import meterfw; print(meterfw.__version__)").strip() == meterfw.__version__
        original = tmp_path / "keys.bin"
        original.write_bytes(os.urandom(3000))
        mpremote(url, "fs", "cp", str(original), ":keys.bin")
        back = tmp_path / "back.bin"
        mpremote(url, "fs", "cp", ":keys.bin", str(back))
        assert back.read_bytes() == original.read_bytes()

        # mpremote left the board at its REPL: ping says so and how to get the firmware back
        stopped = meterlab("ping", url, "--timeout", "1", env=env)
        assert stopped.returncode == 1
        assert stopped.stderr.count("\n") == 1 and f"meterlab restart {url}" in stopped.stderr
        restarted = meterlab("restart", url, env=env)
        assert restarted.returncode == 0, restarted.stderr
        assert "role=esme" in restarted.stdout

        listed = meterlab("boards", env=env)
        assert url in listed.stdout and "esme" in listed.stdout

        os.killpg(board.pid, signal.SIGKILL)  # power cut: the CLI and its Node.js board, no warning
        board.wait(10)
    finally:
        if board.poll() is None:
            os.killpg(board.pid, signal.SIGKILL)
            board.wait(10)

    again = subprocess.Popen(
        [sys.executable, "-m", "meterlab", "virtual", "start", "--listen", f"127.0.0.1:{port}",
         "--state", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        assert url in again.stdout.readline()
        assert "role=esme" in meterlab("ping", url, env=env).stdout  # the role came from its flash
        back_again = tmp_path / "back-again.bin"
        mpremote(url, "fs", "cp", ":keys.bin", str(back_again))
        assert back_again.read_bytes() == original.read_bytes()
    finally:
        again.send_signal(signal.SIGINT)
        assert again.wait(10) == 0
    assert "(none)" in meterlab("boards", env=env).stdout.split("virtual boards:")[1]


def test_errors_are_one_clear_line(tmp_path, env):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"socket://127.0.0.1:{probe.getsockname()[1]}"  # bound, not listening: refused
        result = meterlab("ping", dead, env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(f"meterlab: cannot open {dead}") and result.stderr.count("\n") == 1

    result = meterlab("virtual", "start", "--board", "esp8266", "--state", str(tmp_path / "x"), env=env)
    assert result.returncode == 1
    assert "unknown board 'esp8266'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()  # bad input changes nothing

    result = meterlab("virtual", "radio", "--delay-ms", "40:5", env=env)
    assert result.returncode == 1 and "delay" in result.stderr and "Traceback" not in result.stderr


def test_board_powers_off_when_the_process_that_started_it_is_killed(tmp_path, env):
    cli = subprocess.Popen(
        [sys.executable, "-m", "meterlab", "virtual", "start", "--role", "gsme", "--state", str(tmp_path / "g")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        assert "virtual gsme board" in cli.stdout.readline()
        (record,) = (tmp_path / "runtime").glob("*.json")
        board_pid = int(record.stem)
        os.kill(board_pid, 0)  # the Node.js board is running
    finally:
        cli.kill()  # SIGKILL: the CLI gets no chance to stop its board
        cli.wait(10)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{board_pid}") and _state(board_pid) != "Z":
        assert time.monotonic() < deadline, "the virtual board outlived the process that started it"
        time.sleep(0.1)


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
