"""Support code that is not the lesson: local servers, a headless browser, W&B run files, test text."""
