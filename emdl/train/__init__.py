"""Training runs: configs, the run orchestrator, the model kinds (:mod:`emdl.train.kinds`),
strategy, callbacks, optimizer and run reports."""
