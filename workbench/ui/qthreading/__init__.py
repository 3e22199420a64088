"""Work off the GUI thread: the task pool and its latest-request-wins slots, the run worker and its control."""
