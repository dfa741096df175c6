"""The process: settings, wiring, the command line, and the publishers incidents go out through."""
