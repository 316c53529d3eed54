"""GraphQL at ``/api/graphql`` (strawberry) over the same services as ``/api/v1``.

:mod:`.schema` holds the read types and resolvers, :mod:`.mutations` the writes (run
by ``/api/v1``'s handlers), :mod:`.executable` the schema with its limits,
:mod:`.loaders` the per-request DataLoaders that batch reads (no query per project),
:mod:`.limits` the depth and cost limits, :mod:`.persisted` the persisted queries (by
SHA-256, APQ-style), :mod:`.route` the HTTP routes (the endpoint and the SDL) and
:mod:`.compat` the check of the SDL against its snapshot, ``docs/graphql-v1.graphql``.
"""
