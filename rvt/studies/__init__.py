"""The library half of each experiment: ``run(config, workdir, overwrite)``; scripts stay thin."""
