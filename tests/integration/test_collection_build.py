"""`ansible-galaxy collection build` gives a tarball that installs, whose playbooks run as juno.hub.*."""

import os
import subprocess

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(TOP, ".venv", "bin")


def test_build_install_and_run_as_juno_hub(tmp_path):
    out = tmp_path / "dist"
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(out), TOP],
                   check=True, capture_output=True, text=True)
    (tarball,) = list(out.glob("juno-hub-*.tar.gz"))
    listing = subprocess.run(["tar", "tzf", str(tarball)], check=True, capture_output=True, text=True).stdout.split()
    assert "playbooks/site.yml" in listing and "roles/preflight/tasks/main.yml" in listing
    assert not any(p.startswith(("tests/", "molecule/", ".ci/", ".venv/", "inventories/lab")) for p in listing), listing
    dest = tmp_path / "collections"
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "--force", "-p", str(dest), str(tarball)],
                   check=True, capture_output=True, text=True)
    (tmp_path / "ansible.cfg").write_text("[defaults]\nnocows = true\n")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(dest), ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    # The installed collection, not the checkout: run from a directory without ansible.cfg.
    r = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", os.path.join(TOP, "tests", "integration", "inventories", "broken"),
                        "juno.hub.preflight"], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode != 0 and "preflight found" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", os.path.join(TOP, "inventories", "example"), "--syntax-check",
                        "juno.hub.site"], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
