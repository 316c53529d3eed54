"""Sub-commands of the ``dawserver`` CLI, one module each."""
