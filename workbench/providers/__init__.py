"""Outside systems behind small protocols (fine-tuning backends, inference clients)."""
