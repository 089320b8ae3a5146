"""Media input: sources (PyAV decode threads), the media clock and the bounded rings."""
