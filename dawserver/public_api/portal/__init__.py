"""The developer docs portal at ``/developer/docs``: the v1 reference (Redoc) and guides."""
