"""`make demo`: run the scenario through the pipeline, verify the result, draw the dashboard."""
