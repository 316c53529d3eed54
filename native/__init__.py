"""C kernels of the mixing engine; the compiled module is ``native._engine``."""
