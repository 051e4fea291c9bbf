"""Shared fixtures for integration tests: containers on the local Docker engine.

Each test module asks for the containers it needs through ``docker_container``; everything a
fixture starts it removes again. Names carry the test session's id so that parallel runs and a
developer's lab do not collide.
"""

import os
import subprocess
import uuid

import pytest

SESSION = os.environ.get("JUNO_TEST_SESSION", uuid.uuid4().hex[:6])
BASE_IMAGE = "juno-test-base:bookworm"
NODE_ARGS = [
    "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
    "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
]


def docker(*args, check=True, capture=True, timeout=600):
    """Run a docker CLI command and return its CompletedProcess."""
    return subprocess.run(["docker", *args], check=check, capture_output=capture, text=True, timeout=timeout)


def docker_exec(name, *cmd, check=True, timeout=600, user=None):
    args = ["exec"] + (["-u", user] if user else []) + [name, *cmd]
    return docker(*args, check=check, timeout=timeout)


@pytest.fixture(scope="session")
def docker_network():
    """A user-defined bridge network for this test session (containers resolve each other by name)."""
    name = f"juno-it-{SESSION}"
    docker("network", "create", name)
    yield name
    docker("network", "rm", name, check=False)


@pytest.fixture(scope="session")
def docker_container(docker_network):
    """Factory: start a container, return its name; all are removed at the end of the session."""
    started = []

    def start(role, image=BASE_IMAGE, node=True, extra=(), command=()):
        name = f"juno-it-{SESSION}-{role}"
        args = ["run", "-d", "--name", name, "--hostname", role, "--network", docker_network]
        if node:
            args += NODE_ARGS
        args += list(extra) + [image, *command]
        docker(*args)
        started.append(name)
        return name

    yield start
    for name in reversed(started):
        docker("rm", "-f", "-v", name, check=False)


def container_ip(name):
    out = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name).stdout
    return out.split()[0]
