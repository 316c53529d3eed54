"""One connector per network, their shared contract (base) and publishing rules (rules)."""
