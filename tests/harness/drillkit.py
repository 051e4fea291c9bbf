"""What the drills on a live site share (tests/integration/test_cluster.py, test_ha.py): the
play recap read from a run's output, figures kept in tests/output/drills.json, polling with a
deadline, and a run of ansible-playbook killed at a chosen point."""

import json
import os
import re
import signal
import subprocess
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRILLS = os.path.join(TOP, "tests", "output", "drills.json")


def recap(stdout):
    """host -> {ok, changed, failed, ...} from the PLAY RECAP."""
    out = {}
    for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", stdout, re.M):
        out[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return out


def record(name, **figures):
    """Keep a drill's measured figures in tests/output/drills.json (and print them)."""
    data = {}
    if os.path.exists(DRILLS):
        with open(DRILLS) as f:
            data = json.load(f)
    data[name] = figures
    os.makedirs(os.path.dirname(DRILLS), exist_ok=True)
    with open(DRILLS, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    print("drill %s: %s" % (name, json.dumps(figures, sort_keys=True)))


def wait_until(what, check, timeout, interval=2):
    """Poll check() until it returns a true value; return (value, seconds waited)."""
    start = time.monotonic()
    while True:
        value = check()
        if value:
            return value, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError("timed out after %d s waiting for %s" % (timeout, what))
        time.sleep(interval)


def run_acting_at(cmd, env, points, act, timeout=1800):
    """Run cmd (ansible-playbook), reading its output line by line; `points` is a list of regular
    expressions matched in order (each one after the previous matched). When the last one
    matches, act(proc) runs once, and the output is read on to its end. Returns (output, rc,
    acted)."""
    proc = subprocess.Popen(cmd, cwd=TOP, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    lines, todo, acted = [], [re.compile(p) for p in points], False
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        lines.append(line)
        if todo and todo[0].search(line):
            todo.pop(0)
            if not todo:
                act(proc)
                acted = True
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.stdout.close()
    return "".join(lines), proc.wait(), acted


def sigkill(proc):
    """SIGKILL to ansible-playbook and its forks (its process group), as an admin's session killed
    by the OOM killer or a lost terminal would end them: no handler, no `always`, no cleanup."""
    os.killpg(proc.pid, signal.SIGKILL)
