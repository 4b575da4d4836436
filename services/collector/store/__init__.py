"""What the collector keeps on disk in its data directory."""
