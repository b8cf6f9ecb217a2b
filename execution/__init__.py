"""Running a search: Ray workers that train candidates, and the asynchronous ask/tell loop."""
