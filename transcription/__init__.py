"""Offline speech transcription and text-based audio editing."""
