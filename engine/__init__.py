"""engine: time and money — how simulated days pass and orders fill."""
