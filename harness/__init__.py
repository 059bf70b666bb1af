"""prunebench harness: config, data, models, training loop, metrics and CLI."""
