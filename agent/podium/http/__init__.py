"""The agent's HTTP face."""
