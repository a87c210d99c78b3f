"""Population training: P members (learner + runner + replay + hyperparameters) on the one
training loop, with CMU's genetic critic sync or AgileRL-style evolution between them.
The `population` config section is `predprey.config.population`.

  evolution  the math: initial draws, tournament selection with elitism, mutation, the
             sync schedule (pure functions of arrays and generators)
  member     one member (in this process; the Ray member is predprey.distributed.population)
             and the network copies between members
  resize     networks of another hidden width (the `hidden` mutation)
  curriculum a curriculum over the number of agents (EPC): rate at the next size, keep the
             fittest, move every member to the next size
  trainer    `Population`: the training loop's algorithm and source for all members,
             fitness from the scheduled evaluations, sync/selection/mutation events
"""
