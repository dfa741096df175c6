"""Source formats to `Alert`s: decoding, parsers, fingerprints, and the receivers that feed them."""
