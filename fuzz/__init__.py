"""Coverage-guided fuzzing of every wire decoder (atheris); ``make fuzz`` runs each target."""
