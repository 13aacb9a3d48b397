"""Named benchmarks of the real Watchkeeper server stack (`python -m bench list|run`)."""
