"""What a run leaves: the run folder, the request log, the SLO gate, the progress line."""
