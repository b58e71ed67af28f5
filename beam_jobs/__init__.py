import facetag  # noqa: F401 - before apache_beam: facetag quiets its import notices
