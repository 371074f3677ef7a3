"""tdn's built-in backends, installed as the tdn.backends package."""
