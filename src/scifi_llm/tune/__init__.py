"""Fine-tuning on the writer's prose: prepare the data, train an adapter, merge it, compare the result."""
