"""Fine-tuning on the writer's prose: reading and cleaning it (corpus), and later prepare, train, merge."""
