"""Program search: the node record, GIF-MCTS, the baselines, the harness, one synthesis run."""
