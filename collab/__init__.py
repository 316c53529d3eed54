"""Collaboration: the shared CRDT document, the Yjs sync protocol and rooms."""
