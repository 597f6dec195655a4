"""The tracking client: runs, buffered metrics, the background runtime."""
