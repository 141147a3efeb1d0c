"""A realistic, deterministic stand-in for the KRA and KSPO APIs, with live odds and fault injection."""
