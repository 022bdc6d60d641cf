"""Pure parsers from file bytes and headers to facts: cards, safetensors, gguf, config.json, frameworks."""
