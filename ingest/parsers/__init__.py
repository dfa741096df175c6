"""One module per family of real senders; `ingest.normalize` picks among them by shape."""
