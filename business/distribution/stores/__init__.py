"""Store connectors (plug-ins themselves) and a fake store server for tests."""
