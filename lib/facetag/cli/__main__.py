from facetag.cli import console

console()
