"""Sphinx configuration of the docs site (docs/sphinx/build.sh): the conf.py that
`antsibull-docs sphinx-init` writes, kept as conf_antsibull.py beside this file, and juno.hub's
additions to it."""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
# Everything sphinx-init configured: project, theme, antsibull's extension, nitpicky, ...
from conf_antsibull import *  # noqa: E402,F401,F403 pylint: disable=wildcard-import,unused-wildcard-import,wrong-import-position
import conf_antsibull as _generated  # noqa: E402 pylint: disable=wrong-import-position

# The hand-written pages (README.md and docs/**/*.md) are Markdown: MyST parses them, with the
# anchors GitHub makes for headings (docs link to `page.md#section`), and the README's Mermaid
# diagram as a diagram rather than a code block Pygments cannot highlight.
extensions = _generated.extensions + ['myst_parser', 'sphinxcontrib.mermaid']
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
myst_heading_anchors = 4
myst_fence_as_directive = ['mermaid']

# Links to docs.ansible.com (ansible-core's pages, other collections' plugins) resolve through an
# inventory that build.sh writes from the pages' own references (intersphinx.py): no network is
# needed, and every link is checked. sphinx-init's conf.py also lists Python's and Jinja's
# inventories; no page links there, so they are left out rather than fetched.
intersphinx_mapping = {
    'ansible_devel': ('https://docs.ansible.com/projects/ansible/devel/', os.path.join(_HERE, 'ansible_devel.inv')),
}
