"""A model's decode loop: jobs in (`job`), sequences stepped together in one batch a step
(`scheduler`, `sequence`, `batch`), events out."""
