"""Beam transforms for photo archives: encode photos to faces, index a gallery, match faces."""
