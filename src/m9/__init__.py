"""m9: capacity and throughput sweeps for paged-KV LLM inference engines."""
