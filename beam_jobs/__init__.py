"""facetag's Beam pipelines; each module has run(argv, test_pipeline=None) and --help."""

from facetag.pipeline.notices import hide_beam_notices

hide_beam_notices()  # first: Beam logs a notice not for facetag's users when it is imported
