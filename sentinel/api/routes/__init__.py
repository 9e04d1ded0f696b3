"""One router per area: settings, ML, stored runs and sweeps, the web UI."""
