"""Worker processes a hard deadline really stops: the accuracy checks' pool and its clean fork server."""
