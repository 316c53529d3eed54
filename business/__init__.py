"""Business plug-in modules (one sub-package each), loaded through the plug-in contract."""
