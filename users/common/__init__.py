"""What every simulated chat user shares: the ChatUser base, prompts, pacing and arrival, HTTP failures."""
