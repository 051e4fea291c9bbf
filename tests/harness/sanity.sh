#!/usr/bin/env bash
# ansible-test sanity needs the collection at .../ansible_collections/juno/hub (a real path, not a
# symlink). Copy the files git knows (tracked and untracked-but-not-ignored) there and run it.
# ansible-test bootstraps pip in its virtualenvs from a download site that cannot be reached here;
# when its cached get-pip script is missing, write one that uses ensurepip instead (DESIGN.md).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dest="$top/.cache/sanity/ansible_collections/juno/hub"
python=${SANITY_PYTHON:-3.11}

rm -rf "$dest"
mkdir -p "$dest"
# Files deleted in the working tree but still tracked are left out.
(cd "$top" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  if [ -e "$f" ]; then printf '%s\0' "$f"; fi
done | xargs -0 cp --parents -t "$dest")
(cd "$dest" && git init -q && git add -A >/dev/null 2>&1 && git -c user.email=ci@juno -c user.name=ci commit -qm sanity >/dev/null)

ansible_core=$("$top/.venv/bin/python" -c 'import ansible.release as r; print(r.__version__)')
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
# The pip version ansible-test bootstraps its virtualenvs with (get_venv_packages' default).
pip_version=$(grep -A2 'default_packages = dict(' "$("$top/.venv/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py" \
  | sed -n "s/.*pip='\([0-9.]*\)'.*/\1/p")
f="$cache/get_pip_${pip_version//./_}.py"
if [ -n "$pip_version" ] && [ ! -f "$f" ]; then
  cat >"$f" <<'PY'
# Stand-in for get-pip.py written by juno.hub's sanity harness: the download site is not
# reachable here, so bootstrap pip with ensurepip and install what was asked from the index.
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
drop = {"--no-setuptools", "--no-wheel"}
args = [a for a in sys.argv[1:] if a not in drop]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
PY
fi

# Without shellcheck ansible-test only warns and skips that test: stop instead.
command -v shellcheck >/dev/null 2>&1 || { echo "sanity: shellcheck is missing (make tools installs it)" >&2; exit 1; }
cd "$dest"
echo "sanity: ansible-core $ansible_core, python $python, in $dest" >&2
"$top/.venv/bin/ansible-test" sanity --python "$python" --venv --requirements --color no "$@"
