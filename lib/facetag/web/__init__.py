"""The review server: ``facetag review STORE --serve``, the review page as a local web app that names faces."""
