"""facetag's Beam pipelines; each module has run(argv, test_pipeline=None) and --help."""

import facetag  # noqa: F401 - first: its logging filter must be in place before Beam is imported
