"""Scenario `agri`: the tractor fleet of edgetrace's motivating incident."""
