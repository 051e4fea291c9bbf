"""Every plugin's EXAMPLES is valid YAML (the docs site highlights them as YAML; an example that
does not parse is one a reader cannot paste into a playbook)."""

import ast
import glob
import os

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def examples():
    for path in sorted(glob.glob(os.path.join(TOP, "plugins", "*", "*.yml"))):
        with open(path) as f:
            doc = yaml.safe_load(f)
        if isinstance(doc, dict) and "EXAMPLES" in doc:
            yield os.path.relpath(path, TOP), doc["EXAMPLES"]
    for path in sorted(glob.glob(os.path.join(TOP, "plugins", "*", "*.py"))):
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and getattr(node.targets[0], "id", None) == "EXAMPLES"):
                yield os.path.relpath(path, TOP), node.value.value


EXAMPLES = list(examples())


def test_examples_were_found():
    assert len(EXAMPLES) > 10


@pytest.mark.parametrize("path,text", EXAMPLES, ids=[path for path, text in EXAMPLES])
def test_example_is_valid_yaml(path, text):
    yaml.safe_load(text)
