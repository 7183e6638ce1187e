"""The course site: MkDocs + Material over the READMEs themselves (make docs, make docs-serve)."""
