"""Browser capture: Chromium through the recorder, behaviors, derivatives."""
