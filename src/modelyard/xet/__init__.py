"""The Xet storage formats: hashing, xorbs, shards and reconstruction math. No HTTP, no SQL.

Written from the public Xet specification (https://huggingface.co/docs/xet). Hashes are 32 raw
bytes inside this package and cross its boundary as the spec's byte-reordered hex strings.
"""
