"""One module per failure class whose text branches on the facts of the alert."""
