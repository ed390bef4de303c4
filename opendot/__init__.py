"""Tools that span the deployables: the `opendot` CLI, the `up` supervisor, the benches.

This package sits above `functions/`, `runtime/` and `shared/` and may import
all three; none of them imports it, and no deployable artefact (the Lambda
zip, the API and runtime images) contains it.
"""
