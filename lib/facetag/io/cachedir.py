"""Where facetag keeps what it computes once per machine: ``$FACETAG_CACHE`` or ``~/.cache/facetag``."""

import os


def default_cache_dir():
    return os.environ.get("FACETAG_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "facetag")
