"""Tests of the provider simulator (prompt_analyzer.simulator)."""
