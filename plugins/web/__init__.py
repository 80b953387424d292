"""The web UI people drive: the form of the options that matter, one run folder per test, the Chatswarm tab."""
